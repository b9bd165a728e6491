//! Server figures (`bench/run --server`): real `flow serve` and `flow worker` processes (the
//! release `flow` binary) on the local PostgreSQL, in a schema of their own, and Redis, under a
//! key prefix of their own, with the in-run limits of their parts beside them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// A process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One deployment: store schema, Redis prefix, secret, port, and the bench's own connection to
/// the schema.
struct Deployment {
    env: Vec<(&'static str, String)>,
    base: String,
    schema: String,
    admin_url: String,
    db: sqlx::PgPool,
}

impl Deployment {
    async fn new(admin_url: &str, tag: &str) -> Result<Deployment> {
        let id = format!("bench_{tag}_{}", std::process::id());
        psql(
            admin_url,
            &format!(
                "SET client_min_messages = warning; DROP SCHEMA IF EXISTS {id} CASCADE; CREATE SCHEMA {id}"
            ),
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-c%20search_path%3D{id}");
        // One connection kept for the bench's queries: a psql process (and a new backend) per
        // poll took a tenth of the machine while the server drained its queue.
        let db = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&url).await?;
        let env = vec![
            ("POSTGRESQL_URL", url),
            ("REDIS_URL", std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())),
            ("JWT_SECRET", "bench-secret-0123456789-0123456789-0123".into()),
            ("FLOW_QUEUE_PREFIX", format!("{id}:")),
            ("FLOW_BIND", format!("127.0.0.1:{port}")),
            ("MAX_CONCURRENT_EXECUTIONS", "50".into()),
            ("FLOW_JOB_LEASE_MS", "2000".into()),
        ];
        Ok(Deployment {
            env,
            base: format!("http://127.0.0.1:{port}"),
            schema: id,
            admin_url: admin_url.to_owned(),
            db,
        })
    }

    fn spawn(&self, flow: &Path, args: &[&str]) -> Result<Process> {
        let child = Command::new(flow)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", flow.display()))?;
        Ok(Process(child))
    }

    fn add_admin(&self, flow: &Path) -> Result<()> {
        let mut child = Command::new(flow)
            .args(["users", "add", "bench", "--admin"])
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        child.stdin.take().context("stdin")?.write_all(b"bench-password\n")?;
        if !child.wait()?.success() {
            bail!("flow users add failed");
        }
        Ok(())
    }

    /// Waits for `/health`, logs in and returns a client with the token.
    async fn client(&self) -> Result<Api> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while http.get(format!("{}/health", self.base)).send().await.map(|r| r.status().is_success()).ok()
            != Some(true)
        {
            if Instant::now() > deadline {
                bail!("the server did not answer /health within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let login: Value = http
            .post(format!("{}/auth/login", self.base))
            .json(&json!({"username": "bench", "password": "bench-password"}))
            .send()
            .await?
            .json()
            .await?;
        let token = login["token"].as_str().context("a token")?.to_owned();
        Ok(Api { http, base: self.base.clone(), token })
    }

    /// A number from the store's schema (`query` selects one float8, or NULL for 0).
    async fn sql(&self, query: &str) -> Result<f64> {
        let value: Option<f64> =
            sqlx::query_scalar(query).fetch_one(&self.db).await.context(query.to_owned())?;
        Ok(value.unwrap_or(0.0))
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = psql(
            &self.admin_url,
            &format!("SET client_min_messages = warning; DROP SCHEMA IF EXISTS {} CASCADE", self.schema),
        );
        let _ = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "redis-cli --scan --pattern '{}:*' | xargs -r redis-cli del >/dev/null",
                    self.schema
                ),
            ])
            .status();
    }
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let response =
            self.http.post(format!("{}{path}", self.base)).bearer_auth(&self.token).json(body).send().await?;
        let status = response.status();
        let value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path}: {status} {value}");
        }
        Ok(value)
    }

    async fn get(&self, path: &str) -> Result<Value> {
        Ok(self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .json()
            .await?)
    }

    async fn flow(&self, flow: Value) -> Result<String> {
        Ok(self.post("/flows", &flow).await?["id"].as_str().context("a flow id")?.to_owned())
    }
}

