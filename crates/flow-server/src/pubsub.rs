//! Reading a Redis pub/sub channel for as long as the process runs: resubscribes after a lost
//! connection (a Redis restart), so the events and control channels outlive Redis outages.

use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// Calls `handle` with every text message published on `channel` until `shutdown`, and
/// `subscribed` each time the subscription is (re)made (messages sent while it was down are lost).
pub(crate) async fn each_message(
    client: redis::Client,
    channel: String,
    shutdown: CancellationToken,
    mut subscribed: impl FnMut(),
    mut handle: impl FnMut(String),
) {
    while !shutdown.is_cancelled() {
        let subscribing = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let mut pubsub = match subscribing.await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(channel = %channel, error = %e, "cannot subscribe; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        subscribed();
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
