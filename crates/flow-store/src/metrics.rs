//! Monitoring from the per-minute rollups (`metrics_minute`, `metrics_node_minute`): what both
//! backends share. The backends sum rollup rows in SQL (fragments below, valid in both
//! dialects) and hand the sums to the builders here, which compute rates and percentiles, so
//! every figure is computed once for both.
//!
//! Durations are kept as a histogram of fixed buckets ([`DURATION_BUCKETS_MS`]) beside their sum
//! and maximum: buckets add up across minutes, flows and processes, which exact percentiles do
//! not. A percentile is the upper bound of the bucket holding that rank, but never more than the
//! largest duration seen (so one bucket of equal durations gives them exactly).

use std::sync::LazyLock;

use chrono::{DateTime, DurationRound, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::StoreError;
use crate::codec::{CodecError, parse_int};

/// Upper bounds (ms, inclusive) of the duration histogram's buckets; one more bucket holds the
/// longer durations. Columns `le_<bound>` and `le_inf` of both rollup tables (migrations 0008 and
/// 0007_pg): changing this needs a migration.
pub const DURATION_BUCKETS_MS: [u64; 15] =
    [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 1_800_000];

/// Buckets per histogram: the bounded ones and the last.
pub(crate) const BUCKETS: usize = DURATION_BUCKETS_MS.len() + 1;

/// Most points one dashboard answers; a longer window needs a longer step.
pub const MAX_DASHBOARD_POINTS: i64 = 1_500;

/// The bucket columns in order: `le_5, …, le_inf`.
pub(crate) static BUCKET_COLUMNS: LazyLock<String> = LazyLock::new(|| bucket_columns().join(", "));

/// `CAST(sum(le_5) AS BIGINT), …`: a sum is numeric in PostgreSQL, so every sum is cast back.
pub(crate) static BUCKET_SUMS: LazyLock<String> = LazyLock::new(|| {
    bucket_columns().iter().map(|c| format!("CAST(sum({c}) AS BIGINT)")).collect::<Vec<_>>().join(", ")
});

/// `le_5 = t.le_5 + excluded.le_5, …` for an upsert into table `t`.
fn bucket_upsert(table: &str) -> String {
    bucket_columns()
        .iter()
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `SET` list of an upsert adding an execution to its row of `table` (`metrics_minute` or
/// `metrics_hour`); `larger` is the dialect's two-argument maximum (`greatest` in PostgreSQL,
/// `max` in SQLite).
pub(crate) fn flow_rollup_upsert(table: &str, larger: &str) -> String {
    format!(
        "executions = {table}.executions + excluded.executions, \
         succeeded = {table}.succeeded + excluded.succeeded, \
         failed = {table}.failed + excluded.failed, \
         cancelled = {table}.cancelled + excluded.cancelled, \
         duration_ms_sum = {table}.duration_ms_sum + excluded.duration_ms_sum, \
         duration_ms_max = {larger}({table}.duration_ms_max, excluded.duration_ms_max), \
         records_out = {table}.records_out + excluded.records_out, {}",
        bucket_upsert(table)
    )
}

/// The hour a minute is in.
pub(crate) fn hour_of(minute: DateTime<Utc>) -> DateTime<Utc> {
    minute.duration_trunc(chrono::Duration::hours(1)).unwrap_or(minute)
}

/// The whole hours of a window, `[a, b)`: from the first hour starting at or after `since` to
/// the last one ending at or before `until` (`a == b` when there are none). A dashboard with a
/// step of whole hours reads these from `metrics_hour`, and the minutes `[since, a)` and
/// `[b, until)` from `metrics_minute`.
pub(crate) fn whole_hours(window: &MetricsWindow) -> (DateTime<Utc>, DateTime<Utc>) {
    let first = hour_of(window.since);
    let first = if first < window.since { first + chrono::Duration::hours(1) } else { first };
    let a = first.min(window.until);
    (a, hour_of(window.until).max(a))
}

/// The same for a node's minute in `metrics_node_minute`.
pub(crate) fn node_rollup_upsert(larger: &str) -> String {
    format!(
        "runs = metrics_node_minute.runs + excluded.runs, \
         failed = metrics_node_minute.failed + excluded.failed, \
         duration_ms_sum = metrics_node_minute.duration_ms_sum + excluded.duration_ms_sum, \
         duration_ms_max = {larger}(metrics_node_minute.duration_ms_max, excluded.duration_ms_max), \
         records_in = metrics_node_minute.records_in + excluded.records_in, \
         records_out = metrics_node_minute.records_out + excluded.records_out, \
         errors = metrics_node_minute.errors + excluded.errors, {}",
        bucket_upsert("metrics_node_minute")
    )
}

fn bucket_columns() -> Vec<String> {
    DURATION_BUCKETS_MS.iter().map(|b| format!("le_{b}")).chain(["le_inf".to_owned()]).collect()
}

/// Counts per duration bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Histogram(pub(crate) [i64; BUCKETS]);

impl Histogram {
    pub(crate) fn add(&mut self, duration_ms: i64) {
        let bucket = DURATION_BUCKETS_MS
            .iter()
            .position(|&bound| u64::try_from(duration_ms).is_ok_and(|d| d <= bound))
            .unwrap_or(BUCKETS - 1);
        self.0[bucket] += 1;
    }

    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (sum, n) in self.0.iter_mut().zip(other.0) {
            *sum += n;
        }
    }
}

/// The rollup minutes a query covers: those starting at or after `since` and before `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct MetricsWindow {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// Durations of a set of executions (or node runs), from their rollups.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DurationStats {
    /// Mean; None without any.
    pub avg_ms: Option<f64>,
    /// Percentiles from the histogram: the upper bound of the bucket holding that rank, at most
    /// `max_ms`. None without any.
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    pub max_ms: Option<u64>,
}

/// Executions that finished in one step of the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DashboardPoint {
    /// The step's start (a multiple of the step since the Unix epoch).
    pub at: DateTime<Utc>,
    pub executions: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub duration: DurationStats,
}