fn psql(url: &str, sql: &str) -> Result<()> {
    let status = Command::new("psql").args([url, "-Xq", "-v", "ON_ERROR_STOP=1", "-c", sql]).status()?;
    if !status.success() {
        bail!("psql failed: {sql}");
    }
    Ok(())
}

fn trivial_flow(name: &str) -> Value {
    json!({"version": 1, "name": name, "nodes": [
        {"id": "one", "type": "static_data", "params": {"records": [{"x": 1}]}}
    ], "edges": []})
}

/// Executions of `flow_id` not finished yet; through the index on state, so a poll reads only
/// those, not every execution of the flow.
async fn unfinished(d: &Deployment, flow_id: &str) -> Result<f64> {
    d.sql(&format!(
        "SELECT count(*)::float8 FROM executions \
         WHERE state IN ('queued', 'running', 'paused') AND flow_id = '{flow_id}'"
    ))
    .await
}

async fn wait_done(d: &Deployment, flow_id: &str, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    while unfinished(d, flow_id).await? > 0.0 {
        if Instant::now() > deadline {
            bail!("executions still unfinished after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// XADD + XREADGROUP + XACK of one small job, one client, for `seconds`: the queue's floor.
async fn redis_roundtrips_per_s(seconds: f64, prefix: &str) -> Result<f64> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut conn = redis::Client::open(url)?.get_multiplexed_async_connection().await?;
    let stream = format!("{prefix}:roundtrip");
    let _: redis::Value = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("g")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await?;
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        let _: String = redis::cmd("XADD")
            .arg(&stream)
            .arg("*")
            .arg("job")
            .arg("{\"x\":1}")
            .query_async(&mut conn)
            .await?;
        let read: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("c")
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query_async(&mut conn)
            .await?;
        for key in read.keys {
            for entry in key.ids {
                let _: i64 =
                    redis::cmd("XACK").arg(&stream).arg("g").arg(&entry.id).query_async(&mut conn).await?;
            }
        }
        n += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let _: i64 = redis::cmd("DEL").arg(&stream).query_async(&mut conn).await?;
    Ok(rate)
}

/// The server's resident memory in KiB.
fn rss_kb(process: &Process) -> f64 {
    std::fs::read_to_string(format!("/proc/{}/status", process.0.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0.0)
}

/// p99 of (arrival - event time) over every message 100 clients get while one execution of
/// `rows` records runs, and how much the server's RSS grew meanwhile.
async fn ws_lag(api: &Api, server: &Process, rows: u64) -> Result<(f64, f64)> {
    use futures::{SinkExt, StreamExt};
    let flow = api
        .flow(json!({"version": 1, "name": "watched", "nodes": [
            {"id": "rows", "type": "generate_rows", "params": {"count": rows, "fields": {"n": {"sequence": {"start": 1}}}}},
            {"id": "out", "type": "collect", "params": {"max_records": 0}}
        ], "edges": [{"from": {"node": "rows", "port": "out"}, "to": {"node": "out", "port": "in"}}]}))
        .await?;
    let ws_url = format!("{}/executions?token={}", api.base.replacen("http://", "ws://", 1), api.token);
    let mut clients = Vec::new();
    for _ in 0..100 {
        let (mut socket, _) = tokio_tungstenite::connect_async(ws_url.as_str()).await?;
        socket.next().await;
        socket
            .send(tokio_tungstenite::tungstenite::Message::Text(
                json!({"type": "subscribe", "flow": flow}).to_string().into(),
            ))
            .await?;
        socket.next().await;
        clients.push(socket);
    }
    let before = rss_kb(server);
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                let mut lags = Vec::new();
                while let Ok(Some(Ok(message))) =
                    tokio::time::timeout(Duration::from_secs(60), socket.next()).await
                {
                    let Ok(text) = message.into_text() else { continue };
                    let Ok(event) = serde_json::from_str::<Value>(&text) else { continue };
                    if let Some(at) =
                        event["at"].as_str().and_then(|a| chrono::DateTime::parse_from_rfc3339(a).ok())
                    {
                        lags.push(
                            (chrono::Utc::now() - at.with_timezone(&chrono::Utc))
                                .num_microseconds()
                                .unwrap_or(0) as f64
                                / 1e3,
                        );
                    }
                    if event["type"] == "execution-update"
                        && matches!(event["state"].as_str(), Some("succeeded" | "failed"))
                    {
                        break;
                    }
                }
                lags
            })
        })
        .collect();
    api.post(&format!("/flows/{flow}/run"), &json!({})).await?;
    let mut peak = before;
    let mut lags = Vec::new();
    for reader in readers {
        peak = peak.max(rss_kb(server));
        lags.extend(reader.await.unwrap_or_default());
    }
    if lags.is_empty() {
        bail!("no WebSocket client got an event");
    }
    lags.sort_by(f64::total_cmp);
    let p99 = lags[(lags.len() * 99 / 100).min(lags.len() - 1)];
    Ok((p99, (peak.max(rss_kb(server)) - before).max(0.0)))
}

