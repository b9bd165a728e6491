-- What the server keeps besides the history: user accounts (not `users`, a name data sets use),
-- their flows and schedules, and per-minute
-- execution metrics. A user's flows and schedules go with the user, a flow's schedules with the
-- flow; executions stay (history).

CREATE TABLE accounts (
    id            uuid        NOT NULL PRIMARY KEY,
    username      text        NOT NULL UNIQUE, -- compared exactly: the server normalises names
    password_hash text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('admin', 'user')),
    created_at    timestamptz NOT NULL
);

CREATE TABLE flows (
    id         uuid        NOT NULL PRIMARY KEY,
    owner      uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name       text        NOT NULL, -- the flow's name, so listing does not parse the flow
    -- Optimistic concurrency: an update names the version it read.
    version    bigint      NOT NULL CHECK (version >= 1),
    -- Canonical JSON of the flow file; json keeps it byte for byte (jsonb would reorder keys).
    flow       json        NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE INDEX flows_owner ON flows (owner, name);

CREATE TABLE schedules (
    id         uuid        NOT NULL PRIMARY KEY,
    owner      uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    flow_id    uuid        NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    cron       text        NOT NULL,
    timezone   text        NOT NULL,
    vars       jsonb       NOT NULL CHECK (jsonb_typeof(vars) = 'object'),
    enabled    boolean     NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE INDEX schedules_owner ON schedules (owner, id);
-- Deleting a flow finds its schedules without a scan.
CREATE INDEX schedules_flow_id ON schedules (flow_id);

-- Executions finished per minute and flow name, upserted with the finished report.
CREATE TABLE metrics_minute (
    minute          timestamptz NOT NULL, -- start of the minute
    flow            text        NOT NULL,
    executions      bigint      NOT NULL CHECK (executions >= 0),
    succeeded       bigint      NOT NULL CHECK (succeeded >= 0),
    failed          bigint      NOT NULL CHECK (failed >= 0),
    cancelled       bigint      NOT NULL CHECK (cancelled >= 0),
    duration_ms_sum bigint      NOT NULL CHECK (duration_ms_sum >= 0),
    duration_ms_max bigint      NOT NULL CHECK (duration_ms_max >= 0),
    records_out     bigint      NOT NULL CHECK (records_out >= 0),
    PRIMARY KEY (minute, flow)
);
