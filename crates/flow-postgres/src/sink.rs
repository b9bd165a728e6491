//! The PostgreSQL sinks: Insert (`postgres_insert`), Upsert (`postgres_upsert`) and Update
//! (`postgres_update`). Records are gathered into batches of `batch_size` and each batch is written
//! in its own savepoint of the execution's transaction (see `tx`), which commits only when the
//! whole execution succeeded. The node reads the table's columns and types from the catalog when
//! it opens; at the first write the record fields are matched to them, and every value is
//! converted to its column's type before anything is sent. Inserts go out as multi-row INSERTs
//! with bound params, or as COPY ... FROM STDIN (text format) for large batches; updates as one
//! UPDATE ... FROM (VALUES ...) per chunk.
//!
//! A batch written by COPY (insert or upsert) is loaded in the background while the next batch
//! gathers, so the server's work overlaps the flow's (see `load`); the next write, or `finish`,
//! waits for it first. Until the server confirmed it, the batch's COPY data stays with the node: a
//! call that timed out or was cancelled while waiting for it stops the load (its savepoint is
//! undone), and a retried call sends the same data again.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use compact_str::CompactString;
use flow_model::{
    Batch, Category, ConnectionKind, FieldRef, NodeDescriptor, NodeSpec, PortSpec, Record, Value,
};
use flow_runtime::{BuildContext, Emitter, NodeError, NodeType, Operator};
use schemars::JsonSchema;
use serde::Deserialize;
use sqlx::postgres::{PgConnection, PgTypeInfo};

use crate::db::Db;
use crate::error::PgError;
use crate::load::{CopyLoad, LoadError, Loading};
use crate::params::{decode, peek, schema_of};
use crate::tx::{self, SharedTx};
use crate::types::{Bound, Param, PgType, to_param};

/// Batches of at least this many rows are loaded with COPY under `method: auto`.
const COPY_THRESHOLD: usize = 1000;
/// Most rows in one INSERT or UPDATE statement.
const MAX_ROWS_PER_STATEMENT: usize = 1000;
/// PostgreSQL's limit on bound params in one statement.
const MAX_PARAMS: usize = 65_535;
/// Records per batch unless the params say otherwise: each COPY statement costs the server about
/// a millisecond on top of its rows, so batches of the engine's size (1024) would double a load's
/// time; 10,000 records take a few megabytes.
const DEFAULT_BATCH_SIZE: usize = 10_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Method {
    /// COPY for batches of 1000 rows or more, INSERT below.
    #[default]
    Auto,
    /// Multi-row INSERT with bound params.
    Insert,
    /// COPY ... FROM STDIN, for large loads.
    Copy,
}

