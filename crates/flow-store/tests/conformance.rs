//! One behaviour, two backends: every test here runs against a SQLite file and against
//! PostgreSQL (a schema of its own, dropped afterwards), through the one `Store` API.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration};
use common::{at, failed_report, new_execution, start, succeeded_report};
use flow_model::{Connection, ConnectionKind, Flow};
use flow_runtime::{ExecutionReport, ExecutionState};
use flow_store::{
    AlertCondition, AlertQuery, DashboardPoint, DurationStats, ExecutionDetail, ExecutionSummary,
    FlowMetrics, ListQuery, MetricsWindow, MinuteRollup, NewAlert, NewAlertRule, NewExecution, NewSchedule,
    NodeMetrics, Role, ScheduleUpdate, Store, StoreError,
};
use uuid::Uuid;

/// Declares each behaviour once per backend: `sqlite::<name>` and `postgres::<name>`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let store = flow_store::Store::open(&dir.path().join("store.db")).await.expect("open");
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::common::with_postgres(|store, _url| super::$name(store)).await;
                }
            )*
        }
    };
}

conformance!(
    round_trip_returns_exactly_what_was_recorded,
    record_started_is_idempotent,
    record_finished_without_start_creates_the_execution_and_recording_again_replaces_nodes,
    record_finished_keeps_the_start_time_recorded_when_queued,
    list_is_newest_first_and_filters_with_limit_and_offset,
    list_limit_defaults_to_50_and_is_capped_at_1000,
    keyset_pages_return_every_row_exactly_once,
    record_state_changes_the_state,
    a_delivery_claims_its_execution_with_its_first_write,
    mark_interrupted_fails_only_unfinished_executions,
    counters_beyond_i64_are_refused_atomically,
    detail_serializes_flat,
    connections_are_saved_replaced_listed_and_deleted,
    usernames_are_unique,
    users_are_created_found_listed_and_deleted,
    flows_are_created_read_listed_updated_and_deleted,
    concurrent_updates_from_one_version_conflict,
    schedules_are_created_read_listed_updated_and_deleted,
    deleting_a_user_or_flow_deletes_what_depends_on_it,
    finished_executions_are_rolled_up_per_minute_and_flow,
    children_are_recorded_with_their_parent_and_listed_by_it,
    record_finished_writes_the_parent_and_keeps_one_already_set,
    monitoring_sums_the_rollups_of_executions_and_nodes_exactly,
    retention_deletes_exactly_the_older_rollups,
    monitoring_queries_refuse_a_bad_window,
    alert_rules_are_created_listed_and_deleted,
    an_alert_opens_and_resolves_once_however_many_evaluators_race,
    hourly_steps_read_whole_hours_and_count_the_partial_ones_by_minute,
);

async fn state_of(store: &Store, id: Uuid) -> ExecutionState {
    store.get(id).await.expect("get").expect("execution exists").summary.state
}

fn ids_of(list: Vec<ExecutionSummary>) -> Vec<Uuid> {
    list.into_iter().map(|s| s.id).collect()
}

/// record_started, record_finished, then get returns exactly what the report said.
async fn round_trip_returns_exactly_what_was_recorded(store: Store) {
    let report = failed_report(Uuid::now_v7(), "orders", 0);
    start(&store, &report, ExecutionState::Running).await;

    let running = store.get(report.id).await.expect("get").expect("started execution");
    assert_eq!(running.summary.state, ExecutionState::Running);
    assert_eq!(running.summary.finished_at, None);
    assert_eq!(running.summary.duration_ms, None);
    assert_eq!(running.summary.records_out, 0);
    assert!(running.nodes.is_empty());

    store.record_finished(&report, None).await.expect("record_finished");
    let detail = store.get(report.id).await.expect("get").expect("finished execution");
    let expected = ExecutionDetail {
        summary: ExecutionSummary {
            id: report.id,
            correlation_id: report.correlation_id.clone(),
            flow: "orders".to_owned(),
            state: ExecutionState::Failed,
            error: report.error.clone(),
            started_at: report.started_at,
            finished_at: Some(report.finished_at),
            duration_ms: Some(1_500),
            records_out: 3 + 2 + 2,
            // Only the source took no input.
            records_read: 3,
            owner: None,
            flow_id: None,
            parent_id: None,
        },
        nodes: report.nodes.clone(),
    };
    assert_eq!(detail, expected);
    // Field order of the samples survives (PartialEq on records may not look at it).
    let fields: Vec<&str> = detail.nodes[0].sample[0].keys().collect();
    assert_eq!(fields, ["id", "name", "score", "missing", "meta"]);

    assert!(store.get(Uuid::now_v7()).await.expect("get").is_none());
}

/// The server records the queued execution, the worker's engine records it again.
async fn record_started_is_idempotent(store: Store) {
    let report = succeeded_report(Uuid::now_v7(), "f", 0, 1);
    let (owner, flow_id) = (Uuid::now_v7(), Uuid::now_v7());
    let queued = NewExecution {
        owner: Some(owner),
        flow_id: Some(flow_id),
        ..new_execution(&report, ExecutionState::Queued)
    };
    store.record_started(&queued).await.expect("queued by the server");
    let by_worker = NewExecution {
        correlation_id: "another".to_owned(),
        started_at: at(30),
        owner: Some(Uuid::now_v7()),
        flow_id: None,
        ..new_execution(&report, ExecutionState::Running)
    };
    store.record_started(&by_worker).await.expect("started by the worker");
    let summary = store.get(report.id).await.expect("get").expect("one row").summary;
    assert_eq!(summary.state, ExecutionState::Running);
    assert_eq!(summary.started_at, report.started_at, "the queued time stays");
    assert_eq!(summary.correlation_id, report.correlation_id);
    assert_eq!((summary.owner, summary.flow_id), (Some(owner), Some(flow_id)), "set values stay");
    assert_eq!(store.list(&ListQuery::default()).await.expect("list").len(), 1);

    // Owner and flow fill in when the first record had none.
    let anonymous = succeeded_report(Uuid::now_v7(), "f", 1, 1);
    start(&store, &anonymous, ExecutionState::Queued).await;
    let with_owner = NewExecution {
        owner: Some(owner),
        flow_id: Some(flow_id),
        ..new_execution(&anonymous, ExecutionState::Queued)
    };
    store.record_started(&with_owner).await.expect("again");
    let summary = store.get(anonymous.id).await.expect("get").expect("exists").summary;
    assert_eq!((summary.owner, summary.flow_id), (Some(owner), Some(flow_id)));
}

async fn record_finished_without_start_creates_the_execution_and_recording_again_replaces_nodes(
    store: Store,
) {
    let mut report = failed_report(Uuid::now_v7(), "orders", 0);
    store.record_finished(&report, None).await.expect("first record");
    report.nodes.truncate(1);
    report.nodes[0].sample.truncate(1);
    store.record_finished(&report, None).await.expect("second record");
    let detail = store.get(report.id).await.expect("get").expect("recorded");
    assert_eq!(detail.nodes, report.nodes);
    assert_eq!(detail.summary.records_out, 3);
}

