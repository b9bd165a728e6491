-- Hourly rollups (issue 10): the per-minute execution rollup summed per hour, written beside it
-- by `record_finished`. A dashboard with a step of whole hours reads the window's whole hours
-- here and only its partial first and last hours from `metrics_minute`, so 30 days cost 720
-- rows per flow instead of 43,200. Filled from the minutes already recorded.
CREATE TABLE metrics_hour (
    hour            TEXT    NOT NULL, -- start of the hour, as the other times
    flow            TEXT    NOT NULL,
    executions      INTEGER NOT NULL,
    succeeded       INTEGER NOT NULL,
    failed          INTEGER NOT NULL,
    cancelled       INTEGER NOT NULL,
    duration_ms_sum INTEGER NOT NULL,
    duration_ms_max INTEGER NOT NULL,
    records_out     INTEGER NOT NULL,
    le_5 INTEGER NOT NULL, le_10 INTEGER NOT NULL, le_25 INTEGER NOT NULL, le_50 INTEGER NOT NULL,
    le_100 INTEGER NOT NULL, le_250 INTEGER NOT NULL, le_500 INTEGER NOT NULL,
    le_1000 INTEGER NOT NULL, le_2500 INTEGER NOT NULL, le_5000 INTEGER NOT NULL,
    le_10000 INTEGER NOT NULL, le_30000 INTEGER NOT NULL, le_60000 INTEGER NOT NULL,
    le_300000 INTEGER NOT NULL, le_1800000 INTEGER NOT NULL, le_inf INTEGER NOT NULL,
    PRIMARY KEY (hour, flow)
) STRICT;

-- Minute texts are fixed-width RFC 3339 ("2026-12-01T10:53:00.000000000Z"): the hour is the
-- first 14 characters and zeros.
INSERT INTO metrics_hour
SELECT substr(minute, 1, 14) || '00:00.000000000Z', flow, sum(executions), sum(succeeded),
       sum(failed), sum(cancelled), sum(duration_ms_sum), max(duration_ms_max), sum(records_out),
       sum(le_5), sum(le_10), sum(le_25), sum(le_50), sum(le_100), sum(le_250), sum(le_500),
       sum(le_1000), sum(le_2500), sum(le_5000), sum(le_10000), sum(le_30000), sum(le_60000),
       sum(le_300000), sum(le_1800000), sum(le_inf)
FROM metrics_minute
GROUP BY substr(minute, 1, 14), flow;
