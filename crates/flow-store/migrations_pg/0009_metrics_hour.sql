-- Hourly rollups (issue 10): the per-minute execution rollup summed per hour, written beside it
-- by `record_finished`. A dashboard with a step of whole hours reads the window's whole hours
-- here and only its partial first and last hours from `metrics_minute`, so 30 days cost 720
-- rows per flow instead of 43,200. Filled from the minutes already recorded.
CREATE TABLE metrics_hour (
    hour            timestamptz NOT NULL, -- start of the hour
    flow            text        NOT NULL,
    executions      bigint      NOT NULL CHECK (executions >= 0),
    succeeded       bigint      NOT NULL CHECK (succeeded >= 0),
    failed          bigint      NOT NULL CHECK (failed >= 0),
    cancelled       bigint      NOT NULL CHECK (cancelled >= 0),
    duration_ms_sum bigint      NOT NULL CHECK (duration_ms_sum >= 0),
    duration_ms_max bigint      NOT NULL CHECK (duration_ms_max >= 0),
    records_out     bigint      NOT NULL CHECK (records_out >= 0),
    le_5 bigint NOT NULL, le_10 bigint NOT NULL, le_25 bigint NOT NULL, le_50 bigint NOT NULL,
    le_100 bigint NOT NULL, le_250 bigint NOT NULL, le_500 bigint NOT NULL,
    le_1000 bigint NOT NULL, le_2500 bigint NOT NULL, le_5000 bigint NOT NULL,
    le_10000 bigint NOT NULL, le_30000 bigint NOT NULL, le_60000 bigint NOT NULL,
    le_300000 bigint NOT NULL, le_1800000 bigint NOT NULL, le_inf bigint NOT NULL,
    PRIMARY KEY (hour, flow)
);

INSERT INTO metrics_hour
SELECT date_trunc('hour', minute), flow, sum(executions), sum(succeeded), sum(failed),
       sum(cancelled), sum(duration_ms_sum), max(duration_ms_max), sum(records_out),
       sum(le_5), sum(le_10), sum(le_25), sum(le_50), sum(le_100), sum(le_250), sum(le_500),
       sum(le_1000), sum(le_2500), sum(le_5000), sum(le_10000), sum(le_30000), sum(le_60000),
       sum(le_300000), sum(le_1800000), sum(le_inf)
FROM metrics_minute
GROUP BY date_trunc('hour', minute), flow;