/// Executions over a window: totals, and one point per step (steps without executions too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Dashboard {
    pub window: MetricsWindow,
    pub step_minutes: u32,
    pub executions: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Succeeded over finished executions; None without any.
    pub success_rate: Option<f64>,
    pub duration: DurationStats,
    pub points: Vec<DashboardPoint>,
}

/// One flow (by name) over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct FlowMetrics {
    pub flow: String,
    pub executions: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Failed over finished executions (cancelled ones are not errors).
    pub error_rate: f64,
    pub duration: DurationStats,
    /// Records out of all its nodes, summed.
    pub records_out: u64,
}

/// One node of a flow over a window: its runs (executions in which it started).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct NodeMetrics {
    pub flow: String,
    pub node_id: String,
    pub node_type: String,
    pub runs: u64,
    /// Runs that ended `failed`.
    pub failed: u64,
    /// Failed over runs.
    pub error_rate: f64,
    /// From its start to its end (the execution's end when the node has none).
    pub duration: DurationStats,
    pub records_in: u64,
    pub records_out: u64,
    /// Records the node reported as errors.
    pub errors: u64,
}

/// Summed counts as the queries return them (i64: both databases' integer).
pub(crate) struct Counts<'a> {
    pub(crate) table: &'static str,
    pub(crate) values: &'a [i64],
}

impl Counts<'_> {
    fn get(&self, column: &'static str, i: usize) -> Result<u64, CodecError> {
        let value = self.values.get(i).copied().unwrap_or_default();
        parse_int(column, value).map_err(|e| match e {
            CodecError::Corrupt { value, reason, .. } => {
                CodecError::Corrupt { column: self.table, value: format!("{column} {value}"), reason }
            }
            other => other,
        })
    }

    fn histogram(&self, from: usize) -> Histogram {
        let mut histogram = Histogram::default();
        for (bucket, value) in histogram.0.iter_mut().zip(self.values.iter().skip(from)) {
            *bucket = *value;
        }
        histogram
    }
}

/// Rate of `part` in `whole`; None when `whole` is 0.
fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn durations(count: u64, sum_ms: u64, max_ms: u64, histogram: &Histogram) -> DurationStats {
    if count == 0 {
        return DurationStats::default();
    }
    let percentile = |permille: i64| {
        let total: i64 = histogram.0.iter().sum();
        // The rank of the percentile, rounded up (nearest-rank method).
        let rank = (total * permille + 999) / 1000;
        if total == 0 {
            return None;
        }
        let mut seen = 0;
        for (i, n) in histogram.0.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let bound = DURATION_BUCKETS_MS.get(i).copied().unwrap_or(max_ms);
                return Some(bound.min(max_ms));
            }
        }
        Some(max_ms)
    };
    DurationStats {
        avg_ms: rate(sum_ms, count),
        p50_ms: percentile(500),
        p95_ms: percentile(950),
        p99_ms: percentile(990),
        max_ms: Some(max_ms),
    }
}

