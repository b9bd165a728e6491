//! What the MongoDB sinks share to make an execution's writes all-or-nothing: writes run on their
//! own task (so a call dropped by a timeout or a cancel cannot leave a write half-observed), the
//! execution's transaction per connection (transaction mode), and the undo steps of compensation
//! mode (deleting by `_id` in chunks), retried briefly because nothing retries a rollback.

use std::sync::Arc;
use std::time::Duration;

use flow_runtime::{BuildContext, ErrorKind, NodeError};
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::Error as DriverError;
use mongodb::{Client, ClientSession, Collection};
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::task::JoinHandle;

use crate::connect::{Place, is_transient};

/// `_id`s per `delete_many` when undoing inserts: small enough for one command, few round trips.
pub(crate) const DELETE_CHUNK: usize = 1000;

/// Attempts of each undo step; the executor does not retry a rollback.
const UNDO_ATTEMPTS: u32 = 3;

/// A write running on its own task. The call that started it awaits it; when that call is
/// dropped (timeout, cancel) the task goes on, and the next call or the rollback waits for it
/// first, so every write is either known done or known failed before anything else happens.
#[derive(Default)]
pub(crate) struct Inflight(Option<JoinHandle<Result<(), NodeError>>>);

impl Inflight {
    pub(crate) async fn run(
        &mut self,
        write: impl Future<Output = Result<(), NodeError>> + Send + 'static,
    ) -> Result<(), NodeError> {
        self.0 = Some(tokio::spawn(write));
        self.wait().await.unwrap_or(Ok(()))
    }

    /// The outcome of a write left running by a dropped call; `None` when there is none.
    pub(crate) async fn wait(&mut self) -> Option<Result<(), NodeError>> {
        let handle = self.0.as_mut()?;
        let outcome = handle
            .await
            .unwrap_or_else(|e| Err(NodeError::permanent(format!("the write task ended abnormally: {e}"))));
        self.0 = None;
        Some(outcome)
    }
}

/// The execution's transaction on one connection, shared by every transactional MongoDB sink of
/// the execution that uses it; committed by the first sink's `commit`, aborted by any rollback.
#[derive(Default)]
pub(crate) struct TxnState {
    session: Option<ClientSession>,
    /// Some write succeeded inside the transaction: a failure now loses it, so no retry.
    wrote: bool,
    ended: bool,
}

pub(crate) type SharedTxn = Mutex<TxnState>;

/// The execution's transaction for this node's connection.
pub(crate) fn shared_txn(ctx: &BuildContext, place: &Place) -> Arc<SharedTxn> {
    ctx.execution_resources.get_or_insert_with::<SharedTxn>(place.key(), SharedTxn::default)
}

impl TxnState {
    /// The session with its transaction started, starting both on first use.
    pub(crate) async fn session(
        &mut self,
        client: &Client,
        place: &Place,
    ) -> Result<&mut ClientSession, NodeError> {
        if self.ended {
            return Err(NodeError::permanent(format!(
                "{place}: the execution's transaction has already ended"
            )));
        }
        if self.session.is_none() {
            let mut s = client.start_session().await.map_err(|e| place.error("starting a session", &e))?;
            s.start_transaction().await.map_err(|e| place.error("starting a transaction", &e))?;
            self.session = Some(s);
        }
        self.session
            .as_mut()
            .ok_or_else(|| NodeError::permanent(format!("{place}: no session for the transaction")))
    }

    /// Accounts for a write's outcome. A transient failure before anything was written drops the
    /// transaction (the driver aborts it), so a retry starts a fresh one; after a write, the
    /// transaction cannot go on and the failure is permanent.
    pub(crate) fn outcome(
        &mut self,
        result: Result<(), DriverError>,
        place: &Place,
        doing: &str,
    ) -> Result<(), NodeError> {
        match result {
            Ok(()) => {
                self.wrote = true;
                Ok(())
            }
            Err(e) if is_transient(&e) && !self.wrote => {
                self.session = None;
                Err(place.error(doing, &e))
            }
            Err(e) => {
                let message = format!(
                    "{} (inside the execution's transaction, which cannot go on; nothing of it is kept)",
                    place.message(doing, &e)
                );
                Err(NodeError::new(ErrorKind::Permanent, message))
            }
        }
    }

    pub(crate) async fn commit(&mut self, place: &Place) -> Result<(), NodeError> {
        if let Some(mut s) = self.session.take()
            && !self.ended
        {
            self.ended = true;
            s.commit_transaction().await.map_err(|e| place.error("committing the transaction", &e))?;
        }
        self.ended = true;
        Ok(())
    }

    pub(crate) async fn abort(&mut self, place: &Place) -> Result<(), NodeError> {
        self.ended = true;
        match self.session.take() {
            Some(mut s) => {
                s.abort_transaction().await.map_err(|e| place.error("aborting the transaction", &e))
            }
            None => Ok(()),
        }
    }
}

/// Locks the execution's transaction, for a write task to own.
pub(crate) async fn lock_txn(txn: &Arc<SharedTxn>) -> OwnedMutexGuard<TxnState> {
    Arc::clone(txn).lock_owned().await
}

/// Runs one undo step, again after a short pause when it failed transiently.
pub(crate) async fn undo_step<T, F, Fut>(mut step: F) -> Result<T, DriverError>
where
    F: FnMut() -> Fut,
    Fut: IntoFuture<Output = Result<T, DriverError>>,
{
    let mut attempt = 1;
    loop {
        match step().await {
            Err(e) if is_transient(&e) && attempt < UNDO_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Deletes the documents with these `_id`s, in chunks; returns how many were deleted.
pub(crate) async fn delete_ids(
    coll: &Collection<Document>,
    ids: impl Iterator<Item = Bson>,
) -> Result<u64, DriverError> {
    let mut deleted = 0;
    let mut ids = ids.peekable();
    while ids.peek().is_some() {
        let chunk: Vec<Bson> = ids.by_ref().take(DELETE_CHUNK).collect();
        let filter = doc! {"_id": {"$in": chunk}};
        deleted += undo_step(|| coll.delete_many(filter.clone())).await?.deleted_count;
    }
    Ok(deleted)
}

/// The `_id`s of the documents among `ids` that exist.
pub(crate) async fn existing_ids(
    coll: &Collection<Document>,
    ids: &[Bson],
) -> Result<Vec<Bson>, DriverError> {
    use futures::TryStreamExt;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found: Vec<Document> =
        coll.find(doc! {"_id": {"$in": ids}}).projection(doc! {"_id": 1}).await?.try_collect().await?;
    Ok(found.into_iter().filter_map(|mut d| d.remove("_id")).collect())
}
