//! The PostgreSQL backend: one database shared by the server and its workers. Native types
//! (uuid, timestamptz, bigint); enums are text checked by the schema; JSON is bound as text and
//! cast, and read back as text, so conversion errors are the store's typed ones.

mod alerts;
mod batch;
mod monitoring;
mod records;
mod rows;

use std::str::FromStr;
use std::sync::Arc;

use flow_model::{Connection, ConnectionKind, redact_url};
use flow_runtime::{ExecutionReport, ExecutionState};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Row};
use uuid::Uuid;

use self::rows::{EXECUTION_COLUMNS, ExecutionRow, NODE_COLUMNS, NodeRow, SampleRow};
use crate::codec::{CodecError, enum_text, json_text, parse_enum, parse_json};
use crate::report::attach_samples;
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
    /// The group-commit writer the history writes go through; `None` in the writer's own copy,
    /// which writes directly.
    writes: Option<batch::Writes>,
}

impl PgStore {
    pub(crate) async fn connect(url: &str, options: &PostgresOptions) -> Result<PgStore, StoreError> {
        let name: Arc<str> = redact_url(url).into();
        let open_error = |source| StoreError::Open { database: name.to_string(), source };
        let connect = PgConnectOptions::from_str(url).map_err(open_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(open_error)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { database: name.to_string(), source })?;
        let direct = PgStore { pool, name, writes: None };
        let writes = batch::Writes::start(direct.clone());
        Ok(PgStore { writes: Some(writes), ..direct })
    }

    pub(crate) async fn record_started(&self, execution: &NewExecution) -> Result<(), StoreError> {
        self.write(batch::Write::Started(execution.clone())).await
    }

    pub(crate) async fn record_state(
        &self,
        id: Uuid,
        state: ExecutionState,
        fence: Option<u64>,
    ) -> Result<(), StoreError> {
        self.write(batch::Write::State { id, state, fence }).await
    }

    pub(crate) async fn record_finished(
        &self,
        report: &ExecutionReport,
        fence: Option<u64>,
    ) -> Result<(), StoreError> {
        self.write(batch::Write::Finished { report: report.clone(), fence }).await
    }

    /// A history write, through the group-commit writer.
    async fn write(&self, write: batch::Write) -> Result<(), StoreError> {
        match &self.writes {
            Some(writes) => writes.submit(write).await,
            None => self.write_now(write).await,
        }
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
        if let Some(parent) = query.parent {
            sql.push(" AND parent_id = ").push_bind(parent);
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
