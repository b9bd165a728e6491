//! Group commit of the history writes. A server runs many short executions at once, each writing
//! its row three or four times; with a transaction per write every execution waited for its own
//! commit, and every finished execution of a flow for the lock on its flow's metrics row. So the
//! writes go to a few writer tasks: each takes everything that arrived while the others were
//! committing and writes it as one transaction of multi-row statements (several, so one batch
//! fills while another commits). A caller still returns only once its write is committed. A
//! batch that fails is written again one write at a time, so one bad write fails alone and every
//! caller gets its own error. Each writer keeps its connection between batches: a connection
//! taken from the pool costs two more round trips (sqlx pings it when it is taken and when it
//! is given back), as many as the batch of one trivial execution itself.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use flow_runtime::{ExecutionReport, ExecutionState};
use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, Postgres, QueryBuilder};
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use super::{PgStore, fence_value};
use crate::codec::enum_text;
use crate::metrics::{self, Histogram};
use crate::report::{NodeRollup, ReportRows};
use crate::{NewExecution, StoreError};

/// Writes per transaction at most; the statements stay far below PostgreSQL's 65,535 bound
/// values, and a caller never waits behind more than this.
const MAX_BATCH: usize = 256;
/// Rows per multi-row insert of nodes (14 values each; node rollups, 27) and samples (4 each).
const NODE_CHUNK: usize = 1000;
const SAMPLE_CHUNK: usize = 10_000;
/// Writer tasks, each holding one pooled connection.
const WRITERS: usize = 3;

/// One history write, as `Store::record_started`, `record_state` and `record_finished` take it.
pub(crate) enum Write {
    Started(NewExecution),
    State { id: Uuid, state: ExecutionState, fence: Option<u64> },
    Finished { report: ExecutionReport, fence: Option<u64> },
}

impl Write {
    fn execution_id(&self) -> Uuid {
        match self {
            Write::Started(execution) => execution.id,
            Write::State { id, .. } => *id,
            Write::Finished { report, .. } => report.id,
        }
    }
}

struct Pending {
    write: Write,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The sending side of the writer task; the task ends when every clone is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Writes {
    queue: mpsc::UnboundedSender<Pending>,
    database: Arc<str>,
}

impl Writes {
    /// Starts the writer task on `store` (a store without a writer of its own).
    pub(crate) fn start(store: PgStore) -> Writes {
        let (queue, pending) = mpsc::unbounded_channel();
        let database = Arc::clone(&store.name);
        let pending = Arc::new(Mutex::new(Queue { pending, next: None }));
        for _ in 0..WRITERS {
            tokio::spawn(write_loop(store.clone(), Arc::clone(&pending)));
        }
        Writes { queue, database }
    }

    /// Writes `write` with whatever else is waiting; returns once it is committed.
    pub(crate) async fn submit(&self, write: Write) -> Result<(), StoreError> {
        let (done, outcome) = oneshot::channel();
        // Only a panicking writer task drops its end; to the caller that is a pool gone away.
        let gone =
            || StoreError::Query { database: self.database.to_string(), source: sqlx::Error::PoolClosed };
        self.queue.send(Pending { write, done }).map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?
    }
}

/// The writes waiting for a writer.
struct Queue {
    pending: mpsc::UnboundedReceiver<Pending>,
    /// A write left for the next batch.
    next: Option<Pending>,
}

impl Queue {
    /// The next batch: the first write to arrive and whatever else is waiting; `None` once
    /// every sender is gone.
    async fn batch(&mut self) -> Option<Vec<Pending>> {
        let first = match self.next.take() {
            Some(pending) => pending,
            None => self.pending.recv().await?,
        };
        let mut ids = HashSet::from([first.write.execution_id()]);
        let mut batch = vec![first];
        // An execution has at most one write in a batch, so its writes keep their order.
        while batch.len() < MAX_BATCH {
            let Ok(pending) = self.pending.try_recv() else { break };
            if !ids.insert(pending.write.execution_id()) {
                self.next = Some(pending);
                break;
            }
            batch.push(pending);
        }
        Some(batch)
    }
}

async fn write_loop(store: PgStore, queue: Arc<Mutex<Queue>>) {
    let mut held = None;
    loop {
        let Some(batch) = queue.lock().await.batch().await else { return };
        store.write_batch(&mut held, batch).await;
    }
}

/// A node metrics row: minute, flow, node id and node type.
type NodeKey<'a> = (DateTime<Utc>, &'a str, &'a str, &'a str);

