//! PostgreSQL Query (`postgres_query`): streams the rows of a SQL query as records, in batches.
//! Params are bound to `$1`, `$2`... (converted to the types the server infers for them), never
//! spliced into the SQL. The rows come through sqlx `fetch` on one pooled connection, read only as
//! fast as the flow consumes them. A call that is dropped (node timeout, cancel) cancels the
//! query on the server; the retry then runs a fresh query, unless rows were already sent on.

use async_trait::async_trait;
use compact_str::CompactString;
use flow_model::{Category, ConnectionKind, NodeDescriptor, NodeSpec, PortSpec, Record, RecordSchema, Value};
use flow_runtime::{BuildContext, Emitter, NodeError, NodeType, Operator};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use schemars::JsonSchema;
use serde::Deserialize;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{Column, Executor, Row, Statement};

use crate::db::Db;
use crate::error::PgError;
use crate::params::{decode, peek, schema_of};
use crate::tx::cancel_backend;
use crate::types::{Bound, PgType, read, to_param};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Name of a PostgreSQL connection.
    connection: String,
    /// SQL that returns rows; `$1`, `$2`... stand for `params`.
    query: String,
    /// Values for `$1`, `$2`..., bound in order, never spliced into the SQL. Templates such as
    /// `{{ vars.status }}` are rendered first; each value is converted to the type the server
    /// expects for its placeholder (e.g. "42" for an integer, an ISO 8601 string for a date).
    #[serde(default)]
    params: Vec<serde_json::Value>,
    /// Records per output batch; default: the engine's batch size.
    #[serde(default)]
    #[schemars(range(min = 1))]
    batch_size: Option<usize>,
}

pub(crate) struct PostgresQuery;

impl NodeSpec for PostgresQuery {
    fn connection_kind(&self) -> Option<ConnectionKind> {
        Some(ConnectionKind::Postgres)
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "postgres_query".into(),
            title: "PostgreSQL Query".into(),
            category: Category::Source,
            description:
                "Streams the rows of a SQL query as records. `$1`, `$2`... are bound from `params`, \
                          never spliced into the SQL. The output schema comes from the server (the query is \
                          described before the run)."
                    .into(),
            inputs: vec![],
            outputs: vec![PortSpec::output("out", "One record per row, fields named after the columns")],
            params_schema: schema_of::<Params>(),
            output_schema: None,
        }
    }
}

impl NodeType for PostgresQuery {
    fn build(&self, params: serde_json::Value, ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: Params = decode(&params)?;
        Ok(Box::new(QueryOp {
            db: Db::open(ctx, &p.connection)?,
            sql: p.query,
            params: p.params.iter().map(Value::from).collect(),
            batch_size: p.batch_size.unwrap_or(ctx.batch_size).max(1),
            cursor: None,
            emitted: 0,
        }))
    }

    fn describe<'a>(
        &'a self,
        params: &'a serde_json::Value,
        ctx: &'a BuildContext,
    ) -> BoxFuture<'a, Option<RecordSchema>> {
        Box::pin(async move {
            let p: Params = peek(params)?;
            let db = Db::open(ctx, &p.connection).ok()?;
            // No diagnosis of an unreachable server here: validation just leaves the schema unknown.
            let mut conn = db.pool().acquire().await.ok()?;
            // Preparing parses and plans the query without running it.
            let statement = (&mut *conn).prepare(p.query.as_str()).await.ok()?;
            Some(RecordSchema::new(
                statement
                    .columns()
                    .iter()
                    .map(|c| (c.name().to_owned(), PgType::from_info(c.type_info()).field_type())),
            ))
        })
    }
}

struct QueryOp {
    db: Db,
    sql: String,
    params: Vec<Value>,
    batch_size: usize,
    /// The running query between calls. A call owns it while it runs, so dropping the call drops
    /// (and cancels) the query.
    cursor: Option<Cursor>,
    /// Records sent on so far.
    emitted: u64,
}

/// A running query: its rows, their columns, and how to cancel it.
struct Cursor {
    /// Always present until dropped; an option so that `drop` can hand it to the cancel task.
    rows: Option<BoxStream<'static, Result<PgRow, sqlx::Error>>>,
    columns: Vec<(CompactString, PgType)>,
    pool: PgPool,
    pid: i32,
    /// The server has finished the query (last row or error): nothing to cancel.
    done: bool,
}

impl Drop for Cursor {
    /// A query dropped before its last row is cancelled on the server; its connection is released
    /// only after the cancel went out, so the cancel cannot hit the connection's next query.
    fn drop(&mut self) {
        let Some(rows) = self.rows.take() else { return };
        if self.done {
            return;
        }
        let (pool, pid) = (self.pool.clone(), self.pid);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                cancel_backend(&pool, pid).await;
                drop(rows);
            });
        }
    }
}

