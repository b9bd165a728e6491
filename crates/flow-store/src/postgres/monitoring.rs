//! Monitoring queries in PostgreSQL: sums of the per-minute and hourly rollups (see
//! `crate::metrics`).

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder, Row};

use super::PgStore;
use crate::metrics::{self, BUCKET_SUMS, DASHBOARD_SUMS, FLOW_SUMS, NODE_SUMS};
use crate::{Dashboard, FlowMetrics, MetricsWindow, NodeMetrics, StoreError};

impl PgStore {
    /// Pushes the execution rollup rows of `window` as a subquery (`t`, the row's time, and
    /// [`metrics::EXECUTION_ROLLUP_COLUMNS`]). With `hourly`, the window's whole hours come from
    /// `metrics_hour` and only the minutes before and after them from `metrics_minute`; without,
    /// every row is a minute's (for steps shorter than an hour).
    fn push_rollups(query: &mut QueryBuilder<'static, Postgres>, window: &MetricsWindow, hourly: bool) {
        let (a, b) = if hourly { metrics::whole_hours(window) } else { (window.until, window.until) };
        let columns = &*metrics::EXECUTION_ROLLUP_COLUMNS;
        let parts = [
            ("minute", "metrics_minute", window.since, a),
            ("hour", "metrics_hour", a, b),
            ("minute", "metrics_minute", b, window.until),
        ];
        query.push("(");
        // Each part reads a range of its primary key's leading column.
        for (i, (key, table, from, to)) in parts.into_iter().enumerate() {
            if i > 0 {
                query.push(" UNION ALL ");
            }
            query
                .push(format!("SELECT {key} AS t, {columns} FROM {table} WHERE {key} >= "))
                .push_bind(from)
                .push(format!(" AND {key} < "))
                .push_bind(to);
        }
        query.push(") AS r");
    }

    /// The dashboard query: per step (Unix seconds of its start), the sums of its rollup rows;
    /// `prefix` is empty, or EXPLAIN.
    fn dashboard_query(
        prefix: &str,
        window: &MetricsWindow,
        step: i64,
        hourly: bool,
    ) -> QueryBuilder<'static, Postgres> {
        let mut query = QueryBuilder::new(format!("{prefix}SELECT CAST(extract(epoch FROM t) AS BIGINT) / "));
        query.push_bind(step).push(" * ").push_bind(step);
        query.push(format!(" AS step, {DASHBOARD_SUMS}, {} FROM ", *BUCKET_SUMS));
        Self::push_rollups(&mut query, window, hourly);
        query.push(" GROUP BY step ORDER BY step");
        query
    }

    pub(crate) async fn dashboard(
        &self,
        window: &MetricsWindow,
        step_minutes: u32,
    ) -> Result<Dashboard, StoreError> {
        let steps = metrics::dashboard_steps(window, step_minutes)?;
        let rows = Self::dashboard_query("", window, steps.0, metrics::hourly_step(step_minutes))
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.query_error(e))?;
        let sums = rows
            .iter()
            .map(|row| Ok((row.try_get::<i64, _>(0)?, metrics::ints(row, 1)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(|e| self.query_error(e))?;
        self.located(metrics::dashboard(*window, step_minutes, steps, &sums))
    }

    pub(crate) async fn explain_dashboard(
        &self,
        window: &MetricsWindow,
        step_minutes: u32,
    ) -> Result<String, StoreError> {
        let (step, ..) = metrics::dashboard_steps(window, step_minutes)?;
        let rows = Self::dashboard_query("EXPLAIN ", window, step, metrics::hourly_step(step_minutes))
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.query_error(e))?;
        let lines = rows.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<Vec<_>, _>>();
        Ok(lines.map_err(|e| self.query_error(e))?.join("\n"))
    }

    pub(crate) async fn flow_metrics(&self, window: &MetricsWindow) -> Result<Vec<FlowMetrics>, StoreError> {
        let mut query = QueryBuilder::new(format!("SELECT flow, {FLOW_SUMS}, {} FROM ", *BUCKET_SUMS));
        Self::push_rollups(&mut query, window, true);
        query.push(" GROUP BY flow ORDER BY flow");
        let rows = query.build().fetch_all(&self.pool).await.map_err(|e| self.query_error(e))?;
        rows.iter()
            .map(|row| {
                let flow: String = row.try_get(0).map_err(|e| self.query_error(e))?;
                let sums = metrics::ints(row, 1).map_err(|e| self.query_error(e))?;
                self.located(metrics::flow_metrics(flow, &sums))
            })
            .collect()
    }

    pub(crate) async fn node_metrics(
        &self,
        window: &MetricsWindow,
        flow: Option<&str>,
    ) -> Result<Vec<NodeMetrics>, StoreError> {
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "SELECT flow, node_id, node_type, {NODE_SUMS}, {} FROM metrics_node_minute WHERE minute >= ",
            *BUCKET_SUMS
        ));
        query.push_bind(window.since).push(" AND minute < ").push_bind(window.until);
        if let Some(flow) = flow {
            query.push(" AND flow = ").push_bind(flow.to_owned());
        }
        // Flow names sort byte by byte, as in SQLite, whatever the database's collation.
        query.push(
            " GROUP BY flow, node_id, node_type ORDER BY flow COLLATE \"C\", node_id COLLATE \"C\", \
             node_type COLLATE \"C\"",
        );
        let rows = query.build().fetch_all(&self.pool).await.map_err(|e| self.query_error(e))?;
        rows.iter()
            .map(|row| {
                let text = |i| row.try_get::<String, _>(i).map_err(|e| self.query_error(e));
                let sums = metrics::ints(row, 3).map_err(|e| self.query_error(e))?;
                self.located(metrics::node_metrics(text(0)?, text(1)?, text(2)?, &sums))
            })
            .collect()
    }

    pub(crate) async fn delete_metrics_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.query_error(e))?;
        let mut deleted = 0;
        // An hour goes once all its minutes are past the cutoff.
        let hour_cutoff = metrics::hour_of(cutoff);
        for (table, key, cutoff) in [
            ("metrics_minute", "minute", cutoff),
            ("metrics_node_minute", "minute", cutoff),
            ("metrics_hour", "hour", hour_cutoff),
        ] {
            let done = sqlx::query(&format!("DELETE FROM {table} WHERE {key} < $1"))
                .bind(cutoff)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.query_error(e))?;
            deleted += done.rows_affected();
        }
        tx.commit().await.map_err(|e| self.query_error(e))?;
        Ok(deleted)
    }
}