/// Columns the dashboard query returns after the step key: counts, then the buckets.
pub(crate) const DASHBOARD_SUMS: &str = "CAST(sum(executions) AS BIGINT), CAST(sum(succeeded) AS BIGINT), \
     CAST(sum(failed) AS BIGINT), CAST(sum(cancelled) AS BIGINT), CAST(sum(duration_ms_sum) AS BIGINT), \
     max(duration_ms_max)";
pub(crate) const DASHBOARD_COUNTS: usize = 6;

/// The columns both execution rollups have besides their time: what the dashboard and the
/// per-flow queries sum.
pub(crate) static EXECUTION_ROLLUP_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "flow, executions, succeeded, failed, cancelled, duration_ms_sum, duration_ms_max, records_out, {}",
        *BUCKET_COLUMNS
    )
});

/// Whether a dashboard step is read from the hourly rollups: whole hours, which the Unix epoch
/// aligns on hours as it does the steps.
pub(crate) fn hourly_step(step_minutes: u32) -> bool {
    step_minutes.is_multiple_of(60)
}

/// Columns the flow query returns after the flow name.
pub(crate) const FLOW_SUMS: &str = "CAST(sum(executions) AS BIGINT), CAST(sum(succeeded) AS BIGINT), \
     CAST(sum(failed) AS BIGINT), CAST(sum(cancelled) AS BIGINT), CAST(sum(duration_ms_sum) AS BIGINT), \
     max(duration_ms_max), CAST(sum(records_out) AS BIGINT)";
pub(crate) const FLOW_COUNTS: usize = 7;

/// Columns the node query returns after flow, node id and node type.
pub(crate) const NODE_SUMS: &str = "CAST(sum(runs) AS BIGINT), CAST(sum(failed) AS BIGINT), \
     CAST(sum(duration_ms_sum) AS BIGINT), max(duration_ms_max), CAST(sum(records_in) AS BIGINT), \
     CAST(sum(records_out) AS BIGINT), CAST(sum(errors) AS BIGINT)";
pub(crate) const NODE_COUNTS: usize = 7;

/// The step of a dashboard in seconds, and the window's first and last step starts (Unix
/// seconds); refuses an empty window, a zero step, and more than [`MAX_DASHBOARD_POINTS`].
pub(crate) fn dashboard_steps(
    window: &MetricsWindow,
    step_minutes: u32,
) -> Result<(i64, i64, i64), StoreError> {
    let invalid = |reason: String| StoreError::InvalidQuery { reason };
    if step_minutes == 0 {
        return Err(invalid("the step must be at least one minute".to_owned()));
    }
    if window.until <= window.since {
        return Err(invalid(format!(
            "the window ends ({}) before it starts ({})",
            window.until, window.since
        )));
    }
    let step = i64::from(step_minutes) * 60;
    let first = window.since.timestamp().div_euclid(step) * step;
    // The last minute that can start before `until`.
    let last = (window.until - chrono::Duration::nanoseconds(1)).timestamp().div_euclid(step) * step;
    if (last - first) / step + 1 > MAX_DASHBOARD_POINTS {
        return Err(invalid(format!(
            "a {step_minutes}-minute step gives more than {MAX_DASHBOARD_POINTS} points over this window"
        )));
    }
    Ok((step, first, last))
}

/// The dashboard from the summed rows of each step that has executions (step start in Unix
/// seconds, then [`DASHBOARD_SUMS`] and the buckets), in step order.
pub(crate) fn dashboard(
    window: MetricsWindow,
    step_minutes: u32,
    steps: (i64, i64, i64),
    rows: &[(i64, Vec<i64>)],
) -> Result<Dashboard, CodecError> {
    let (step, first, last) = steps;
    let mut totals = [0u64; 5];
    let mut max_ms = 0;
    let mut histogram = Histogram::default();
    let mut points = Vec::new();
    let mut rows = rows.iter().peekable();
    let mut at = first;
    while at <= last {
        let time = DateTime::from_timestamp(at, 0).ok_or_else(|| CodecError::Unstorable {
            what: format!("dashboard step {at}"),
            reason: "out of range".to_owned(),
        })?;
        let mut point = DashboardPoint {
            at: time,
            executions: 0,
            succeeded: 0,
            failed: 0,
            cancelled: 0,
            duration: DurationStats::default(),
        };
        if let Some((_, values)) = rows.next_if(|(key, _)| *key == at) {
            let counts = Counts { table: "metrics_minute", values };
            let executions = counts.get("executions", 0)?;
            let succeeded = counts.get("succeeded", 1)?;
            let failed = counts.get("failed", 2)?;
            let cancelled = counts.get("cancelled", 3)?;
            let sum = counts.get("duration_ms_sum", 4)?;
            let step_max = counts.get("duration_ms_max", 5)?;
            let step_histogram = counts.histogram(DASHBOARD_COUNTS);
            point = DashboardPoint {
                executions,
                succeeded,
                failed,
                cancelled,
                duration: durations(executions, sum, step_max, &step_histogram),
                ..point
            };
            for (total, n) in totals.iter_mut().zip([executions, succeeded, failed, cancelled, sum]) {
                *total = total.saturating_add(n);
            }
            max_ms = max_ms.max(step_max);
            histogram.merge(&step_histogram);
        }
        points.push(point);
        at += step;
    }
    let [executions, succeeded, failed, cancelled, sum] = totals;
    Ok(Dashboard {
        window,
        step_minutes,
        executions,
        succeeded,
        failed,
        cancelled,
        success_rate: rate(succeeded, executions),
        duration: durations(executions, sum, max_ms, &histogram),
        points,
    })
}

