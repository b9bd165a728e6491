//! Monitoring queries in SQLite: sums of the per-minute rollups (see `crate::metrics`).

use sqlx::{QueryBuilder, Row, Sqlite};

use super::SqliteStore;
use crate::codec::time_text;
use crate::metrics::{self, BUCKET_SUMS, DASHBOARD_SUMS, FLOW_SUMS, NODE_SUMS};
use crate::{Dashboard, FlowMetrics, MetricsWindow, NodeMetrics, StoreError};

impl SqliteStore {
    /// The dashboard query: per step (Unix seconds of its start), the sums of its minutes;
    /// `prefix` is empty, or EXPLAIN.
    fn dashboard_query(prefix: &str, window: &MetricsWindow, step: i64) -> QueryBuilder<'static, Sqlite> {
        let mut query = QueryBuilder::new(format!("{prefix}SELECT unixepoch(minute) / "));
        query
            .push_bind(step)
            .push(" * ")
            .push_bind(step)
            .push(format!(" AS step, {DASHBOARD_SUMS}, {} FROM metrics_minute", *BUCKET_SUMS));
        // Fixed-width time text: text order is time order, and the primary key's minute range
        // is what is read.
        query
            .push(" WHERE minute >= ")
            .push_bind(time_text(window.since))
            .push(" AND minute < ")
            .push_bind(time_text(window.until))
            .push(" GROUP BY step ORDER BY step");
        query
    }

    pub(crate) async fn dashboard(
        &self,
        window: &MetricsWindow,
        step_minutes: u32,
    ) -> Result<Dashboard, StoreError> {
        let steps = metrics::dashboard_steps(window, step_minutes)?;
        let rows = Self::dashboard_query("", window, steps.0)
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
        let rows = Self::dashboard_query("EXPLAIN QUERY PLAN ", window, step)
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.query_error(e))?;
        let details = rows.iter().map(|r| r.try_get::<String, _>("detail")).collect::<Result<Vec<_>, _>>();
        Ok(details.map_err(|e| self.query_error(e))?.join("\n"))
    }

    pub(crate) async fn flow_metrics(&self, window: &MetricsWindow) -> Result<Vec<FlowMetrics>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT flow, {FLOW_SUMS}, {} FROM metrics_minute WHERE minute >= ? AND minute < ? \
             GROUP BY flow ORDER BY flow",
            *BUCKET_SUMS
        ))
        .bind(time_text(window.since))
        .bind(time_text(window.until))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.query_error(e))?;
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
        let mut query = QueryBuilder::<Sqlite>::new(format!(
            "SELECT flow, node_id, node_type, {NODE_SUMS}, {} FROM metrics_node_minute WHERE minute >= ",
            *BUCKET_SUMS
        ));
        query.push_bind(time_text(window.since)).push(" AND minute < ").push_bind(time_text(window.until));
        if let Some(flow) = flow {
            query.push(" AND flow = ").push_bind(flow.to_owned());
        }
        query.push(" GROUP BY flow, node_id, node_type ORDER BY flow, node_id, node_type");
        let rows = query.build().fetch_all(&self.pool).await.map_err(|e| self.query_error(e))?;
        rows.iter()
            .map(|row| {
                let text = |i| row.try_get::<String, _>(i).map_err(|e| self.query_error(e));
                let sums = metrics::ints(row, 3).map_err(|e| self.query_error(e))?;
                self.located(metrics::node_metrics(text(0)?, text(1)?, text(2)?, &sums))
            })
            .collect()
    }

    pub(crate) async fn delete_metrics_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.query_error(e))?;
        let mut deleted = 0;
        for table in ["metrics_minute", "metrics_node_minute"] {
            let done = sqlx::query(&format!("DELETE FROM {table} WHERE minute < ?"))
                .bind(time_text(cutoff))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.query_error(e))?;
            deleted += done.rows_affected();
        }
        tx.commit().await.map_err(|e| self.query_error(e))?;
        Ok(deleted)
    }
}
