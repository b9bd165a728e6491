//! WebSocket `/executions`: live events of executions, whichever worker process runs them.
//!
//! A client authenticates on connect (`?token=` or a first `{"type": "auth"}` message), then
//! subscribes to executions, flows, or all of its user's executions, and an admin to alerts.
//! The [`Hub`] holds every client's subscriptions and a bounded queue of outgoing messages: a
//! client that does not read fast enough is disconnected instead of growing the server's memory,
//! and reconnects to read the current state over REST. Subscriptions end with the connection.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use flow_engine::{AlertEvent, Event, EventKind};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::auth::Caller;
use crate::events::EventBatch;
use crate::state::AppState;

/// Messages waiting for one client; beyond that the client is too slow and is disconnected.
pub(crate) const CLIENT_QUEUE: usize = 256;
/// How long a client has to authenticate when it did not give `?token=`.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Close code for a client that fell behind (RFC 6455: policy violation).
const CLOSE_TOO_SLOW: u16 = 1008;

#[derive(Debug, Default)]
struct Subscriptions {
    executions: HashSet<Uuid>,
    flows: HashSet<Uuid>,
    all: bool,
    /// Alerts as they fire and resolve (admins only).
    alerts: bool,
}

struct Client {
    caller: Caller,
    subscriptions: Subscriptions,
    tx: mpsc::Sender<Utf8Bytes>,
}

/// Every connected client.
#[derive(Default)]
pub(crate) struct Hub {
    clients: Mutex<HashMap<u64, Client>>,
    next: AtomicU64,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("clients", &self.len()).finish()
    }
}

