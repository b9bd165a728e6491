//! The SQLite backend: one file (or memory) per process family; the desktop app and the CLI.
//! Times and uuids are text, enums their snake_case names (see `codec`).

mod alerts;
mod monitoring;
mod records;
mod rows;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flow_model::{Connection, ConnectionKind};
use flow_runtime::{ExecutionReport, ExecutionState};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use self::rows::{EXECUTION_COLUMNS, ExecutionRow, NODE_COLUMNS, NodeRow, SampleRow};
use crate::codec::{CodecError, enum_text, json_text, parse_enum, parse_json, time_text};
use crate::metrics;
use crate::report::{ReportRows, attach_samples};
use crate::{
    ExecutionDetail, ExecutionSummary, INTERRUPTED, ListQuery, NewExecution, StoreError, UNFINISHED, types,
};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Waits for the exclusive lock on `<file>.lock` (an advisory lock, released when the returned
/// file is dropped or the process dies).
async fn open_lock(path: &Path) -> Result<std::fs::File, StoreError> {
    let mut lock = path.as_os_str().to_owned();
    lock.push(".lock");
    let lock = std::path::PathBuf::from(lock);
    let fail =
        |lock: &Path, source| StoreError::Lock { file: path.to_path_buf(), lock: lock.to_path_buf(), source };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|e| fail(&lock, e))?;
    // Blocking until another process has migrated: keep it off the async workers.
    let locked = tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(|e| fail(&lock, std::io::Error::other(e)))?;
    locked.map_err(|e| fail(&lock, e))
}

#[derive(Debug, Clone)]
pub(crate) struct SqliteStore {
    pool: SqlitePool,
    /// The file, named in every error.
    name: Arc<str>,
}

