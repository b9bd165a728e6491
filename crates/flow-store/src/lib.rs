//! The engine's embedded SQLite store: the execution history (every execution's state while it
//! runs and, once finished, its outcome per node: state, attempts, counters, errors, sink outcome
//! and data preview) and the named connections. The schema lives in numbered migrations under `migrations/`, applied when
//! the database is opened.

mod codec;
mod connections;
mod error;
mod rows;
mod types;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flow_runtime::{ExecutionReport, ExecutionState};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use uuid::Uuid;

use crate::codec::{CodecError, enum_text, int, parse_record, record_text, time_text};
use crate::rows::{EXECUTION_COLUMNS, ExecutionRow, NODE_COLUMNS, NodeRow, SampleRow};

pub use error::StoreError;
pub use types::{ExecutionDetail, ExecutionSummary, ListQuery};

static MIGRATOR: Migrator = sqlx::migrate!();

/// The error written on executions that were still going when the engine stopped.
const INTERRUPTED: &str = "interrupted: the engine stopped while this execution ran";

/// States of an execution that has not finished.
const UNFINISHED: [ExecutionState; 3] =
    [ExecutionState::Queued, ExecutionState::Running, ExecutionState::Paused];

/// The execution history; cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// Named in every error.
    file: Arc<Path>,
}

