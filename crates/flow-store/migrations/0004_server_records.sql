-- What the server keeps besides the history: user accounts (not `users`, a name data sets use),
-- their flows and schedules, and per-minute
-- execution metrics. The desktop store has the same tables, so one store API serves both.
-- Encodings as in 0001: uuids and times as text, enums as their snake_case names.

CREATE TABLE accounts (
    id            TEXT NOT NULL PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE, -- compared exactly: the server normalises names
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    created_at    TEXT NOT NULL
) STRICT;

-- A user's flows and schedules go with the user; executions stay (history), naming the
-- owner and flow they had.
CREATE TABLE flows (
    id         TEXT    NOT NULL PRIMARY KEY,
    owner      TEXT    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL, -- the flow's name, so listing does not parse the flow
    version    INTEGER NOT NULL CHECK (version >= 1),
    flow       TEXT    NOT NULL, -- canonical JSON of the flow file
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
) STRICT;

CREATE INDEX flows_owner ON flows (owner, name);

CREATE TABLE schedules (
    id         TEXT    NOT NULL PRIMARY KEY,
    owner      TEXT    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    flow_id    TEXT    NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    cron       TEXT    NOT NULL,
    timezone   TEXT    NOT NULL,
    vars       TEXT    NOT NULL, -- JSON object
    enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
) STRICT;

CREATE INDEX schedules_owner ON schedules (owner, id);
-- Deleting a flow finds its schedules without a scan.
CREATE INDEX schedules_flow_id ON schedules (flow_id);

-- Executions finished per minute and flow name, upserted with the finished report.
CREATE TABLE metrics_minute (
    minute          TEXT    NOT NULL, -- start of the minute, as the other times
    flow            TEXT    NOT NULL,
    executions      INTEGER NOT NULL,
    succeeded       INTEGER NOT NULL,
    failed          INTEGER NOT NULL,
    cancelled       INTEGER NOT NULL,
    duration_ms_sum INTEGER NOT NULL,
    duration_ms_max INTEGER NOT NULL,
    records_out     INTEGER NOT NULL,
    PRIMARY KEY (minute, flow)
) STRICT;
