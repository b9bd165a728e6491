-- Monitoring (issue 10): a duration histogram on the per-minute execution rollup, and a
-- per-minute rollup per node, both filled by `record_finished` in its transaction. Dashboards
-- read only these rollups, never the executions.
--
-- The histogram's buckets are fixed (flow-store `DURATION_BUCKETS_MS`, the same for both
-- backends): `le_N` counts durations above the previous bound and at most N ms, `le_inf` the
-- longer ones. Percentiles come from these counts. Rows written before this migration have
-- no histogram (all zero): their executions count everywhere except in the percentiles.
ALTER TABLE metrics_minute ADD COLUMN le_5 bigint NOT NULL DEFAULT 0 CHECK (le_5 >= 0);
ALTER TABLE metrics_minute ADD COLUMN le_10 bigint NOT NULL DEFAULT 0 CHECK (le_10 >= 0);
ALTER TABLE metrics_minute ADD COLUMN le_25 bigint NOT NULL DEFAULT 0 CHECK (le_25 >= 0);
ALTER TABLE metrics_minute ADD COLUMN le_50 bigint NOT NULL DEFAULT 0 CHECK (le_50 >= 0);
ALTER TABLE metrics_minute ADD COLUMN le_100 bigint NOT NULL DEFAULT 0 CHECK (le_100 >= 0);
ALTER TABLE metrics_minute ADD COLUMN le_250 bigint NOT NULL DEFAULT 0 CHECK (le_250 >= 0);
ALTER TABLE metrics_minute ADD COLUMN le_500 bigint NOT NULL DEFAULT 0 CHECK (le_500 >= 0);
ALTER TABLE metrics_minute ADD COLUMN le_1000 bigint NOT NULL DEFAULT 0 CHECK (le_1000 >= 0);
ALTER TABLE metrics_minute ADD COLUMN le_2500 bigint NOT NULL DEFAULT 0 CHECK (le_2500 >= 0);
ALTER TABLE metrics_minute ADD COLUMN le_5000 bigint NOT NULL DEFAULT 0 CHECK (le_5000 >= 0);
ALTER TABLE metrics_minute ADD COLUMN le_10000 bigint NOT NULL DEFAULT 0 CHECK (le_10000 >= 0);
ALTER TABLE metrics_minute ADD COLUMN le_30000 bigint NOT NULL DEFAULT 0 CHECK (le_30000 >= 0);
ALTER TABLE metrics_minute ADD COLUMN le_60000 bigint NOT NULL DEFAULT 0 CHECK (le_60000 >= 0);
ALTER TABLE metrics_minute ADD COLUMN le_300000 bigint NOT NULL DEFAULT 0 CHECK (le_300000 >= 0);
ALTER TABLE metrics_minute ADD COLUMN le_1800000 bigint NOT NULL DEFAULT 0 CHECK (le_1800000 >= 0);
ALTER TABLE metrics_minute ADD COLUMN le_inf bigint NOT NULL DEFAULT 0 CHECK (le_inf >= 0);

-- Node runs (nodes that started) of executions finished in the minute, per flow name and node.
CREATE TABLE metrics_node_minute (
    minute          timestamptz NOT NULL, -- the minute the execution finished in
    flow            text        NOT NULL,
    node_id         text        NOT NULL,
    node_type       text        NOT NULL,
    runs            bigint      NOT NULL CHECK (runs >= 0),
    failed          bigint      NOT NULL CHECK (failed >= 0),
    duration_ms_sum bigint      NOT NULL CHECK (duration_ms_sum >= 0),
    duration_ms_max bigint      NOT NULL CHECK (duration_ms_max >= 0),
    le_5            bigint      NOT NULL CHECK (le_5 >= 0),
    le_10           bigint      NOT NULL CHECK (le_10 >= 0),
    le_25           bigint      NOT NULL CHECK (le_25 >= 0),
    le_50           bigint      NOT NULL CHECK (le_50 >= 0),
    le_100          bigint      NOT NULL CHECK (le_100 >= 0),
    le_250          bigint      NOT NULL CHECK (le_250 >= 0),
    le_500          bigint      NOT NULL CHECK (le_500 >= 0),
    le_1000         bigint      NOT NULL CHECK (le_1000 >= 0),
    le_2500         bigint      NOT NULL CHECK (le_2500 >= 0),
    le_5000         bigint      NOT NULL CHECK (le_5000 >= 0),
    le_10000        bigint      NOT NULL CHECK (le_10000 >= 0),
    le_30000        bigint      NOT NULL CHECK (le_30000 >= 0),
    le_60000        bigint      NOT NULL CHECK (le_60000 >= 0),
    le_300000       bigint      NOT NULL CHECK (le_300000 >= 0),
    le_1800000      bigint      NOT NULL CHECK (le_1800000 >= 0),
    le_inf          bigint      NOT NULL CHECK (le_inf >= 0),
    records_in      bigint      NOT NULL CHECK (records_in >= 0),
    records_out     bigint      NOT NULL CHECK (records_out >= 0),
    errors          bigint      NOT NULL CHECK (errors >= 0),
    -- Leading with the minute: windows and retention are minute ranges of this key.
    PRIMARY KEY (minute, flow, node_id, node_type)
);
