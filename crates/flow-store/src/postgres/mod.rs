//! The PostgreSQL backend: one database shared by the server and its workers. Native types
//! (uuid, timestamptz, bigint); enums are text checked by the schema; JSON is bound as text and
//! cast, and read back as text, so conversion errors are the store's typed ones.

mod records;
mod rows;

use std::str::FromStr;
use std::sync::Arc;

use flow_model::{Connection, ConnectionKind, redact_url};
use flow_runtime::{ExecutionReport, ExecutionState};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Row};
use uuid::Uuid;

use self::rows::{EXECUTION_COLUMNS, ExecutionRow, NODE_COLUMNS, NodeRow, SampleRow};
use crate::codec::{CodecError, enum_text, json_text, parse_enum, parse_json};
use crate::report::{ReportRows, attach_samples};
use crate::{
    ExecutionDetail, ExecutionSummary, INTERRUPTED, ListQuery, NewExecution, PostgresOptions, StoreError,
    UNFINISHED, types,
};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations_pg");

#[derive(Debug, Clone)]
pub(crate) struct PgStore {
    pool: PgPool,
    /// The URL without its password, named in every error.
    name: Arc<str>,
}

impl PgStore {
    pub(crate) async fn connect(url: &str, options: &PostgresOptions) -> Result<PgStore, StoreError> {
        let name: Arc<str> = redact_url(url).into();
        let open_error = |source| StoreError::Open { database: name.to_string(), source };
        let connect = PgConnectOptions::from_str(url).map_err(open_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .connect_with(connect)
            .await
            .map_err(open_error)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { database: name.to_string(), source })?;
        Ok(PgStore { pool, name })
    }

    pub(crate) async fn record_started(&self, execution: &NewExecution) -> Result<(), StoreError> {
        // The row may exist (queued by the server, started by a worker): keep its start time and
        // any owner and flow already set.
        sqlx::query(
            "INSERT INTO executions (id, correlation_id, flow, state, started_at, owner, flow_id, fence) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, \
                 owner = coalesce(executions.owner, EXCLUDED.owner), \
                 flow_id = coalesce(executions.flow_id, EXCLUDED.flow_id), \
                 fence = coalesce(EXCLUDED.fence, executions.fence) \
             WHERE EXCLUDED.fence IS NULL OR executions.fence IS NULL OR executions.fence <= EXCLUDED.fence",
        )
        .bind(execution.id)
        .bind(&execution.correlation_id)
        .bind(&execution.flow)
        .bind(self.located(enum_text("execution state", &execution.state))?)
        .bind(execution.started_at)
        .bind(execution.owner)
        .bind(execution.flow_id)
        .bind(fence_value(execution.fence))
        .execute(&self.pool)
        .await
        .map_err(|e| self.query_error(e))?;
        Ok(())
    }