/// A finished execution about to be written.
struct Finished<'a> {
    report: &'a ExecutionReport,
    rows: ReportRows<'a>,
    fence: Option<i64>,
}

/// A metrics row's share of one batch.
#[derive(Default)]
struct Rollup {
    executions: i64,
    succeeded: i64,
    failed: i64,
    cancelled: i64,
    duration_ms_sum: i64,
    duration_ms_max: i64,
    records_out: i64,
    histogram: Histogram,
}

impl Rollup {
    fn merge(&mut self, other: &Rollup) {
        self.executions += other.executions;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
        self.duration_ms_sum = self.duration_ms_sum.saturating_add(other.duration_ms_sum);
        self.duration_ms_max = self.duration_ms_max.max(other.duration_ms_max);
        self.records_out = self.records_out.saturating_add(other.records_out);
        self.histogram.merge(&other.histogram);
    }
}

impl PgStore {
    /// Writes `batch` on the writer's `held` connection, taken from the pool when there is none.
    async fn write_batch(&self, held: &mut Option<PoolConnection<Postgres>>, batch: Vec<Pending>) {
        let (writes, replies): (Vec<Write>, Vec<_>) = batch.into_iter().map(|p| (p.write, p.done)).unzip();
        let written = match held {
            Some(conn) => self.write_together(conn, &writes).await,
            None => match self.pool.acquire().await {
                Ok(conn) => self.write_together(held.insert(conn), &writes).await,
                Err(e) => Err(self.query_error(e)),
            },
        };
        match written {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(_) => {
                // The held connection may be what failed (the server restarted since): it is
                // let go, and each write is tried again on a tested connection of its own.
                *held = None;
                for (write, reply) in writes.into_iter().zip(replies) {
                    let _ = reply.send(self.write_now(write).await);
                }
            }
        }
    }

