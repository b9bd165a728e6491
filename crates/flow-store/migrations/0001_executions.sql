-- Execution history: one row per execution, one per node of a finished execution, and the node's
-- data preview. Enums are their serde snake_case names; timestamps are RFC 3339 UTC text with a
-- fixed nine-digit fraction, so text order is time order; counters are non-negative integers.

CREATE TABLE executions (
    id             TEXT    NOT NULL PRIMARY KEY, -- uuid, hyphenated lower case
    correlation_id TEXT    NOT NULL,
    flow           TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    error          TEXT,
    started_at     TEXT    NOT NULL,
    finished_at    TEXT,
    -- Sum of node_runs.records_out, kept here so listing needs no join; 0 until finished.
    records_out    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX executions_started_at ON executions (started_at);
-- Filtering by flow also orders by start time: one index serves both.
CREATE INDEX executions_flow ON executions (flow, started_at);

CREATE TABLE node_runs (
    execution_id TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL, -- position in the execution report
    node_id      TEXT    NOT NULL,
    node_type    TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    started_at   TEXT,
    finished_at  TEXT,
    records_in   INTEGER NOT NULL,
    records_out  INTEGER NOT NULL,
    errors       INTEGER NOT NULL,
    error        TEXT,
    error_kind   TEXT,
    sink         TEXT,
    PRIMARY KEY (execution_id, seq)
) STRICT;

CREATE TABLE node_samples (
    execution_id TEXT    NOT NULL,
    node_seq     INTEGER NOT NULL,
    seq          INTEGER NOT NULL, -- position in the node's preview
    record       TEXT    NOT NULL, -- JSON object
    PRIMARY KEY (execution_id, node_seq, seq),
    FOREIGN KEY (execution_id, node_seq) REFERENCES node_runs (execution_id, seq) ON DELETE CASCADE
) STRICT;