async fn record_finished_keeps_the_start_time_recorded_when_queued(store: Store) {
    let report = succeeded_report(Uuid::now_v7(), "f", 10, 5);
    let queued = NewExecution { started_at: at(8), ..new_execution(&report, ExecutionState::Queued) };
    store.record_started(&queued).await.expect("record_started");
    store.record_finished(&report, None).await.expect("record_finished");
    let summary = store.get(report.id).await.expect("get").expect("recorded").summary;
    assert_eq!(summary.started_at, at(8));
    assert_eq!(summary.duration_ms, Some(4_000));
}

async fn list_is_newest_first_and_filters_with_limit_and_offset(store: Store) {
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let (flow_a, flow_b) = (Uuid::now_v7(), Uuid::now_v7());
    // (flow name, finished, owner, stored flow), in start order: ids are UUID v7.
    let rows = [
        ("b", true, Some(alice), Some(flow_b)),
        ("a", true, Some(bob), Some(flow_a)),
        ("a", true, Some(alice), Some(flow_a)),
        ("b", false, None, None),
        ("a", false, Some(alice), Some(flow_a)),
    ];
    let mut ids = Vec::new();
    for (n, (flow, finished, owner, flow_id)) in rows.into_iter().enumerate() {
        let n = n as i64 + 1;
        let report = succeeded_report(Uuid::now_v7(), flow, n, n as u64 * 10);
        let execution = NewExecution { owner, flow_id, ..new_execution(&report, ExecutionState::Running) };
        store.record_started(&execution).await.expect("record_started");
        if finished {
            store.record_finished(&report, None).await.expect("record_finished");
        }
        ids.push(report.id);
    }
    let pick = |positions: &[usize]| positions.iter().map(|&p| ids[p - 1]).collect::<Vec<_>>();
    let list = async |query: ListQuery| ids_of(store.list(&query).await.expect("list"));

    let all = store.list(&ListQuery::default()).await.expect("list");
    assert_eq!(ids_of(all.clone()), pick(&[5, 4, 3, 2, 1]));
    assert_eq!(all[0].records_out, 0, "running execution has no output yet");
    assert_eq!(all[2].records_out, 30);
    assert_eq!(all[2].duration_ms, Some(2_000));
    assert_eq!((all[2].owner, all[2].flow_id), (Some(alice), Some(flow_a)));
    assert_eq!((all[1].owner, all[1].flow_id), (None, None));

    let q = ListQuery::default;
    assert_eq!(list(ListQuery { flow: Some("a".to_owned()), ..q() }).await, pick(&[5, 3, 2]));
    assert_eq!(list(ListQuery { state: Some(ExecutionState::Running), ..q() }).await, pick(&[5, 4]));
    assert_eq!(
        list(ListQuery { flow: Some("b".to_owned()), state: Some(ExecutionState::Succeeded), ..q() }).await,
        pick(&[1])
    );
    assert_eq!(list(ListQuery { owner: Some(alice), ..q() }).await, pick(&[5, 3, 1]));
    assert_eq!(list(ListQuery { owner: Some(bob), ..q() }).await, pick(&[2]));
    assert_eq!(list(ListQuery { flow_id: Some(flow_a), ..q() }).await, pick(&[5, 3, 2]));
    assert_eq!(
        list(ListQuery {
            owner: Some(alice),
            flow_id: Some(flow_a),
            state: Some(ExecutionState::Succeeded),
            ..q()
        })
        .await,
        pick(&[3])
    );
    assert_eq!(list(ListQuery { limit: Some(2), offset: Some(1), ..q() }).await, pick(&[4, 3]));
    assert_eq!(list(ListQuery { owner: Some(alice), before: Some(ids[4]), ..q() }).await, pick(&[3, 1]));
    assert!(list(ListQuery { limit: Some(2), offset: Some(5), ..q() }).await.is_empty());
    assert!(list(ListQuery { flow: Some("zzz".to_owned()), ..q() }).await.is_empty());
    assert!(list(ListQuery { owner: Some(Uuid::now_v7()), ..q() }).await.is_empty());
}

async fn list_limit_defaults_to_50_and_is_capped_at_1000(store: Store) {
    for i in 0..1005 {
        let report = succeeded_report(Uuid::now_v7(), "f", i, 0);
        start(&store, &report, ExecutionState::Queued).await;
    }
    assert_eq!(store.list(&ListQuery::default()).await.expect("list").len(), 50);
    let huge = ListQuery { limit: Some(u32::MAX), ..ListQuery::default() };
    assert_eq!(store.list(&huge).await.expect("list").len(), 1000);
}

/// Following `before` from page to page visits every matching execution once, newest first,
/// also while new executions start between pages.
async fn keyset_pages_return_every_row_exactly_once(store: Store) {
    let owner = Uuid::now_v7();
    let mut mine = Vec::new();
    for i in 0..47 {
        let report = succeeded_report(Uuid::now_v7(), if i % 2 == 0 { "even" } else { "odd" }, i, 0);
        let owner = (i % 3 != 0).then_some(owner);
        let execution = NewExecution { owner, ..new_execution(&report, ExecutionState::Queued) };
        store.record_started(&execution).await.expect("record_started");
        if owner.is_some() {
            mine.push(report.id);
        }
    }
    mine.reverse();
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let query = ListQuery { owner: Some(owner), before, limit: Some(7), ..ListQuery::default() };
        let page = ids_of(store.list(&query).await.expect("list"));
        let Some(&last) = page.last() else { break };
        seen.extend(page);
        before = Some(last);
        // Newer executions do not shift the pages still to come.
        let newer = succeeded_report(Uuid::now_v7(), "even", 100, 0);
        store
            .record_started(&NewExecution {
                owner: Some(owner),
                ..new_execution(&newer, ExecutionState::Queued)
            })
            .await
            .expect("record_started");
    }
    assert_eq!(seen, mine);

    // Without a filter too, and it agrees with offset paging.
    let everything =
        ids_of(store.list(&ListQuery { limit: Some(1000), ..ListQuery::default() }).await.expect("list"));
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = ids_of(
            store.list(&ListQuery { before, limit: Some(10), ..ListQuery::default() }).await.expect("list"),
        );
        let Some(&last) = page.last() else { break };
        let by_offset =
            ListQuery { offset: Some(seen.len() as u32), limit: Some(10), ..ListQuery::default() };
        assert_eq!(ids_of(store.list(&by_offset).await.expect("list")), page);
        seen.extend(page);
        before = Some(last);
    }
    assert_eq!(seen, everything);
}