    /// Writes one write in its own transaction.
    pub(super) async fn write_now(&self, write: Write) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(|e| self.query_error(e))?;
        let mut outcomes = self.write_together(&mut conn, std::slice::from_ref(&write)).await?;
        outcomes.pop().unwrap_or(Ok(()))
    }

    /// Writes `writes` (at most one per execution) in one transaction on `conn`. The outer error
    /// is the transaction's; the inner ones, one per write, are those of writes that wrote
    /// nothing while the others committed (an unstorable report, an unfenced state change of a
    /// missing execution).
    async fn write_together(
        &self,
        conn: &mut PgConnection,
        writes: &[Write],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut outcomes: Vec<Result<(), StoreError>> = writes.iter().map(|_| Ok(())).collect();
        let mut started = Vec::new();
        let mut states = Vec::new();
        let mut finished = Vec::new();
        // Everything that can fail is converted before the first statement.
        for (i, write) in writes.iter().enumerate() {
            let converted = match write {
                Write::Started(execution) => enum_text("execution state", &execution.state)
                    .map(|state| started.push((execution, state))),
                Write::State { id, state, fence } => enum_text("execution state", state)
                    .map(|state| states.push((i, *id, state, fence_value(*fence)))),
                Write::Finished { report, fence } => ReportRows::new(report)
                    .map(|rows| finished.push(Finished { report, rows, fence: fence_value(*fence) })),
            };
            if let Err(e) = converted {
                outcomes[i] = Err(e.at(&self.name));
            }
        }
        let mut tx = conn.begin().await.map_err(|e| self.query_error(e))?;
        if !started.is_empty() {
            self.insert_started(&mut tx, &started).await?;
        }
        if !states.is_empty() {
            let updated = self.update_states(&mut tx, &states).await?;
            // A fenced write that changed nothing was superseded, which is no error.
            for (i, id, _, fence) in &states {
                if fence.is_none() && !updated.contains(id) {
                    outcomes[*i] = Err(self.not_found("execution", *id));
                }
            }
        }
        if !finished.is_empty() {
            self.write_reports(&mut tx, &finished).await?;
        }
        tx.commit().await.map_err(|e| self.query_error(e))?;
        Ok(outcomes)
    }

    /// Inserts queued or started executions; one that exists (the server queued it, a worker
    /// starts it) gets the new state and keeps its start time, and any owner, flow and parent
    /// already set. A delivery older than the row's fence changes nothing.
    async fn insert_started(
        &self,
        conn: &mut PgConnection,
        started: &[(&NewExecution, String)],
    ) -> Result<(), StoreError> {
        let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(
            "INSERT INTO executions \
                 (id, correlation_id, flow, state, started_at, owner, flow_id, parent_id, fence) ",
        );
        insert.push_values(started, |mut row, (execution, state)| {
            row.push_bind(execution.id)
                .push_bind(&execution.correlation_id)
                .push_bind(&execution.flow)
                .push_bind(state)
                .push_bind(execution.started_at)
                .push_bind(execution.owner)
                .push_bind(execution.flow_id)
                .push_bind(execution.parent_id)
                .push_bind(fence_value(execution.fence));
        });
        insert.push(
            " ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, \
                 owner = coalesce(executions.owner, EXCLUDED.owner), \
                 flow_id = coalesce(executions.flow_id, EXCLUDED.flow_id), \
                 parent_id = coalesce(executions.parent_id, EXCLUDED.parent_id), \
                 fence = coalesce(EXCLUDED.fence, executions.fence) \
             WHERE EXCLUDED.fence IS NULL OR executions.fence IS NULL OR executions.fence <= EXCLUDED.fence",
        );
        insert.build().execute(&mut *conn).await.map_err(|e| self.query_error(e))?;
        Ok(())
    }

    /// Sets states (unless a newer delivery's fence is on the row), each delivery claiming its
    /// row; returns the executions changed.
    async fn update_states(
        &self,
        conn: &mut PgConnection,
        states: &[(usize, Uuid, String, Option<i64>)],
    ) -> Result<HashSet<Uuid>, StoreError> {
        let mut update: QueryBuilder<Postgres> = QueryBuilder::new(
            "UPDATE executions SET state = v.state, fence = greatest(executions.fence, v.fence) FROM (",
        );
        update.push_values(states, |mut row, (_, id, state, fence)| {
            row.push_bind(id).push_unseparated("::uuid");
            row.push_bind(state).push_unseparated("::text");
            row.push_bind(fence).push_unseparated("::bigint");
        });
        update.push(
            ") AS v (id, state, fence) WHERE executions.id = v.id \
             AND (v.fence IS NULL OR executions.fence IS NULL OR executions.fence <= v.fence) \
             RETURNING executions.id",
        );
        let updated: Vec<Uuid> = update
            .build_query_scalar()
            .persistent(false)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| self.query_error(e))?;
        Ok(updated.into_iter().collect())
    }

    /// Writes finished executions with their nodes and samples, and adds each to its flow's
    /// metrics row of the minute it finished in, once however often its report is written.
    async fn write_reports(
        &self,
        conn: &mut PgConnection,
        finished: &[Finished<'_>],
    ) -> Result<(), StoreError> {
        // Lock the rows (in id order, so concurrent batches cannot deadlock) and read what
        // decides each write: a newer delivery's fence, and whether it was finished before.
        // Statements that look rows up by a list of ids are not prepared (`persistent(false)`):
        // a cached generic plan, made while the table was small, scans it whole forever after.
        let ids: Vec<Uuid> = finished.iter().map(|f| f.report.id).collect();
        let current: HashMap<Uuid, (Option<i64>, bool)> = sqlx::query_as::<_, (Uuid, Option<i64>, bool)>(
            "SELECT id, fence, finished_at IS NOT NULL FROM executions WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&ids)
        .persistent(false)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| self.query_error(e))?
        .into_iter()
        .map(|(id, fence, was_finished)| (id, (fence, was_finished)))
        .collect();
        let superseded = |f: &Finished| {
            let row_fence = current.get(&f.report.id).and_then(|(fence, _)| *fence);
            matches!((row_fence, f.fence), (Some(row), Some(ours)) if row > ours)
        };
        let live: Vec<&Finished> = finished.iter().filter(|f| !superseded(f)).collect();
        if live.is_empty() {
            return Ok(());
        }

        // Metrics rows in key order, so concurrent batches lock them in the same order.
        let mut rollups: BTreeMap<(DateTime<Utc>, &str), Rollup> = BTreeMap::new();
        let mut node_rollups: BTreeMap<NodeKey<'_>, NodeRollup> = BTreeMap::new();
        for f in &live {
            if current.get(&f.report.id).is_some_and(|(_, was_finished)| *was_finished) {
                continue;
            }
            let share = &f.rows.rollup;
            let execution = Rollup {
                executions: 1,
                succeeded: share.succeeded,
                failed: share.failed,
                cancelled: share.cancelled,
                duration_ms_sum: share.duration_ms,
                duration_ms_max: share.duration_ms,
                records_out: f.rows.records_out,
                histogram: share.histogram,
            };
            rollups.entry((share.minute, f.report.flow.as_str())).or_default().merge(&execution);
            for ((node_id, node_type), share) in &f.rows.node_rollups {
                node_rollups
                    .entry((f.rows.rollup.minute, f.report.flow.as_str(), node_id, node_type))
                    .or_default()
                    .add(share);
            }
        }
        let mut hours: BTreeMap<(DateTime<Utc>, &str), Rollup> = BTreeMap::new();
        for ((minute, flow), r) in &rollups {
            hours.entry((metrics::hour_of(*minute), flow)).or_default().merge(r);
        }
        // A parent already set stays: a report without one does not erase it. The report's
        // delivery claims the row (a run recorded as running only when it lasts may not have
        // written its fence before).
        let mut upsert: QueryBuilder<Postgres> = QueryBuilder::new(
            "INSERT INTO executions (id, correlation_id, flow, state, error, started_at, finished_at, \
                 records_out, records_read, parent_id, fence) ",
        );
        upsert.push_values(&live, |mut row, f| {
            row.push_bind(f.report.id)
                .push_bind(&f.report.correlation_id)
                .push_bind(&f.report.flow)
                .push_bind(&f.rows.state)
                .push_bind(&f.report.error)
                .push_bind(f.report.started_at)
                .push_bind(f.report.finished_at)
                .push_bind(f.rows.records_out)
                .push_bind(f.rows.records_read)
                .push_bind(f.report.parent_id)
                .push_bind(f.fence);
        });
        upsert.push(
            " ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, error = EXCLUDED.error, \
                 finished_at = EXCLUDED.finished_at, records_out = EXCLUDED.records_out, \
                 records_read = EXCLUDED.records_read, \
                 parent_id = coalesce(executions.parent_id, EXCLUDED.parent_id), \
                 fence = greatest(executions.fence, EXCLUDED.fence)",
        );
        upsert.build().execute(&mut *conn).await.map_err(|e| self.query_error(e))?;

        // A report written again replaces the nodes of the first; samples go with their nodes
        // (ON DELETE CASCADE). Only executions finished before have any.
        let rewritten: Vec<Uuid> = live
            .iter()
            .map(|f| f.report.id)
            .filter(|id| current.get(id).is_some_and(|(_, was_finished)| *was_finished))
            .collect();
        if !rewritten.is_empty() {
            sqlx::query("DELETE FROM node_runs WHERE execution_id = ANY($1)")
                .bind(&rewritten)
                .persistent(false)
                .execute(&mut *conn)
                .await
                .map_err(|e| self.query_error(e))?;
        }
        let nodes: Vec<_> = live.iter().flat_map(|f| f.rows.nodes.iter().map(|n| (f.report.id, n))).collect();
        for chunk in nodes.chunks(NODE_CHUNK) {
            let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(
                "INSERT INTO node_runs (execution_id, seq, node_id, node_type, state, attempts, \
                 started_at, finished_at, records_in, records_out, errors, error, error_kind, sink) ",
            );
            insert.push_values(chunk, |mut row, (id, v)| {
                row.push_bind(id)
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
        let samples: Vec<_> =
            live.iter().flat_map(|f| f.rows.samples.iter().map(|s| (f.report.id, s))).collect();
        for chunk in samples.chunks(SAMPLE_CHUNK) {
            let mut insert: QueryBuilder<Postgres> =
                QueryBuilder::new("INSERT INTO node_samples (execution_id, node_seq, seq, record) ");
            insert.push_values(chunk, |mut row, (id, s)| {
                row.push_bind(id).push_bind(s.node_seq).push_bind(s.seq).push_bind(&s.record);
                row.push_unseparated("::json");
            });
            insert.build().execute(&mut *conn).await.map_err(|e| self.query_error(e))?;
        }
        // The metrics rows last, in one statement: every batch of a flow's executions waits for
        // the lock on its rows, held until this transaction commits.
        self.upsert_rollups(conn, &rollups, &hours, &node_rollups).await
    }

    /// Adds the batch's shares to the metrics rows: the flows' minutes and hours and the first
    /// chunk of node minutes in one statement of data-modifying CTEs (at most 256 executions
    /// make 25 values a row twice, and a chunk 27 a row: far below PostgreSQL's 65,535 bound
    /// values), any further chunk in one of its own. Rows go in key order, so concurrent
    /// batches lock them in the same order.
    async fn upsert_rollups<'q>(
        &self,
        conn: &mut PgConnection,
        minutes: &'q BTreeMap<(DateTime<Utc>, &'q str), Rollup>,
        hours: &'q BTreeMap<(DateTime<Utc>, &'q str), Rollup>,
        nodes: &'q BTreeMap<NodeKey<'q>, NodeRollup>,
    ) -> Result<(), StoreError> {
        let nodes: Vec<_> = nodes.iter().collect();
        let mut chunks = nodes.chunks(NODE_CHUNK);
        let mut statement = Upserts::default();
        for (table, key, rows) in [("metrics_minute", "minute", minutes), ("metrics_hour", "hour", hours)] {
            if rows.is_empty() {
                continue;
            }
            let insert = statement.part();
            insert.push(format!(
                "INSERT INTO {table} ({key}, flow, executions, succeeded, failed, cancelled, \
                 duration_ms_sum, duration_ms_max, records_out, {}) ",
                *metrics::BUCKET_COLUMNS
            ));
            insert.push_values(rows, |mut row, ((at, flow), r)| {
                row.push_bind(*at)
                    .push_bind(*flow)
                    .push_bind(r.executions)
                    .push_bind(r.succeeded)
                    .push_bind(r.failed)
                    .push_bind(r.cancelled)
                    .push_bind(r.duration_ms_sum)
                    .push_bind(r.duration_ms_max)
                    .push_bind(r.records_out);
                for n in r.histogram.0 {
                    row.push_bind(n);
                }
            });
            insert.push(format!(
                " ON CONFLICT ({key}, flow) DO UPDATE SET {}",
                metrics::flow_rollup_upsert(table, "greatest")
            ));
        }
        if let Some(chunk) = chunks.next() {
            push_node_rollups(statement.part(), chunk);
        }
        self.execute_upserts(conn, statement).await?;
        for chunk in chunks {
            let mut statement = Upserts::default();
            push_node_rollups(statement.part(), chunk);
            self.execute_upserts(conn, statement).await?;
        }
        Ok(())
    }

    async fn execute_upserts(
        &self,
        conn: &mut PgConnection,
        statement: Upserts<'_>,
    ) -> Result<(), StoreError> {
        let Some(mut query) = statement.finish() else { return Ok(()) };
        query.build().execute(&mut *conn).await.map_err(|e| self.query_error(e))?;
        Ok(())
    }
}