impl Method {
    fn uses_copy(self, rows: usize) -> bool {
        match self {
            Method::Auto => rows >= COPY_THRESHOLD,
            Method::Insert => false,
            Method::Copy => true,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct InsertParams {
    /// Name of a PostgreSQL connection.
    connection: String,
    /// Target table, optionally schema-qualified (`schema.table`); double-quote names that keep
    /// capitals or contain dots (`"My Table"`).
    table: String,
    /// Record fields to write, each into the column of that name; default: the fields of the
    /// first record. A record without one of them writes NULL there.
    #[serde(default)]
    columns: Option<Vec<String>>,
    /// `insert`: multi-row INSERT with bound params; `copy`: COPY ... FROM STDIN, for large loads;
    /// `auto`: COPY once a batch has 1000 rows or more.
    #[serde(default)]
    method: Method,
    /// Records per batch (each batch in its own savepoint); default: 10,000.
    #[serde(default)]
    #[schemars(range(min = 1))]
    batch_size: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpsertParams {
    /// Name of a PostgreSQL connection.
    connection: String,
    /// Target table, optionally schema-qualified (`schema.table`); double-quote names that keep
    /// capitals or contain dots (`"My Table"`).
    table: String,
    /// The columns of a unique index or primary key: a row whose values there already exist is
    /// updated (its other written columns are set) instead of inserted. Within one batch the last
    /// record for a key wins.
    #[schemars(length(min = 1))]
    conflict_columns: Vec<String>,
    /// Record fields to write, each into the column of that name; default: the fields of the
    /// first record. The conflict columns are always written.
    #[serde(default)]
    columns: Option<Vec<String>>,
    /// `insert`: multi-row INSERT ... ON CONFLICT; `copy`: COPY into a temporary table, then
    /// INSERT ... SELECT ... ON CONFLICT; `auto`: COPY once a batch has 1000 rows or more.
    #[serde(default)]
    method: Method,
    /// Records per batch (each batch in its own savepoint); default: 10,000.
    #[serde(default)]
    #[schemars(range(min = 1))]
    batch_size: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpdateParams {
    /// Name of a PostgreSQL connection.
    connection: String,
    /// Target table, optionally schema-qualified (`schema.table`); double-quote names that keep
    /// capitals or contain dots (`"My Table"`).
    table: String,
    /// Columns that identify the row: a row is updated where each of them equals the record's
    /// field of that name. Records matching no row change nothing; within one batch the last
    /// record for a key wins.
    #[schemars(length(min = 1))]
    key_columns: Vec<String>,
    /// Columns to set from the record fields of the same names; default: every other field of the
    /// first record. A record without one of them sets it to NULL.
    #[serde(default)]
    columns: Option<Vec<String>>,
    /// Records per batch (each batch in its own savepoint); default: 10,000.
    #[serde(default)]
    #[schemars(range(min = 1))]
    batch_size: Option<usize>,
}

/// What a sink writes where, from its params.
#[derive(Debug)]
struct Spec {
    connection: String,
    table: String,
    mode: Mode,
    columns: Option<Vec<String>>,
}

/// What a sink does with its records.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Insert,
    Upsert { conflict: Vec<String> },
    Update { keys: Vec<String> },
}

fn descriptor(
    node_type: &str,
    title: &str,
    description: &str,
    params_schema: serde_json::Value,
) -> NodeDescriptor {
    NodeDescriptor {
        node_type: node_type.into(),
        title: title.into(),
        category: Category::Sink,
        description: description.into(),
        inputs: vec![PortSpec::input("in", "Records to write").multiple()],
        outputs: vec![],
        params_schema,
        output_schema: None,
    }
}

/// The fields named by a list param, for validation against the upstream schema.
fn field_refs(fields: &[String], param: &str) -> impl Iterator<Item = FieldRef> {
    fields.iter().enumerate().map(move |(i, f)| FieldRef {
        port: "in".into(),
        field: f.clone(),
        param: format!("/{param}/{i}"),
        numeric: false,
    })
}

pub(crate) struct PostgresInsert;

impl NodeSpec for PostgresInsert {
    fn connection_kind(&self) -> Option<ConnectionKind> {
        Some(ConnectionKind::Postgres)
    }

    fn descriptor(&self) -> NodeDescriptor {
        descriptor(
            "postgres_insert",
            "PostgreSQL Insert",
            "Inserts records into a table, in batches (multi-row INSERT, or COPY for large batches), inside the \
             execution's transaction: nothing is kept unless the whole execution succeeds.",
            schema_of::<InsertParams>(),
        )
    }

    fn referenced_fields(&self, params: &serde_json::Value) -> Vec<FieldRef> {
        let Some(p) = peek::<InsertParams>(params) else { return Vec::new() };
        field_refs(p.columns.as_deref().unwrap_or_default(), "columns").collect()
    }
}

impl NodeType for PostgresInsert {
    fn build(&self, params: serde_json::Value, ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: InsertParams = decode(&params)?;
        let spec = Spec { connection: p.connection, table: p.table, mode: Mode::Insert, columns: p.columns };
        SinkOp::build(ctx, spec, p.method, p.batch_size)
    }
}

pub(crate) struct PostgresUpsert;

impl NodeSpec for PostgresUpsert {
    fn connection_kind(&self) -> Option<ConnectionKind> {
        Some(ConnectionKind::Postgres)
    }

    fn descriptor(&self) -> NodeDescriptor {
        descriptor(
            "postgres_upsert",
            "PostgreSQL Upsert",
            "Inserts records into a table, updating the rows whose conflict columns already exist \
             (INSERT ... ON CONFLICT DO UPDATE), in batches inside the execution's transaction.",
            schema_of::<UpsertParams>(),
        )
    }

    fn referenced_fields(&self, params: &serde_json::Value) -> Vec<FieldRef> {
        let Some(p) = peek::<UpsertParams>(params) else { return Vec::new() };
        field_refs(&p.conflict_columns, "conflict_columns")
            .chain(field_refs(p.columns.as_deref().unwrap_or_default(), "columns"))
            .collect()
    }
}

impl NodeType for PostgresUpsert {
    fn build(&self, params: serde_json::Value, ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: UpsertParams = decode(&params)?;
        let mode = Mode::Upsert { conflict: p.conflict_columns };
        let spec = Spec { connection: p.connection, table: p.table, mode, columns: p.columns };
        SinkOp::build(ctx, spec, p.method, p.batch_size)
    }
}

pub(crate) struct PostgresUpdate;

impl NodeSpec for PostgresUpdate {
    fn connection_kind(&self) -> Option<ConnectionKind> {
        Some(ConnectionKind::Postgres)
    }

    fn descriptor(&self) -> NodeDescriptor {
        descriptor(
            "postgres_update",
            "PostgreSQL Update",
            "Updates the rows whose key columns equal the record's fields, setting the other columns from the \
             record, in batches inside the execution's transaction.",
            schema_of::<UpdateParams>(),
        )
    }

    fn referenced_fields(&self, params: &serde_json::Value) -> Vec<FieldRef> {
        let Some(p) = peek::<UpdateParams>(params) else { return Vec::new() };
        field_refs(&p.key_columns, "key_columns")
            .chain(field_refs(p.columns.as_deref().unwrap_or_default(), "columns"))
            .collect()
    }
}

impl NodeType for PostgresUpdate {
    fn build(&self, params: serde_json::Value, ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: UpdateParams = decode(&params)?;
        let mode = Mode::Update { keys: p.key_columns };
        let spec = Spec { connection: p.connection, table: p.table, mode, columns: p.columns };
        SinkOp::build(ctx, spec, Method::Insert, p.batch_size)
    }
}

/// Double-quotes an identifier, doubling the quotes inside.
fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Parses `table`, `schema.table` or double-quoted parts into the quoted SQL name. Unquoted parts
/// fold to lower case, as PostgreSQL folds unquoted identifiers.
fn parse_table(text: &str) -> Result<String, String> {
    let mut parts = Vec::new();
    let mut chars = text.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return Err("a double quote is not closed".into()),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != '.') {
                part.push(c);
            }
            part = part.trim().to_ascii_lowercase();
        }
        if part.is_empty() {
            return Err("a name part is empty".into());
        }
        parts.push(part);
        match chars.next() {
            None => break,
            Some('.') => {}
            Some(c) => return Err(format!("unexpected `{c}` after a quoted name")),
        }
    }
    if parts.len() > 2 {
        return Err("expected `table` or `schema.table`".into());
    }
    Ok(parts.iter().map(|p| quote(p)).collect::<Vec<_>>().join("."))
}

/// A record field and the column it is written to.
#[derive(Debug, Clone)]
struct Target {
    field: CompactString,
    column: String,
    ty: PgType,
}

/// What a sink writes, resolved against the table's columns at the first write.
#[derive(Debug)]
struct Plan {
    /// In write order; for an update, the key columns come first.
    targets: Vec<Target>,
    /// Positions in `targets` of the conflict (upsert) or key (update) columns.
    keys: Vec<usize>,
    /// The declared type of each target, for binding.
    declared: Vec<PgTypeInfo>,
}

impl Plan {
    fn columns(&self) -> String {
        self.targets.iter().map(|t| quote(&t.column)).collect::<Vec<_>>().join(", ")
    }

