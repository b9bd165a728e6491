//! Pause and resume of executions that run in worker processes: the API publishes a message on a
//! Redis channel every worker listens to, and the worker that runs the execution applies it.
//! (Cancel goes through the queue, which also reaches jobs that have not started; only runs whose
//! job has another id, cron ticks, are cancelled here.)

use flow_engine::Engine;
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

/// Applies pause, resume and cancel messages to `engine`'s executions until `shutdown`.
pub(crate) async fn listen(
    client: redis::Client,
    prefix: String,
    engine: Engine,
    shutdown: CancellationToken,
) {
    crate::pubsub::each_message(
        client,
        channel(&prefix),
        shutdown,
        || {},
        |text| {
            let Ok(Message { execution_id, action }) = serde_json::from_str(&text) else { return };
            // Only the worker that runs the execution knows it; the others answer NotRunning.
            let _ = match action {
                Action::Pause => engine.pause(execution_id),
                Action::Resume => engine.resume(execution_id),
                Action::Cancel => engine.cancel(execution_id),
            };
        },
    )
    .await;
}
