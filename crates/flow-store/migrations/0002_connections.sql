-- Named connections: flows refer to them by name; URLs may hold templates ({{ env.X }}) so that
-- secrets stay out of the store as well as out of flow files.
CREATE TABLE connections (
    name    TEXT PRIMARY KEY NOT NULL,
    kind    TEXT NOT NULL,
    url     TEXT NOT NULL,
    options TEXT NOT NULL
) STRICT;