async fn record_state_changes_the_state(store: Store) {
    let report = succeeded_report(Uuid::now_v7(), "f", 0, 1);
    start(&store, &report, ExecutionState::Queued).await;
    for state in [ExecutionState::Running, ExecutionState::Paused, ExecutionState::Running] {
        store.record_state(report.id, state, None).await.expect("record_state");
        assert_eq!(state_of(&store, report.id).await, state);
    }
    let missing = Uuid::now_v7();
    let err = store.record_state(missing, ExecutionState::Running, None).await.expect_err("unknown");
    assert!(matches!(err, StoreError::NotFound { id, what: "execution", .. } if id == missing), "{err}");
}

/// The server's worker writes only a run's final report when the run is short (the API
/// recorded it as queued without a fence): that report, or a fenced state change, claims the row
/// for its delivery, so an older delivery whose job was reclaimed writes nothing after it.
async fn a_delivery_claims_its_execution_with_its_first_write(store: Store) {
    let report = succeeded_report(Uuid::now_v7(), "f", 0, 1);
    start(&store, &report, ExecutionState::Queued).await;
    store.record_finished(&report, Some(2)).await.expect("the newer delivery's report");
    let stale = failed_report(report.id, "f", 0);
    store.record_finished(&stale, Some(1)).await.expect("a superseded report is no error");
    store.record_state(report.id, ExecutionState::Running, Some(1)).await.expect("superseded");
    let detail = store.get(report.id).await.expect("get").expect("recorded");
    assert_eq!(detail.summary.state, ExecutionState::Succeeded);
    assert_eq!(detail.nodes, report.nodes, "the newer delivery's nodes stay");

    let running = succeeded_report(Uuid::now_v7(), "f", 1, 1);
    start(&store, &running, ExecutionState::Queued).await;
    store.record_state(running.id, ExecutionState::Running, Some(3)).await.expect("the delivery's state");
    store.record_finished(&failed_report(running.id, "f", 1), Some(2)).await.expect("superseded");
    assert_eq!(state_of(&store, running.id).await, ExecutionState::Running);
    store.record_finished(&running, Some(3)).await.expect("its own report");
    assert_eq!(state_of(&store, running.id).await, ExecutionState::Succeeded);
}

async fn mark_interrupted_fails_only_unfinished_executions(store: Store) {
    let mut unfinished = Vec::new();
    for state in [ExecutionState::Queued, ExecutionState::Running, ExecutionState::Paused] {
        let report = succeeded_report(Uuid::now_v7(), "f", 0, 1);
        start(&store, &report, state).await;
        unfinished.push(report.id);
    }
    let succeeded = succeeded_report(Uuid::now_v7(), "f", 1, 1);
    start(&store, &succeeded, ExecutionState::Running).await;
    store.record_finished(&succeeded, None).await.expect("record_finished");
    let failed = failed_report(Uuid::now_v7(), "f", 2);
    store.record_finished(&failed, None).await.expect("record_finished");
    let cancelled = succeeded_report(Uuid::now_v7(), "f", 3, 0);
    start(&store, &cancelled, ExecutionState::Running).await;
    store.record_state(cancelled.id, ExecutionState::Cancelled, None).await.expect("record_state");

    assert_eq!(store.mark_interrupted().await.expect("mark_interrupted"), 3);
    for id in unfinished {
        let summary = store.get(id).await.expect("get").expect("exists").summary;
        assert_eq!(summary.state, ExecutionState::Failed);
        assert_eq!(
            summary.error.as_deref(),
            Some("interrupted: the engine stopped while this execution ran")
        );
        assert_eq!(summary.finished_at, None);
    }
    assert_eq!(state_of(&store, succeeded.id).await, ExecutionState::Succeeded);
    let failed_detail = store.get(failed.id).await.expect("get").expect("exists");
    assert_eq!(failed_detail.summary.error, failed.error, "finished errors are kept");
    assert_eq!(state_of(&store, cancelled.id).await, ExecutionState::Cancelled);

    assert_eq!(store.mark_interrupted().await.expect("mark_interrupted"), 0);
}

async fn counters_beyond_i64_are_refused_atomically(store: Store) {
    let mut report = failed_report(Uuid::now_v7(), "f", 0);
    start(&store, &report, ExecutionState::Running).await;
    report.nodes[2].counters.records_in = u64::MAX;
    let err = store.record_finished(&report, None).await.expect_err("too large");
    assert!(matches!(err, StoreError::Unstorable { .. }), "{err:?}");
    // Nothing of the report was written, metrics included.
    let detail = store.get(report.id).await.expect("get").expect("started");
    assert_eq!(detail.summary.state, ExecutionState::Running);
    assert!(detail.nodes.is_empty());
    assert!(store.metrics_minutes(at(-3600)).await.expect("metrics").is_empty());
}

async fn detail_serializes_flat(store: Store) {
    let report = failed_report(Uuid::now_v7(), "orders", 0);
    store.record_finished(&report, None).await.expect("record_finished");
    let detail = store.get(report.id).await.expect("get").expect("recorded");
    // Through text, not serde_json::Value, whose maps would sort the records' fields.
    let text = serde_json::to_string(&detail).expect("serialize");
    let json: serde_json::Value = serde_json::from_str(&text).expect("parse");
    assert_eq!(json["state"], "failed");
    assert_eq!(json["flow"], "orders");
    assert_eq!(json["nodes"][1]["error_kind"], "transient");
    assert!(json.get("owner").is_none(), "no owner: no field (desktop UI types)");
    assert!(json.get("parent_id").is_none(), "no parent: no field");
    let back: ExecutionDetail = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(back, detail);
}

fn connection(name: &str, url: &str) -> Connection {
    let mut options = serde_json::Map::new();
    options.insert("max_connections".into(), serde_json::json!(4));
    options.insert("application_name".into(), serde_json::json!("flow"));
    Connection { name: name.into(), kind: ConnectionKind::Postgres, url: url.into(), options }
}

async fn connections_are_saved_replaced_listed_and_deleted(store: Store) {
    store.save_connection(&connection("warehouse", "postgres://a@x/db")).await.expect("save");
    store.save_connection(&connection("crm", "postgres://b@y/db")).await.expect("save");
    let replaced = Connection {
        kind: ConnectionKind::Mongodb,
        options: serde_json::Map::new(),
        ..connection("warehouse", "mongodb://{{ env.USER }}@z/db")
    };
    store.save_connection(&replaced).await.expect("replace");

    let listed = store.list_connections().await.expect("list");
    assert_eq!(listed, vec![connection("crm", "postgres://b@y/db"), replaced]);

    assert!(store.delete_connection("crm").await.expect("delete"));
    assert!(!store.delete_connection("crm").await.expect("delete again"));
    let names: Vec<String> =
        store.list_connections().await.expect("list").into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["warehouse"]);
}

