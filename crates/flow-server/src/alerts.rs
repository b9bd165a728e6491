//! Alerts across processes: every `flow serve` judges the rules on its engine (the store lets
//! one of them fire or resolve each alert), publishes the changes it made on a Redis channel,
//! and hands every published change to its WebSocket hub, so an admin connected to any server
//! sees every alert.

use std::sync::Arc;

use flow_engine::{AlertEvent, Engine};
use redis::aio::ConnectionManager;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::ws::Hub;

fn channel(prefix: &str) -> String {
    format!("{prefix}alerts")
}

/// Judges the rules every ALERT_INTERVAL_SECONDS and publishes what this process changed,
/// until `shutdown`.
pub(crate) async fn judge_and_publish(
    engine: Engine,
    conn: ConnectionManager,
    prefix: String,
    shutdown: CancellationToken,
) {
    let mut changes = engine.subscribe_alerts();
    let watching = engine.clone();
    let stop = shutdown.clone();
    let watch = tokio::spawn(async move { watching.watch_alerts(stop).await });
    let channel = channel(&prefix);
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => break,
            e = changes.recv() => e,
        };
        let event = match event {
            Ok(e) => e,
            // The store has every alert; a subscriber that missed some reads them there.
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "alerts: changes not published");
                continue;
            }
            Err(RecvError::Closed) => break,
        };
        let Ok(text) = serde_json::to_string(&event) else { continue };
        let sent: Result<(), _> =
            redis::cmd("PUBLISH").arg(&channel).arg(text).query_async(&mut conn.clone()).await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "alerts: cannot publish a change");
        }
    }
    watch.abort();
}

/// Hands every published alert change to `hub` until `shutdown`.
pub(crate) async fn subscribe(
    client: redis::Client,
    prefix: String,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
) {
    crate::pubsub::each_message(
        client,
        channel(&prefix),
        shutdown,
        || {},
        |text| match serde_json::from_str::<AlertEvent>(&text) {
            Ok(event) => hub.dispatch_alert(&event),
            Err(e) => tracing::warn!(error = %e, "alerts: a message that is not an alert change"),
        },
    )
    .await;
}