    pub(crate) async fn record_state(
        &self,
        id: Uuid,
        state: ExecutionState,
        fence: Option<u64>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET state = $1 WHERE id = $2 AND ($3::bigint IS NULL OR fence IS NULL OR fence <= $3)",
        )
        .bind(self.located(enum_text("execution state", &state))?)
        .bind(id)
        .bind(fence_value(fence))
        .execute(&self.pool)
        .await
        .map_err(|e| self.query_error(e))?;
        // A fenced write that changed nothing was superseded, which is no error.
        if done.rows_affected() == 0 && fence.is_none() {
            return Err(self.not_found("execution", id));
        }
        Ok(())
    }

    pub(crate) async fn record_failed(&self, id: Uuid, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE executions SET state = $1, error = $2, finished_at = coalesce(finished_at, now()) WHERE id = $3",
        )
        .bind(self.located(enum_text("execution state", &ExecutionState::Failed))?)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| self.query_error(e))?;
        Ok(())
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(|e| self.query_error(e))?;
        Ok(())
    }

    /// Whether a newer delivery than `fence` runs the execution now (the row is locked until
    /// the transaction ends, so the answer holds while the report is written).
    async fn superseded(
        &self,
        conn: &mut PgConnection,
        id: Uuid,
        fence: Option<u64>,
    ) -> Result<bool, StoreError> {
        let Some(fence) = fence_value(fence) else { return Ok(false) };
        let current: Option<Option<i64>> =
            sqlx::query_scalar("SELECT fence FROM executions WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| self.query_error(e))?;
        Ok(current.flatten().is_some_and(|current| current > fence))
    }

    pub(crate) async fn record_finished(
        &self,
        report: &ExecutionReport,
        fence: Option<u64>,
    ) -> Result<(), StoreError> {
        let rows = self.located(ReportRows::new(report))?;
        let mut tx = self.pool.begin().await.map_err(|e| self.query_error(e))?;
        if self.superseded(&mut tx, report.id, fence).await? {
            return Ok(());
        }
        self.write_report(&mut tx, report, &rows).await?;
        tx.commit().await.map_err(|e| self.query_error(e))
    }

    async fn write_report(
        &self,
        conn: &mut PgConnection,
        report: &ExecutionReport,
        rows: &ReportRows<'_>,
    ) -> Result<(), StoreError> {
        // First, while the row still tells whether the execution was finished before: count it
        // once, however often its report is recorded.
        let rollup = &rows.rollup;
        sqlx::query(
            "INSERT INTO metrics_minute (minute, flow, executions, succeeded, failed, cancelled, \
                 duration_ms_sum, duration_ms_max, records_out) \
             SELECT $1, $2, 1, $3, $4, $5, $6, $6, $7 \
             WHERE NOT EXISTS (SELECT 1 FROM executions WHERE id = $8 AND finished_at IS NOT NULL) \
             ON CONFLICT (minute, flow) DO UPDATE SET \
                 executions = metrics_minute.executions + EXCLUDED.executions, \
                 succeeded = metrics_minute.succeeded + EXCLUDED.succeeded, \
                 failed = metrics_minute.failed + EXCLUDED.failed, \
                 cancelled = metrics_minute.cancelled + EXCLUDED.cancelled, \
                 duration_ms_sum = metrics_minute.duration_ms_sum + EXCLUDED.duration_ms_sum, \
                 duration_ms_max = greatest(metrics_minute.duration_ms_max, EXCLUDED.duration_ms_max), \
                 records_out = metrics_minute.records_out + EXCLUDED.records_out",
        )
        .bind(rollup.minute)
        .bind(&report.flow)
        .bind(rollup.succeeded)
        .bind(rollup.failed)
        .bind(rollup.cancelled)
        .bind(rollup.duration_ms)
        .bind(rows.records_out)
        .bind(report.id)
        .execute(&mut *conn)
        .await
        .map_err(|e| self.query_error(e))?;

        sqlx::query(
            "INSERT INTO executions \
                 (id, correlation_id, flow, state, error, started_at, finished_at, records_out, records_read) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, error = EXCLUDED.error, \
                 finished_at = EXCLUDED.finished_at, records_out = EXCLUDED.records_out, \
                 records_read = EXCLUDED.records_read",
        )
        .bind(report.id)
        .bind(&report.correlation_id)
        .bind(&report.flow)
        .bind(&rows.state)
        .bind(&report.error)
        .bind(report.started_at)
        .bind(report.finished_at)
        .bind(rows.records_out)
        .bind(rows.records_read)
        .execute(&mut *conn)
        .await
        .map_err(|e| self.query_error(e))?;

        // Samples go with their nodes (ON DELETE CASCADE).
        sqlx::query("DELETE FROM node_runs WHERE execution_id = $1")
            .bind(report.id)
            .execute(&mut *conn)
            .await
            .map_err(|e| self.query_error(e))?;

        // Multi-row inserts: one round trip per chunk, not per row. PostgreSQL allows 65,535
        // bound values per statement.
        for chunk in rows.nodes.chunks(1000) {
            let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(
                "INSERT INTO node_runs (execution_id, seq, node_id, node_type, state, attempts, \
                 started_at, finished_at, records_in, records_out, errors, error, error_kind, sink) ",
            );
            insert.push_values(chunk, |mut row, v| {
                row.push_bind(report.id)
                    .push_bind(v.seq)
                    .push_bind(&v.node.node_id)
                    .push_bind(&v.node.node_type)
                    .push_bind(&v.state)
                    .push_bind(v.attempts)
                    .push_bind(v.node.started_at)
                    .push_bind(v.node.finished_at)
                    .push_bind(v.records_in)
                    .push_bind(v.records_out)
                    .push_bind(v.errors)
                    .push_bind(&v.node.error)
                    .push_bind(&v.error_kind)
                    .push_bind(&v.sink);
            });
            insert.build().execute(&mut *conn).await.map_err(|e| self.query_error(e))?;
        }
        for chunk in rows.samples.chunks(10_000) {
            let mut insert: QueryBuilder<Postgres> =
                QueryBuilder::new("INSERT INTO node_samples (execution_id, node_seq, seq, record) ");
            insert.push_values(chunk, |mut row, s| {
                row.push_bind(report.id).push_bind(s.node_seq).push_bind(s.seq).push_bind(&s.record);
                row.push_unseparated("::json");
            });
            insert.build().execute(&mut *conn).await.map_err(|e| self.query_error(e))?;
        }
        Ok(())
    }

    pub(crate) async fn mark_interrupted(&self) -> Result<u64, StoreError> {
        let unfinished = UNFINISHED
            .iter()
            .map(|state| self.located(enum_text("execution state", state)))
            .collect::<Result<Vec<_>, _>>()?;
        let done = sqlx::query("UPDATE executions SET state = $1, error = $2 WHERE state = ANY($3)")
            .bind(self.located(enum_text("execution state", &ExecutionState::Failed))?)
            .bind(INTERRUPTED)
            .bind(unfinished)
            .execute(&self.pool)
            .await
            .map_err(|e| self.query_error(e))?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn list(&self, query: &ListQuery) -> Result<Vec<ExecutionSummary>, StoreError> {
        let mut sql = QueryBuilder::new("");
        self.push_list(&mut sql, query)?;
        let rows: Vec<ExecutionRow> =
            sql.build_query_as().fetch_all(&self.pool).await.map_err(|e| self.query_error(e))?;
        rows.into_iter().map(|r| self.located(r.into_summary())).collect()
    }

    /// Appends the listing's query to `sql` (which tests start with `EXPLAIN`).
    fn push_list<'a>(
        &self,
        sql: &mut QueryBuilder<'a, Postgres>,
        query: &'a ListQuery,
    ) -> Result<(), StoreError> {
        sql.push(format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE true"));
        if let Some(flow) = &query.flow {
            sql.push(" AND flow = ").push_bind(flow);
        }
        if let Some(state) = &query.state {
            sql.push(" AND state = ").push_bind(self.located(enum_text("execution state", state))?);
        }
        if let Some(owner) = query.owner {
            sql.push(" AND owner = ").push_bind(owner);
        }
        if let Some(flow_id) = query.flow_id {
            sql.push(" AND flow_id = ").push_bind(flow_id);
        }
        if let Some(before) = query.before {
            sql.push(" AND id < ").push_bind(before);
        }
        let limit = query.limit.unwrap_or(types::DEFAULT_LIMIT).min(types::MAX_LIMIT);
        sql.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit))
            .push(" OFFSET ")
            .push_bind(i64::from(query.offset.unwrap_or(0)));
        Ok(())
    }

    pub(crate) async fn get(&self, id: Uuid) -> Result<Option<ExecutionDetail>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.query_error(e))?;
        // One snapshot for the three reads: a concurrent record_finished is seen entirely or not
        // at all (READ COMMITTED would take a snapshot per statement).
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(|e| self.query_error(e))?;
        let row: Option<ExecutionRow> =
            sqlx::query_as(&format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.query_error(e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let node_rows: Vec<NodeRow> = sqlx::query_as(&format!(
            "SELECT {NODE_COLUMNS} FROM node_runs WHERE execution_id = $1 ORDER BY seq"
        ))
        .bind(id)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.query_error(e))?;
        let samples: Vec<SampleRow> = sqlx::query_as(
            "SELECT node_seq, record::text AS record FROM node_samples WHERE execution_id = $1 \
             ORDER BY node_seq, seq",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.query_error(e))?;
        tx.commit().await.map_err(|e| self.query_error(e))?;

        let summary = self.located(row.into_summary())?;
        let nodes = node_rows
            .into_iter()
            .map(|n| Ok((i64::from(n.seq), self.located(n.into_report())?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let samples = samples.into_iter().map(|s| (i64::from(s.node_seq), s.record));
        let nodes = self.located(attach_samples(nodes, samples))?;
        Ok(Some(ExecutionDetail { summary, nodes }))
    }

    pub(crate) async fn list_connections(&self) -> Result<Vec<Connection>, StoreError> {
        let rows =
            sqlx::query("SELECT name, kind, url, options::text AS options FROM connections ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.query_error(e))?;
        rows.iter()
            .map(|row| {
                let kind: String = row.get("kind");
                let options: String = row.get("options");
                let kind: ConnectionKind = self.located(parse_enum("connections.kind", &kind))?;
                let options = self.located(parse_json("connections.options", &options))?;
                Ok(Connection { name: row.get("name"), kind, url: row.get("url"), options })
            })
            .collect()
    }

    pub(crate) async fn save_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO connections (name, kind, url, options) VALUES ($1, $2, $3, $4::jsonb) \
             ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, url = EXCLUDED.url, \
                 options = EXCLUDED.options",
        )
        .bind(&connection.name)
        .bind(self.located(enum_text("connection kind", &connection.kind))?)
        .bind(&connection.url)
        .bind(self.located(json_text("connection options", &connection.options))?)
        .execute(&self.pool)
        .await
        .map_err(|e| self.query_error(e))?;
        Ok(())
    }

    pub(crate) async fn delete_connection(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM connections WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(|e| self.query_error(e))?;
        Ok(done.rows_affected() > 0)
    }

    fn query_error(&self, source: sqlx::Error) -> StoreError {
        StoreError::Query { database: self.name.to_string(), source }
    }

    fn not_found(&self, what: &'static str, id: Uuid) -> StoreError {
        StoreError::NotFound { database: self.name.to_string(), what, id }
    }

    /// Names this database in a conversion error.
    fn located<T>(&self, value: Result<T, CodecError>) -> Result<T, StoreError> {
        value.map_err(|e| e.at(&self.name))
    }
}

#[cfg(test)]
mod tests;

/// A fencing token as the database stores it (tokens start at 1 and grow by one per delivery).
fn fence_value(fence: Option<u64>) -> Option<i64> {
    fence.map(|f| i64::try_from(f).unwrap_or(i64::MAX))
}