/// Inserts that run as one statement: `WITH p0 AS (INSERT ...), p1 AS (INSERT ...) SELECT 1`
/// (PostgreSQL runs every data-modifying CTE once, read or not).
#[derive(Default)]
struct Upserts<'q> {
    query: Option<QueryBuilder<'q, Postgres>>,
    parts: usize,
}

impl<'q> Upserts<'q> {
    /// Opens the next part; the caller pushes one INSERT into the builder returned.
    fn part(&mut self) -> &mut QueryBuilder<'q, Postgres> {
        let parts = self.parts;
        self.parts += 1;
        let query = self.query.get_or_insert_with(|| QueryBuilder::new("WITH p0 AS ("));
        if parts > 0 {
            query.push(format!("), p{parts} AS ("));
        }
        query
    }

    /// The statement, `None` without any part.
    fn finish(self) -> Option<QueryBuilder<'q, Postgres>> {
        let mut query = self.query?;
        query.push(") SELECT 1");
        Some(query)
    }
}

/// One INSERT of node rollup rows (27 values each) into `insert`.
fn push_node_rollups<'q>(
    insert: &mut QueryBuilder<'q, Postgres>,
    rows: &[(&'q NodeKey<'q>, &'q NodeRollup)],
) {
    insert.push(format!(
        "INSERT INTO metrics_node_minute (minute, flow, node_id, node_type, runs, failed, \
         duration_ms_sum, duration_ms_max, records_in, records_out, errors, {}) ",
        *metrics::BUCKET_COLUMNS
    ));
    insert.push_values(rows, |mut row, ((minute, flow, node_id, node_type), r)| {
        row.push_bind(*minute)
            .push_bind(*flow)
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
        metrics::node_rollup_upsert("greatest")
    ));
}
