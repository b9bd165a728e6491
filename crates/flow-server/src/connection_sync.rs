//! Named connections across the processes of a deployment. Each process's engine keeps them in
//! memory, read again when they change rather than before every run: the API process that
//! changes one announces it on a Redis channel, and every process (API and workers) reads them
//! again on the message and whenever it (re)subscribes, which covers messages missed while Redis
//! was away. A flow naming a connection its process has not heard of yet (the message is still
//! on its way) has the engine read them once more before it is refused (`Engine::check`,
//! `Engine::validate_shared`).

use flow_engine::Engine;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

fn channel(prefix: &str) -> String {
    format!("{prefix}connections")
}

/// Tells every process of the deployment that the connections changed.
#[derive(Clone)]
pub(crate) struct Announcer {
    conn: ConnectionManager,
    channel: String,
}

impl Announcer {
    pub(crate) fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self { conn, channel: channel(prefix) }
    }

    /// The change is stored already; a process that misses this message reads the connections
    /// when it resubscribes or meets a name it does not know.
    pub(crate) async fn announce(&self) {
        let sent: Result<i64, _> = self.conn.clone().publish(&self.channel, "changed").await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "connections: cannot tell the other processes about a change");
        }
    }
}

/// Reads `engine`'s connections again on every announcement until `shutdown`.
pub(crate) async fn follow(
    client: redis::Client,
    prefix: String,
    engine: Engine,
    shutdown: CancellationToken,
) {
    let reload = move || {
        let engine = engine.clone();
        tokio::spawn(async move {
            if let Err(e) = engine.reload_connections().await {
                tracing::warn!(error = %e, "connections: cannot read them again");
            }
        });
    };
    let on_message = reload.clone();
    crate::pubsub::each_message(client, channel(&prefix), shutdown, reload, move |_| on_message()).await;
}
