-- Named connections: flows refer to them by name; URLs may hold templates ({{ env.X }}) so that
-- secrets stay out of the store as well as out of flow files.
CREATE TABLE connections (
    name    text  NOT NULL PRIMARY KEY,
    kind    text  NOT NULL CHECK (kind IN ('postgres', 'mongodb')),
    url     text  NOT NULL,
    options jsonb NOT NULL
);