impl SqliteStore {
    pub(crate) async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|source| StoreError::CreateDir { file: path.to_path_buf(), source })?;
        }
        let _lock = open_lock(path).await?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // Readers (the UI listing executions) do not block the writer, nor it them.
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL loses at most the last commits on power loss, never consistency.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let name: Arc<str> = path.display().to_string().into();
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { database: name.to_string(), source })?;
        Self::migrated(pool, name).await
    }

    pub(crate) async fn in_memory() -> Result<SqliteStore, StoreError> {
        let name: Arc<str> = ":memory:".into();
        // Each connection to `:memory:` is a database of its own: keep exactly one, forever.
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(SqliteConnectOptions::new().in_memory(true))
            .await
            .map_err(|source| StoreError::Open { database: name.to_string(), source })?;
        Self::migrated(pool, name).await
    }

    async fn migrated(pool: SqlitePool, name: Arc<str>) -> Result<SqliteStore, StoreError> {
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { database: name.to_string(), source })?;
        Ok(SqliteStore { pool, name })
    }

    pub(crate) async fn record_started(&self, execution: &NewExecution) -> Result<(), StoreError> {
        // The row may exist (queued by the server, started by a worker): keep its start time and
        // any owner, flow and parent already set.
        sqlx::query(
            "INSERT INTO executions \
                 (id, correlation_id, flow, state, started_at, owner, flow_id, parent_id, fence) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
                 owner = coalesce(executions.owner, excluded.owner), \
                 flow_id = coalesce(executions.flow_id, excluded.flow_id), \
                 parent_id = coalesce(executions.parent_id, excluded.parent_id), \
                 fence = coalesce(excluded.fence, executions.fence) \
             WHERE excluded.fence IS NULL OR executions.fence IS NULL OR executions.fence <= excluded.fence",
        )
        .bind(execution.id.to_string())
        .bind(&execution.correlation_id)
        .bind(&execution.flow)
        .bind(self.located(enum_text("execution state", &execution.state))?)
        .bind(time_text(execution.started_at))
        .bind(execution.owner.map(|o| o.to_string()))
        .bind(execution.flow_id.map(|f| f.to_string()))
        .bind(execution.parent_id.map(|p| p.to_string()))
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
        // A delivery's write also claims the row for it (its fence is the newest now).
        let done = sqlx::query(
            "UPDATE executions SET state = ?, fence = coalesce(max(fence, ?), ?, fence) \
             WHERE id = ? AND (? IS NULL OR fence IS NULL OR fence <= ?)",
        )
        .bind(self.located(enum_text("execution state", &state))?)
        .bind(fence_value(fence))
        .bind(fence_value(fence))
        .bind(id.to_string())
        .bind(fence_value(fence))
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
            "UPDATE executions SET state = ?, error = ?, finished_at = coalesce(finished_at, ?) WHERE id = ?",
        )
        .bind(self.located(enum_text("execution state", &ExecutionState::Failed))?)
        .bind(error)
        .bind(time_text(chrono::Utc::now()))
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| self.query_error(e))?;
        Ok(())
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(|e| self.query_error(e))?;
        Ok(())
    }

    /// Whether a newer delivery than `fence` runs the execution now.
    async fn superseded(
        &self,
        conn: &mut SqliteConnection,
        id: Uuid,
        fence: Option<u64>,
    ) -> Result<bool, StoreError> {
        let Some(fence) = fence_value(fence) else { return Ok(false) };
        let current: Option<Option<i64>> = sqlx::query_scalar("SELECT fence FROM executions WHERE id = ?")
            .bind(id.to_string())
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
        self.write_report(&mut tx, report, &rows, fence_value(fence)).await?;
        tx.commit().await.map_err(|e| self.query_error(e))
    }

    async fn write_report(
        &self,
        conn: &mut SqliteConnection,
        report: &ExecutionReport,
        rows: &ReportRows<'_>,
        fence: Option<i64>,
    ) -> Result<(), StoreError> {
        let id = report.id.to_string();
        // First, while the row still tells whether the execution was finished before: count it
        // once, however often its report is recorded. Being a write, it also takes the write
        // lock at once, so this deferred transaction never has to upgrade a read.
        let rollup = &rows.rollup;
        // The execution's share of its minute's row, or of its hour's.
        let share = |table: &str, key: &str, at: DateTime<Utc>| {
            let mut insert = QueryBuilder::<Sqlite>::new(format!(
                "INSERT INTO {table} ({key}, flow, executions, succeeded, failed, cancelled, \
                     duration_ms_sum, duration_ms_max, records_out, {}) SELECT ",
                *metrics::BUCKET_COLUMNS
            ));
            let mut values = insert.separated(", ");
            values
                .push_bind(time_text(at))
                .push_bind(&report.flow)
                .push_bind(1i64)
                .push_bind(rollup.succeeded)
                .push_bind(rollup.failed)
                .push_bind(rollup.cancelled)
                .push_bind(rollup.duration_ms)
                .push_bind(rollup.duration_ms)
                .push_bind(rows.records_out);
            for n in rollup.histogram.0 {
                values.push_bind(n);
            }
            insert
        };
        let mut minute = share("metrics_minute", "minute", rollup.minute);
        minute
            .push(" WHERE NOT EXISTS (SELECT 1 FROM executions WHERE id = ")
            .push_bind(&id)
            .push(" AND finished_at IS NOT NULL)")
            .push(format!(
                " ON CONFLICT (minute, flow) DO UPDATE SET {}",
                metrics::flow_rollup_upsert("metrics_minute", "max")
            ));
        let counted =
            minute.build().execute(&mut *conn).await.map_err(|e| self.query_error(e))?.rows_affected() > 0;
        if counted {
            // `WHERE true`: without a WHERE, SQLite would read ON CONFLICT as part of the SELECT.
            let mut hour = share("metrics_hour", "hour", metrics::hour_of(rollup.minute));
            hour.push(format!(
                " WHERE true ON CONFLICT (hour, flow) DO UPDATE SET {}",
                metrics::flow_rollup_upsert("metrics_hour", "max")
            ));
            hour.build().execute(&mut *conn).await.map_err(|e| self.query_error(e))?;
        }
        // The nodes' runs count with their execution: only when it was counted just now.
        if counted && !rows.node_rollups.is_empty() {
            let node_rollups: Vec<_> = rows.node_rollups.iter().collect();
            // 27 values a row: far below SQLite's 32,766 per statement.
            for chunk in node_rollups.chunks(1000) {
                let mut insert = QueryBuilder::<Sqlite>::new(format!(
                    "INSERT INTO metrics_node_minute (minute, flow, node_id, node_type, runs, failed, \
                     duration_ms_sum, duration_ms_max, records_in, records_out, errors, {}) ",
                    *metrics::BUCKET_COLUMNS
                ));
                insert.push_values(chunk, |mut row, ((node_id, node_type), r)| {
                    row.push_bind(time_text(rollup.minute))
                        .push_bind(&report.flow)
                        .push_bind(*node_id)
                        .push_bind(*node_type)
                        .push_bind(r.runs)
                        .push_bind(r.failed)
                        .push_bind(r.duration_ms_sum)
                        .push_bind(r.duration_ms_max)
                        .push_bind(r.records_in)
                        .push_bind(r.records_out)
                        .push_bind(r.errors);
                    for n in r.histogram.0 {
                        row.push_bind(n);
                    }
                });
                insert.push(format!(
                    " ON CONFLICT (minute, flow, node_id, node_type) DO UPDATE SET {}",
                    metrics::node_rollup_upsert("max")
                ));
                insert.build().execute(&mut *conn).await.map_err(|e| self.query_error(e))?;
            }
        }

        // A parent already set stays: a report without one does not erase it. The report's
        // delivery claims the row (a run recorded as running only when it lasts, the server's,
        // may not have written its fence before).
        sqlx::query(
            "INSERT INTO executions (id, correlation_id, flow, state, error, started_at, finished_at, \
                 records_out, records_read, parent_id, fence) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, error = excluded.error, \
                 finished_at = excluded.finished_at, records_out = excluded.records_out, \
                 records_read = excluded.records_read, \
                 parent_id = coalesce(executions.parent_id, excluded.parent_id), \
                 fence = coalesce(max(executions.fence, excluded.fence), excluded.fence, executions.fence)",
        )
        .bind(&id)
        .bind(&report.correlation_id)
        .bind(&report.flow)
        .bind(&rows.state)
        .bind(&report.error)
        .bind(time_text(report.started_at))
        .bind(time_text(report.finished_at))
        .bind(rows.records_out)
        .bind(rows.records_read)
        .bind(report.parent_id.map(|p| p.to_string()))
        .bind(fence)
        .execute(&mut *conn)
        .await
        .map_err(|e| self.query_error(e))?;

        // Samples go with their nodes (ON DELETE CASCADE).
        sqlx::query("DELETE FROM node_runs WHERE execution_id = ?")
            .bind(&id)
            .execute(&mut *conn)
            .await
            .map_err(|e| self.query_error(e))?;

        // Multi-row inserts: one statement per chunk instead of one per row keeps recording a
        // thousand-node execution cheap (each statement is a round trip to SQLite's worker thread).
        // SQLite allows 32,766 bound values per statement.
        for chunk in rows.nodes.chunks(1000) {
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO node_runs (execution_id, seq, node_id, node_type, state, attempts, \
                 started_at, finished_at, records_in, records_out, errors, error, error_kind, sink) ",
            );
            insert.push_values(chunk, |mut row, v| {
                row.push_bind(&id)
                    .push_bind(v.seq)
                    .push_bind(&v.node.node_id)
                    .push_bind(&v.node.node_type)
                    .push_bind(&v.state)
                    .push_bind(v.attempts)
                    .push_bind(v.node.started_at.map(time_text))
                    .push_bind(v.node.finished_at.map(time_text))
                    .push_bind(v.records_in)
                    .push_bind(v.records_out)
                    .push_bind(v.errors)
                    .push_bind(&v.node.error)
                    .push_bind(&v.error_kind)
                    .push_bind(&v.sink);
            });
            insert.build().execute(&mut *conn).await.map_err(|e| self.query_error(e))?;
        }
        for chunk in rows.samples.chunks(5000) {
            let mut insert: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO node_samples (execution_id, node_seq, seq, record) ");
            insert.push_values(chunk, |mut row, s| {
                row.push_bind(&id).push_bind(s.node_seq).push_bind(s.seq).push_bind(&s.record);
            });
            insert.build().execute(&mut *conn).await.map_err(|e| self.query_error(e))?;
        }
        Ok(())
    }

    pub(crate) async fn mark_interrupted(&self) -> Result<u64, StoreError> {
        let mut query = QueryBuilder::<Sqlite>::new("UPDATE executions SET state = ");
        query.push_bind(self.located(enum_text("execution state", &ExecutionState::Failed))?);
        query.push(", error = ").push_bind(INTERRUPTED).push(" WHERE state IN (");
        let mut states = query.separated(", ");
        for state in UNFINISHED {
            states.push_bind(self.located(enum_text("execution state", &state))?);
        }
        query.push(")");
        let done = query.build().execute(&self.pool).await.map_err(|e| self.query_error(e))?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn list(&self, query: &ListQuery) -> Result<Vec<ExecutionSummary>, StoreError> {
        let mut sql =
            QueryBuilder::<Sqlite>::new(format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE 1 = 1"));
        if let Some(flow) = &query.flow {
            sql.push(" AND flow = ").push_bind(flow.clone());
        }
        if let Some(state) = &query.state {
            sql.push(" AND state = ").push_bind(self.located(enum_text("execution state", state))?);
        }
        if let Some(owner) = query.owner {
            sql.push(" AND owner = ").push_bind(owner.to_string());
        }
        if let Some(flow_id) = query.flow_id {
            sql.push(" AND flow_id = ").push_bind(flow_id.to_string());
        }
        if let Some(parent) = query.parent {
            sql.push(" AND parent_id = ").push_bind(parent.to_string());
        }
        if let Some(before) = query.before {
            sql.push(" AND id < ").push_bind(before.to_string());
        }
        let limit = query.limit.unwrap_or(types::DEFAULT_LIMIT).min(types::MAX_LIMIT);
        sql.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit))
            .push(" OFFSET ")
            .push_bind(i64::from(query.offset.unwrap_or(0)));
        let rows: Vec<ExecutionRow> =
            sql.build_query_as().fetch_all(&self.pool).await.map_err(|e| self.query_error(e))?;
        rows.into_iter().map(|r| self.located(r.into_summary())).collect()
    }

    pub(crate) async fn get(&self, id: Uuid) -> Result<Option<ExecutionDetail>, StoreError> {
        let id_text = id.to_string();
        // One read transaction: a concurrent record_finished is seen entirely or not at all.
        let mut tx = self.pool.begin().await.map_err(|e| self.query_error(e))?;
        let row: Option<ExecutionRow> =
            sqlx::query_as(&format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?"))
                .bind(&id_text)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.query_error(e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let node_rows: Vec<NodeRow> = sqlx::query_as(&format!(
            "SELECT {NODE_COLUMNS} FROM node_runs WHERE execution_id = ? ORDER BY seq"
        ))
        .bind(&id_text)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.query_error(e))?;
        let samples: Vec<SampleRow> = sqlx::query_as(
            "SELECT node_seq, record FROM node_samples WHERE execution_id = ? \
             ORDER BY node_seq, seq",
        )
        .bind(&id_text)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.query_error(e))?;
        tx.commit().await.map_err(|e| self.query_error(e))?;

        let summary = self.located(row.into_summary())?;
        let nodes = node_rows
            .into_iter()
            .map(|n| Ok((n.seq, self.located(n.into_report())?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let samples = samples.into_iter().map(|s| (s.node_seq, s.record));
        let nodes = self.located(attach_samples(nodes, samples))?;
        Ok(Some(ExecutionDetail { summary, nodes }))
    }

    pub(crate) async fn list_connections(&self) -> Result<Vec<Connection>, StoreError> {
        let rows = sqlx::query("SELECT name, kind, url, options FROM connections ORDER BY name")
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
            "INSERT INTO connections (name, kind, url, options) VALUES (?, ?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, url = excluded.url, options = excluded.options",
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
        let done = sqlx::query("DELETE FROM connections WHERE name = ?")
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

/// A fencing token as the database stores it (tokens start at 1 and grow by one per delivery).
fn fence_value(fence: Option<u64>) -> Option<i64> {
    fence.map(|f| i64::try_from(f).unwrap_or(i64::MAX))
}
