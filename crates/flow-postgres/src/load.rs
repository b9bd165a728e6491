//! COPY loads in the background. A sink hands a batch (its COPY data and the statements around
//! the COPY) to a task that writes it in a savepoint of its own in the execution's transaction,
//! while the flow gathers the next batch. The task is never dropped in the middle of its
//! statements: sqlx does not track a COPY cut short, so the connection would be left out of step
//! with the server. A load asked to stop cancels its statement on the server instead, runs to
//! its clean end (the savepoint undone) and reports that it stopped.

use std::sync::Arc;

use sqlx::Executor;
use sqlx::postgres::PgConnection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::error::PgError;
use crate::tx::{self, SharedTx, cancel_backend};

/// COPY data is sent in chunks of about this size.
const COPY_CHUNK: usize = 256 * 1024;

/// One batch written by COPY. The sink keeps it until the server confirmed it, so that a retried
/// call sends the same again.
pub(crate) struct CopyLoad {
    /// A statement to run before the COPY (an upsert prepares its staging table).
    pub(crate) before: Option<String>,
    /// `COPY table (columns) FROM STDIN (FORMAT text)`.
    pub(crate) copy: String,
    pub(crate) data: Vec<u8>,
    /// A statement to run after the COPY (an upsert moves the staged rows into the table).
    pub(crate) after: Option<String>,
    /// What the batch is, for messages: "writing records 1-10000 to table `x`".
    pub(crate) doing: String,
}

impl CopyLoad {
    async fn run(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if let Some(sql) = &self.before {
            conn.execute(sql.as_str()).await?;
        }
        copy_in(conn, &self.copy, &self.data).await?;
        if let Some(sql) = &self.after {
            conn.execute(sql.as_str()).await?;
        }
        Ok(())
    }
}

/// Why a load did not write its batch.
pub(crate) enum LoadError {
    /// It was asked to stop (a call waiting for it timed out or was cancelled); nothing of it
    /// was kept, and it can be sent again.
    Stopped,
    Failed(PgError),
}

/// A load running in the background. Dropping it stops the load.
pub(crate) struct Loading {
    task: JoinHandle<Result<(), LoadError>>,
    stop: CancellationToken,
}

impl Loading {
    pub(crate) fn start(tx: &SharedTx, db: &Db, load: Arc<CopyLoad>) -> Loading {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(Arc::clone(tx), db.clone(), load, stop.clone()));
        Loading { task, stop }
    }

    /// Waits for the load to end. A wait that is dropped (its call timed out or was cancelled)
    /// stops the load.
    pub(crate) async fn wait(&mut self) -> Result<(), LoadError> {
        let stop_if_dropped = self.stop.clone().drop_guard();
        let result = (&mut self.task).await;
        stop_if_dropped.disarm();
        result.unwrap_or_else(|e| {
            Err(LoadError::Failed(PgError::Statement(format!("the load ended abnormally: {e}"))))
        })
    }
}

impl Drop for Loading {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn run(tx: SharedTx, db: Db, load: Arc<CopyLoad>, stop: CancellationToken) -> Result<(), LoadError> {
    let mut batch = tx::begin_batch(&tx, &db).await.map_err(LoadError::Failed)?;
    if stop.is_cancelled() {
        // Nothing was sent in the savepoint; the next batch undoes it.
        return Err(LoadError::Stopped);
    }
    let pid = batch.pid();
    let result = match batch.conn() {
        Ok(conn) => {
            let work = load.run(conn);
            tokio::pin!(work);
            tokio::select! {
                result = &mut work => result,
                () = stop.cancelled() => {
                    cancel_backend(db.pool(), pid).await;
                    work.await
                }
            }
        }
        Err(e) => return Err(LoadError::Failed(e)),
    };
    let result = match result {
        Ok(()) => batch.release().await,
        Err(e) => Err(batch.fail(e).await),
    };
    match result {
        Ok(()) => Ok(()),
        Err(_) if stop.is_cancelled() => Err(LoadError::Stopped),
        Err(e) => Err(LoadError::Failed(e)),
    }
}

/// Runs a COPY ... FROM STDIN statement with `data`.
async fn copy_in(conn: &mut PgConnection, sql: &str, data: &[u8]) -> Result<(), sqlx::Error> {
    let mut copy = conn.copy_in_raw(sql).await?;
    for chunk in data.chunks(COPY_CHUNK) {
        copy.send(chunk).await?;
    }
    copy.finish().await?;
    Ok(())
}
