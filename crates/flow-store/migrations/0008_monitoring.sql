-- Monitoring (issue 10): a duration histogram on the per-minute execution rollup, and a
-- per-minute rollup per node, both filled by `record_finished` in its transaction. Dashboards
-- read only these rollups, never the executions.
--
-- The histogram's buckets are fixed (flow-store `DURATION_BUCKETS_MS`, the same for both
-- backends): `le_N` counts durations above the previous bound and at most N ms, `le_inf` the
-- longer ones. Percentiles come from these counts. Rows written before this migration have
-- no histogram (all zero): their executions count everywhere except in the percentiles.
ALTER TABLE metrics_minute ADD COLUMN le_5 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metrics_minute ADD COLUMN le_10 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metrics_minute ADD COLUMN le_25 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metrics_minute ADD COLUMN le_50 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metrics_minute ADD COLUMN le_100 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metrics_minute ADD COLUMN le_250 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metrics_minute ADD COLUMN le_500 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metrics_minute ADD COLUMN le_1000 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metrics_minute ADD COLUMN le_2500 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metrics_minute ADD COLUMN le_5000 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metrics_minute ADD COLUMN le_10000 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metrics_minute ADD COLUMN le_30000 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metrics_minute ADD COLUMN le_60000 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metrics_minute ADD COLUMN le_300000 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metrics_minute ADD COLUMN le_1800000 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metrics_minute ADD COLUMN le_inf INTEGER NOT NULL DEFAULT 0;

-- Node runs (nodes that started) of executions finished in the minute, per flow name and node.
CREATE TABLE metrics_node_minute (
    minute          TEXT    NOT NULL, -- the minute the execution finished in, as metrics_minute
    flow            TEXT    NOT NULL,
    node_id         TEXT    NOT NULL,
    node_type       TEXT    NOT NULL,
    runs            INTEGER NOT NULL,
    failed          INTEGER NOT NULL,
    duration_ms_sum INTEGER NOT NULL,
    duration_ms_max INTEGER NOT NULL,
    le_5            INTEGER NOT NULL,
    le_10           INTEGER NOT NULL,
    le_25           INTEGER NOT NULL,
    le_50           INTEGER NOT NULL,
    le_100          INTEGER NOT NULL,
    le_250          INTEGER NOT NULL,
    le_500          INTEGER NOT NULL,
    le_1000         INTEGER NOT NULL,
    le_2500         INTEGER NOT NULL,
    le_5000         INTEGER NOT NULL,
    le_10000        INTEGER NOT NULL,
    le_30000        INTEGER NOT NULL,
    le_60000        INTEGER NOT NULL,
    le_300000       INTEGER NOT NULL,
    le_1800000      INTEGER NOT NULL,
    le_inf          INTEGER NOT NULL,
    records_in      INTEGER NOT NULL,
    records_out     INTEGER NOT NULL,
    errors          INTEGER NOT NULL,
    -- Leading with the minute: windows and retention are minute ranges of this key.
    PRIMARY KEY (minute, flow, node_id, node_type)
) STRICT;
