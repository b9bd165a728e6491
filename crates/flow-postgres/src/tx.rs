//! The execution's transaction on one database. Every sink of an execution that writes to the same
//! database (same rendered URL) writes through ONE transaction, shared through the execution's
//! resources and begun at the first write; the first sink to commit or roll back does it for all,
//! the others find it done. Each batch runs inside a savepoint, so a batch that failed or whose
//! call was dropped (timeout, cancel) is undone alone and can be retried; a dropped batch first has
//! its statement cancelled on the server, and holds the transaction until that cancel went out, so
//! the cancel cannot hit a later statement.

use std::sync::Arc;
use std::time::Duration;

use flow_runtime::BuildContext;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Connection, Executor, Postgres, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::db::Db;
use crate::error::PgError;

const SAVEPOINT: &str = "SAVEPOINT flow_batch";
const RELEASE: &str = "RELEASE SAVEPOINT flow_batch";
const ROLLBACK_TO: &str = "ROLLBACK TO SAVEPOINT flow_batch";

/// How long asking the server to cancel a statement may take.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// The execution's transaction on one database.
#[derive(Default)]
pub(crate) enum TxState {
    #[default]
    NotStarted,
    Open(OpenTx),
    Committed,
    RolledBack,
    /// The connection broke or the commit failed; nothing was committed.
    Lost(String),
}

pub(crate) struct OpenTx {
    tx: Transaction<'static, Postgres>,
    /// The server process of the transaction's connection: what a cancel names.
    pid: i32,
    /// A batch's savepoint is open: if no batch runs, that batch failed or was interrupted and
    /// must be undone before anything else happens in the transaction.
    in_batch: bool,
}

/// The execution's transaction on one database, shared by its sinks.
pub(crate) type SharedTx = Arc<Mutex<TxState>>;

/// The transaction of this execution for the database of `db`.
pub(crate) fn shared(ctx: &BuildContext, db: &Db) -> SharedTx {
    ctx.execution_resources.get_or_insert_with::<Mutex<TxState>>(db.url(), Mutex::default)
}

/// Starts a batch: begins the transaction at the first write, undoes an interrupted batch, and
/// opens the batch's savepoint.
pub(crate) async fn begin_batch(tx: &SharedTx, db: &Db) -> Result<Batch, PgError> {
    let mut state = Arc::clone(tx).lock_owned().await;
    if matches!(*state, TxState::NotStarted) {
        let mut t = db.begin().await?;
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut *t).await?;
        *state = TxState::Open(OpenTx { tx: t, pid, in_batch: false });
    }
    let open = match &mut *state {
        TxState::Open(open) => open,
        TxState::Lost(why) => return Err(PgError::TransactionLost(why.clone())),
        TxState::NotStarted | TxState::Committed | TxState::RolledBack => {
            return Err(PgError::Statement("the execution's transaction has already ended".into()));
        }
    };
    let pid = open.pid;
    let result = match undo(open).await {
        Ok(()) => open.tx.execute(SAVEPOINT).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            open.in_batch = true;
            Ok(Batch { state: Some(state), pool: db.pool().clone(), pid })
        }
        Err(e) => Err(failed(&mut state, e)),
    }
}

/// Undoes the open batch, if any: first reads what an interrupted statement left on the
/// connection (its rows, its error), then rolls back to the batch's savepoint.
async fn undo(open: &mut OpenTx) -> Result<(), sqlx::Error> {
    if !open.in_batch {
        return Ok(());
    }
    drain(&mut open.tx).await?;
    open.tx.execute(ROLLBACK_TO).await?;
    open.in_batch = false;
    Ok(())
}

