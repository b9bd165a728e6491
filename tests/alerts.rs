//! Alert rules on the embedded engine: judged against a real history, fired and resolved once
//! each, published to subscribers and POSTed to a webhook (a receiver on loopback started by
//! the test) with retries.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use flow_engine::{AlertChange, AlertCondition, AlertQuery, Engine, Flow, NewAlertRule, RunOptions};
use flow_tests::{engine_with, users};
use serde_json::{Value, json};

/// A webhook receiver: answers 503 to the first `failures` requests, then 200, and keeps
/// every body it accepted.
#[derive(Clone, Default)]
struct Hook {
    failures: Arc<Mutex<usize>>,
    requests: Arc<Mutex<usize>>,
    accepted: Arc<Mutex<Vec<Value>>>,
}

impl Hook {
    async fn start(failures: usize) -> (Hook, String) {
        let hook = Hook { failures: Arc::new(Mutex::new(failures)), ..Hook::default() };
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(hook.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (hook, url)
    }

    fn accepted(&self) -> Vec<Value> {
        self.accepted.lock().expect("lock").clone()
    }

    fn requests(&self) -> usize {
        *self.requests.lock().expect("lock")
    }
}

async fn receive(State(hook): State<Hook>, Json(body): Json<Value>) -> StatusCode {
    *hook.requests.lock().expect("lock") += 1;
    let mut failures = hook.failures.lock().expect("lock");
    if *failures > 0 {
        *failures -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    hook.accepted.lock().expect("lock").push(body);
    StatusCode::OK
}

/// A flow named `name` that fails after its first records, or succeeds.
fn flow(name: &str, fails: bool) -> Flow {
    let flow =
        Flow::new(name).with_node("users", "generate_rows", users(10)).with_node("out", "collect", json!({}));
    let flow = flow.with_edge("users", "out");
    if fails {
        flow.with_node("boom", "fail", json!({"after_records": 1})).with_edge("users", "boom")
    } else {
        flow
    }
}

async fn run(engine: &Engine, name: &str, fails: bool) {
    engine.run(flow(name, fails), RunOptions::default()).await.expect("runs");
}

#[tokio::test]
async fn a_failing_flow_fires_once_with_one_webhook_and_event_and_resolves_once_when_it_succeeds() {
    let (hook, url) = Hook::start(0).await;
    let engine = engine_with(|_| {}).await;
    let rule = engine
        .create_alert_rule(NewAlertRule {
            name: "orders failing".into(),
            condition: AlertCondition::FlowFailing { flow: "orders".into(), failures: 2, window_minutes: 5 },
            webhook_url: Some(url),
        })
        .await
        .expect("rule");
    let mut events = engine.subscribe_alerts();

    // One failure is not enough; another flow's failures do not count.
    run(&engine, "orders", true).await;
    run(&engine, "billing", true).await;
    run(&engine, "billing", true).await;
    assert!(engine.evaluate_alerts().await.expect("evaluate").is_empty());

    run(&engine, "orders", true).await;
    let changes = engine.evaluate_alerts().await.expect("evaluate");
    assert_eq!(changes.len(), 1, "{changes:?}");
    engine.deliver_alert_webhooks(&changes).await;
    let fired = events.try_recv().expect("one event");
    assert_eq!(fired.change, AlertChange::Fired);
    assert_eq!((fired.alert.rule_id, fired.alert.value), (rule.id, Some(2.0)));
    assert!(
        fired.alert.message.contains("flow `orders` failed 2 times in the last 5 minutes"),
        "{}",
        fired.alert.message
    );
    assert!(fired.alert.message.contains("failed on purpose"), "the latest error: {}", fired.alert.message);

    // Still failing: it stays firing, nothing is sent again.
    run(&engine, "orders", true).await;
    for _ in 0..3 {
        assert!(engine.evaluate_alerts().await.expect("evaluate").is_empty());
    }
    assert!(events.try_recv().is_err(), "fired once");
    let firing = engine.alerts(&AlertQuery { firing: true, limit: None }).await.expect("firing");
    assert_eq!(firing.iter().map(|a| a.id).collect::<Vec<_>>(), [fired.alert.id]);

    // It succeeds: resolved once.
    run(&engine, "orders", false).await;
    let changes = engine.evaluate_alerts().await.expect("evaluate");
    engine.deliver_alert_webhooks(&changes).await;
    assert!(engine.evaluate_alerts().await.expect("evaluate").is_empty());
    let resolved = events.try_recv().expect("the resolution");
    assert_eq!((resolved.change, resolved.alert.id), (AlertChange::Resolved, fired.alert.id));
    assert!(resolved.alert.resolution.as_deref().is_some_and(|r| r.contains("flow `orders` succeeded")));
    assert!(events.try_recv().is_err(), "resolved once");

    let sent = hook.accepted();
    assert_eq!(
        sent.iter().map(|b| b["change"].clone()).collect::<Vec<_>>(),
        [json!("fired"), json!("resolved")]
    );
    assert_eq!(sent[0]["alert"]["rule_name"], "orders failing");
    assert!(sent[1]["alert"]["resolved_at"].is_string());
    assert!(engine.alerts(&AlertQuery { firing: true, limit: None }).await.expect("firing").is_empty());
}

#[tokio::test]
async fn a_webhook_that_is_down_is_retried_until_it_takes_the_alert() {
    let (hook, url) = Hook::start(2).await;
    let engine = engine_with(|c| c.alerts.webhook_url = Some(url)).await;
    engine
        .create_alert_rule(NewAlertRule {
            name: "any failure".into(),
            condition: AlertCondition::Custom {
                condition: "failed >= 1".into(),
                window_minutes: 10,
                flow: None,
            },
            webhook_url: None,
        })
        .await
        .expect("rule");
    run(&engine, "orders", true).await;
    let changes = engine.evaluate_alerts().await.expect("evaluate");
    engine.deliver_alert_webhooks(&changes).await;
    assert_eq!(hook.requests(), 3, "two 503s, then accepted");
    let sent = hook.accepted();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0]["change"].as_str(), sent[0]["alert"]["rule_name"].as_str()),
        (Some("fired"), Some("any failure"))
    );
}