async fn usernames_are_unique(store: Store) {
    let first = store.create_user("ada", "hash-1", Role::Admin).await.expect("create");
    let err = store.create_user("ada", "hash-2", Role::User).await.expect_err("taken");
    assert!(matches!(&err, StoreError::UsernameTaken { username, .. } if username == "ada"), "{err:?}");
    assert!(err.to_string().contains("username `ada` is taken"), "{err}");
    let kept = store.user_by_name("ada").await.expect("user_by_name").expect("exists");
    assert_eq!(kept, first, "the refused user changed nothing");
    // Exact names: the server normalises before it stores.
    store.create_user("Ada", "hash-3", Role::User).await.expect("another name");
}

async fn users_are_created_found_listed_and_deleted(store: Store) {
    let grace = store.create_user("grace", "$argon2id$v=19$grace", Role::User).await.expect("create");
    let ada = store.create_user("ada", "$argon2id$v=19$ada", Role::Admin).await.expect("create");
    assert_eq!(ada.username, "ada");
    assert_eq!(ada.role, Role::Admin);
    assert_eq!(ada.id.get_version_num(), 7);
    assert!(!format!("{ada:?}").contains("argon2"), "Debug hides the hash: {ada:?}");

    assert_eq!(store.user_by_name("ada").await.expect("by name"), Some(ada.clone()));
    assert_eq!(store.user(grace.id).await.expect("by id"), Some(grace.clone()));
    assert_eq!(store.user_by_name("nobody").await.expect("by name"), None);
    assert_eq!(store.user(Uuid::now_v7()).await.expect("by id"), None);
    assert_eq!(store.list_users().await.expect("list"), [ada.clone(), grace.clone()], "by username");

    assert!(store.delete_user("ada").await.expect("delete"));
    assert!(!store.delete_user("ada").await.expect("delete again"));
    assert_eq!(store.list_users().await.expect("list"), [grace]);
}

fn flow(name: &str, limit: i64) -> Flow {
    let mut flow = Flow::new(name)
        .with_node("src", "generate", serde_json::json!({ "count": 10, "seed": "x" }))
        .with_node("cap", "limit", serde_json::json!({ "max": limit }))
        .with_edge("src", "cap");
    flow.description = "stored by the server".to_owned();
    flow.variables = BTreeMap::from([
        ("zeta".to_owned(), serde_json::json!(1)),
        ("alpha".to_owned(), serde_json::json!("a")),
    ]);
    flow
}

async fn flows_are_created_read_listed_updated_and_deleted(store: Store) {
    let ada = store.create_user("ada", "h", Role::User).await.expect("user");
    let grace = store.create_user("grace", "h", Role::User).await.expect("user");
    let orders = store.create_flow(ada.id, &flow("orders", 5)).await.expect("create");
    assert_eq!((orders.owner, orders.version, orders.created_at), (ada.id, 1, orders.updated_at));
    let billing = store.create_flow(ada.id, &flow("billing", 5)).await.expect("create");
    let graces = store.create_flow(grace.id, &flow("audit", 5)).await.expect("create");
    assert_eq!(store.flow(orders.id).await.expect("flow"), Some(orders.clone()));
    assert_eq!(store.flow(Uuid::now_v7()).await.expect("flow"), None);

    let names =
        |list: Vec<flow_store::StoredFlowSummary>| list.into_iter().map(|f| f.name).collect::<Vec<_>>();
    assert_eq!(names(store.list_flows(Some(ada.id)).await.expect("list")), ["billing", "orders"]);
    assert_eq!(names(store.list_flows(None).await.expect("list")), ["audit", "billing", "orders"]);
    let listed = store.list_flows(Some(grace.id)).await.expect("list");
    assert_eq!((listed[0].id, listed[0].owner, listed[0].version), (graces.id, grace.id, 1));

    let renamed = flow("orders-v2", 7);
    let updated = store.update_flow(orders.id, 1, &renamed).await.expect("update");
    assert_eq!((updated.version, updated.created_at, &updated.flow), (2, orders.created_at, &renamed));
    assert!(updated.updated_at >= orders.updated_at);
    assert_eq!(store.flow(orders.id).await.expect("flow"), Some(updated.clone()));
    assert_eq!(names(store.list_flows(Some(ada.id)).await.expect("list")), ["billing", "orders-v2"]);

    let stale = store.update_flow(orders.id, 1, &flow("stale", 1)).await.expect_err("stale version");
    assert!(
        matches!(stale, StoreError::VersionConflict { id, current: 2, .. } if id == orders.id),
        "{stale:?}"
    );
    assert_eq!(store.flow(orders.id).await.expect("flow"), Some(updated), "a conflict writes nothing");
    let missing = Uuid::now_v7();
    let err = store.update_flow(missing, 1, &renamed).await.expect_err("no such flow");
    assert!(matches!(err, StoreError::NotFound { id, what: "flow", .. } if id == missing), "{err:?}");

    let err = store.create_flow(Uuid::now_v7(), &renamed).await.expect_err("no such owner");
    assert!(matches!(err, StoreError::MissingReference { .. }), "{err:?}");

    assert!(store.delete_flow(billing.id).await.expect("delete"));
    assert!(!store.delete_flow(billing.id).await.expect("delete again"));
    assert_eq!(store.flow(billing.id).await.expect("flow"), None);
}

/// Two editors saved from the same version: one wins, the other learns the version it missed.
async fn concurrent_updates_from_one_version_conflict(store: Store) {
    let ada = store.create_user("ada", "h", Role::User).await.expect("user");
    let stored = store.create_flow(ada.id, &flow("orders", 1)).await.expect("create");
    store.update_flow(stored.id, 1, &flow("orders", 2)).await.expect("to version 2");
    let (mine, theirs) = (flow("orders", 30), flow("orders", 40));
    let (a, b) =
        tokio::join!(store.update_flow(stored.id, 2, &mine), store.update_flow(stored.id, 2, &theirs));
    let (winner, loser) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        other => panic!("expected one winner and one conflict, got {other:?}"),
    };
    assert_eq!(winner.version, 3);
    assert!(matches!(loser, StoreError::VersionConflict { current: 3, .. }), "{loser:?}");
    assert!(loser.to_string().contains("at version 3"), "{loser}");
    assert_eq!(store.flow(stored.id).await.expect("flow").expect("exists").flow, winner.flow);
}

fn vars() -> serde_json::Map<String, serde_json::Value> {
    let mut vars = serde_json::Map::new();
    vars.insert("region".into(), serde_json::json!("eu"));
    vars.insert("batch".into(), serde_json::json!({ "size": 500, "tags": ["a", "b"] }));
    vars
}