/// Starts the query on a pooled connection. (A free function: the operator itself is not `Sync`,
/// so it cannot be borrowed across an await.)
async fn start(db: &Db, sql: &str, params: &[Value]) -> Result<Cursor, NodeError> {
    let fail = |doing: &str, e: PgError| db.error(doing, e);
    let mut conn = db.acquire().await.map_err(|e| fail("connecting", e))?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| fail("connecting", e.into()))?;
    let statement = (&mut *conn).prepare(sql).await.map_err(|e| fail("preparing the query", e.into()))?;
    let types = match statement.parameters() {
        Some(sqlx::Either::Left(types)) => types.to_vec(),
        _ => Vec::new(),
    };
    if types.len() != params.len() {
        return Err(NodeError::params(format!(
            "the query has {} placeholder(s) ($1, $2...) but params has {} value(s)",
            types.len(),
            params.len()
        )));
    }
    let mut args = Vec::with_capacity(types.len());
    for (i, (value, info)) in params.iter().zip(&types).enumerate() {
        let ty = PgType::from_info(info);
        if matches!(ty, PgType::Other { .. }) {
            return Err(NodeError::params(format!(
                "params[{i}]: placeholder ${} has type {}, which record values are not bound to; cast it in the query (`${}::text::{}`)",
                i + 1,
                ty.name(),
                i + 1,
                ty.name()
            )));
        }
        let value =
            to_param(value, &ty).map_err(|e| NodeError::params(format!("params[{i}] (${}): {e}", i + 1)))?;
        args.push(Bound { value, ty: info.clone() });
    }
    let mut columns = Vec::with_capacity(statement.columns().len());
    for c in statement.columns() {
        let ty = PgType::from_info(c.type_info());
        if !ty.is_readable() {
            return Err(NodeError::params(format!(
                "column `{}` has type {}, which has no record value; cast it in the query (`{}::text`)",
                c.name(),
                ty.name(),
                c.name()
            )));
        }
        if columns.iter().any(|(name, _)| name == c.name()) {
            return Err(NodeError::params(format!(
                "the query returns two columns named `{}`; give one an alias (`AS other_name`)",
                c.name()
            )));
        }
        columns.push((CompactString::from(c.name()), ty));
    }
    let sql = sql.to_owned();
    // The stream owns the connection, so it lives across calls; rows are read as polled.
    let rows = async_stream::stream! {
        let mut conn = conn;
        let mut query = sqlx::query(&sql);
        for arg in args {
            query = query.bind(arg);
        }
        let mut rows = query.fetch(&mut *conn);
        while let Some(row) = rows.next().await {
            yield row;
        }
    };
    Ok(Cursor { rows: Some(rows.boxed()), columns, pool: db.pool().clone(), pid, done: false })
}

impl Cursor {
    fn record(&self, row: &PgRow) -> Result<Record, String> {
        let mut record = Record::with_capacity(self.columns.len());
        for (i, (name, ty)) in self.columns.iter().enumerate() {
            let value = match row.try_get_raw(i) {
                Ok(raw) => read(raw, ty),
                Err(e) => Err(e.into()),
            };
            match value {
                Ok(value) => record.push_unchecked(name.clone(), value),
                Err(e) => return Err(format!("column `{name}` ({}): {e}", ty.name())),
            }
        }
        Ok(record)
    }
}

#[async_trait]
impl Operator for QueryOp {
    /// Connects and prepares the query, which checks it; rows are asked for on the first produce.
    async fn open(&mut self) -> Result<(), NodeError> {
        if self.cursor.is_none() {
            self.cursor = Some(start(&self.db, &self.sql, &self.params).await?);
        }
        Ok(())
    }

    async fn produce(&mut self, out: &mut Emitter) -> Result<bool, NodeError> {
        let mut cursor = match self.cursor.take() {
            Some(cursor) => cursor,
            None if self.emitted > 0 => {
                return Err(NodeError::permanent(format!(
                    "the query was interrupted after {} rows had been sent on; running it again could repeat or miss rows",
                    self.emitted
                )));
            }
            None => start(&self.db, &self.sql, &self.params).await?,
        };
        let mut batch = Vec::with_capacity(self.batch_size);
        while batch.len() < self.batch_size {
            let Some(rows) = cursor.rows.as_mut() else { break };
            match rows.next().await {
                Some(Ok(row)) => {
                    let record = cursor
                        .record(&row)
                        .map_err(|e| self.db.error("reading rows", PgError::Statement(e)))?;
                    batch.push(record);
                }
                Some(Err(e)) => {
                    // The query is over: nothing left to cancel.
                    cursor.done = true;
                    let e = PgError::from(e);
                    // Rows already sent on cannot be taken back: a retry could only repeat them.
                    let e = match e {
                        PgError::Unreachable(why) if self.emitted > 0 => PgError::Statement(format!(
                            "the connection broke after {} rows had been sent on ({why})",
                            self.emitted
                        )),
                        e => e,
                    };
                    return Err(self.db.error("reading rows", e));
                }
                None => {
                    cursor.done = true;
                    break;
                }
            }
        }
        self.emitted += batch.len() as u64;
        out.emit_batch(batch);
        if cursor.done {
            return Ok(false);
        }
        self.cursor = Some(cursor);
        Ok(true)
    }

    fn target(&self) -> Option<String> {
        Some(self.db.target())
    }
}
