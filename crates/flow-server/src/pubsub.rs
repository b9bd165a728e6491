//! Reading a Redis pub/sub channel for as long as the process runs: resubscribes after a lost
//! connection (a Redis restart), so the events and control channels outlive Redis outages.

use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// Calls `handle` with every text message published on `channel` until `shutdown`.
pub(crate) async fn each_message(
    client: redis::Client,
    channel: String,
    shutdown: CancellationToken,
    mut handle: impl FnMut(String),
) {
    while !shutdown.is_cancelled() {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let mut pubsub = match subscribed.await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(channel = %channel, error = %e, "cannot subscribe; retrying");
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
            if let Ok(text) = message.get_payload::<String>() {
                handle(text);
            }
        }
    }
}