/// The history writes of trivial executions as the server makes them (the API's queued row,
/// the worker's finished report with its node: a run that ends within 250 ms is never recorded
/// as running), 50 executions at a time through one store, whose writers batch them: executions
/// and rows (the execution's, its node's) written per second.
async fn history_writes(d: &Deployment) -> Result<(f64, f64)> {
    use flow_runtime::{Counters, ExecutionReport, ExecutionState, NodeReport, NodeState};
    const WRITERS: usize = 50;
    const ROWS_PER_EXECUTION: f64 = 2.0;
    let store = flow_store::Store::connect_postgres(&d.env[0].1).await?;
    let started = Instant::now();
    let until = started + Duration::from_secs(5);
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut n = 0u32;
                while Instant::now() < until {
                    let id = uuid::Uuid::now_v7();
                    let now = chrono::Utc::now();
                    let new = flow_store::NewExecution {
                        id,
                        correlation_id: id.to_string(),
                        flow: "history".into(),
                        state: ExecutionState::Queued,
                        started_at: now,
                        owner: None,
                        flow_id: None,
                        parent_id: None,
                        fence: None,
                    };
                    store.record_started(&new).await?;
                    let node = NodeReport {
                        node_id: "one".into(),
                        node_type: "static_data".into(),
                        state: NodeState::Succeeded,
                        attempts: 1,
                        started_at: Some(now),
                        finished_at: Some(now),
                        counters: Counters { records_in: 0, records_out: 1, errors: 0 },
                        error: None,
                        error_kind: None,
                        sample: Vec::new(),
                        sink: None,
                    };
                    let report = ExecutionReport {
                        id,
                        correlation_id: new.correlation_id.clone(),
                        flow: new.flow.clone(),
                        state: ExecutionState::Succeeded,
                        error: None,
                        started_at: now,
                        finished_at: chrono::Utc::now(),
                        nodes: vec![node],
                        results: BTreeMap::new(),
                        parent_id: None,
                        parent_node: None,
                        children: Vec::new(),
                    };
                    store.record_finished(&report, Some(1)).await?;
                    n += 1;
                }
                anyhow::Ok(n)
            })
        })
        .collect();
    let mut executions = 0u32;
    for writer in writers {
        executions += writer.await??;
    }
    let per_s = f64::from(executions) / started.elapsed().as_secs_f64();
    Ok((per_s, per_s * ROWS_PER_EXECUTION))
}