/// One flow from its summed rows ([`FLOW_SUMS`] and the buckets).
pub(crate) fn flow_metrics(flow: String, values: &[i64]) -> Result<FlowMetrics, CodecError> {
    let counts = Counts { table: "metrics_minute", values };
    let executions = counts.get("executions", 0)?;
    let failed = counts.get("failed", 2)?;
    Ok(FlowMetrics {
        flow,
        executions,
        succeeded: counts.get("succeeded", 1)?,
        failed,
        cancelled: counts.get("cancelled", 3)?,
        error_rate: rate(failed, executions).unwrap_or(0.0),
        duration: durations(
            executions,
            counts.get("duration_ms_sum", 4)?,
            counts.get("duration_ms_max", 5)?,
            &counts.histogram(FLOW_COUNTS),
        ),
        records_out: counts.get("records_out", 6)?,
    })
}

/// One node from its summed rows ([`NODE_SUMS`] and the buckets).
pub(crate) fn node_metrics(
    flow: String,
    node_id: String,
    node_type: String,
    values: &[i64],
) -> Result<NodeMetrics, CodecError> {
    let counts = Counts { table: "metrics_node_minute", values };
    let runs = counts.get("runs", 0)?;
    let failed = counts.get("failed", 1)?;
    Ok(NodeMetrics {
        flow,
        node_id,
        node_type,
        runs,
        failed,
        error_rate: rate(failed, runs).unwrap_or(0.0),
        duration: durations(
            runs,
            counts.get("duration_ms_sum", 2)?,
            counts.get("duration_ms_max", 3)?,
            &counts.histogram(NODE_COUNTS),
        ),
        records_in: counts.get("records_in", 4)?,
        records_out: counts.get("records_out", 5)?,
        errors: counts.get("errors", 6)?,
    })
}

/// The integers of `row` from column `from` on (the sums and buckets of a metrics query).
pub(crate) fn ints<'r, R>(row: &'r R, from: usize) -> Result<Vec<i64>, sqlx::Error>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    (from..row.len()).map(|i| row.try_get::<Option<i64>, _>(i).map(Option::unwrap_or_default)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(durations: &[i64]) -> Histogram {
        let mut h = Histogram::default();
        for &d in durations {
            h.add(d);
        }
        h
    }

    #[test]
    fn durations_fall_in_the_bucket_of_their_upper_bound() {
        let h = histogram(&[0, 5, 6, 1_800_000, 1_800_001]);
        assert_eq!((h.0[0], h.0[1], h.0[BUCKETS - 2], h.0[BUCKETS - 1]), (2, 1, 1, 1));
    }

    #[test]
    fn percentiles_are_bucket_bounds_capped_at_the_largest_duration() {
        // 100 durations: 90 of 40 ms, 9 of 700 ms, one of 2 hours.
        let mut all = vec![40; 90];
        all.extend([700; 9]);
        all.push(7_200_000);
        let stats = durations(100, all.iter().sum::<i64>() as u64, 7_200_000, &histogram(&all));
        assert_eq!((stats.p50_ms, stats.p95_ms, stats.p99_ms), (Some(50), Some(1_000), Some(1_000)));
        let one = durations(1, 40, 40, &histogram(&[40]));
        assert_eq!((one.p50_ms, one.p99_ms, one.avg_ms), (Some(40), Some(40), Some(40.0)));
        let long = durations(1, 7_200_000, 7_200_000, &histogram(&[7_200_000]));
        assert_eq!(long.p50_ms, Some(7_200_000));
    }
}
