-- Execution history: one row per execution, one per node of a finished execution, and the node's
-- data preview. Enums are their serde snake_case names, checked here so a row another version
-- cannot read is refused when written; counters are non-negative bigints.

CREATE TABLE executions (
    id             uuid        NOT NULL PRIMARY KEY, -- UUID v7: id order is start order
    correlation_id text        NOT NULL,
    flow           text        NOT NULL,
    state          text        NOT NULL CHECK (state IN
                       ('queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled')),
    error          text,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    -- Sum of node_runs.records_out, kept here so listing needs no join; 0 until finished.
    records_out    bigint      NOT NULL DEFAULT 0 CHECK (records_out >= 0),
    -- Who started it and which stored flow it ran. No foreign keys: history outlives both.
    owner          uuid,
    flow_id        uuid
);

-- Listing is newest first by id and pages by keyset (id < $n). Each filter's index ends with id,
-- so one backward index range serves filter, order and page at once; without a filter, the
-- primary key does.
CREATE INDEX executions_flow ON executions (flow, id);
CREATE INDEX executions_state ON executions (state, id);
CREATE INDEX executions_owner ON executions (owner, id);
CREATE INDEX executions_flow_id ON executions (flow_id, id);

CREATE TABLE node_runs (
    execution_id uuid        NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          integer     NOT NULL, -- position in the execution report
    node_id      text        NOT NULL,
    node_type    text        NOT NULL,
    state        text        NOT NULL CHECK (state IN ('pending', 'running', 'retrying', 'paused',
                     'succeeded', 'failed', 'skipped', 'cancelled')),
    attempts     bigint      NOT NULL CHECK (attempts >= 0),
    started_at   timestamptz,
    finished_at  timestamptz,
    records_in   bigint      NOT NULL CHECK (records_in >= 0),
    records_out  bigint      NOT NULL CHECK (records_out >= 0),
    errors       bigint      NOT NULL CHECK (errors >= 0),
    error        text,
    error_kind   text CHECK (error_kind IN ('params', 'record', 'timeout', 'transient', 'permanent',
                     'circuit_open', 'cancelled')),
    sink         text CHECK (sink IN ('committed', 'rolled_back')),
    PRIMARY KEY (execution_id, seq)
);

CREATE TABLE node_samples (
    execution_id uuid    NOT NULL,
    node_seq     integer NOT NULL,
    seq          integer NOT NULL, -- position in the node's preview
    -- json, not jsonb: jsonb reorders keys, and a record's field order is part of its value.
    record       json    NOT NULL,
    PRIMARY KEY (execution_id, node_seq, seq),
    FOREIGN KEY (execution_id, node_seq) REFERENCES node_runs (execution_id, seq) ON DELETE CASCADE
);