#[tokio::test]
async fn rates_percentiles_and_custom_conditions_are_judged_on_the_history() {
    let engine = engine_with(|_| {}).await;
    let rule = |name: &str, condition| NewAlertRule { name: name.into(), condition, webhook_url: None };
    for r in [
        rule(
            "rate",
            AlertCondition::SuccessRateBelow {
                percent: 60.0,
                window_minutes: 5,
                flow: None,
                min_executions: Some(3),
            },
        ),
        rule(
            "slow sleep",
            AlertCondition::NodeP95Above {
                flow: "slow".into(),
                node: "sleep".into(),
                threshold_ms: 100,
                window_minutes: 5,
            },
        ),
        rule(
            "custom",
            AlertCondition::Custom {
                condition: "executions >= 3 && error_rate > 50".into(),
                window_minutes: 5,
                flow: None,
            },
        ),
    ] {
        engine.create_alert_rule(r).await.expect("rule");
    }
    // Two executions, both failed: below min_executions for `rate`, too few for `custom`.
    run(&engine, "a", true).await;
    run(&engine, "b", true).await;
    assert!(engine.evaluate_alerts().await.expect("evaluate").is_empty());

    // A third: 0 % succeeded of 3, and 100 % failed.
    run(&engine, "c", true).await;
    let slow = Flow::new("slow")
        .with_node("users", "generate_rows", users(1))
        .with_node("sleep", "delay", json!({"ms": 300}))
        .with_node("out", "collect", json!({}))
        .with_edge("users", "sleep")
        .with_edge("sleep", "out");
    engine.run(slow, RunOptions::default()).await.expect("runs");
    let changes = engine.evaluate_alerts().await.expect("evaluate");
    let mut fired: Vec<_> =
        changes.iter().map(|(rule, e)| (rule.name.as_str(), e.change, e.alert.value)).collect();
    fired.sort_by(|a, b| a.0.cmp(b.0));
    let names: Vec<_> = fired.iter().map(|(name, change, _)| (*name, *change)).collect();
    assert_eq!(
        names,
        [("custom", AlertChange::Fired), ("rate", AlertChange::Fired), ("slow sleep", AlertChange::Fired)]
    );
    // 3 failed of 4 (the slow one succeeded): 25 %. The delay node's one run is its own p95
    // (a bucket's bound, capped at the longest run).
    assert_eq!(fired[1].2, Some(25.0));
    assert!(fired[2].2.is_some_and(|p95| (300.0..500.0).contains(&p95)), "{:?}", fired[2]);

    // Deleting a rule resolves its alert; the others stay firing.
    let rules = engine.alert_rules().await.expect("rules");
    let custom = rules.iter().find(|r| r.name == "custom").expect("custom");
    assert!(engine.delete_alert_rule(custom.id).await.expect("delete"));
    let firing = engine.alerts(&AlertQuery { firing: true, limit: None }).await.expect("firing");
    let mut names: Vec<_> = firing.iter().map(|a| a.rule_name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["rate", "slow sleep"]);
}

#[tokio::test]
async fn the_watcher_judges_the_rules_on_its_own() {
    let engine = engine_with(|c| c.alerts.interval = Duration::from_millis(100)).await;
    engine
        .create_alert_rule(NewAlertRule {
            name: "x failing".into(),
            condition: AlertCondition::FlowFailing { flow: "x".into(), failures: 1, window_minutes: 1 },
            webhook_url: None,
        })
        .await
        .expect("rule");
    let mut events = engine.subscribe_alerts();
    let stop = tokio_util::sync::CancellationToken::new();
    let watcher = tokio::spawn({
        let (engine, stop) = (engine.clone(), stop.clone());
        async move { engine.watch_alerts(stop).await }
    });
    run(&engine, "x", true).await;
    let fired =
        tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("in time").expect("event");
    assert_eq!(fired.change, AlertChange::Fired);
    run(&engine, "x", false).await;
    let resolved =
        tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("in time").expect("event");
    assert_eq!((resolved.change, resolved.alert.id), (AlertChange::Resolved, fired.alert.id));
    stop.cancel();
    watcher.await.expect("the watcher stops");
}

#[tokio::test]
async fn invalid_rules_are_refused_naming_the_field() {
    let engine = engine_with(|_| {}).await;
    let err = engine
        .create_alert_rule(NewAlertRule {
            name: "bad".into(),
            condition: AlertCondition::Custom {
                condition: "failures > 1".into(),
                window_minutes: 5,
                flow: None,
            },
            webhook_url: None,
        })
        .await
        .expect_err("unknown figure");
    assert!(
        err.to_string().contains("alert rule `bad`: condition:") && err.to_string().contains("failures"),
        "{err}"
    );
    assert!(engine.alert_rules().await.expect("rules").is_empty(), "nothing stored");
    // A condition as JSON with a field it does not have is refused before it reaches the engine.
    let unknown =
        serde_json::from_value::<AlertCondition>(json!({"kind": "memory_above", "percent": 80, "for": 5}));
    assert!(unknown.is_err_and(|e| e.to_string().contains("unknown field `for`")));
}