async fn schedules_are_created_read_listed_updated_and_deleted(store: Store) {
    let ada = store.create_user("ada", "h", Role::User).await.expect("user");
    let grace = store.create_user("grace", "h", Role::User).await.expect("user");
    let nightly = store.create_flow(ada.id, &flow("nightly", 1)).await.expect("flow");
    let hourly = store.create_flow(grace.id, &flow("hourly", 1)).await.expect("flow");
    let new = NewSchedule {
        owner: ada.id,
        flow_id: nightly.id,
        cron: "0 2 * * *".to_owned(),
        timezone: "Europe/Paris".to_owned(),
        vars: vars(),
        enabled: true,
    };
    let first = store.create_schedule(&new).await.expect("create");
    assert_eq!(
        (first.owner, first.flow_id, &first.cron, &first.vars, first.enabled),
        (ada.id, nightly.id, &new.cron, &new.vars, true)
    );
    let off = store
        .create_schedule(&NewSchedule { enabled: false, vars: serde_json::Map::new(), ..new.clone() })
        .await
        .expect("create");
    let graces = store
        .create_schedule(&NewSchedule {
            owner: grace.id,
            flow_id: hourly.id,
            cron: "0 * * * *".to_owned(),
            ..new.clone()
        })
        .await
        .expect("create");
    assert_eq!(store.schedule(first.id).await.expect("schedule"), Some(first.clone()));
    assert_eq!(store.schedule(Uuid::now_v7()).await.expect("schedule"), None);

    let ids = |list: Vec<flow_store::Schedule>| list.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_schedules(Some(ada.id)).await.expect("list")), [first.id, off.id]);
    assert_eq!(ids(store.list_schedules(None).await.expect("list")), [first.id, off.id, graces.id]);
    assert_eq!(ids(store.list_enabled_schedules().await.expect("enabled")), [first.id, graces.id]);

    let update = ScheduleUpdate {
        enabled: Some(true),
        cron: Some("*/5 * * * *".to_owned()),
        ..ScheduleUpdate::default()
    };
    let on = store.update_schedule(off.id, &update).await.expect("update").expect("exists");
    assert_eq!(
        (on.enabled, on.cron.as_str(), &on.timezone, &on.vars),
        (true, "*/5 * * * *", &off.timezone, &off.vars)
    );
    assert_eq!(on.created_at, off.created_at);
    assert!(on.updated_at >= off.updated_at);
    assert_eq!(store.schedule(off.id).await.expect("schedule"), Some(on.clone()));
    let moved = ScheduleUpdate {
        flow_id: Some(hourly.id),
        timezone: Some("UTC".to_owned()),
        vars: Some(vars()),
        enabled: Some(false),
        ..ScheduleUpdate::default()
    };
    let moved = store.update_schedule(on.id, &moved).await.expect("update").expect("exists");
    assert_eq!(
        (moved.flow_id, moved.timezone.as_str(), &moved.vars, moved.enabled, moved.cron.as_str()),
        (hourly.id, "UTC", &vars(), false, "*/5 * * * *")
    );
    assert_eq!(store.update_schedule(Uuid::now_v7(), &update).await.expect("update"), None);

    let to_nowhere = ScheduleUpdate { flow_id: Some(Uuid::now_v7()), ..ScheduleUpdate::default() };
    let err = store.update_schedule(first.id, &to_nowhere).await.expect_err("no such flow");
    assert!(matches!(err, StoreError::MissingReference { .. }), "{err:?}");
    let err = store
        .create_schedule(&NewSchedule { flow_id: Uuid::now_v7(), ..new.clone() })
        .await
        .expect_err("no flow");
    assert!(matches!(err, StoreError::MissingReference { .. }), "{err:?}");

    assert!(store.delete_schedule(first.id).await.expect("delete"));
    assert!(!store.delete_schedule(first.id).await.expect("delete again"));
    assert_eq!(ids(store.list_schedules(None).await.expect("list")), [off.id, graces.id]);
}

async fn deleting_a_user_or_flow_deletes_what_depends_on_it(store: Store) {
    let ada = store.create_user("ada", "h", Role::User).await.expect("user");
    let grace = store.create_user("grace", "h", Role::User).await.expect("user");
    let adas = store.create_flow(ada.id, &flow("a", 1)).await.expect("flow");
    let graces = store.create_flow(grace.id, &flow("g", 1)).await.expect("flow");
    let schedule = |owner, flow_id| NewSchedule {
        owner,
        flow_id,
        cron: "0 * * * *".to_owned(),
        timezone: "UTC".to_owned(),
        vars: serde_json::Map::new(),
        enabled: true,
    };
    store.create_schedule(&schedule(ada.id, adas.id)).await.expect("schedule");
    let of_grace = store.create_schedule(&schedule(grace.id, graces.id)).await.expect("schedule");
    let report = succeeded_report(Uuid::now_v7(), "a", 0, 1);
    store
        .record_started(&NewExecution {
            owner: Some(ada.id),
            flow_id: Some(adas.id),
            ..new_execution(&report, ExecutionState::Queued)
        })
        .await
        .expect("record_started");

    assert!(store.delete_user("ada").await.expect("delete user"));
    assert_eq!(store.flow(adas.id).await.expect("flow"), None);
    assert_eq!(store.list_schedules(None).await.expect("list"), [of_grace]);
    let kept = store.get(report.id).await.expect("get").expect("history stays").summary;
    assert_eq!((kept.owner, kept.flow_id), (Some(ada.id), Some(adas.id)));

    assert!(store.delete_flow(graces.id).await.expect("delete flow"));
    assert!(store.list_schedules(None).await.expect("list").is_empty());
    assert_eq!(store.list_users().await.expect("users").len(), 1, "the owner stays");
}

async fn finished_executions_are_rolled_up_per_minute_and_flow(store: Store) {
    // at(s) is 40 s (and a fraction) into its minute: every report below but the last finishes
    // in the minute of at(0), the last in the next.
    let minute = DateTime::from_timestamp(1_749_999_960, 0).expect("valid time");
    let ok = succeeded_report(Uuid::now_v7(), "orders", 0, 10);
    let slow = ExecutionReport { started_at: at(-10), ..succeeded_report(Uuid::now_v7(), "orders", 0, 5) };
    let failed = failed_report(Uuid::now_v7(), "orders", 0);
    let cancelled = ExecutionReport {
        state: ExecutionState::Cancelled,
        ..succeeded_report(Uuid::now_v7(), "orders", 1, 0)
    };
    let other_flow = succeeded_report(Uuid::now_v7(), "billing", 0, 1);
    let next_minute = succeeded_report(Uuid::now_v7(), "orders", 20, 4);
    for report in [&ok, &slow, &failed, &cancelled, &other_flow, &next_minute] {
        start(&store, report, ExecutionState::Running).await;
        store.record_finished(report, None).await.expect("record_finished");
    }
    // Recording a report again does not count the execution again.
    store.record_finished(&ok, None).await.expect("record again");
    // Neither do executions that have not finished.
    let running = succeeded_report(Uuid::now_v7(), "orders", 0, 1);
    start(&store, &running, ExecutionState::Running).await;

    let rollup = |minute, flow: &str, counts: [u64; 4], duration: [u64; 2], records_out| MinuteRollup {
        minute,
        flow: flow.to_owned(),
        executions: counts[0],
        succeeded: counts[1],
        failed: counts[2],
        cancelled: counts[3],
        duration_ms_sum: duration[0],
        duration_ms_max: duration[1],
        records_out,
    };
    let expected = vec![
        rollup(minute, "billing", [1, 1, 0, 0], [2_000, 2_000], 1),
        rollup(minute, "orders", [4, 2, 1, 1], [2_000 + 12_000 + 1_500 + 2_000, 12_000], 10 + 5 + 7),
        rollup(minute + Duration::minutes(1), "orders", [1, 1, 0, 0], [2_000, 2_000], 4),
    ];
    assert_eq!(store.metrics_minutes(minute).await.expect("metrics"), expected);
    assert_eq!(store.metrics_minutes(minute + Duration::seconds(1)).await.expect("metrics"), expected[2..]);
}