impl Hub {
    fn register(&self, caller: Caller) -> (u64, mpsc::Receiver<Utf8Bytes>) {
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, Client { caller, subscriptions: Subscriptions::default(), tx });
        (id, rx)
    }

    fn unregister(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Connected clients.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn subscriptions(&self, id: u64, change: impl FnOnce(&mut Subscriptions)) {
        if let Some(client) = self.lock().get_mut(&id) {
            change(&mut client.subscriptions);
        }
    }

    /// Sends a batch to every client that may see it and asked for it; drops clients whose
    /// queue is full.
    pub(crate) fn dispatch(&self, batch: &EventBatch) {
        let mut clients = self.lock();
        // The messages are made for the first client that wants them: most batches have none.
        let mut messages: Option<Vec<Utf8Bytes>> = None;
        let mut too_slow = Vec::new();
        for (id, client) in clients.iter() {
            let subs = &client.subscriptions;
            let wanted = subs.executions.contains(&batch.execution_id)
                || batch.origin.flow_id.is_some_and(|f| subs.flows.contains(&f))
                || subs.all;
            if !wanted || !client.caller.owns(batch.origin.owner) {
                continue;
            }
            let messages = messages.get_or_insert_with(|| {
                batch.events.iter().map(|e| Utf8Bytes::from(message(e).to_string())).collect()
            });
            for m in messages.iter() {
                if client.tx.try_send(m.clone()).is_err() {
                    too_slow.push(*id);
                    break;
                }
            }
        }
        // Dropping the sender ends the client's task, which closes the socket.
        for id in too_slow {
            clients.remove(&id);
        }
    }

    /// Sends an alert change to every admin that subscribed to alerts; drops clients whose
    /// queue is full.
    pub(crate) fn dispatch_alert(&self, event: &AlertEvent) {
        let mut value = serde_json::to_value(event).unwrap_or_else(|_| json!({}));
        if let Some(object) = value.as_object_mut() {
            object.insert("type".into(), json!("alert"));
        }
        let message = Utf8Bytes::from(value.to_string());
        let mut clients = self.lock();
        clients.retain(|_, c| {
            !(c.subscriptions.alerts && c.caller.is_admin()) || c.tx.try_send(message.clone()).is_ok()
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Client>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The WebSocket message of an engine event: its fields, with `type` naming the update.
fn message(event: &Event) -> serde_json::Value {
    let kind = match event.kind {
        EventKind::ExecutionState { .. } => "execution-update",
        EventKind::NodeState { .. } => "node-update",
        EventKind::NodeProgress { .. } => "data-flow-update",
    };
    let mut value = serde_json::to_value(event).unwrap_or_else(|_| json!({}));
    if let Some(object) = value.as_object_mut() {
        object.insert("type".into(), json!(kind));
    }
    value
}

/// What a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Request {
    Auth {
        token: String,
    },
    Subscribe {
        execution: Option<Uuid>,
        flow: Option<Uuid>,
        #[serde(default)]
        all: bool,
        #[serde(default)]
        alerts: bool,
    },
    Unsubscribe {
        execution: Option<Uuid>,
        flow: Option<Uuid>,
        #[serde(default)]
        all: bool,
        #[serde(default)]
        alerts: bool,
    },
}

/// `GET /executions` upgraded to a WebSocket; `token` from `?token=`, if given.
pub(crate) fn upgrade(state: AppState, token: Option<String>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| session(state, token, socket))
}

async fn session(state: AppState, token: Option<String>, mut socket: WebSocket) {
    let caller = match token {
        Some(token) => state.tokens.verify(&token).map_err(|e| e.message),
        None => first_message_auth(&state, &mut socket).await,
    };
    let caller = match caller {
        Ok(caller) => caller,
        Err(message) => {
            let _ = socket.send(text(json!({"type": "error", "message": message}))).await;
            let _ = socket
                .send(Message::Close(Some(CloseFrame { code: 4401, reason: "unauthorized".into() })))
                .await;
            return;
        }
    };
    let _ = socket.send(text(json!({"type": "authenticated", "user": caller.name}))).await;
    let (id, mut outgoing) = state.hub.register(caller.clone());
    loop {
        tokio::select! {
            next = outgoing.recv() => match next {
                Some(m) => if socket.send(Message::Text(m)).await.is_err() { break },
                None => {
                    let reason = "too slow: reconnect and read the current state over REST";
                    let _ = socket.send(Message::Close(Some(CloseFrame { code: CLOSE_TOO_SLOW, reason: reason.into() }))).await;
                    break;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(t))) => {
                    let answer = handle(&state, &caller, id, t.as_str()).await;
                    if socket.send(text(answer)).await.is_err() { break }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    state.hub.unregister(id);
}

async fn first_message_auth(state: &AppState, socket: &mut WebSocket) -> Result<Caller, String> {
    let first = tokio::time::timeout(AUTH_TIMEOUT, socket.recv()).await;
    let Ok(Some(Ok(Message::Text(t)))) = first else {
        return Err(
            "authenticate first: connect with ?token=<jwt> or send {\"type\": \"auth\", \"token\": ...}"
                .into(),
        );
    };
    match serde_json::from_str::<Request>(t.as_str()) {
        Ok(Request::Auth { token }) => state.tokens.verify(&token).map_err(|e| e.message),
        _ => Err("the first message must be {\"type\": \"auth\", \"token\": ...}".into()),
    }
}

/// Applies one client message; returns the answer.
async fn handle(state: &AppState, caller: &Caller, id: u64, text: &str) -> serde_json::Value {
    let request = match serde_json::from_str::<Request>(text) {
        Ok(r) => r,
        Err(e) => return json!({"type": "error", "message": format!("not a valid message: {e}")}),
    };
    match request {
        Request::Auth { .. } => json!({"type": "error", "message": "already authenticated"}),
        Request::Subscribe { execution, flow, all, alerts } => {
            if alerts && !caller.is_admin() {
                return json!({"type": "error", "message": "alerts are for admins"});
            }
            if let Some(execution) = execution {
                match state.store.get(execution).await {
                    Ok(Some(e)) if caller.owns(e.summary.owner) => {}
                    Ok(_) => {
                        return json!({"type": "error", "message": format!("execution {execution} not found")});
                    }
                    Err(e) => return json!({"type": "error", "message": e.to_string()}),
                }
            }
            if let Some(flow) = flow {
                match state.store.flow(flow).await {
                    Ok(Some(f)) if caller.owns(Some(f.owner)) => {}
                    Ok(_) => return json!({"type": "error", "message": format!("flow {flow} not found")}),
                    Err(e) => return json!({"type": "error", "message": e.to_string()}),
                }
            }
            state.hub.subscriptions(id, |s| {
                s.executions.extend(execution);
                s.flows.extend(flow);
                s.all |= all;
                s.alerts |= alerts;
            });
            json!({"type": "subscribed", "execution": execution, "flow": flow, "all": all, "alerts": alerts})
        }
        Request::Unsubscribe { execution, flow, all, alerts } => {
            state.hub.subscriptions(id, |s| {
                if let Some(e) = execution {
                    s.executions.remove(&e);
                }
                if let Some(f) = flow {
                    s.flows.remove(&f);
                }
                if all {
                    s.all = false;
                }
                if alerts {
                    s.alerts = false;
                }
            });
            json!({"type": "unsubscribed", "execution": execution, "flow": flow, "all": all, "alerts": alerts})
        }
    }
}

fn text(value: serde_json::Value) -> Message {
    Message::Text(value.to_string().into())
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use flow_engine::Counters;
    use flow_store::Role;

    use super::*;
    use crate::events::Origin;

    fn caller(role: Role) -> Caller {
        Caller { id: Uuid::now_v7(), name: "u".into(), role }
    }

    fn batch(execution_id: Uuid, owner: Uuid, events: usize) -> EventBatch {
        let event = |n: u64| Event {
            execution_id,
            correlation_id: "c".into(),
            at: Utc::now(),
            kind: EventKind::NodeProgress {
                node: "n".into(),
                counters: Counters { records_in: n, records_out: n, errors: 0 },
                rate: 1.0,
            },
        };
        EventBatch {
            execution_id,
            origin: Origin { owner: Some(owner), flow_id: None },
            events: (0..events as u64).map(event).collect(),
        }
    }

    #[test]
    fn only_subscribed_owners_and_admins_get_events() {
        let hub = Hub::default();
        let (ann, bob, admin) = (caller(Role::User), caller(Role::User), caller(Role::Admin));
        let (a, mut a_rx) = hub.register(ann.clone());
        let (b, mut b_rx) = hub.register(bob);
        let (root, mut root_rx) = hub.register(admin);
        let execution = Uuid::now_v7();
        for id in [a, b, root] {
            hub.subscriptions(id, |s| {
                s.executions.insert(execution);
            });
        }
        hub.dispatch(&batch(execution, ann.id, 1));
        let got = a_rx.try_recv().expect("the owner gets it");
        assert!(got.as_str().contains("\"type\":\"data-flow-update\""), "{}", got.as_str());
        assert!(b_rx.try_recv().is_err(), "another user gets nothing");
        assert!(root_rx.try_recv().is_ok(), "an admin sees everything");
    }

    #[test]
    fn a_client_that_falls_behind_is_dropped() {
        let hub = Hub::default();
        let ann = caller(Role::User);
        let (id, rx) = hub.register(ann.clone());
        let execution = Uuid::now_v7();
        hub.subscriptions(id, |s| s.all = true);
        hub.dispatch(&batch(execution, ann.id, CLIENT_QUEUE + 1));
        assert_eq!(hub.len(), 0, "the slow client is gone");
        drop(rx);
    }
}
