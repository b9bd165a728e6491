//! The monitoring dashboard on a large history: the PostgreSQL store's rollups seeded as if
//! 1,000,000 executions had finished over 30 days (10 flows, every minute; the hourly rollups
//! filled from them as recording does), then
//! `Store::dashboard` over the last day (15-minute steps, what `/monitoring/dashboard?window=24h`
//! asks) and over all 30 days (6-hour steps), best of 5. Target: the day within 100 ms.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;
use chrono::{Duration, Utc};
use flow_store::{MetricsWindow, Store};

use crate::case1::{admin_url, psql};

pub(crate) async fn measure() -> Result<BTreeMap<String, f64>> {
    let admin = admin_url();
    let schema = format!("bench_monitoring_{}", uuid::Uuid::new_v4().simple());
    psql(&admin, &format!("CREATE SCHEMA {schema}"))?;
    let outcome = measure_in(&admin, &schema).await;
    psql(&admin, &format!("DROP SCHEMA {schema} CASCADE"))?;
    outcome
}

async fn measure_in(admin: &str, schema: &str) -> Result<BTreeMap<String, f64>> {
    let separator = if admin.contains('?') { '&' } else { '?' };
    let url = format!("{admin}{separator}options=-c%20search_path%3D{schema}");
    let store = Store::connect_postgres(&url).await?;
    let until = Utc::now();
    // 43,200 minutes x 10 flows; 2 or 3 executions a row, 1,000,000 in all.
    psql(
        &url,
        &format!(
            "INSERT INTO metrics_minute (minute, flow, executions, succeeded, failed, cancelled, \
                 duration_ms_sum, duration_ms_max, records_out, le_100, le_1000) \
             SELECT date_trunc('minute', '{}'::timestamptz) - m * interval '1 minute', 'flow-' || f, \
                 n, n - 1, 1, 0, n * 300, 900, n * 10, n - 1, 1 \
             FROM generate_series(0, 43199) AS m, generate_series(0, 9) AS f, \
                 LATERAL (SELECT CASE WHEN m * 10 + f < 136000 THEN 3 ELSE 2 END AS n) AS c; \
             INSERT INTO metrics_hour SELECT date_trunc('hour', minute), flow, sum(executions), sum(succeeded), \
                 sum(failed), sum(cancelled), sum(duration_ms_sum), max(duration_ms_max), sum(records_out), \
                 sum(le_5), sum(le_10), sum(le_25), sum(le_50), sum(le_100), sum(le_250), sum(le_500), \
                 sum(le_1000), sum(le_2500), sum(le_5000), sum(le_10000), sum(le_30000), sum(le_60000), \
                 sum(le_300000), sum(le_1800000), sum(le_inf) \
             FROM metrics_minute GROUP BY 1, 2; \
             ANALYZE metrics_minute; ANALYZE metrics_hour",
            until.to_rfc3339()
        ),
    )?;
    let mut figures = BTreeMap::new();
    for (name, days, step) in
        [("dashboard_query_ms_1m_executions", 1, 15), ("dashboard_query_ms_1m_executions_30d", 30, 360)]
    {
        let window =
            MetricsWindow { since: until - Duration::days(days), until: until + Duration::minutes(1) };
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            let dashboard = store.dashboard(&window, step).await?;
            best = best.min(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(dashboard.executions > 0, "the seeded rollups are in the window");
        }
        figures.insert(name.to_owned(), best);
    }
    Ok(figures)
}
