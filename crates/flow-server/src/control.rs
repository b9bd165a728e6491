//! Pause and resume of executions that run in worker processes: the API publishes a message on a
//! Redis channel every worker listens to, and the worker that runs the execution applies it.
//! (Cancel goes through the queue, which also reaches jobs that have not started; only runs whose
//! job has another id, cron ticks, are cancelled here.)

use std::time::Duration;

use flow_engine::Engine;
use futures::StreamExt;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What a worker is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Action {
    Pause,
    Resume,
    /// For runs the queue does not know by their execution id (cron ticks).
    Cancel,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Message {
    execution_id: Uuid,
    action: Action,
}

/// The sending side (the API).
#[derive(Clone)]
pub(crate) struct Control {
    conn: ConnectionManager,
    channel: String,
}

impl Control {
    pub(crate) fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self { conn, channel: channel(prefix) }
    }

    /// Publishes the action; the worker running the execution applies it.
    pub(crate) async fn send(&self, execution_id: Uuid, action: Action) -> Result<(), redis::RedisError> {
        let text = serde_json::to_string(&Message { execution_id, action }).unwrap_or_default();
        let _: i64 = self.conn.clone().publish(&self.channel, text).await?;
        Ok(())
    }
}

/// The channel of a deployment (its queue prefix).
fn channel(prefix: &str) -> String {
    format!("{prefix}control")
}

/// Applies pause and resume messages to `engine`'s executions until `shutdown`; resubscribes
/// after a lost connection.
pub(crate) async fn listen(
    client: redis::Client,
    prefix: String,
    engine: Engine,
    shutdown: CancellationToken,
) {
    let channel = channel(&prefix);
    while !shutdown.is_cancelled() {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let mut pubsub = match subscribed.await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "control channel: cannot subscribe; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let mut messages = pubsub.on_message();
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => return,
                m = messages.next() => m,
            };
            let Some(message) = message else { break };
            let Ok(text) = message.get_payload::<String>() else { continue };
            let Ok(Message { execution_id, action }) = serde_json::from_str(&text) else { continue };
            // Only the worker that runs the execution knows it; the others answer NotRunning.
            let _ = match action {
                Action::Pause => engine.pause(execution_id),
                Action::Resume => engine.resume(execution_id),
                Action::Cancel => engine.cancel(execution_id),
            };
        }
    }
}