/// Waits until the server is ready for a new statement. A statement whose future was dropped
/// leaves its answer on the connection, and sqlx reports its error on the next use: read past it.
async fn drain(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    for _ in 0..3 {
        match conn.ping().await {
            Ok(()) => return Ok(()),
            Err(sqlx::Error::Database(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    conn.ping().await
}

/// Classifies an error of a statement in the transaction: a broken connection loses it.
fn failed(state: &mut TxState, e: sqlx::Error) -> PgError {
    match PgError::from(e) {
        PgError::Unreachable(why) => {
            *state = TxState::Lost(why.clone());
            PgError::TransactionLost(why)
        }
        other => other,
    }
}

/// One batch inside its savepoint, holding the transaction. Dropped before [`Batch::release`] or
/// [`Batch::fail`] (its call timed out, or the execution stopped), it cancels its statement on
/// the server and keeps the transaction until that cancel went out.
pub(crate) struct Batch {
    state: Option<OwnedMutexGuard<TxState>>,
    pool: PgPool,
    pid: i32,
}

impl Batch {
    /// The server process of the transaction's connection.
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// The transaction's connection.
    pub(crate) fn conn(&mut self) -> Result<&mut PgConnection, PgError> {
        match self.state.as_deref_mut() {
            Some(TxState::Open(open)) => Ok(&mut open.tx),
            _ => Err(PgError::Statement("the execution's transaction is not open".into())),
        }
    }

    /// The batch's statements succeeded: keep its writes. Until RELEASE answered, the batch stays
    /// armed: a release cut short leaves the savepoint's fate to the next batch, which then finds
    /// it gone and fails rather than writing the batch twice.
    pub(crate) async fn release(mut self) -> Result<(), PgError> {
        let result = match self.state.as_deref_mut() {
            Some(TxState::Open(open)) => open.tx.execute(RELEASE).await.map(|_| ()),
            _ => Ok(()),
        };
        let Some(mut state) = self.state.take() else { return Ok(()) };
        match result {
            Ok(()) => {
                if let TxState::Open(open) = &mut *state {
                    open.in_batch = false;
                }
                Ok(())
            }
            Err(e) => Err(failed(&mut state, e)),
        }
    }

    /// A statement of the batch failed: undoes the batch (when the connection still works) and
    /// says why it failed.
    pub(crate) async fn fail(mut self, e: sqlx::Error) -> PgError {
        let Some(mut state) = self.state.take() else { return e.into() };
        let error = failed(&mut state, e);
        if let TxState::Open(open) = &mut *state
            && let Err(undo_error) = undo(open).await
        {
            return failed(&mut state, undo_error);
        }
        error
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        let Some(state) = self.state.take() else { return };
        let (pool, pid) = (self.pool.clone(), self.pid);
        // Without a runtime (shutting down) there is nothing to cancel with; the server ends the
        // statement when the connection closes.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                cancel_backend(&pool, pid).await;
                drop(state);
            });
        }
    }
}

/// Asks the server to cancel what process `pid` is running; a no-op when it is idle.
pub(crate) async fn cancel_backend(pool: &PgPool, pid: i32) {
    let cancel = sqlx::query("SELECT pg_cancel_backend($1)").bind(pid).execute(pool);
    match tokio::time::timeout(CANCEL_TIMEOUT, cancel).await {
        Ok(Ok(_)) => tracing::debug!(pid, "cancelled an interrupted PostgreSQL statement"),
        Ok(Err(e)) => tracing::warn!(pid, error = %e, "could not cancel an interrupted PostgreSQL statement"),
        Err(_) => tracing::warn!(pid, "cancelling an interrupted PostgreSQL statement timed out"),
    }
}

/// Commits the transaction, unless another sink already did.
pub(crate) async fn commit(tx: &SharedTx) -> Result<(), PgError> {
    let mut state = tx.lock().await;
    match std::mem::take(&mut *state) {
        TxState::Open(open) if open.in_batch => {
            // COMMIT of a transaction with a failed statement would quietly roll it back.
            let why = "a batch was interrupted and not undone".to_owned();
            end(open).await;
            *state = TxState::Lost(why.clone());
            Err(PgError::TransactionLost(why))
        }
        TxState::Open(open) => match open.tx.commit().await {
            Ok(()) => {
                *state = TxState::Committed;
                Ok(())
            }
            Err(e) => {
                let e = PgError::from(e);
                *state = TxState::Lost(format!("the commit failed: {e}"));
                Err(e)
            }
        },
        TxState::Lost(why) => {
            *state = TxState::Lost(why.clone());
            Err(PgError::TransactionLost(why))
        }
        TxState::RolledBack => {
            *state = TxState::RolledBack;
            Err(PgError::Statement("the execution's transaction was rolled back".into()))
        }
        done @ (TxState::NotStarted | TxState::Committed) => {
            *state = done;
            Ok(())
        }
    }
}

/// Rolls the transaction back, unless it was never begun or has already ended.
pub(crate) async fn rollback(tx: &SharedTx) {
    let mut state = tx.lock().await;
    if matches!(*state, TxState::Open(_))
        && let TxState::Open(open) = std::mem::replace(&mut *state, TxState::RolledBack)
    {
        end(open).await;
    }
}

/// Rolls an open transaction back. When the connection is broken the server has already done so.
async fn end(mut open: OpenTx) {
    let result = match drain(&mut open.tx).await {
        Ok(()) => open.tx.rollback().await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "rollback of the execution's transaction failed; the server rolls it back when the connection closes");
    }
}