impl Store {
    /// Opens (creating the file and parent directories) and migrates the database at `path`.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|source| StoreError::CreateDir { file: path.to_path_buf(), source })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // Readers (the UI listing executions) do not block the writer, nor it them.
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL loses at most the last commits on power loss, never consistency.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { file: path.to_path_buf(), source })?;
        Self::migrated(pool, path).await
    }

    /// A private in-memory database (tests, benchmarks).
    pub async fn in_memory() -> Result<Store, StoreError> {
        let file = Path::new(":memory:");
        // Each connection to `:memory:` is a database of its own: keep exactly one, forever.
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(SqliteConnectOptions::new().in_memory(true))
            .await
            .map_err(|source| StoreError::Open { file: file.to_path_buf(), source })?;
        Self::migrated(pool, file).await
    }

    async fn migrated(pool: SqlitePool, file: &Path) -> Result<Store, StoreError> {
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { file: file.to_path_buf(), source })?;
        Ok(Store { pool, file: file.into() })
    }

    /// An execution was queued/started: insert its row (state as given, usually Queued or Running).
    pub async fn record_started(
        &self,
        id: Uuid,
        correlation_id: &str,
        flow: &str,
        state: ExecutionState,
        started_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO executions (id, correlation_id, flow, state, started_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(correlation_id)
        .bind(flow)
        .bind(self.located(enum_text("execution state", &state))?)
        .bind(time_text(started_at))
        .execute(&self.pool)
        .await
        .map_err(|e| self.query_error(e))?;
        Ok(())
    }

    /// Updates the execution's state (e.g. Queued -> Running, Running <-> Paused).
    pub async fn record_state(&self, id: Uuid, state: ExecutionState) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE executions SET state = ? WHERE id = ?")
            .bind(self.located(enum_text("execution state", &state))?)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| self.query_error(e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { file: self.file.to_path_buf(), id });
        }
        Ok(())
    }

    /// Writes the final outcome in one transaction: execution row (state, error, finished_at), one
    /// row per node (state, attempts, started/finished, counters, error, error_kind, sink outcome)
    /// and the node's sample records (data preview, in order).
    ///
    /// Without a `record_started` before, the execution row is created from the report; with one,
    /// its `started_at` (the time it was queued) is kept. Recording again replaces the nodes.
    pub async fn record_finished(&self, report: &ExecutionReport) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.query_error(e))?;
        self.write_report(&mut tx, report).await?;
        tx.commit().await.map_err(|e| self.query_error(e))
    }

    async fn write_report(
        &self,
        conn: &mut SqliteConnection,
        report: &ExecutionReport,
    ) -> Result<(), StoreError> {
        let id = report.id.to_string();
        let records_out =
            report.nodes.iter().try_fold(0u64, |sum, n| sum.checked_add(n.counters.records_out)).ok_or_else(
                || StoreError::Unstorable {
                    file: self.file.to_path_buf(),
                    what: "the execution's records_out".to_owned(),
                    reason: "the sum over its nodes overflows".to_owned(),
                },
            )?;
        sqlx::query(
            "INSERT INTO executions \
                 (id, correlation_id, flow, state, error, started_at, finished_at, records_out) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, error = excluded.error, \
                 finished_at = excluded.finished_at, records_out = excluded.records_out",
        )
        .bind(&id)
        .bind(&report.correlation_id)
        .bind(&report.flow)
        .bind(self.located(enum_text("execution state", &report.state))?)
        .bind(&report.error)
        .bind(time_text(report.started_at))
        .bind(time_text(report.finished_at))
        .bind(self.located(int("execution records_out", records_out))?)
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
        struct NodeValues<'a> {
            seq: i64,
            node: &'a flow_runtime::NodeReport,
            state: String,
            records_in: i64,
            records_out: i64,
            errors: i64,
            error_kind: Option<String>,
            sink: Option<String>,
        }
        let mut nodes = Vec::with_capacity(report.nodes.len());
        let mut samples = Vec::new();
        for (seq, node) in report.nodes.iter().enumerate() {
            let seq = self.located(int("node position", seq))?;
            let what = |field: &str| format!("node {} {field}", node.node_id);
            nodes.push(NodeValues {
                seq,
                node,
                state: self.located(enum_text(&what("state"), &node.state))?,
                records_in: self.located(int(&what("records_in"), node.counters.records_in))?,
                records_out: self.located(int(&what("records_out"), node.counters.records_out))?,
                errors: self.located(int(&what("errors"), node.counters.errors))?,
                error_kind: self
                    .located(node.error_kind.map(|k| enum_text(&what("error_kind"), &k)).transpose())?,
                sink: self.located(node.sink.map(|s| enum_text(&what("sink"), &s)).transpose())?,
            });
            for (sample_seq, record) in node.sample.iter().enumerate() {
                samples.push((
                    seq,
                    self.located(int("sample position", sample_seq))?,
                    self.located(record_text(record))?,
                ));
            }
        }
        // SQLite allows 32,766 bound values per statement.
        for chunk in nodes.chunks(1000) {
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
                    .push_bind(i64::from(v.node.attempts))
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
        for chunk in samples.chunks(5000) {
            let mut insert: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO node_samples (execution_id, node_seq, seq, record) ");
            insert.push_values(chunk, |mut row, (node_seq, seq, record)| {
                row.push_bind(&id).push_bind(*node_seq).push_bind(*seq).push_bind(record);
            });
            insert.build().execute(&mut *conn).await.map_err(|e| self.query_error(e))?;
        }
        Ok(())
    }

    /// Executions left Queued/Running/Paused by a process that died: mark them Failed with error
    /// "interrupted: the engine stopped while this execution ran"; returns how many.
    ///
    /// Their `finished_at` stays empty: when the engine stopped is not known.
    pub async fn mark_interrupted(&self) -> Result<u64, StoreError> {
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

    /// Newest first.
    pub async fn list(&self, query: &ListQuery) -> Result<Vec<ExecutionSummary>, StoreError> {
        let mut sql =
            QueryBuilder::<Sqlite>::new(format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE 1 = 1"));
        if let Some(flow) = &query.flow {
            sql.push(" AND flow = ").push_bind(flow.clone());
        }
        if let Some(state) = &query.state {
            sql.push(" AND state = ").push_bind(self.located(enum_text("execution state", state))?);
        }
        let limit = query.limit.unwrap_or(types::DEFAULT_LIMIT).min(types::MAX_LIMIT);
        // rowid breaks ties between executions started in the same instant: later insert first.
        sql.push(" ORDER BY started_at DESC, rowid DESC LIMIT ")
            .push_bind(i64::from(limit))
            .push(" OFFSET ")
            .push_bind(i64::from(query.offset.unwrap_or(0)));
        let rows: Vec<ExecutionRow> =
            sql.build_query_as().fetch_all(&self.pool).await.map_err(|e| self.query_error(e))?;
        rows.into_iter().map(|r| self.located(r.into_summary())).collect()
    }

    /// One execution with its nodes and samples, or None.
    pub async fn get(&self, id: Uuid) -> Result<Option<ExecutionDetail>, StoreError> {
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

        let seqs: Vec<i64> = node_rows.iter().map(|n| n.seq).collect();
        let mut nodes =
            node_rows.into_iter().map(|n| self.located(n.into_report())).collect::<Result<Vec<_>, _>>()?;
        for sample in samples {
            // The foreign key guarantees the node exists; seqs is sorted by the query.
            let node = seqs.binary_search(&sample.node_seq).ok().and_then(|i| nodes.get_mut(i)).ok_or_else(
                || StoreError::Corrupt {
                    file: self.file.to_path_buf(),
                    column: "node_samples.node_seq",
                    value: sample.node_seq.to_string(),
                    reason: "no such node".to_owned(),
                },
            )?;
            node.sample.push(self.located(parse_record(&sample.record))?);
        }
        Ok(Some(ExecutionDetail { summary: self.located(row.into_summary())?, nodes }))
    }

    fn query_error(&self, source: sqlx::Error) -> StoreError {
        StoreError::Query { file: self.file.to_path_buf(), source }
    }

    /// Names this database in a conversion error.
    fn located<T>(&self, value: Result<T, CodecError>) -> Result<T, StoreError> {
        value.map_err(|e| e.at(&self.file))
    }
}
