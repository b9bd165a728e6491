//! The server mode end to end: real `flow serve` and `flow worker` processes over real HTTP and
//! WebSocket, against the machine's PostgreSQL (127.0.0.1:5432, database `test`) and Redis
//! (127.0.0.1:6379). Each test has its own schemas and Redis key prefix (see `support/server.rs`),
//! so the tests run in parallel with each other and with anything else on the machine.

#[path = "support/server.rs"]
mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Api, Ctx, Proc, chain, encode_segment, example_flow, node, sign_token, uuid_v7_millis};

const ALICE_PW: &str = "alice-password-1";
const BOB_PW: &str = "bob-password-22";
const ROOT_PW: &str = "root-password-333";

/// A flow that finishes at once: one generated row into Collect.
fn trivial_flow(name: &str) -> Value {
    chain(
        name,
        &[
            ("rows", "generate_rows", json!({"count": 1, "fields": {"x": {"value": 1}}})),
            ("out", "collect", json!({})),
        ],
    )
}

async fn count(ctx: &Ctx, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql).fetch_one(&ctx.data).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn exec(ctx: &Ctx, sql: &str) {
    sqlx::raw_sql(sql).execute(&ctx.data).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The admin `root` creates the connection `pg` to the test's data schema.
async fn create_pg_connection(ctx: &Ctx, api: &Api, root: &str) {
    let r = api
        .call("PUT", "/connections/pg", Some(root), Some(&json!({"kind": "postgres", "url": ctx.data_url()})))
        .await;
    assert!(matches!(r.status, 200 | 201 | 204), "PUT /connections/pg: {} {}", r.status, r.text);
    let list = api.get("/connections", root).await;
    let listed = list.expect(200, "GET /connections");
    assert!(
        listed.as_array().is_some_and(|a| a.iter().any(|c| c["name"] == "pg" && c["kind"] == "postgres")),
        "{}",
        list.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_and_worker_run_a_flow_end_to_end() {
    let ctx = Ctx::new().await;
    ctx.add_user("alice", ALICE_PW, false);
    ctx.add_user("root", ROOT_PW, true);
    let server = ctx.serve("serve", 0, &[]).await;
    let _worker = ctx.worker("worker", &[]).await;
    let api = server.api();
    let alice = api.login("alice", ALICE_PW).await;
    let root = api.login("root", ROOT_PW).await;

    exec(
        &ctx,
        "CREATE TABLE users (id bigint PRIMARY KEY, name text, email text, age int, status text);
         INSERT INTO users SELECT i, 'user ' || i, 'user' || i || '@example.com', 18 + i % 60,
             (ARRAY['active', 'inactive', 'pending'])[1 + i % 3] FROM generate_series(1, 3000) AS i;
         CREATE TABLE processed_users (id bigint PRIMARY KEY, full_name text, email text, age int);",
    )
    .await;
    create_pg_connection(&ctx, &api, &root).await;

    let flow = example_flow("case1-postgres-active-users.json", "pg");
    let flow_id = api.create_flow(&alice, &flow).await;
    let mut ws = api.ws(&alice).await;
    let answer = ws.request(&json!({"type": "subscribe", "flow": flow_id})).await;
    assert_eq!(answer["type"], "subscribed", "{answer}");

    let execution_id = api.run(&alice, &flow_id).await;
    let mut node_updates = 0;
    let mut states = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = ws.next_json(left).await.unwrap_or_else(|| {
            panic!("no execution-update `succeeded` within the deadline; execution states seen: {states:?}")
        });
        assert_eq!(message["execution_id"], json!(execution_id), "only this flow's execution: {message}");
        match message["type"].as_str() {
            Some("node-update") => node_updates += 1,
            Some("execution-update") => {
                let state = message["state"].as_str().unwrap_or_default().to_owned();
                assert!(
                    !matches!(state.as_str(), "failed" | "cancelled"),
                    "the execution ended {state}: {message}"
                );
                states.push(state.clone());
                if state == "succeeded" {
                    break;
                }
            }
            _ => {}
        }
    }
    assert!(node_updates > 0, "at least one node-update before the end");

    let detail = api.wait_finished(&alice, &execution_id, Duration::from_secs(60)).await;
    assert_eq!(detail["state"], "succeeded", "{detail:#}");
    assert_eq!(detail["flow_id"], json!(flow_id));
    let nodes = detail["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 4, "{detail:#}");
    for n in nodes {
        assert_eq!(n["state"], "succeeded", "{n:#}");
    }
    let counters = |id: &str| {
        (
            node(&detail, id)["counters"]["records_in"].clone(),
            node(&detail, id)["counters"]["records_out"].clone(),
        )
    };
    assert_eq!(counters("users").1, 3000);
    assert_eq!(counters("active"), (json!(3000), json!(1000)));
    assert_eq!(counters("rename"), (json!(1000), json!(1000)));
    assert_eq!(counters("processed").0, 1000);
    assert_eq!(node(&detail, "processed")["sink"], "committed", "{detail:#}");

    assert_eq!(count(&ctx, "SELECT count(*) FROM processed_users").await, 1000);
    let matching = count(
        &ctx,
        "SELECT count(*) FROM processed_users p JOIN users u USING (id)
         WHERE u.status = 'active' AND p.full_name = u.name AND p.email = u.email AND p.age = u.age",
    )
    .await;
    assert_eq!(matching, 1000, "exactly the active users, renamed");

    for query in [
        "/executions".to_owned(),
        format!("/executions?flow_id={flow_id}"),
        "/executions?state=succeeded".to_owned(),
    ] {
        let list = api.get(&query, &alice).await;
        let listed = list.expect(200, &query);
        assert!(
            listed.as_array().is_some_and(|a| a.iter().any(|e| e["id"] == json!(execution_id))),
            "{query}: {}",
            list.text
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_flow_runs_a_stored_sub_flow_of_its_owner_by_id() {
    let ctx = Ctx::new().await;
    ctx.add_user("alice", ALICE_PW, false);
    ctx.add_user("bob", BOB_PW, false);
    let server = ctx.serve("serve", 1, &[]).await;
    let api = server.api();
    let (alice, bob) = (api.login("alice", ALICE_PW).await, api.login("bob", BOB_PW).await);

    let child = chain(
        "evens",
        &[
            ("in", "input", json!({})),
            ("even", "filter", json!({"conditions": [{"field": "x", "op": "eq", "value": 0}]})),
            ("out", "output", json!({})),
        ],
    );
    let child_id = api.create_flow(&alice, &child).await;
    let parent = |child_id: &str| {
        chain(
            "parent",
            &[
                ("rows", "generate_rows", json!({"count": 10, "fields": {"x": {"cycle": [0, 1]}}})),
                ("sub", "subflow", json!({"flow": child_id})),
                ("out", "collect", json!({})),
            ],
        )
    };
    let parent_id = api.create_flow(&alice, &parent(&child_id)).await;
    let execution = api.run(&alice, &parent_id).await;
    let detail = api.wait_finished(&alice, &execution, Duration::from_secs(60)).await;
    assert_eq!(detail["state"], "succeeded", "{detail:#}");
    let sub = &node(&detail, "sub")["counters"];
    assert_eq!((sub["records_in"].clone(), sub["records_out"].clone()), (json!(10), json!(5)), "{detail:#}");

    // The child is recorded as alice's, under its parent.
    let r = api.get(&format!("/executions?parent={execution}"), &alice).await;
    let children = r.expect(200, "GET /executions?parent=");
    let children = children.as_array().expect("a list");
    assert_eq!(children.len(), 1, "{}", r.text);
    assert_eq!(
        (children[0]["flow"].clone(), children[0]["parent_id"].clone()),
        (json!("evens"), json!(execution))
    );
    let child_detail =
        api.get(&format!("/executions/{}", children[0]["id"].as_str().unwrap_or_default()), &alice).await;
    assert_eq!(child_detail.expect(200, "the child's detail")["state"], "succeeded");

    // Another user's flow cannot be run as a sub-flow: it is as unknown as a missing one.
    let r = api.post("/flows/validate", &bob, &parent(&child_id)).await;
    let report = r.expect(200, "POST /flows/validate");
    let problems = report["problems"].as_array().expect("problems");
    assert!(
        problems
            .iter()
            .any(|p| p["node"] == "sub" && p["message"].as_str().is_some_and(|m| m.contains("no such flow"))),
        "{}",
        r.text
    );
    let bobs = api.create_flow(&bob, &parent(&child_id)).await;
    let r = api.call("POST", &format!("/flows/{bobs}/run"), Some(&bob), None).await;
    assert_eq!(r.status, 422, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn users_are_isolated() {
    let ctx = Ctx::new().await;
    ctx.add_user("alice", ALICE_PW, false);
    ctx.add_user("bob", BOB_PW, false);
    ctx.add_user("root", ROOT_PW, true);
    let server = ctx.serve("serve", 1, &[]).await;
    let api = server.api();
    let (alice, bob, root) = (
        api.login("alice", ALICE_PW).await,
        api.login("bob", BOB_PW).await,
        api.login("root", ROOT_PW).await,
    );

    let flow_id = api.create_flow(&alice, &trivial_flow("alice's flow")).await;
    let first = api.run(&alice, &flow_id).await;
    api.wait_finished(&alice, &first, Duration::from_secs(120)).await;

    // Another user's things do not exist for bob, whatever he tries.
    let flow_path = format!("/flows/{flow_id}");
    let changed = trivial_flow("bob was here");
    for (method, path, body, extra) in [
        ("GET", flow_path.clone(), None, vec![]),
        ("PUT", flow_path.clone(), Some(&changed), vec![("if-match", "\"1\"")]),
        ("DELETE", flow_path.clone(), None, vec![]),
        ("POST", format!("{flow_path}/run"), None, vec![]),
        ("GET", format!("/executions/{first}"), None, vec![]),
        ("POST", format!("/executions/{first}/cancel"), None, vec![]),
        ("POST", format!("/executions/{first}/pause"), None, vec![]),
        ("POST", format!("/executions/{first}/resume"), None, vec![]),
    ] {
        let r = api.call_with(method, &path, Some(&bob), body, &extra).await;
        r.expect_error(404, "not_found", &format!("bob: {method} {path}"));
    }
    let r = api.post("/schedules", &bob, &json!({"flow_id": flow_id, "cron": "0 0 * * * *"})).await;
    r.expect_error(404, "not_found", "bob: a schedule of alice's flow");
    for path in ["/flows", "/executions"] {
        let r = api.get(path, &bob).await;
        assert_eq!(
            r.expect(200, path).as_array().map(Vec::len),
            Some(0),
            "bob sees nothing of alice's: {}",
            r.text
        );
    }
    // Alice's flow is untouched; the admin sees everything.
    let r = api.get(&flow_path, &alice).await;
    assert_eq!(r.expect(200, "alice's flow")["flow"]["name"], "alice's flow");
    api.get(&flow_path, &root).await.expect(200, "admin: GET the flow");
    let r = api.get(&format!("/executions/{first}"), &root).await;
    assert_eq!(r.expect(200, "admin: GET the execution")["state"], "succeeded");
    let r = api.get("/executions", &root).await;
    assert!(
        r.expect(200, "admin list").as_array().is_some_and(|a| a.iter().any(|e| e["id"] == json!(first))),
        "{}",
        r.text
    );

    // The WebSocket: bob cannot subscribe to alice's execution or flow, and "all" is only his.
    let mut bob_ws = api.ws(&bob).await;
    for request in
        [json!({"type": "subscribe", "execution": first}), json!({"type": "subscribe", "flow": flow_id})]
    {
        let answer = bob_ws.request(&request).await;
        assert_eq!(answer["type"], "error", "{request} -> {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| m.contains("not found")), "{answer}");
    }
    assert_eq!(bob_ws.request(&json!({"type": "subscribe", "all": true})).await["type"], "subscribed");
    let mut alice_ws = api.ws(&alice).await;
    assert_eq!(alice_ws.request(&json!({"type": "subscribe", "all": true})).await["type"], "subscribed");
    let mut root_ws = api.ws(&root).await;
    assert_eq!(root_ws.request(&json!({"type": "subscribe", "all": true})).await["type"], "subscribed");

    let second = api.run(&alice, &flow_id).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let m = alice_ws
            .next_json(deadline.saturating_duration_since(Instant::now()))
            .await
            .expect("alice gets her execution's events until it succeeds");
        if m["type"] == "execution-update" && m["execution_id"] == json!(second) && m["state"] == "succeeded"
        {
            break;
        }
    }
    // Events reach every subscriber of a server at the same time; a moment more for stragglers.
    let to_bob = bob_ws.drain(Duration::from_secs(2)).await;
    assert!(to_bob.is_empty(), "bob got alice's events: {to_bob:?}");
    let to_root = root_ws.drain(Duration::from_secs(1)).await;
    assert!(
        to_root.iter().any(|m| m["execution_id"] == json!(second)),
        "the admin subscribed to all sees alice's execution: {to_root:?}"
    );
}

/// Every route of the table in docs/server.md, with its methods.
const ROUTES: &[(&str, &[&str])] = &[
    ("/health", &["get"]),
    ("/metrics", &["get"]),
    ("/auth/login", &["post"]),
    ("/catalog", &["get"]),
    ("/flows", &["get", "post"]),
    ("/flows/{id}", &["get", "put", "delete"]),
    ("/flows/validate", &["post"]),
    ("/flows/{id}/run", &["post"]),
    ("/executions", &["get"]),
    ("/executions/{id}", &["get"]),
    ("/executions/{id}/cancel", &["post"]),
    ("/executions/{id}/pause", &["post"]),
    ("/executions/{id}/resume", &["post"]),
    ("/connections", &["get"]),
    ("/connections/{name}", &["put", "delete"]),
    ("/schedules", &["get", "post"]),
    ("/schedules/{id}", &["get", "put", "delete"]),
    ("/monitoring/system", &["get"]),
    ("/monitoring/health", &["get"]),
    ("/monitoring/dashboard", &["get"]),
    ("/monitoring/flows", &["get"]),
    ("/monitoring/nodes", &["get"]),
    ("/monitoring/alerts", &["get"]),
    ("/monitoring/alert-rules", &["get", "post"]),
    ("/monitoring/alert-rules/{id}", &["delete"]),
    ("/queue", &["get"]),
    ("/queue/api/counts", &["get"]),
    ("/queue/api/jobs", &["get"]),
    ("/queue/api/jobs/{id}/retry", &["post"]),
    ("/queue/api/jobs/{id}/discard", &["post"]),
];

#[tokio::test(flavor = "multi_thread")]
async fn openapi_lists_every_route() {
    let ctx = Ctx::new().await;
    let server = ctx.serve("serve", 0, &[]).await;
    let api = server.api();
    let r = api.call("GET", "/openapi.json", None, None).await;
    let doc = r.expect(200, "GET /openapi.json without a token");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')), "an OpenAPI 3 document: {}", r.text);
    let paths = doc["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (path, methods) in ROUTES {
        for method in *methods {
            if paths.get(*path).and_then(|p| p.get(*method)).is_none() {
                missing.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "missing from /openapi.json: {missing:?}; it has {:?}",
        paths.keys().collect::<Vec<_>>()
    );

    let r = api.raw("GET", "/docs", &[], None).await.expect("GET /docs answers");
    assert_eq!(r.status, 200, "{}", r.text);
    let html = r.header("content-type").is_some_and(|c| c.starts_with("text/html"));
    assert!(
        html && r.text.to_lowercase().contains("<html"),
        "an HTML page: {:?} {}",
        r.header("content-type"),
        &r.text[..r.text.len().min(300)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_clear_json_errors() {
    let ctx = Ctx::new().await;
    ctx.add_user("alice", ALICE_PW, false);
    ctx.add_user("root", ROOT_PW, true);
    let server = ctx.serve("serve", 0, &[]).await;
    let api = server.api();
    let alice = api.login("alice", ALICE_PW).await;
    let root = api.login("root", ROOT_PW).await;
    let flow_id = api.create_flow(&alice, &trivial_flow("target")).await;
    let bearer = format!("Bearer {alice}");
    let admin_bearer = format!("Bearer {root}");
    let json_auth = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let admin_json = [("authorization", admin_bearer.as_str()), ("content-type", "application/json")];

    // Malformed JSON: 400.
    for (path, headers) in [
        ("/flows", &json_auth),
        ("/flows/validate", &json_auth),
        ("/schedules", &json_auth),
        ("/auth/login", &json_auth),
    ] {
        let r = api.raw("POST", path, headers, Some(b"{\"unterminated".to_vec())).await.expect("answer");
        r.expect_error(400, "bad_request", &format!("truncated JSON to {path}"));
    }
    let r = api
        .raw("POST", &format!("/flows/{flow_id}/run"), &json_auth, Some(b"{vars".to_vec()))
        .await
        .expect("answer");
    r.expect_error(400, "bad_request", "malformed run request");

    // Well-formed but wrong: 422.
    let wrong: &[(&str, &str, Value)] = &[
        ("POST", "/flows", json!({"version": "one", "name": "x", "nodes": []})),
        ("POST", "/flows", json!({"version": 1, "name": "x", "nodes": [], "surprise": true})),
        ("POST", "/flows", json!({"version": 1, "name": 42, "nodes": []})),
        ("POST", "/flows", json!([1, 2, 3])),
        ("POST", "/auth/login", json!({"username": "alice", "password": ALICE_PW, "otp": 1})),
        ("POST", "/auth/login", json!({"username": 5, "password": "x"})),
        ("POST", "/schedules", json!({"flow_id": flow_id, "cron": "* * * * * *", "when": "now"})),
        ("POST", "/schedules", json!({"flow_id": flow_id, "cron": "every day"})),
        ("POST", "/schedules", json!({"flow_id": flow_id, "cron": "0 9 * * *", "timezone": "Mars/Olympus"})),
    ];
    for (method, path, body) in wrong {
        let r = api.call(method, path, Some(&alice), Some(body)).await;
        r.expect_error(422, "invalid", &format!("{method} {path} {body}"));
    }
    let r = api.post(&format!("/flows/{flow_id}/run"), &alice, &json!({"vars": 5})).await;
    r.expect_error(422, "invalid", "run with vars that are not an object");
    let r = api.post(&format!("/flows/{flow_id}/run"), &alice, &json!({"variables": {}})).await;
    r.expect_error(422, "invalid", "run with an unknown field");
    for body in [
        json!({"kind": "oracle", "url": "oracle://x"}),
        json!({"kind": "postgres"}),
        json!({"kind": "postgres", "url": "postgres://h/db", "pool": 3}),
    ] {
        let r = api.call("PUT", "/connections/x", Some(&root), Some(&body)).await;
        r.expect_error(422, "invalid", &format!("PUT /connections/x {body}"));
    }
    // An invalid flow document names its problems.
    let bad_flow = chain("bad", &[("a", "limit", json!({"count": -1})), ("b", "warp_drive", json!({}))]);
    let r = api.post("/flows/validate", &alice, &bad_flow).await;
    let report = r.expect(200, "POST /flows/validate");
    assert!(report["problems"].as_array().is_some_and(|p| p.len() >= 2), "{}", r.text);

    // No JSON content type: 415.
    let r = api
        .raw(
            "POST",
            "/flows",
            &[("authorization", bearer.as_str()), ("content-type", "text/plain")],
            Some(b"{}".to_vec()),
        )
        .await
        .expect("answer");
    r.expect_error(415, "unsupported_media_type", "POST /flows as text/plain");

    // Bodies over the limits: 413; a large flow under 2 MiB is fine.
    let mut big = trivial_flow("big");
    big["description"] = json!("x".repeat(3 * 1024 * 1024));
    let r = api
        .raw("POST", "/flows", &json_auth, Some(serde_json::to_vec(&big).expect("JSON")))
        .await
        .expect("answer to 3 MiB");
    r.expect_error(413, "payload_too_large", "a 3 MiB flow");
    big["description"] = json!("x".repeat(1024 * 1024));
    api.post("/flows", &alice, &big).await.expect(201, "a 1 MiB flow is under the 2 MiB limit");
    let connection = json!({"kind": "postgres", "url": format!("postgres://h/db?application_name={}", "y".repeat(100 * 1024))});
    let r = api
        .raw("PUT", "/connections/x", &admin_json, Some(serde_json::to_vec(&connection).expect("JSON")))
        .await
        .expect("answer");
    r.expect_error(413, "payload_too_large", "a 100 KiB connection");

    // Tokens: missing, malformed, expired, forged: 401.
    let me = api.get("/flows", &alice).await;
    me.expect(200, "alice's token works");
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    let sub = uuid::Uuid::now_v7();
    let expired = sign_token(
        ctx.secret.as_bytes(),
        &json!({"sub": sub, "name": "alice", "role": "admin", "exp": now - 3600, "iat": now - 7200}),
    );
    let forged = sign_token(
        b"another-secret-another-secret-0123456789",
        &json!({"sub": sub, "name": "root", "role": "admin", "exp": now + 3600, "iat": now}),
    );
    let tampered = {
        // alice's token with its payload swapped for an admin's, signature kept.
        let parts: Vec<&str> = alice.split('.').collect();
        let admin = sign_token(
            b"x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x",
            &json!({"sub": sub, "name": "alice", "role": "admin", "exp": now + 3600, "iat": now}),
        );
        format!("{}.{}.{}", parts[0], admin.split('.').nth(1).expect("payload"), parts[2])
    };
    for (what, header) in [
        ("no Authorization", None),
        ("not Bearer", Some(format!("Basic {alice}"))),
        ("empty Bearer", Some("Bearer ".to_owned())),
        ("garbage", Some("Bearer not.a.token".to_owned())),
        ("expired", Some(format!("Bearer {expired}"))),
        ("forged", Some(format!("Bearer {forged}"))),
        ("tampered", Some(format!("Bearer {tampered}"))),
    ] {
        for path in ["/flows", "/executions", "/catalog", "/connections", "/queue/api/counts"] {
            let headers: Vec<(&str, &str)> = header.iter().map(|h| ("authorization", h.as_str())).collect();
            let r = api.raw("GET", path, &headers, None).await.expect("answer");
            r.expect_error(401, "unauthorized", &format!("{what}: GET {path}"));
        }
    }
    let expired_header = format!("Bearer {expired}");
    let r =
        api.raw("GET", "/flows", &[("authorization", expired_header.as_str())], None).await.expect("answer");
    assert!(r.text.contains("expired"), "the message says the token expired: {}", r.text);
    let r = api
        .call("POST", "/auth/login", None, Some(&json!({"username": "alice", "password": "wrong-password"})))
        .await;
    r.expect_error(401, "unauthorized", "wrong password");
    // Admin routes: 403 for a user.
    for (method, path) in
        [("GET", "/queue/api/counts"), ("DELETE", "/connections/pg"), ("POST", "/queue/api/jobs/x/retry")]
    {
        api.call(method, path, Some(&alice), None).await.expect_error(
            403,
            "forbidden",
            &format!("alice: {method} {path}"),
        );
    }
    let r = api
        .call(
            "PUT",
            "/connections/pg",
            Some(&alice),
            Some(&json!({"kind": "postgres", "url": "postgres://h/db"})),
        )
        .await;
    r.expect_error(403, "forbidden", "alice: PUT /connections/pg");

    // SQL in names and ids is data.
    let sql = "'; DROP TABLE users; --";
    let seg = encode_segment(sql);
    for (method, path) in [
        ("GET", format!("/flows/{seg}")),
        ("GET", format!("/executions/{seg}")),
        ("POST", format!("/executions/{seg}/cancel")),
        ("GET", format!("/schedules/{seg}")),
    ] {
        api.call(method, &path, Some(&alice), None).await.expect_error(
            400,
            "bad_request",
            &format!("{method} {path}"),
        );
    }
    api.call("DELETE", &format!("/connections/{seg}"), Some(&root), None).await.expect_error(
        404,
        "not_found",
        "DELETE a connection named with SQL",
    );
    api.call("POST", &format!("/queue/api/jobs/{seg}/retry"), Some(&root), None).await.expect_error(
        404,
        "not_found",
        "retry a job named with SQL",
    );
    api.call("POST", &format!("/queue/api/jobs/{seg}/discard"), Some(&root), None).await.expect_error(
        404,
        "not_found",
        "discard a job named with SQL",
    );
    let r = api.call("POST", "/auth/login", None, Some(&json!({"username": sql, "password": sql}))).await;
    r.expect_error(401, "unauthorized", "login as SQL");
    let sql_flow = api.create_flow(&alice, &trivial_flow(sql)).await;
    let r = api.get("/flows", &alice).await;
    assert!(
        r.expect(200, "list")
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f["id"] == json!(sql_flow) && f["name"] == sql)),
        "{}",
        r.text
    );
    let r = api.get(&format!("/executions?flow_id={seg}"), &alice).await;
    r.expect_error(400, "bad_request", "a flow_id filter that is SQL");
    let r = api
        .call(
            "PUT",
            &format!("/connections/{seg}"),
            Some(&root),
            Some(&json!({"kind": "postgres", "url": "postgres://h/db"})),
        )
        .await;
    assert!(
        r.status == 204 || r.status == 422,
        "a connection named with SQL is stored as a name or refused: {} {}",
        r.status,
        r.text
    );
    if r.status == 204 {
        let list = api.get("/connections", &root).await;
        assert!(
            list.expect(200, "connections").as_array().is_some_and(|a| a.iter().any(|c| c["name"] == sql)),
            "{}",
            list.text
        );
        api.call("DELETE", &format!("/connections/{seg}"), Some(&root), None).await.expect(204, "delete it");
    }
    // The store's users table is still there.
    api.login("alice", ALICE_PW).await;

    // Ids that are not UUIDs: 400.
    for (method, path) in [
        ("GET", "/flows/abc"),
        ("PUT", "/flows/123"),
        ("DELETE", "/flows/not-a-uuid"),
        ("POST", "/flows/abc/run"),
        ("GET", "/executions/abc"),
        ("POST", "/executions/abc/cancel"),
        ("POST", "/executions/abc/pause"),
        ("POST", "/executions/abc/resume"),
        ("GET", "/schedules/abc"),
        ("DELETE", "/schedules/abc"),
    ] {
        let body = (method == "PUT").then(|| trivial_flow("x"));
        let r = api.call_with(method, path, Some(&alice), body.as_ref(), &[("if-match", "\"1\"")]).await;
        r.expect_error(400, "bad_request", &format!("{method} {path}"));
    }
    // Bad query strings: 400.
    for path in [
        "/executions?limit=abc",
        "/executions?state=bogus",
        "/executions?before=abc",
        "/executions?surprise=1",
    ] {
        api.get(path, &alice).await.expect_error(400, "bad_request", path);
    }
    let r = api.get("/executions?limit=100000", &alice).await;
    assert!(
        r.status == 200 || (r.status == 400 || r.status == 422) && r.has_error_shape(),
        "limit over 1000: {} {}",
        r.status,
        r.text
    );
    // Unknown routes: 404 with the error body.
    api.get("/nowhere", &alice).await.expect_error(404, "not_found", "GET /nowhere");

    // The rest is gathered, so that one run reports every broken promise at once.
    let mut problems = Vec::new();
    // A known route with a method it does not have.
    for (method, path) in
        [("DELETE", "/catalog"), ("POST", "/executions"), ("PATCH", &*format!("/flows/{flow_id}"))]
    {
        let r = api.call(method, path, Some(&alice), None).await;
        if r.status >= 500 || !r.has_error_shape() {
            problems.push(format!("{method} {path}: {} {:?} has no error body", r.status, r.text));
        }
    }
    // The queue dashboard's listing of a state without jobs.
    for state in ["succeeded", "failed", "dead"] {
        let path = format!("/queue/api/jobs?state={state}");
        let r = api.get(&path, &root).await;
        if r.status != 200 || r.body["total"] != 0 {
            problems.push(format!("admin GET {path} on an empty queue: {} {}", r.status, r.text));
        }
    }
    if let Err(e) = fuzz(&api, &alice, &root, &flow_id) {
        problems.push(format!("fuzzing the API: {e}"));
    }
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}

/// ~200 generated requests over the route table: none gets a 5xx, every 4xx has the error body.
fn fuzz(api: &Api, alice: &str, root: &str, flow_id: &str) -> Result<(), String> {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};

    let routes: Vec<(&str, &[&str])> =
        ROUTES.iter().copied().chain([("/flows/{id}/nope", &["get"][..]), ("/", &["get"][..])]).collect();
    let segment = prop_oneof![
        Just(flow_id.to_owned()),
        Just(uuid::Uuid::now_v7().to_string()),
        Just("'; DROP TABLE users; --".to_owned()),
        Just("..".to_owned()),
        Just("%00".to_owned()),
        Just("%ZZ".to_owned()),
        Just(String::new()),
        "[a-z0-9-]{1,40}",
        "\\PC{0,20}",
        Just("a".repeat(5000)),
    ];
    let json_leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "\\PC{0,30}".prop_map(Value::from),
        Just(json!(flow_id)),
        Just(json!("'; DROP TABLE users; --")),
    ];
    let json_value = json_leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("version".to_owned()),
                    Just("name".to_owned()),
                    Just("nodes".to_owned()),
                    Just("edges".to_owned()),
                    Just("vars".to_owned()),
                    Just("kind".to_owned()),
                    Just("url".to_owned()),
                    Just("flow_id".to_owned()),
                    Just("cron".to_owned()),
                    Just("username".to_owned()),
                    Just("password".to_owned()),
                    "[a-z_]{1,10}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let body = prop_oneof![
        Just(None),
        json_value.prop_map(|v| Some(serde_json::to_vec(&v).expect("JSON"))),
        prop::collection::vec(any::<u8>(), 0..200).prop_map(Some),
        Just(Some(serde_json::to_vec(&trivial_flow("fuzz")).expect("JSON"))),
    ];
    let auth = prop_oneof![
        1 => Just(None),
        3 => Just(Some(format!("Bearer {alice}"))),
        2 => Just(Some(format!("Bearer {root}"))),
        1 => Just(Some("Bearer x.y.z".to_owned())),
        1 => "\\PC{0,40}".prop_map(Some),
    ];
    let content_type = prop_oneof![
        1 => Just(None),
        4 => Just(Some("application/json".to_owned())),
        1 => Just(Some("application/json; charset=utf-8".to_owned())),
        1 => Just(Some("text/plain".to_owned())),
        1 => Just(Some("multipart/form-data".to_owned())),
    ];
    let if_match = prop_oneof![
        Just(None),
        Just(Some("\"1\"".to_owned())),
        Just(Some("W/\"2\"".to_owned())),
        "[ -~]{0,12}".prop_map(Some)
    ];
    let query = prop_oneof![
        Just(String::new()),
        Just("?limit=5".to_owned()),
        Just("?limit=-1".to_owned()),
        Just("?limit=99999999999".to_owned()),
        Just("?state=succeeded".to_owned()),
        Just("?state=exploded".to_owned()),
        Just(format!("?flow_id={flow_id}")),
        Just("?flow_id=x&before=y".to_owned()),
        Just("?state=waiting&limit=2&offset=1".to_owned()),
        "\\?[a-z]{1,6}=[a-z0-9%]{0,8}",
    ];
    // Mostly a method the route has, sometimes any of the four.
    let method = (prop::bool::weighted(0.75), 0..4usize);
    let request = (
        method,
        prop::sample::select(routes),
        segment.clone(),
        segment,
        query,
        body,
        auth,
        content_type,
        if_match,
    );

    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config { cases: 200, failure_persistence: None, ..Config::default() });
    let result = runner.run(&request, |((own, m), (template, methods), seg1, seg2, query, body, auth, content_type, if_match)| {
        let method = if own { methods[m % methods.len()].to_uppercase() } else { ["GET", "POST", "PUT", "DELETE"][m].to_owned() };
        let method = method.as_str();
        let path = template.replacen("{id}", &encode_segment(&seg1), 1).replacen("{name}", &encode_segment(&seg2), 1);
        // A few segments go in raw, as a careless client would send them.
        let path = if seg1 == "%ZZ" || seg1 == "%00" { template.replacen("{id}", &seg1, 1) } else { path };
        let url = format!("{path}{query}");
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        if let Some(c) = &content_type {
            headers.push(("content-type", c));
        }
        if let Some(m) = &if_match {
            headers.push(("if-match", m));
        }
        let answer = tokio::task::block_in_place(|| handle.block_on(api.raw(method, &url, &headers, body.clone())));
        let r = match answer {
            Ok(r) => r,
            // Header values reqwest itself refuses never reach the server.
            Err(e) if e.is_builder() => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("{method} {url}: no answer: {e}"))),
        };
        let shown = || format!("{method} {url} (auth {:?}, content-type {content_type:?}, if-match {if_match:?}, body {:?}) -> {} {}", auth.as_deref().map(|a| &a[..a.len().min(20)]), body.as_deref().map(String::from_utf8_lossy), r.status, r.text);
        if r.status >= 500 {
            return Err(TestCaseError::fail(format!("server error: {}", shown())));
        }
        if (400..500).contains(&r.status) && !r.has_error_shape() {
            return Err(TestCaseError::fail(format!("a 4xx without the error body: {}", shown())));
        }
        Ok(())
    });
    result.map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_flow_updates_get_412() {
    let ctx = Ctx::new().await;
    ctx.add_user("alice", ALICE_PW, false);
    let server = ctx.serve("serve", 0, &[]).await;
    let api = server.api();
    let alice = api.login("alice", ALICE_PW).await;
    let flow_id = api.create_flow(&alice, &trivial_flow("v1")).await;
    let path = format!("/flows/{flow_id}");
    let r = api.get(&path, &alice).await;
    r.expect(200, "GET the flow");
    assert_eq!(r.header("etag"), Some("\"1\""));

    let (a, b) = (trivial_flow("from tab A"), trivial_flow("from tab B"));
    let (ra, rb) = tokio::join!(
        api.call_with("PUT", &path, Some(&alice), Some(&a), &[("if-match", "\"1\"")]),
        api.call_with("PUT", &path, Some(&alice), Some(&b), &[("if-match", "\"1\"")]),
    );
    let (won, lost) = match (ra.status, rb.status) {
        (200, 412) => (&ra, &rb),
        (412, 200) => (&rb, &ra),
        other => panic!("one PUT wins, the other is stale: {other:?}\n{}\n{}", ra.text, rb.text),
    };
    assert_eq!(won.header("etag"), Some("\"2\""), "{}", won.text);
    assert_eq!(won.body["version"], 2);
    lost.expect_error(412, "precondition_failed", "the stale PUT");
    assert_eq!(lost.body["error"]["details"]["current_version"], 2, "{}", lost.text);
    let winner_name = won.body["flow"]["name"].clone();
    let r = api.get(&path, &alice).await;
    assert_eq!(r.expect(200, "GET after")["flow"]["name"], winner_name, "the winner's flow is stored");

    // Sequential stale write, weak ETag, and no If-Match at all.
    api.call_with("PUT", &path, Some(&alice), Some(&a), &[("if-match", "\"1\"")]).await.expect_error(
        412,
        "precondition_failed",
        "stale again",
    );
    let r = api.call_with("PUT", &path, Some(&alice), Some(&a), &[("if-match", "W/\"2\"")]).await;
    r.expect(200, "a weak ETag of the current version");
    assert_eq!(r.header("etag"), Some("\"3\""));
    let r = api.call("PUT", &path, Some(&alice), Some(&b)).await;
    r.expect_error(428, "precondition_required", "PUT without If-Match");
    let r = api.get(&path, &alice).await;
    assert_eq!(r.expect(200, "unchanged")["version"], 3);
}

/// Runs start from each API process's cache of stored flows: a change through one process is
/// run at once by that process and, within a moment (its Redis message), by the others; a
/// deleted flow stops running everywhere. The bound of 5 s is far below the cache's 30 s age,
/// so only the message can pass it.
#[tokio::test(flavor = "multi_thread")]
async fn runs_use_a_flow_s_latest_version_through_every_server() {
    let ctx = Ctx::new().await;
    ctx.add_user("alice", ALICE_PW, false);
    let a = ctx.serve("serve-a", 2, &[]).await;
    let b = ctx.serve("serve-b", 2, &[]).await;
    let (api_a, api_b) = (a.api(), b.api());
    let alice = api_a.login("alice", ALICE_PW).await;
    let named = |name: &str| {
        chain(name, &[("rows", "static_data", json!({"records": [{"x": 1}]})), ("out", "collect", json!({}))])
    };
    let ran = |api: &Api, flow_id: &str| {
        let (api, flow_id, alice) = (api.clone(), flow_id.to_owned(), alice.clone());
        async move {
            let id = api.run(&alice, &flow_id).await;
            api.wait_finished(&alice, &id, Duration::from_secs(60)).await["flow"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    let flow_id = api_a.create_flow(&alice, &named("first")).await;
    let path = format!("/flows/{flow_id}");
    // Both processes have the flow cached now.
    assert_eq!(ran(&api_a, &flow_id).await, "first");
    assert_eq!(ran(&api_b, &flow_id).await, "first");

    // Changed through A: A runs the new version at once, B within a moment.
    api_a
        .call_with("PUT", &path, Some(&alice), Some(&named("second")), &[("if-match", "\"1\"")])
        .await
        .expect(200, "PUT");
    assert_eq!(ran(&api_a, &flow_id).await, "second", "the process that changed the flow");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let name = ran(&api_b, &flow_id).await;
        if name == "second" {
            break;
        }
        assert_eq!(name, "first");
        assert!(Instant::now() < deadline, "the other process still runs the old version");
    }

    // Deleted through B: neither runs it any more.
    api_b.call("DELETE", &path, Some(&alice), None).await.expect(204, "DELETE");
    let run = format!("{path}/run");
    api_b.call("POST", &run, Some(&alice), None).await.expect_error(
        404,
        "not_found",
        "run of a deleted flow, same process",
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while api_a.call("POST", &run, Some(&alice), None).await.status != 404 {
        assert!(Instant::now() < deadline, "the other process still runs a deleted flow");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_worker_s_case1_job_is_reclaimed_and_finished_once() {
    const USERS: i64 = 1_000_000;
    let ctx = Ctx::new().await;
    ctx.add_user("alice", ALICE_PW, false);
    ctx.add_user("root", ROOT_PW, true);
    let lease = [("FLOW_JOB_LEASE_MS", "2000")];
    let server = ctx.serve("serve", 0, &lease).await;
    let api = server.api();
    let alice = api.login("alice", ALICE_PW).await;
    let root = api.login("root", ROOT_PW).await;
    exec(
        &ctx,
        &format!(
            "CREATE TABLE users (id bigint PRIMARY KEY, name text, email text, age int, status text);
             INSERT INTO users SELECT i, 'user ' || i, 'user' || i || '@example.com', 18 + i % 60,
                 (ARRAY['active', 'inactive', 'pending'])[1 + i % 3] FROM generate_series(1, {USERS}) AS i;
             CREATE TABLE processed_users (id bigint PRIMARY KEY, full_name text, email text, age int);"
        ),
    )
    .await;
    let active = count(&ctx, "SELECT count(*) FROM users WHERE status = 'active'").await;
    create_pg_connection(&ctx, &api, &root).await;
    let flow_id = api.create_flow(&alice, &example_flow("case1-postgres-active-users.json", "pg")).await;

    let mut worker_a = ctx.worker("worker-a", &lease).await;
    let mut ws = api.ws(&alice).await;
    let answer = ws.request(&json!({"type": "subscribe", "flow": flow_id})).await;
    assert_eq!(answer["type"], "subscribed", "{answer}");
    let execution_id = api.run(&alice, &flow_id).await;
    // Kill worker A once its sink has taken a good part of the users, well before the end.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = ws.next_json(left).await.expect("progress of the run on worker A");
        assert!(
            !(message["type"] == "execution-update"
                && matches!(message["state"].as_str(), Some("succeeded" | "failed" | "cancelled"))),
            "ended before worker A was killed: {message}"
        );
        if message["node"] == "processed"
            && message["counters"]["records_in"].as_i64().unwrap_or(0) >= active / 4
        {
            break;
        }
    }
    worker_a.kill();
    let state = api.get(&format!("/executions/{execution_id}"), &alice).await;
    assert!(
        !matches!(state.body["state"].as_str(), Some("succeeded" | "failed" | "cancelled")),
        "worker A was killed before the run ended: {}",
        state.text
    );
    assert_eq!(count(&ctx, "SELECT count(*) FROM processed_users").await, 0, "worker A committed nothing");

    let _worker_b = ctx.worker("worker-b", &lease).await;
    let detail = api.wait_finished(&alice, &execution_id, Duration::from_secs(300)).await;
    assert_eq!(detail["state"], "succeeded", "{detail:#}");
    assert_eq!(node(&detail, "users")["counters"]["records_out"], USERS);
    assert_eq!(node(&detail, "processed")["counters"]["records_in"], active);
    assert_eq!(node(&detail, "processed")["sink"], "committed");
    let right = count(
        &ctx,
        "SELECT count(*) FROM processed_users p JOIN users u USING (id)
         WHERE u.status = 'active' AND p.full_name = u.name AND p.email = u.email AND p.age = u.age",
    )
    .await;
    assert_eq!(right, active, "exactly the active users, renamed");
    assert_eq!(count(&ctx, "SELECT count(*) FROM processed_users").await, active, "nothing else");
    // Rows carry the id of the (sub)transaction that wrote them last: a later rewrite would show.
    let versions = "SELECT count(DISTINCT xmin::text) FROM processed_users";
    let written = count(&ctx, versions).await;
    let list = api.get(&format!("/executions?flow_id={flow_id}"), &alice).await;
    assert_eq!(
        list.expect(200, "executions of the flow").as_array().map(Vec::len),
        Some(1),
        "one execution: {}",
        list.text
    );
    // Nothing runs it a third time.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(count(&ctx, versions).await, written, "no run wrote them again");
    // The queue saw it: one job, delivered twice (A, then B after reclaiming it), one success.
    let r = api.get("/queue/api/counts", &root).await;
    let counts = r.expect(200, "queue counts");
    assert_eq!(counts["counts"]["succeeded"], 1, "{}", r.text);
    assert_eq!(counts["metrics"]["reclaimed"], 1, "{}", r.text);
    assert_eq!(counts["metrics"]["deliveries"], 2, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_connection_reaches_running_workers() {
    let ctx = Ctx::new().await;
    ctx.add_user("alice", ALICE_PW, false);
    ctx.add_user("root", ROOT_PW, true);
    let server = ctx.serve("serve", 0, &[]).await;
    let api = server.api();
    let alice = api.login("alice", ALICE_PW).await;
    let root = api.login("root", ROOT_PW).await;
    // The worker starts knowing `pg` as a server that does not answer...
    let nowhere = format!("postgres://postgres@127.0.0.1:{}/test", support::free_port());
    let r = api
        .call("PUT", "/connections/pg", Some(&root), Some(&json!({"kind": "postgres", "url": nowhere})))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let _worker = ctx.worker("worker", &[]).await;
    // ...then an admin fixes it through the API process, and the next run uses the fixed one.
    create_pg_connection(&ctx, &api, &root).await;
    let detail = run_query_on(&api, &alice, "pg").await;
    assert_eq!(detail["state"], "succeeded", "{detail:#}");
    assert_eq!(node(&detail, "out")["counters"]["records_in"], 1);

    // A connection created after the worker started is known to it too.
    let r = api
        .call(
            "PUT",
            "/connections/pg2",
            Some(&root),
            Some(&json!({"kind": "postgres", "url": ctx.data_url()})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let detail = run_query_on(&api, &alice, "pg2").await;
    assert_eq!(detail["state"], "succeeded", "{detail:#}");
}

/// Runs a one-query flow on `connection` and returns the finished execution.
async fn run_query_on(api: &Api, token: &str, connection: &str) -> Value {
    let flow = chain(
        &format!("query on {connection}"),
        &[
            ("one", "postgres_query", json!({"connection": connection, "query": "SELECT 1 AS x"})),
            ("out", "collect", json!({})),
        ],
    );
    let flow_id = api.create_flow(token, &flow).await;
    let execution_id = api.run(token, &flow_id).await;
    api.wait_finished(token, &execution_id, Duration::from_secs(120)).await
}

async fn flow_executions(api: &Api, token: &str, flow_id: &str) -> Vec<Value> {
    let r = api.get(&format!("/executions?flow_id={flow_id}&limit=1000"), token).await;
    r.expect(200, "executions of the flow").as_array().expect("a list").clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn cron_fires_once_per_tick_across_three_servers() {
    let ctx = Ctx::new().await;
    ctx.add_user("alice", ALICE_PW, false);
    ctx.add_user("root", ROOT_PW, true);
    let mut servers: Vec<Proc> = Vec::new();
    for n in 0..3 {
        servers.push(ctx.serve(&format!("serve-{n}"), 1, &[]).await);
    }
    let api = servers[0].api();
    let alice = api.login("alice", ALICE_PW).await;
    let root = api.login("root", ROOT_PW).await;
    exec(&ctx, "CREATE TABLE ticks (execution_id text NOT NULL, at timestamptz NOT NULL DEFAULT now())")
        .await;
    create_pg_connection(&ctx, &api, &root).await;
    // One row per run, naming its execution: a tick run twice would write two.
    let flow = chain(
        "every second",
        &[
            (
                "rows",
                "generate_rows",
                json!({"count": 1, "fields": {"execution_id": {"value": "{{ execution.id }}"}}}),
            ),
            ("write", "postgres_insert", json!({"connection": "pg", "table": "ticks"})),
        ],
    );
    let flow_id = api.create_flow(&alice, &flow).await;
    let r = api.post("/schedules", &alice, &json!({"flow_id": flow_id, "cron": "* * * * * *"})).await;
    let schedule_id = r.expect(201, "POST /schedules")["id"].as_str().expect("schedule id").to_owned();
    let listed = servers[1].api().get("/schedules", &alice).await;
    assert!(
        listed
            .expect(200, "schedules")
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s["id"] == json!(schedule_id))),
        "{}",
        listed.text
    );

    // The servers read schedules every 2 s; from the first run on, ten seconds of ticks.
    let deadline = Instant::now() + Duration::from_secs(60);
    let first_tick = loop {
        let list = flow_executions(&api, &alice, &flow_id).await;
        if let Some(oldest) = list.last() {
            break uuid_v7_millis(oldest["id"].as_str().expect("id"));
        }
        assert!(Instant::now() < deadline, "the schedule never fired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let now_ms = || {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as u64
    };
    let stop_at = first_tick + 9_800;
    tokio::time::sleep(Duration::from_millis(stop_at.saturating_sub(now_ms()))).await;
    let deleted_at = now_ms();
    servers[2]
        .api()
        .call("DELETE", &format!("/schedules/{schedule_id}"), Some(&alice), None)
        .await
        .expect(204, "DELETE the schedule");
    api.get(&format!("/schedules/{schedule_id}"), &alice).await.expect_error(404, "not_found", "deleted");
    // Servers notice within their 2 s reload; then let the last runs finish.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let settle = Instant::now() + Duration::from_secs(60);
    let list = loop {
        let list = flow_executions(&api, &alice, &flow_id).await;
        if list.iter().all(|e| matches!(e["state"].as_str(), Some("succeeded" | "failed" | "cancelled"))) {
            break list;
        }
        assert!(Instant::now() < settle, "runs still unfinished: {list:#?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    let ids: Vec<&str> = list.iter().map(|e| e["id"].as_str().expect("id")).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "execution ids are unique: {ids:?}");
    for e in &list {
        assert_eq!(e["state"], "succeeded", "{e:#}");
    }
    // A tick's execution id carries the tick's time (UUID v7).
    let mut ticks: Vec<u64> = ids.iter().map(|id| uuid_v7_millis(id)).collect();
    ticks.sort_unstable();
    for pair in ticks.windows(2) {
        assert_eq!(pair[1] - pair[0], 1000, "one run per second, none missed or doubled: {ticks:?}");
    }
    let before_delete = ticks.iter().filter(|t| **t <= deleted_at).count();
    assert!(
        (8..=12).contains(&before_delete),
        "10 ± 2 runs in the ten seconds before the delete: {before_delete} ({ticks:?}, deleted at {deleted_at})"
    );
    assert!(
        ticks.len() <= before_delete + 3,
        "firing stopped within the reload after the delete: {ticks:?}, deleted at {deleted_at}"
    );
    // And none started before its tick.
    for e in &list {
        let started: chrono::DateTime<chrono::Utc> =
            e["started_at"].as_str().expect("started_at").parse().expect("a time");
        let tick = uuid_v7_millis(e["id"].as_str().expect("id"));
        assert!(
            started.timestamp_millis() as u64 + 50 >= tick,
            "started at {started}, before its tick {tick}: {e:#}"
        );
    }

    // Each run wrote its one row, once.
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT execution_id, count(*) FROM ticks GROUP BY execution_id")
            .fetch_all(&ctx.data)
            .await
            .expect("ticks");
    let rows: BTreeMap<String, i64> = rows.into_iter().collect();
    assert_eq!(rows.len(), ids.len(), "one row per execution: {rows:?} vs {ids:?}");
    for id in &ids {
        assert_eq!(rows.get(*id), Some(&1), "execution {id} wrote once: {rows:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn server_refuses_to_start_with_clear_errors() {
    let ctx = Ctx::new().await;
    let closed = support::free_port();
    let bind = format!("127.0.0.1:{}", support::free_port());
    // What, variables set, variables unset, names of which the error line has one.
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Vec<&'a str>, &'a [&'a str]);
    let cases: Vec<Case> = vec![
        ("no JWT_SECRET", vec![], vec!["JWT_SECRET"], &["JWT_SECRET"]),
        ("a 10-byte secret", vec![("JWT_SECRET", "0123456789".to_owned())], vec![], &["JWT_SECRET"]),
        (
            "Redis on a closed port",
            vec![("REDIS_URL", format!("redis://127.0.0.1:{closed}"))],
            vec![],
            &["Redis", "REDIS_URL"],
        ),
        (
            "PostgreSQL on a closed port",
            vec![("POSTGRESQL_URL", format!("postgres://postgres@127.0.0.1:{closed}/test"))],
            vec![],
            &["PostgreSQL", "POSTGRESQL_URL"],
        ),
        ("no POSTGRESQL_URL", vec![], vec!["POSTGRESQL_URL"], &["POSTGRESQL_URL"]),
        ("no REDIS_URL", vec![], vec!["REDIS_URL"], &["REDIS_URL"]),
    ];
    for (what, set, unset, names) in cases {
        let mut command = ctx.command(&["serve", "--workers", "0"]);
        command.env("FLOW_BIND", &bind).env_remove("FLOW_LOG");
        for (k, v) in &set {
            command.env(k, v);
        }
        for k in &unset {
            command.env_remove(k);
        }
        let log = ctx.dir.path().join(format!("refuse-{}.log", what.replace(' ', "-")));
        let file = std::fs::File::create(&log).expect("log");
        command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::from(file));
        let mut proc = Proc::from_child(what, command.spawn().expect("flow serve starts"), log);
        let status = proc.wait_exit(Duration::from_secs(90)).await;
        let stderr = proc.log_text();
        let status = status.unwrap_or_else(|| panic!("{what}: still running after 90 s:\n{stderr}"));
        assert!(!status.success(), "{what}: exits non-zero, got {status}:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{what}: no panic:\n{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{what}: one line on stderr:\n{stderr}");
        assert!(names.iter().any(|n| lines[0].contains(n)), "{what}: the line names {names:?}: {stderr}");
        assert!(!lines[0].contains(&ctx.secret), "{what}: the secret is not shown");
    }
}

/// Not in the brief's list: a run started by a schedule can be cancelled like any other
/// (docs/server.md: `POST /executions/{id}/cancel`, 202 for a queued or running execution).
#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_run_can_be_cancelled() {
    let ctx = Ctx::new().await;
    ctx.add_user("alice", ALICE_PW, false);
    let server = ctx.serve("serve", 1, &[]).await;
    let api = server.api();
    let alice = api.login("alice", ALICE_PW).await;
    // 20 batches, 500 ms each: ten seconds.
    let flow = chain(
        "slow",
        &[
            ("rows", "generate_rows", json!({"count": 20_480, "fields": {"x": {"sequence": {"start": 1}}}})),
            ("slow", "delay", json!({"ms": 500})),
            ("out", "collect", json!({})),
        ],
    );
    let flow_id = api.create_flow(&alice, &flow).await;
    let r = api.post("/schedules", &alice, &json!({"flow_id": flow_id, "cron": "* * * * * *"})).await;
    let schedule_id = r.expect(201, "POST /schedules")["id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    let running = loop {
        let list = flow_executions(&api, &alice, &flow_id).await;
        if let Some(e) = list.iter().find(|e| e["state"] == "running") {
            break e["id"].as_str().expect("id").to_owned();
        }
        assert!(Instant::now() < deadline, "no scheduled run is running: {list:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    api.call("DELETE", &format!("/schedules/{schedule_id}"), Some(&alice), None)
        .await
        .expect(204, "DELETE the schedule");
    let r = api.call("POST", &format!("/executions/{running}/cancel"), Some(&alice), None).await;
    assert_eq!(r.status, 202, "cancel a scheduled run: {} {}", r.status, r.text);
    let detail = api.wait_finished(&alice, &running, Duration::from_secs(60)).await;
    assert_eq!(detail["state"], "cancelled", "{detail:#}");
}

/// Runs queued while no worker runs and whose server is then killed with SIGKILL: they live in
/// Redis and PostgreSQL, not in the server, so all of them run once a server comes back.
#[tokio::test(flavor = "multi_thread")]
async fn runs_waiting_when_the_server_is_killed_all_run_after_a_restart() {
    const RUNS: usize = 100;
    let ctx = Ctx::new().await;
    ctx.add_user("alice", ALICE_PW, false);
    let mut server = ctx.serve("api-only", 0, &[]).await;
    let api = server.api();
    let alice = api.login("alice", ALICE_PW).await;
    let flow = chain(
        "tiny",
        &[("rows", "static_data", json!({"records": [{"x": 1}]})), ("out", "collect", json!({}))],
    );
    let flow_id = api.create_flow(&alice, &flow).await;
    let mut ids = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        ids.push(api.run(&alice, &flow_id).await);
    }
    server.kill();

    // The same secret signs the tokens, so alice's still works on the new server.
    let restarted = ctx.serve("restarted", 10, &[]).await;
    let api = restarted.api();
    for id in &ids {
        let detail = api.wait_finished(&alice, id, Duration::from_secs(180)).await;
        assert_eq!(detail["state"], "succeeded", "{detail:#}");
    }
    let list = api.get(&format!("/executions?flow_id={flow_id}&limit=1000"), &alice).await;
    assert_eq!(
        list.expect(200, "executions of the flow").as_array().map(Vec::len),
        Some(RUNS),
        "each ran once"
    );
}

/// A TCP proxy to the machine's PostgreSQL that the test can cut (listener and connections
/// gone, so connecting is refused) and restore on the same port.
struct PgProxy {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl PgProxy {
    async fn start(port: u16) -> PgProxy {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("proxy port");
        let upstream = {
            let url = support::postgres();
            let host =
                url.split('@').nth(1).and_then(|rest| rest.split('/').next()).unwrap_or("127.0.0.1:5432");
            host.to_owned()
        };
        let task = tokio::spawn(async move {
            // Dropping this future (abort) drops the set, which aborts every connection.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        PgProxy { task: Some(task) }
    }

    async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// PostgreSQL gone for a moment: requests that need it get 503 with a clear JSON error (never a
/// hang or a 500), and the server and its worker carry on once it is back.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_gone_for_a_moment_gives_503_then_service_resumes() {
    let ctx = Ctx::new().await;
    ctx.add_user("alice", ALICE_PW, false);
    let port = support::free_port();
    let mut proxy = PgProxy::start(port).await;
    let direct = ctx.store_url();
    let proxied = direct.replacen(
        direct.split('@').nth(1).and_then(|rest| rest.split('/').next()).unwrap_or("127.0.0.1:5432"),
        &format!("127.0.0.1:{port}"),
        1,
    );
    let server = ctx.serve("serve", 2, &[("POSTGRESQL_URL", proxied.as_str())]).await;
    let api = server.api();
    let alice = api.login("alice", ALICE_PW).await;
    let flow = chain(
        "tiny",
        &[("rows", "static_data", json!({"records": [{"x": 1}]})), ("out", "collect", json!({}))],
    );
    let flow_id = api.create_flow(&alice, &flow).await;
    let first = api.run(&alice, &flow_id).await;
    assert_eq!(api.wait_finished(&alice, &first, Duration::from_secs(60)).await["state"], "succeeded");

    proxy.cut().await;
    let down = api.get("/executions", &alice).await;
    down.expect_error(503, "unavailable", "listing while PostgreSQL is gone");
    assert!(down.body["error"]["message"].as_str().is_some_and(|m| m.contains("database")), "{}", down.text);
    let health = api.get("/health", &alice).await;
    assert_eq!(health.status, 503, "{}", health.text);
    assert_eq!(health.body["postgres"]["ok"], false, "{}", health.text);

    let _proxy = PgProxy::start(port).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while api.get("/executions", &alice).await.status != 200 {
        assert!(std::time::Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let second = api.run(&alice, &flow_id).await;
    assert_eq!(api.wait_finished(&alice, &second, Duration::from_secs(60)).await["state"], "succeeded");
}

/// A Redis of the test's own on a free port, keeping what it acknowledged in an append-only file,
/// stopped by its pid.
struct OwnRedis {
    child: std::process::Child,
}

impl OwnRedis {
    async fn start(port: u16, dir: &std::path::Path) -> OwnRedis {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        // Owned before waiting, so that a failed wait still stops it.
        let redis = OwnRedis { child };
        let url = format!("redis://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let up = async {
                let mut conn =
                    redis::Client::open(url.as_str()).ok()?.get_multiplexed_async_connection().await.ok()?;
                redis::cmd("PING").query_async::<String>(&mut conn).await.ok()
            };
            if up.await.is_some() {
                return redis;
            }
            assert!(std::time::Instant::now() < deadline, "redis-server did not answer");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Redis killed with SIGKILL while a worker runs a wave of runs and more wait, then restarted:
/// the server and the worker reconnect by themselves and every run ends succeeded.
#[tokio::test(flavor = "multi_thread")]
async fn runs_survive_a_redis_restart_under_load() {
    const RUNS: usize = 30;
    let ctx = Ctx::new().await;
    ctx.add_user("alice", ALICE_PW, false);
    let port = support::free_port();
    let dir = tempfile::tempdir().expect("redis dir");
    let url = format!("redis://127.0.0.1:{port}");
    let mut redis = OwnRedis::start(port, dir.path()).await;
    let env = [("REDIS_URL", url.as_str())];
    let server = ctx.serve("serve", 0, &env).await;
    let _worker = ctx.worker("worker", &env).await;
    let api = server.api();
    let alice = api.login("alice", ALICE_PW).await;
    // Ten at a time (MAX_CONCURRENT_EXECUTIONS), a second each: three waves.
    let flow = chain(
        "slowish",
        &[
            ("rows", "static_data", json!({"records": [{"x": 1}]})),
            ("wait", "delay", json!({"ms": 1000})),
            ("out", "collect", json!({})),
        ],
    );
    let flow_id = api.create_flow(&alice, &flow).await;
    let mut ids = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        ids.push(api.run(&alice, &flow_id).await);
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _redis = OwnRedis::start(port, dir.path()).await;
    for id in &ids {
        let detail = api.wait_finished(&alice, id, Duration::from_secs(180)).await;
        assert_eq!(detail["state"], "succeeded", "{detail:#}");
    }
}

/// `query` through Prometheus's HTTP API: each series' labels (as `k=v,...`, sorted) and value.
async fn promql(http: &reqwest::Client, base: &str, query: &str) -> BTreeMap<String, f64> {
    let url = format!("{base}/api/v1/query?query={}", encode_segment(query));
    let Ok(answer) = http.get(&url).send().await else { return BTreeMap::new() };
    let Ok(body) = answer.json::<Value>().await else { return BTreeMap::new() };
    let mut series = BTreeMap::new();
    for s in body["data"]["result"].as_array().into_iter().flatten() {
        let labels: Vec<String> = s["metric"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        let value = s["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
        series.insert(labels.join(","), value);
    }
    series
}

/// `promtool check metrics` on an exposition.
fn promtool_accepts(what: &str, exposition: &str) {
    use std::io::Write as _;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) runs");
    child.stdin.take().expect("stdin").write_all(exposition.as_bytes()).expect("exposition written");
    let out = child.wait_with_output().expect("promtool ends");
    assert!(
        out.status.success(),
        "promtool check metrics refused {what}: {}{}\n{exposition}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server and a worker (its metrics on FLOW_METRICS_BIND) run flows; a real Prometheus
/// scrapes both with the METRICS_TOKEN and its PromQL answers count exactly the executions run,
/// per flow and state; promtool accepts both expositions.
#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_the_executions_the_server_and_worker_ran() {
    const TOKEN: &str = "metrics-token-for-the-test";
    let ctx = Ctx::new().await;
    ctx.add_user("alice", ALICE_PW, false);
    let server = ctx.serve("serve", 1, &[("METRICS_TOKEN", TOKEN)]).await;
    let worker_bind = format!("127.0.0.1:{}", support::free_port());
    let _worker =
        ctx.worker("worker", &[("METRICS_TOKEN", TOKEN), ("FLOW_METRICS_BIND", worker_bind.as_str())]).await;
    let api = server.api();
    let alice = api.login("alice", ALICE_PW).await;

    let ok = api.create_flow(&alice, &trivial_flow("metrics-ok")).await;
    let broken = api
        .create_flow(
            &alice,
            &chain(
                "metrics-broken",
                &[
                    ("rows", "generate_rows", json!({"count": 5, "fields": {"x": {"value": 1}}})),
                    ("breaks", "fail", json!({"after_records": 2})),
                    ("out", "collect", json!({})),
                ],
            ),
        )
        .await;
    let mut runs = Vec::new();
    for flow in [&ok, &ok, &ok, &broken] {
        runs.push(api.run(&alice, flow).await);
    }
    for (i, id) in runs.iter().enumerate() {
        let detail = api.wait_finished(&alice, id, Duration::from_secs(60)).await;
        assert_eq!(detail["state"], if i < 3 { "succeeded" } else { "failed" }, "{detail:#}");
    }

    // The token is asked for, and the expositions are valid.
    let r = api.raw("GET", "/metrics", &[], None).await.expect("GET /metrics answers");
    assert_eq!(r.status, 401, "no token: {}", r.text);
    let auth = format!("Bearer {TOKEN}");
    let r =
        api.raw("GET", "/metrics", &[("Authorization", &auth)], None).await.expect("GET /metrics answers");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/plain")), "{:?}", r.headers);
    assert!(r.text.contains("flow_queue_enqueued_total 4"), "the queue's figures: {}", r.text);
    promtool_accepts("the server's /metrics", &r.text);
    let worker_api = Api::new(&format!("http://{worker_bind}"));
    let r = worker_api.raw("GET", "/metrics", &[], None).await.expect("the worker's /metrics answers");
    assert_eq!(r.status, 401, "no token: {}", r.text);
    let r = worker_api
        .raw("GET", "/metrics", &[("Authorization", &auth)], None)
        .await
        .expect("the worker's /metrics answers");
    assert_eq!(r.status, 200, "{}", r.text);
    promtool_accepts("the worker's /metrics", &r.text);

    // A real Prometheus scraping both processes every second.
    let port = support::free_port();
    let config = ctx.dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: flow\n    \
             authorization:\n      credentials: {TOKEN}\n    static_configs:\n      - targets: ['{}', '{worker_bind}']\n",
            server.base().trim_start_matches("http://")
        ),
    )
    .expect("prometheus.yml");
    let log = ctx.dir.path().join("prometheus.log");
    let file = std::fs::File::create(&log).expect("log file");
    let child = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", ctx.dir.path().join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(file.try_clone().expect("log file")))
        .stderr(std::process::Stdio::from(file))
        .spawn()
        .expect("prometheus (Debian package prometheus) starts");
    let _prometheus = Proc::from_child("prometheus", child, log);

    let http =
        reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().expect("client");
    let base = format!("http://127.0.0.1:{port}");
    let want: BTreeMap<String, f64> = BTreeMap::from([
        ("flow=metrics-broken,state=failed".to_owned(), 1.0),
        ("flow=metrics-ok,state=succeeded".to_owned(), 3.0),
    ]);
    let query = "sum by (flow, state) (flow_executions_total)";
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = BTreeMap::new();
    while Instant::now() < deadline {
        got = promql(&http, &base, query).await;
        if got == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(got, want, "{query} through Prometheus");
    let up = promql(&http, &base, "up").await;
    assert_eq!(up.values().copied().collect::<Vec<f64>>(), [1.0, 1.0], "both targets scraped: {up:?}");
    let started = promql(&http, &base, "sum(flow_executions_started_total)").await;
    assert_eq!(started.values().copied().collect::<Vec<f64>>(), [4.0], "{started:?}");
    let enqueued = promql(&http, &base, "flow_queue_enqueued_total").await;
    assert_eq!(
        enqueued.values().copied().collect::<Vec<f64>>(),
        [4.0],
        "only the server reports the queue: {enqueued:?}"
    );
}

/// A flow of three nodes whose middle one is `middle`: 10 generated rows into Collect.
fn three_node_flow(name: &str, middle: Value) -> Value {
    chain(
        name,
        &[
            ("rows", "generate_rows", json!({"count": 10, "fields": {"x": {"value": 1}}})),
            ("mid", middle["type"].as_str().unwrap_or_default(), middle["params"].clone()),
            ("out", "collect", json!({})),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn monitoring_counts_every_user_s_runs_for_admins_only() {
    let ctx = Ctx::new().await;
    ctx.add_user("alice", ALICE_PW, false);
    ctx.add_user("root", ROOT_PW, true);
    let server = ctx.serve("serve", 2, &[]).await;
    let api = server.api();
    let alice = api.login("alice", ALICE_PW).await;
    let root = api.login("root", ROOT_PW).await;

    let ok = api
        .create_flow(&alice, &three_node_flow("ok", json!({"type": "limit", "params": {"count": 4}})))
        .await;
    let fails = api
        .create_flow(
            &root,
            &three_node_flow(
                "fails",
                json!({"type": "fail", "params": {"after_records": 3, "message": "boom"}}),
            ),
        )
        .await;
    for (token, flow_id, state) in
        [(&alice, &ok, "succeeded"), (&alice, &ok, "succeeded"), (&root, &fails, "failed")]
    {
        let id = api.run(token, flow_id).await;
        let detail = api.wait_finished(token, &id, Duration::from_secs(60)).await;
        assert_eq!(detail["state"], state, "{detail:#}");
    }

    for path in [
        "/monitoring/system",
        "/monitoring/health",
        "/monitoring/dashboard",
        "/monitoring/flows",
        "/monitoring/nodes",
    ] {
        api.get(path, &alice).await.expect(403, path);
    }
    api.get("/monitoring/flows?window=3x", &root).await.expect(400, "a bad window");
    api.get("/monitoring/dashboard?window=30d&step=1", &root).await.expect(400, "too many points");

    let dashboard_resp = api.get("/monitoring/dashboard?window=1h", &root).await;
    let dashboard = dashboard_resp.expect(200, "dashboard");
    let counts = |v: &Value| {
        ["executions", "succeeded", "failed", "cancelled"].map(|k| v[k].as_u64().unwrap_or(u64::MAX))
    };
    assert_eq!(counts(dashboard), [3, 2, 1, 0], "{dashboard:#}");
    assert_eq!(dashboard["step_minutes"], 1);
    let points = dashboard["points"].as_array().expect("points");
    assert!((60..=61).contains(&points.len()), "{}", points.len());
    assert_eq!(points.iter().map(|p| p["executions"].as_u64().unwrap_or_default()).sum::<u64>(), 3);

    let flows_resp = api.get("/monitoring/flows", &root).await;
    let flows = flows_resp.expect(200, "flows");
    let flows = flows.as_array().expect("flows");
    assert_eq!(
        flows.iter().map(|f| f["flow"].as_str().unwrap_or_default()).collect::<Vec<_>>(),
        ["fails", "ok"]
    );
    assert_eq!((counts(&flows[0]), flows[0]["error_rate"].as_f64()), ([1, 0, 1, 0], Some(1.0)));
    assert_eq!((counts(&flows[1]), flows[1]["records_out"].as_u64()), ([2, 2, 0, 0], Some(2 * (10 + 4))));

    let nodes_resp = api.get("/monitoring/nodes?flow=ok&window=24h", &root).await;
    let nodes = nodes_resp.expect(200, "nodes");
    let figures: Vec<(String, [u64; 4])> = nodes
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            let id = n["node_id"].as_str().unwrap_or_default().to_owned();
            (id, ["runs", "failed", "records_in", "records_out"].map(|k| n[k].as_u64().unwrap_or(u64::MAX)))
        })
        .collect();
    assert_eq!(
        figures,
        [
            ("mid".to_owned(), [2, 0, 20, 8]),
            ("out".to_owned(), [2, 0, 8, 0]),
            ("rows".to_owned(), [2, 0, 0, 20]),
        ]
    );

    let health_resp = api.get("/monitoring/health", &root).await;
    let health = health_resp.expect(200, "health");
    assert_eq!(
        (&health["store"]["ok"], &health["redis"]["ok"], &health["ok"]),
        (&json!(true), &json!(true), &json!(true)),
        "{health:#}"
    );
    let system_resp = api.get("/monitoring/system", &root).await;
    let system = system_resp.expect(200, "system");
    assert!(system["memory_total_bytes"].as_u64().is_some_and(|m| m > 0), "{system:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_fires_to_admins_over_the_websocket_once_and_is_listed() {
    let ctx = Ctx::new().await;
    ctx.add_user("alice", ALICE_PW, false);
    ctx.add_user("root", ROOT_PW, true);
    // Two API processes judging the same rules: the store lets one of them fire the alert.
    let server = ctx.serve("serve", 1, &[("ALERT_INTERVAL_SECONDS", "1")]).await;
    let _other = ctx.serve("serve-2", 0, &[("ALERT_INTERVAL_SECONDS", "1")]).await;
    let api = server.api();
    let alice = api.login("alice", ALICE_PW).await;
    let root = api.login("root", ROOT_PW).await;

    let mut root_ws = api.ws(&root).await;
    let answer = root_ws.request(&json!({"type": "subscribe", "alerts": true})).await;
    assert_eq!(answer["type"], "subscribed", "{answer}");
    let mut alice_ws = api.ws(&alice).await;
    let answer = alice_ws.request(&json!({"type": "subscribe", "alerts": true})).await;
    assert_eq!(
        (answer["type"].as_str(), answer["message"].as_str()),
        (Some("error"), Some("alerts are for admins"))
    );

    let rule = json!({
        "name": "broken failing",
        "condition": {"kind": "flow_failing", "flow": "alerts-broken", "failures": 1, "window_minutes": 5},
    });
    api.post("/monitoring/alert-rules", &alice, &rule).await.expect_error(403, "forbidden", "a user's rule");
    let bad = json!({"name": "bad", "condition": {"kind": "flow_failing", "flow": "x", "failures": 1, "window_minutes": 0}});
    let refused = api.post("/monitoring/alert-rules", &root, &bad).await;
    refused.expect_error(422, "invalid", "a window of 0 minutes");
    let message = refused.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("alert rule `bad`: window_minutes: 0"), "{message}");
    let unknown =
        json!({"name": "bad", "condition": {"kind": "memory_above", "percent": 80}, "severity": "high"});
    let refused = api.post("/monitoring/alert-rules", &root, &unknown).await;
    refused.expect_error(422, "invalid", "an unknown field");
    assert!(refused.text.contains("severity"), "{}", refused.text);
    let created = api.post("/monitoring/alert-rules", &root, &rule).await;
    let rule_id = created.expect(201, "POST /monitoring/alert-rules")["id"].as_str().expect("id").to_owned();
    api.post("/monitoring/alert-rules", &root, &rule).await.expect_error(409, "conflict", "broken failing");
    let rules = api.get("/monitoring/alert-rules", &root).await;
    assert_eq!(rules.expect(200, "rules").as_array().map(Vec::len), Some(1));

    let broken = api
        .create_flow(
            &alice,
            &chain(
                "alerts-broken",
                &[
                    ("rows", "generate_rows", json!({"count": 5, "fields": {"x": {"value": 1}}})),
                    ("breaks", "fail", json!({"after_records": 2})),
                    ("out", "collect", json!({})),
                ],
            ),
        )
        .await;
    let id = api.run(&alice, &broken).await;
    api.wait_finished(&alice, &id, Duration::from_secs(60)).await;

    let mut alerts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while alerts.is_empty() && Instant::now() < deadline {
        let m = root_ws.next_json(Duration::from_secs(1)).await;
        alerts.extend(m.filter(|m| m["type"] == "alert"));
    }
    // Both servers judge every second: a few more rounds, and still one alert.
    alerts.extend(root_ws.drain(Duration::from_secs(3)).await.into_iter().filter(|m| m["type"] == "alert"));
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(
        (alerts[0]["change"].as_str(), alerts[0]["alert"]["rule_name"].as_str()),
        (Some("fired"), Some("broken failing"))
    );
    let to_alice = alice_ws.drain(Duration::from_millis(500)).await;
    assert!(to_alice.iter().all(|m| m["type"] != "alert"), "{to_alice:?}");

    api.get("/monitoring/alerts", &alice).await.expect(403, "a user's alerts");
    let firing = api.get("/monitoring/alerts?firing=true", &root).await;
    let firing = firing.expect(200, "firing alerts").as_array().cloned().expect("alerts");
    assert_eq!(firing.len(), 1);
    assert_eq!(firing[0]["id"], alerts[0]["alert"]["id"]);
    assert!(firing[0]["resolved_at"].is_null());

    let path = format!("/monitoring/alert-rules/{rule_id}");
    assert_eq!(api.call("DELETE", &path, Some(&root), None).await.status, 204);
    api.call("DELETE", &path, Some(&root), None).await.expect_error(404, "not_found", "alert rule");
    let firing = api.get("/monitoring/alerts?firing=true", &root).await;
    assert_eq!(firing.expect(200, "firing alerts").as_array().map(Vec::len), Some(0));
    let all = api.get("/monitoring/alerts", &root).await;
    let all = all.expect(200, "alerts").as_array().cloned().expect("alerts");
    assert_eq!(all[0]["resolution"], "its rule was deleted");
}