    fn rows_per_statement(&self) -> usize {
        (MAX_PARAMS / self.targets.len().max(1)).clamp(1, MAX_ROWS_PER_STATEMENT)
    }

    /// `($1, $2), ($3, $4)...` for `rows` rows.
    fn values(&self, rows: usize) -> String {
        let n = self.targets.len();
        (0..rows)
            .map(|r| {
                let row: Vec<String> =
                    self.targets.iter().enumerate().map(|(i, t)| t.ty.placeholder(r * n + i + 1)).collect();
                format!("({})", row.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The ON CONFLICT clause of an upsert: set every written column that is not a conflict column.
    fn on_conflict(&self) -> String {
        let keys: Vec<String> = self.keys.iter().map(|&k| quote(&self.targets[k].column)).collect();
        let set: Vec<String> = self
            .targets
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.keys.contains(i))
            .map(|(_, t)| format!("{0} = EXCLUDED.{0}", quote(&t.column)))
            .collect();
        if set.is_empty() {
            format!(" ON CONFLICT ({}) DO NOTHING", keys.join(", "))
        } else {
            format!(" ON CONFLICT ({}) DO UPDATE SET {}", keys.join(", "), set.join(", "))
        }
    }

    fn update_sql(&self, table: &str, rows: usize) -> String {
        let set: Vec<String> = self
            .targets
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.keys.contains(i))
            .map(|(_, t)| format!("{0} = _flow_v.{0}", quote(&t.column)))
            .collect();
        let matches: Vec<String> = self
            .keys
            .iter()
            .map(|&k| format!("_flow_t.{0} = _flow_v.{0}", quote(&self.targets[k].column)))
            .collect();
        format!(
            "UPDATE {table} AS _flow_t SET {} FROM (VALUES {}) AS _flow_v ({}) WHERE {}",
            set.join(", "),
            self.values(rows),
            self.columns(),
            matches.join(" AND ")
        )
    }

    /// Keeps the last row for each key (upsert, update): one statement cannot touch a row twice.
    /// Rows with a NULL key match nothing and are all kept.
    fn last_per_key(&self, rows: Vec<Vec<Param>>) -> Vec<Vec<Param>> {
        if self.keys.is_empty() {
            return rows;
        }
        let key =
            |row: &[Param]| -> Option<Vec<String>> { self.keys.iter().map(|&k| row[k].text()).collect() };
        let mut last: HashMap<Vec<String>, usize> = HashMap::new();
        for (i, row) in rows.iter().enumerate() {
            if let Some(k) = key(row) {
                last.insert(k, i);
            }
        }
        rows.into_iter()
            .enumerate()
            .filter(|(i, row)| key(row).is_none_or(|k| last.get(&k) == Some(i)))
            .map(|(_, row)| row)
            .collect()
    }
}

/// A PostgreSQL sink while it runs.
struct SinkOp {
    db: Db,
    tx: SharedTx,
    /// As written in the params, for messages.
    table_text: String,
    /// Quoted SQL name.
    table: String,
    mode: Mode,
    columns: Option<Vec<String>>,
    method: Method,
    batch_size: usize,
    /// The table's columns and types, read when the node opens.
    catalog: Option<Vec<(String, PgType)>>,
    plan: Option<Plan>,
    /// Upsert by COPY: the name of the temporary staging table.
    stage: String,
    /// The staging table exists: a batch that created it was confirmed.
    stage_ready: bool,
    /// Records received but not yet written: fewer than a batch.
    pending: Batch,
    /// Records handed on for writing so far, to number records in messages.
    written: u64,
    /// A batch handed to a background load, until the server confirmed it.
    unconfirmed: Option<Arc<CopyLoad>>,
    /// The load of `unconfirmed`, while it runs.
    loading: Option<Loading>,
}

impl SinkOp {
    fn build(
        ctx: &BuildContext,
        spec: Spec,
        method: Method,
        batch_size: Option<usize>,
    ) -> Result<Box<dyn Operator>, NodeError> {
        let table = &spec.table;
        let quoted =
            parse_table(table).map_err(|e| NodeError::params(format!("params.table: `{table}`: {e}")))?;
        let db = Db::open(ctx, &spec.connection)?;
        Ok(Box::new(SinkOp {
            tx: tx::shared(ctx, &db),
            db,
            table: quoted,
            table_text: spec.table,
            mode: spec.mode,
            columns: spec.columns,
            method,
            batch_size: batch_size.unwrap_or(DEFAULT_BATCH_SIZE).max(1),
            catalog: None,
            plan: None,
            stage: format!("flow_stage_{:016x}", fastrand::u64(..)),
            stage_ready: false,
            pending: Vec::new(),
            written: 0,
            unconfirmed: None,
            loading: None,
        }))
    }

    fn doing(&self) -> String {
        format!("writing to table `{}`", self.table_text)
    }

    /// The table's columns and their types, read from the catalog once.
    async fn catalog(&mut self) -> Result<&[(String, PgType)], NodeError> {
        if self.catalog.is_none() {
            self.catalog = Some(load_catalog(&self.db, &self.table, &self.table_text).await?);
        }
        Ok(self.catalog.as_deref().unwrap_or_default())
    }

    /// Matches the fields to write against the table's columns.
    fn plan(&self, catalog: &[(String, PgType)], first: &Record) -> Result<Plan, NodeError> {
        let explicit = self.columns.clone();
        let from_record = || first.keys().map(str::to_owned).collect::<Vec<_>>();
        let (fields, keys): (Vec<String>, Vec<String>) = match &self.mode {
            Mode::Insert => (explicit.unwrap_or_else(from_record), Vec::new()),
            Mode::Upsert { conflict } => {
                let mut fields = explicit.unwrap_or_else(from_record);
                for k in conflict.iter().rev() {
                    if !fields.contains(k) {
                        fields.insert(0, k.clone());
                    }
                }
                (fields, conflict.clone())
            }
            Mode::Update { keys } => {
                let set: Vec<String> =
                    explicit.unwrap_or_else(from_record).into_iter().filter(|f| !keys.contains(f)).collect();
                if set.is_empty() {
                    return Err(NodeError::params(format!(
                        "nothing to update in table `{}`: no column besides the key columns (set `columns`)",
                        self.table_text
                    )));
                }
                (keys.iter().cloned().chain(set).collect(), keys.clone())
            }
        };
        if fields.is_empty() {
            return Err(NodeError::record(format!(
                "nothing to write to table `{}`: the first record has no fields (set `columns`)",
                self.table_text
            )));
        }

        let mut targets = Vec::with_capacity(fields.len());
        for field in fields {
            // The exact name, or else the only one that differs in case.
            let found = catalog.iter().find(|(c, _)| *c == field).or_else(|| {
                let mut same = catalog.iter().filter(|(c, _)| c.eq_ignore_ascii_case(&field));
                match (same.next(), same.next()) {
                    (Some(one), None) => Some(one),
                    _ => None,
                }
            });
            let Some((column, ty)) = found else {
                let names: Vec<&str> = catalog.iter().map(|(c, _)| c.as_str()).collect();
                let why = format!("column `{field}` is not in the table (its columns: {})", names.join(", "));
                return Err(self.db.error(&self.doing(), PgError::Statement(why)));
            };
            targets.push(Target { field: field.into(), column: column.clone(), ty: ty.clone() });
        }
        let keys = keys.iter().filter_map(|k| targets.iter().position(|t| t.field == *k)).collect();
        let declared = targets.iter().map(|t| t.ty.declared()).collect();
        Ok(Plan { targets, keys, declared })
    }

    /// Converts each record for the table; a value that does not fit its column fails the batch
    /// before anything is sent.
    fn convert(&self, plan: &Plan, records: &[&Record]) -> Result<Vec<Vec<Param>>, NodeError> {
        records
            .iter()
            .enumerate()
            .map(|(i, record)| {
                let n = self.written + i as u64 + 1;
                if let Mode::Update { .. } = self.mode
                    && let Some(&k) = plan.keys.iter().find(|&&k| !record.contains(&plan.targets[k].field))
                {
                    return Err(NodeError::record(format!(
                        "table `{}`: record {n} has no key field `{}`",
                        self.table_text, plan.targets[k].field
                    )));
                }
                plan.targets.iter().map(|t| self.param(t, record, n)).collect()
            })
            .collect()
    }

    /// Converts the records straight into COPY text data, with the same checks as `convert`
    /// (a bulk insert skips building rows of params).
    fn copy_data(&self, plan: &Plan, records: &[&Record]) -> Result<Vec<u8>, NodeError> {
        let mut data = Vec::with_capacity(records.len() * 64);
        let mut row = Vec::with_capacity(plan.targets.len());
        for (i, record) in records.iter().enumerate() {
            let n = self.written + i as u64 + 1;
            row.clear();
            for t in &plan.targets {
                row.push(self.param(t, record, n)?);
            }
            push_copy_row(&mut data, &row);
        }
        Ok(data)
    }

    /// The field of `t` in record number `n`, converted for its column.
    fn param(&self, t: &Target, record: &Record, n: u64) -> Result<Param, NodeError> {
        to_param(record.get(&t.field).unwrap_or(&Value::Null), &t.ty).map_err(|e| {
            NodeError::record(format!("table `{}`: record {n}, column `{}`: {e}", self.table_text, t.column))
        })
    }

    /// Waits until the server confirmed the batch loading in the background, sending it again
    /// when an earlier call stopped its load.
    async fn settle(&mut self) -> Result<(), NodeError> {
        while let Some(load) = self.unconfirmed.clone() {
            let loading =
                self.loading.get_or_insert_with(|| Loading::start(&self.tx, &self.db, Arc::clone(&load)));
            let result = loading.wait().await;
            self.loading = None;
            match result {
                Ok(()) => {
                    self.unconfirmed = None;
                    // Every upsert load creates or empties the staging table.
                    self.stage_ready |= matches!(self.mode, Mode::Upsert { .. });
                }
                Err(LoadError::Stopped) => {}
                Err(LoadError::Failed(e)) => return Err(self.db.error(&load.doing, e)),
            }
        }
        Ok(())
    }

    /// Writes the pending records and `extra` as one batch in its own savepoint, after the batch
    /// before it: by COPY in the background for a large insert or upsert, otherwise here. The
    /// pending records are cleared once they are written or handed on.
    async fn write(&mut self, extra: &[Record]) -> Result<(), NodeError> {
        self.settle().await?;
        if self.plan.is_none() {
            let Some(first) = self.pending.first().or(extra.first()).cloned() else { return Ok(()) };
            let catalog = self.catalog().await?.to_vec();
            self.plan = Some(self.plan(&catalog, &first)?);
        }
        let Some(plan) = &self.plan else { return Ok(()) };
        let records: Vec<&Record> = self.pending.iter().chain(extra).collect();
        if records.is_empty() {
            return Ok(());
        }
        let doing = format!(
            "writing records {}-{} to table `{}`",
            self.written + 1,
            self.written + records.len() as u64,
            self.table_text
        );
        let copy = self.method.uses_copy(records.len());
        let load = match &self.mode {
            Mode::Insert if copy => Some(CopyLoad {
                before: None,
                copy: copy_sql(&self.table, plan),
                data: self.copy_data(plan, &records)?,
                after: None,
                doing: doing.clone(),
            }),
            Mode::Upsert { .. } if copy => {
                let rows = plan.last_per_key(self.convert(plan, &records)?);
                let (stage, table, columns) = (quote(&self.stage), &self.table, plan.columns());
                Some(CopyLoad {
                    before: Some(if self.stage_ready {
                        format!("TRUNCATE {stage}")
                    } else {
                        format!(
                            "CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DROP AS SELECT {columns} FROM {table} WITH NO DATA"
                        )
                    }),
                    copy: copy_sql(&stage, plan),
                    data: copy_rows(&rows),
                    after: Some(format!(
                        "INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage}{}",
                        plan.on_conflict()
                    )),
                    doing: doing.clone(),
                })
            }
            _ => None,
        };
        if let Some(load) = load {
            let load = Arc::new(load);
            self.loading = Some(Loading::start(&self.tx, &self.db, Arc::clone(&load)));
            self.unconfirmed = Some(load);
        } else {
            let rows = plan.last_per_key(self.convert(plan, &records)?);
            let mut batch =
                tx::begin_batch(&self.tx, &self.db).await.map_err(|e| self.db.error(&doing, e))?;
            let conn = batch.conn().map_err(|e| self.db.error(&doing, e))?;
            let result = match &self.mode {
                Mode::Update { .. } => update(conn, &self.table, plan, rows).await,
                Mode::Insert | Mode::Upsert { .. } => insert(conn, &self.table, plan, rows).await,
            };
            match result {
                Ok(()) => batch.release().await.map_err(|e| self.db.error(&doing, e))?,
                Err(e) => return Err(self.db.error(&doing, batch.fail(e).await)),
            }
        }
        self.written += records.len() as u64;
        self.pending.clear();
        Ok(())
    }
}

/// Reads the columns of `table` (quoted SQL name) and their types from the catalog.
async fn load_catalog(db: &Db, table: &str, table_text: &str) -> Result<Vec<(String, PgType)>, NodeError> {
    let fail = |e: PgError| db.error(&format!("reading the columns of table `{table_text}`"), e);
    let mut conn = db.acquire().await.map_err(fail)?;
    // Domains are written as their base type; the server checks the domain's constraints.
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), \
                (CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END)::int8 \
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| fail(e.into()))?;
    if rows.is_empty() {
        return Err(fail(PgError::Statement(
            "no such table: names without double quotes are lower-cased, and a table outside the search_path \
             needs its schema (`schema.table`)"
                .into(),
        )));
    }
    Ok(rows
        .into_iter()
        .map(|(name, sql_type, oid)| {
            (name, PgType::from_oid(u32::try_from(oid).unwrap_or_default(), &sql_type))
        })
        .collect())
}

/// Multi-row INSERT (ON CONFLICT for an upsert) with bound params, in chunks.
async fn insert(
    conn: &mut PgConnection,
    table: &str,
    plan: &Plan,
    rows: Vec<Vec<Param>>,
) -> Result<(), sqlx::Error> {
    let conflict = if plan.keys.is_empty() { String::new() } else { plan.on_conflict() };
    for chunk in chunks(rows, plan.rows_per_statement()) {
        let sql =
            format!("INSERT INTO {table} ({}) VALUES {}{conflict}", plan.columns(), plan.values(chunk.len()));
        execute_bound(conn, &sql, plan, chunk).await?;
    }
    Ok(())
}

/// UPDATE ... FROM (VALUES ...) with bound params, in chunks.
async fn update(
    conn: &mut PgConnection,
    table: &str,
    plan: &Plan,
    rows: Vec<Vec<Param>>,
) -> Result<(), sqlx::Error> {
    for chunk in chunks(rows, plan.rows_per_statement()) {
        let sql = plan.update_sql(table, chunk.len());
        execute_bound(conn, &sql, plan, chunk).await?;
    }
    Ok(())
}

/// `COPY table (columns) FROM STDIN` in text format, the fast path for large loads.
fn copy_sql(table: &str, plan: &Plan) -> String {
    format!("COPY {table} ({}) FROM STDIN (FORMAT text)", plan.columns())
}

/// The rows as COPY text data.
fn copy_rows(rows: &[Vec<Param>]) -> Vec<u8> {
    let mut data = Vec::with_capacity(rows.len() * 64);
    for row in rows {
        push_copy_row(&mut data, row);
    }
    data
}

/// Appends one row of COPY text data: the values tab-separated, then a newline.
fn push_copy_row(data: &mut Vec<u8>, row: &[Param]) {
    for (i, value) in row.iter().enumerate() {
        if i > 0 {
            data.push(b'\t');
        }
        value.write_copy(data);
    }
    data.push(b'\n');
}

async fn execute_bound(
    conn: &mut PgConnection,
    sql: &str,
    plan: &Plan,
    rows: Vec<Vec<Param>>,
) -> Result<(), sqlx::Error> {
    let mut query = sqlx::query(sql);
    for row in rows {
        for (value, ty) in row.into_iter().zip(&plan.declared) {
            query = query.bind(Bound { value, ty: ty.clone() });
        }
    }
    query.execute(conn).await?;
    Ok(())
}

/// Splits `rows` into owned chunks of at most `size`.
fn chunks(rows: Vec<Vec<Param>>, size: usize) -> Vec<Vec<Vec<Param>>> {
    let mut out = Vec::with_capacity(rows.len().div_ceil(size.max(1)));
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        out.push(rows.by_ref().take(size.max(1)).collect());
    }
    out
}