/// A `subflow` node's execution names its parent; listing by parent returns the children only.
async fn children_are_recorded_with_their_parent_and_listed_by_it(store: Store) {
    let parent = succeeded_report(Uuid::now_v7(), "orders", 0, 1);
    start(&store, &parent, ExecutionState::Running).await;
    let child =
        ExecutionReport { parent_id: Some(parent.id), ..succeeded_report(Uuid::now_v7(), "lookup", 1, 2) };
    // new_execution takes the report's parent.
    start(&store, &child, ExecutionState::Running).await;
    store.record_finished(&child, None).await.expect("record child");
    store.record_finished(&parent, None).await.expect("record parent");
    // Another execution's child is not listed under this parent.
    let other = ExecutionReport {
        parent_id: Some(Uuid::now_v7()),
        ..succeeded_report(Uuid::now_v7(), "lookup", 2, 1)
    };
    start(&store, &other, ExecutionState::Running).await;

    let detail = store.get(child.id).await.expect("get").expect("child recorded");
    assert_eq!(detail.summary.parent_id, Some(parent.id));
    assert_eq!(detail.summary.state, ExecutionState::Succeeded);
    let parent_summary = store.get(parent.id).await.expect("get").expect("parent recorded").summary;
    assert_eq!(parent_summary.parent_id, None);

    let all = store.list(&ListQuery::default()).await.expect("list");
    let parents: Vec<(Uuid, Option<Uuid>)> = all.iter().map(|s| (s.id, s.parent_id)).collect();
    assert_eq!(parents, [(other.id, other.parent_id), (child.id, Some(parent.id)), (parent.id, None)]);
    let children_of = async |parent| {
        ids_of(store.list(&ListQuery { parent: Some(parent), ..ListQuery::default() }).await.expect("list"))
    };
    assert_eq!(children_of(parent.id).await, [child.id]);
    assert!(children_of(child.id).await.is_empty());
}

/// `record_finished` writes the report's parent on a row it creates and on one started without
/// a parent; a report without one leaves the recorded parent.
async fn record_finished_writes_the_parent_and_keeps_one_already_set(store: Store) {
    let parent = Uuid::now_v7();
    let not_started =
        ExecutionReport { parent_id: Some(parent), ..succeeded_report(Uuid::now_v7(), "f", 0, 1) };
    store.record_finished(&not_started, None).await.expect("record_finished");
    let started_without = succeeded_report(Uuid::now_v7(), "f", 1, 1);
    start(&store, &started_without, ExecutionState::Running).await;
    let with_parent = ExecutionReport { parent_id: Some(parent), ..started_without.clone() };
    store.record_finished(&with_parent, None).await.expect("record_finished");
    let started_with =
        ExecutionReport { parent_id: Some(parent), ..succeeded_report(Uuid::now_v7(), "f", 2, 1) };
    start(&store, &started_with, ExecutionState::Running).await;
    let without_parent = ExecutionReport { parent_id: None, ..started_with.clone() };
    store.record_finished(&without_parent, None).await.expect("record_finished");

    for id in [not_started.id, started_without.id, started_with.id] {
        let summary = store.get(id).await.expect("get").expect("recorded").summary;
        assert_eq!(summary.parent_id, Some(parent), "{id}");
    }
    let children =
        store.list(&ListQuery { parent: Some(parent), ..ListQuery::default() }).await.expect("list");
    assert_eq!(ids_of(children), [started_with.id, started_without.id, not_started.id]);
}

/// The minute `at(0)` is in (`at(s)` is 40 s into its minute); a multiple of two minutes.
fn minute_zero() -> DateTime<chrono::Utc> {
    DateTime::from_timestamp(1_749_999_960, 0).expect("valid time")
}

/// `report` finishing `finish_ms` after `at(0)` and running `duration_ms`.
fn timed(report: ExecutionReport, finish_ms: i64, duration_ms: i64) -> ExecutionReport {
    let finished_at = at(0) + Duration::milliseconds(finish_ms);
    ExecutionReport { started_at: finished_at - Duration::milliseconds(duration_ms), finished_at, ..report }
}

/// In the minute of at(0), `orders` runs 40, 40, 700 ms (succeeded) and 3 s (failed); in the
/// next, `orders` runs 2 h (cancelled) and `billing` 40 ms (succeeded). Every node that starts
/// runs 250 ms.
async fn seed_monitoring(store: &Store) {
    let next = 20_000;
    let reports = [
        timed(succeeded_report(Uuid::now_v7(), "orders", 0, 10), 1_000, 40),
        timed(succeeded_report(Uuid::now_v7(), "orders", 0, 5), 2_000, 40),
        timed(succeeded_report(Uuid::now_v7(), "orders", 0, 1), 3_000, 700),
        timed(failed_report(Uuid::now_v7(), "orders", 0), 4_000, 3_000),
        timed(
            ExecutionReport {
                state: ExecutionState::Cancelled,
                ..succeeded_report(Uuid::now_v7(), "orders", 0, 2)
            },
            next,
            7_200_000,
        ),
        timed(succeeded_report(Uuid::now_v7(), "billing", 0, 4), next + 1_000, 40),
    ];
    for report in &reports {
        start(store, report, ExecutionState::Running).await;
        store.record_finished(report, None).await.expect("record_finished");
    }
    // A report recorded again counts neither its execution nor its nodes again.
    store.record_finished(&reports[0], None).await.expect("record again");
}

fn stats(avg_ms: f64, p50: u64, p95: u64, p99: u64, max: u64) -> DurationStats {
    DurationStats {
        avg_ms: Some(avg_ms),
        p50_ms: Some(p50),
        p95_ms: Some(p95),
        p99_ms: Some(p99),
        max_ms: Some(max),
    }
}

fn node_metrics(
    (flow, node_id, node_type): (&str, &str, &str),
    [runs, failed]: [u64; 2],
    [records_in, records_out, errors]: [u64; 3],
) -> NodeMetrics {
    NodeMetrics {
        flow: flow.to_owned(),
        node_id: node_id.to_owned(),
        node_type: node_type.to_owned(),
        runs,
        failed,
        error_rate: failed as f64 / runs as f64,
        duration: stats(250.0, 250, 250, 250, 250),
        records_in,
        records_out,
        errors,
    }
}