/// Runs the server figures with the `flow` binary at `flow`.
pub(crate) async fn measure(flow: &Path, quick: bool) -> Result<BTreeMap<String, f64>> {
    let admin_url =
        std::env::var("POSTGRESQL_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut figures = BTreeMap::new();
    let load_seconds = if quick { 5.0 } else { 20.0 };

    let d = Deployment::new(&admin_url, "serve").await?;
    d.add_admin(flow)?;
    figures.insert("redis_roundtrip_per_s".into(), redis_roundtrips_per_s(3.0, &d.schema).await?);
    let _server = d.spawn(flow, &["serve", "--workers", "50"])?;
    let api = d.client().await?;

    // Throughput: 50 clients run a one-node flow as fast as they can.
    let flow_id = api.flow(trivial_flow("trivial")).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let (api, stop, sent, path) =
                (api.clone(), Arc::clone(&stop), Arc::clone(&sent), format!("/flows/{flow_id}/run"));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if api.post(&path, &json!({})).await.is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(load_seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    wait_done(&d, &flow_id, Duration::from_secs(300)).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let succeeded = d
        .sql(&format!(
            "SELECT count(*)::float8 FROM executions WHERE flow_id = '{flow_id}' AND state = 'succeeded'"
        ))
        .await?;
    figures.insert("server_trivial_exec_per_s".into(), succeeded / elapsed);
    figures.insert(
        "server_trivial_runs_accepted_per_s".into(),
        sent.load(Ordering::Relaxed) as f64 / load_seconds,
    );

    // Latency at a steady 500 runs/s: from the run being queued to its end, as the history says.
    let steady_id = api.flow(trivial_flow("steady")).await?;
    let path = format!("/flows/{steady_id}/run");
    let mut ticker = tokio::time::interval(Duration::from_millis(2));
    let until = Instant::now() + Duration::from_secs(if quick { 3 } else { 10 });
    let mut pending = Vec::new();
    while Instant::now() < until {
        ticker.tick().await;
        let (api, path) = (api.clone(), path.clone());
        pending.push(tokio::spawn(async move { api.post(&path, &json!({})).await.is_ok() }));
    }
    for p in pending {
        let _ = p.await;
    }
    wait_done(&d, &steady_id, Duration::from_secs(300)).await?;
    let p99 = d
        .sql(&format!(
            "SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at) * 1000) \
             FROM executions WHERE flow_id = '{steady_id}'"
        ))
        .await?;
    figures.insert("server_enqueue_to_done_p99_ms".into(), p99);

    // 100 WebSocket clients watching one execution of 1M records.
    let (lag_p99, rss_growth) = ws_lag(&api, &_server, if quick { 200_000 } else { 1_000_000 }).await?;
    figures.insert("ws_100_clients_event_lag_p99_ms".into(), lag_p99);
    figures.insert("ws_100_clients_server_rss_growth_kb".into(), rss_growth);
    drop(_server);

    let (executions, rows) = history_writes(&d).await?;
    figures.insert("pg_history_executions_per_s".into(), executions);
    figures.insert("pg_history_rows_per_s".into(), rows);

    // Reclaim: a worker killed with SIGKILL mid-run; another one (2 s lease) runs the job again.
    let r = Deployment::new(&admin_url, "reclaim").await?;
    r.add_admin(flow)?;
    let _api_only = r.spawn(flow, &["serve", "--workers", "0"])?;
    let api = r.client().await?;
    let slow = api
        .flow(json!({"version": 1, "name": "slow", "nodes": [
            {"id": "one", "type": "static_data", "params": {"records": [{"x": 1}]}},
            {"id": "wait", "type": "delay", "params": {"ms": 60000}},
            {"id": "out", "type": "collect", "params": {}}
        ], "edges": [
            {"from": {"node": "one", "port": "out"}, "to": {"node": "wait", "port": "in"}},
            {"from": {"node": "wait", "port": "out"}, "to": {"node": "out", "port": "in"}}
        ]}))
        .await?;
    let mut worker_a = r.spawn(flow, &["worker"])?;
    let run = api.post(&format!("/flows/{slow}/run"), &json!({})).await?;
    let id = run["execution_id"].as_str().context("an execution id")?.to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.get(&format!("/executions/{id}")).await?["state"] != "running" {
        if Instant::now() > deadline {
            bail!("the slow run did not start");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _worker_b = r.spawn(flow, &["worker"])?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed = Instant::now();
    worker_a.0.kill()?;
    let _ = worker_a.0.wait();
    let deadline = killed + Duration::from_secs(60);
    loop {
        let running = api.get("/queue/api/jobs?state=running").await?;
        let again = running["jobs"].as_array().is_some_and(|jobs| {
            jobs.iter().any(|j| j["id"] == id.as_str() && j["attempts"].as_u64().unwrap_or(0) >= 2)
        });
        if again {
            break;
        }
        if Instant::now() > deadline {
            bail!("the job was not reclaimed within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    figures.insert("queue_reclaim_seconds".into(), killed.elapsed().as_secs_f64());
    Ok(figures)
}