#[async_trait]
impl Operator for SinkOp {
    /// Reads the table's columns: a missing table or an unreachable server shows before any data.
    async fn open(&mut self) -> Result<(), NodeError> {
        self.catalog().await?;
        Ok(())
    }

    async fn process(
        &mut self,
        _port: usize,
        batch: &mut Batch,
        _out: &mut Emitter,
    ) -> Result<(), NodeError> {
        if self.pending.len() + batch.len() < self.batch_size {
            self.pending.append(batch);
            return Ok(());
        }
        // On failure both stay as they are, so a retried call writes the same records.
        self.write(batch).await?;
        batch.clear();
        Ok(())
    }

    async fn finish(&mut self, _out: &mut Emitter) -> Result<(), NodeError> {
        self.write(&[]).await?;
        self.settle().await
    }

    async fn commit(&mut self) -> Result<(), NodeError> {
        tx::commit(&self.tx).await.map_err(|e| self.db.error("committing the execution's transaction", e))
    }

    async fn rollback(&mut self) -> Result<(), NodeError> {
        // A load still running is stopped first; its batch is undone with the rest.
        self.loading = None;
        self.unconfirmed = None;
        tx::rollback(&self.tx).await;
        Ok(())
    }

    fn target(&self) -> Option<String> {
        Some(self.db.target())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_quoted_and_folded_like_sql() {
        assert_eq!(parse_table("Users").as_deref(), Ok("\"users\""));
        assert_eq!(parse_table("public.users").as_deref(), Ok("\"public\".\"users\""));
        assert_eq!(
            parse_table("\"My Schema\".\"Odd\"\"Name\"").as_deref(),
            Ok("\"My Schema\".\"Odd\"\"Name\"")
        );
        assert_eq!(parse_table("x; DROP TABLE users").as_deref(), Ok("\"x; drop table users\""));
        assert!(parse_table("a.b.c").is_err());
        assert!(parse_table("\"open").is_err());
        assert!(parse_table("a..b").is_err());
    }

    #[test]
    fn auto_switches_to_copy_at_the_threshold() {
        assert!(!Method::Auto.uses_copy(999));
        assert!(Method::Auto.uses_copy(1000));
        assert!(!Method::Insert.uses_copy(100_000));
        assert!(Method::Copy.uses_copy(1));
    }

    #[test]
    fn chunks_keep_order_and_size() {
        let rows: Vec<Vec<Param>> = (0..5).map(|i| vec![Param::Int8(i)]).collect();
        let sizes: Vec<usize> = chunks(rows, 2).iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 1]);
    }
}