async fn monitoring_sums_the_rollups_of_executions_and_nodes_exactly(store: Store) {
    seed_monitoring(&store).await;
    let m0 = minute_zero();
    let m1 = m0 + Duration::minutes(1);
    let both = MetricsWindow { since: m0, until: m1 + Duration::minutes(1) };

    let dashboard = store.dashboard(&both, 1).await.expect("dashboard");
    assert_eq!(dashboard.window, both);
    assert_eq!(
        (dashboard.executions, dashboard.succeeded, dashboard.failed, dashboard.cancelled),
        (6, 4, 1, 1)
    );
    assert_eq!(dashboard.success_rate, Some(4.0 / 6.0));
    // Buckets: 40 ms x3 in le_50, 700 in le_1000, 3 s in le_5000, 2 h in le_inf.
    let all = stats((40.0 * 3.0 + 700.0 + 3_000.0 + 7_200_000.0) / 6.0, 50, 7_200_000, 7_200_000, 7_200_000);
    assert_eq!(dashboard.duration, all);
    let point = |at, counts: [u64; 4], duration| DashboardPoint {
        at,
        executions: counts[0],
        succeeded: counts[1],
        failed: counts[2],
        cancelled: counts[3],
        duration,
    };
    assert_eq!(
        dashboard.points,
        [
            point(m0, [4, 3, 1, 0], stats(3_780.0 / 4.0, 50, 3_000, 3_000, 3_000)),
            point(m1, [2, 1, 0, 1], stats(7_200_040.0 / 2.0, 50, 7_200_000, 7_200_000, 7_200_000)),
        ]
    );

    // Two-minute steps: one point with everything. A window from one second into the first
    // minute leaves that minute out; an empty step is a point of zeros.
    let two = store.dashboard(&both, 2).await.expect("dashboard");
    assert_eq!(two.points, [point(m0, [6, 4, 1, 1], all.clone())]);
    let later = MetricsWindow { since: m0 + Duration::seconds(1), until: m1 + Duration::minutes(2) };
    let later = store.dashboard(&later, 1).await.expect("dashboard");
    assert_eq!(later.executions, 2);
    assert_eq!(
        later.points.iter().map(|p| (p.at, p.executions)).collect::<Vec<_>>(),
        [(m0, 0), (m1, 2), (m1 + Duration::minutes(1), 0)]
    );
    assert_eq!(later.points[2].duration, DurationStats::default());

    let flows = store.flow_metrics(&both).await.expect("flow metrics");
    assert_eq!(
        flows,
        [
            FlowMetrics {
                flow: "billing".to_owned(),
                executions: 1,
                succeeded: 1,
                failed: 0,
                cancelled: 0,
                error_rate: 0.0,
                duration: stats(40.0, 40, 40, 40, 40),
                records_out: 4,
            },
            FlowMetrics {
                flow: "orders".to_owned(),
                executions: 5,
                succeeded: 3,
                failed: 1,
                cancelled: 1,
                error_rate: 0.2,
                // The median, 700 ms, is reported as its bucket's bound.
                duration: stats(
                    (40.0 * 2.0 + 700.0 + 3_000.0 + 7_200_000.0) / 5.0,
                    1_000,
                    7_200_000,
                    7_200_000,
                    7_200_000
                ),
                // 10 + 5 + 1, the failed run's 3 + 2 + 2, the cancelled run's 2.
                records_out: 25,
            },
        ]
    );

    // The failed run's skipped node did not run: it is not counted.
    let orders = [
        node_metrics(("orders", "map", "http_enrich"), [1, 1], [3, 2, 1]),
        node_metrics(("orders", "out", "collect"), [4, 0], [18, 18, 0]),
        node_metrics(("orders", "out", "write_csv"), [1, 0], [2, 2, 0]),
        node_metrics(("orders", "src", "generate"), [1, 0], [0, 3, 0]),
    ];
    let mut every = vec![node_metrics(("billing", "out", "collect"), [1, 0], [4, 4, 0])];
    every.extend(orders.iter().cloned());
    assert_eq!(store.node_metrics(&both, None).await.expect("node metrics"), every);
    assert_eq!(store.node_metrics(&both, Some("orders")).await.expect("node metrics"), orders);
    assert!(store.node_metrics(&both, Some("nothing")).await.expect("node metrics").is_empty());
}

async fn retention_deletes_exactly_the_older_rollups(store: Store) {
    seed_monitoring(&store).await;
    let m0 = minute_zero();
    let m1 = m0 + Duration::minutes(1);
    let both = MetricsWindow { since: m0, until: m1 + Duration::minutes(1) };

    assert_eq!(store.delete_metrics_before(m0).await.expect("delete"), 0);
    // The first minute: orders' execution row and its four nodes' rows.
    assert_eq!(store.delete_metrics_before(m1).await.expect("delete"), 5);
    assert_eq!(store.delete_metrics_before(m1).await.expect("delete again"), 0);
    let flows = store.flow_metrics(&both).await.expect("flow metrics");
    assert_eq!(
        flows.iter().map(|f| (f.flow.as_str(), f.executions)).collect::<Vec<_>>(),
        [("billing", 1), ("orders", 1)]
    );
    let nodes = store.node_metrics(&both, None).await.expect("node metrics");
    assert_eq!(
        nodes.iter().map(|n| (n.flow.as_str(), n.node_id.as_str(), n.runs)).collect::<Vec<_>>(),
        [("billing", "out", 1), ("orders", "out", 1)]
    );
    assert_eq!(store.dashboard(&both, 1).await.expect("dashboard").executions, 2);
    // Everything else: the second minute's two execution rows and two node rows.
    assert_eq!(store.delete_metrics_before(m1 + Duration::minutes(1)).await.expect("delete"), 4);
    assert!(store.flow_metrics(&both).await.expect("flow metrics").is_empty());
}

async fn monitoring_queries_refuse_a_bad_window(store: Store) {
    let m0 = minute_zero();
    let day = MetricsWindow { since: m0, until: m0 + Duration::days(1) };
    let empty = MetricsWindow { since: m0, until: m0 };
    for (window, step) in
        [(day, 0), (empty, 1), (MetricsWindow { since: m0, until: m0 + Duration::days(30) }, 1)]
    {
        let err = store.dashboard(&window, step).await.expect_err("invalid");
        assert!(matches!(err, StoreError::InvalidQuery { .. }), "{err:?}");
    }
    // 1440 points is within the limit; no executions gives zeros, no rates.
    let quiet = store.dashboard(&day, 1).await.expect("dashboard");
    assert_eq!((quiet.points.len(), quiet.executions, quiet.success_rate), (1_440, 0, None));
    assert_eq!(quiet.duration, DurationStats::default());
}

fn failing_rule(name: &str) -> NewAlertRule {
    NewAlertRule {
        name: name.to_owned(),
        condition: AlertCondition::FlowFailing { flow: "orders".into(), failures: 2, window_minutes: 5 },
        webhook_url: Some("http://127.0.0.1:9/hook".into()),
    }
}

async fn alert_rules_are_created_listed_and_deleted(store: Store) {
    let b = store.create_alert_rule(&failing_rule("b-orders")).await.expect("create");
    let custom = NewAlertRule {
        name: "a-custom".into(),
        condition: AlertCondition::Custom { condition: "failed > 3".into(), window_minutes: 10, flow: None },
        webhook_url: None,
    };
    let a = store.create_alert_rule(&custom).await.expect("create");
    let err = store.create_alert_rule(&failing_rule("b-orders")).await.expect_err("taken");
    assert!(matches!(err, StoreError::NameTaken { ref name, .. } if name == "b-orders"), "{err:?}");
    assert_eq!(store.list_alert_rules().await.expect("list"), [a.clone(), b.clone()]);

    // Deleting a rule resolves its open alert, which stays as history.
    let open = NewAlert {
        rule_id: b.id,
        rule_name: b.name.clone(),
        subject: String::new(),
        message: "failing".into(),
        value: Some(2.0),
    };
    store.open_alert(&open).await.expect("open").expect("opened");
    assert!(store.delete_alert_rule(b.id).await.expect("delete"));
    assert!(!store.delete_alert_rule(b.id).await.expect("delete again"));
    assert_eq!(store.list_alert_rules().await.expect("list"), [a]);
    let alerts = store.list_alerts(&AlertQuery::default()).await.expect("alerts");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].resolution.as_deref(), Some("its rule was deleted"));
    assert!(store.list_alerts(&AlertQuery { firing: true, limit: None }).await.expect("firing").is_empty());
}

async fn an_alert_opens_and_resolves_once_however_many_evaluators_race(store: Store) {
    let rule = store.create_alert_rule(&failing_rule("orders failing")).await.expect("create");
    let alert = |subject: &str| NewAlert {
        rule_id: rule.id,
        rule_name: rule.name.clone(),
        subject: subject.to_owned(),
        message: "orders failed 2 times in 5 minutes".into(),
        value: Some(2.0),
    };
    // Eight evaluators see the same condition at once: one opens the alert.
    let first_alert = alert("");
    let opened = futures::future::join_all((0..8).map(|_| store.open_alert(&first_alert))).await;
    let opened: Vec<_> = opened.into_iter().filter_map(|r| r.expect("open")).collect();
    assert_eq!(opened.len(), 1, "{opened:?}");
    let first = &opened[0];
    assert!(first.is_firing());
    assert_eq!((first.message.as_str(), first.value), ("orders failed 2 times in 5 minutes", Some(2.0)));
    // Another subject of the same rule is an alert of its own.
    store.open_alert(&alert("host-b")).await.expect("open").expect("opened");
    let firing = store.list_alerts(&AlertQuery { firing: true, limit: None }).await.expect("firing");
    assert_eq!(firing.iter().map(|a| a.subject.as_str()).collect::<Vec<_>>(), ["host-b", ""]);

    let resolved =
        futures::future::join_all((0..8).map(|_| store.resolve_alert(rule.id, "", "it succeeded"))).await;
    let resolved: Vec<_> = resolved.into_iter().filter_map(|r| r.expect("resolve")).collect();
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!((resolved[0].id, resolved[0].resolution.as_deref()), (first.id, Some("it succeeded")));
    assert!(resolved[0].resolved_at.is_some_and(|at| at >= first.fired_at));
    assert!(store.resolve_alert(rule.id, "", "again").await.expect("resolve").is_none());

    // Firing again after resolving is a new alert; the listing is newest first and limited.
    let again = store.open_alert(&alert("")).await.expect("open").expect("opened again");
    assert_ne!(again.id, first.id);
    let all = store.list_alerts(&AlertQuery::default()).await.expect("all");
    assert_eq!(all.iter().map(|a| a.id).collect::<Vec<_>>()[0], again.id);
    assert_eq!(all.len(), 3);
    assert_eq!(
        store.list_alerts(&AlertQuery { firing: false, limit: Some(2) }).await.expect("page").len(),
        2
    );
}

async fn hourly_steps_read_whole_hours_and_count_the_partial_ones_by_minute(store: Store) {
    // Executions finishing 10 min, 70 min, 130 min and 150 min after the hour of minute zero.
    let hour = DateTime::from_timestamp(minute_zero().timestamp() / 3_600 * 3_600, 0).expect("valid time");
    let offset_ms = (hour - at(0)).num_milliseconds();
    for (minutes, duration_ms) in [(10, 40), (70, 700), (130, 3_000), (150, 40)] {
        let report = timed(
            succeeded_report(Uuid::now_v7(), "orders", 0, 1),
            offset_ms + minutes * 60_000,
            duration_ms,
        );
        start(&store, &report, ExecutionState::Running).await;
        store.record_finished(&report, None).await.expect("record_finished");
    }
    // From 5 min into the first hour to 140 min: part of the first hour, the second whole, part
    // of the third.
    let window = MetricsWindow { since: hour + Duration::minutes(5), until: hour + Duration::minutes(140) };
    let by_hour = store.dashboard(&window, 60).await.expect("hourly dashboard");
    let points: Vec<(i64, u64)> =
        by_hour.points.iter().map(|p| ((p.at - hour).num_minutes(), p.executions)).collect();
    assert_eq!(points, [(0, 1), (60, 1), (120, 1)]);
    // The same executions as the minute rollups give, durations included.
    let by_minute = store.dashboard(&window, 1).await.expect("minute dashboard");
    assert_eq!((by_hour.executions, by_hour.duration.clone()), (3, by_minute.duration.clone()));
    assert_eq!(by_minute.executions, 3);
    // The per-flow table reads the same parts.
    let flows = store.flow_metrics(&window).await.expect("flow metrics");
    assert_eq!(flows.iter().map(|f| (f.flow.as_str(), f.executions)).collect::<Vec<_>>(), [("orders", 3)]);
    assert_eq!(flows[0].duration, by_minute.duration);
    // A window inside one hour reads minutes only.
    let inside = MetricsWindow { since: hour + Duration::minutes(61), until: hour + Duration::minutes(119) };
    assert_eq!(store.dashboard(&inside, 60).await.expect("dashboard").executions, 1);
    // Retention drops an hour only once all its minutes are past the cutoff.
    store.delete_metrics_before(hour + Duration::minutes(90)).await.expect("retention");
    let all = MetricsWindow { since: hour, until: hour + Duration::hours(3) };
    let left = store.dashboard(&all, 60).await.expect("dashboard");
    let points: Vec<(i64, u64)> =
        left.points.iter().map(|p| ((p.at - hour).num_minutes(), p.executions)).collect();
    assert_eq!(points, [(0, 0), (60, 1), (120, 2)]);
}
