//! What the server's end-to-end tests share: an isolated deployment per test (its own
//! PostgreSQL schemas and Redis key prefix, dropped at the end), real `flow serve` and
//! `flow worker` processes killed by pid when the test ends however it ends, and thin HTTP and
//! WebSocket clients.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sqlx::{Executor, PgPool};
use tokio_tungstenite::tungstenite::Message;

/// The machine's PostgreSQL (trust auth) and Redis, unless POSTGRESQL_URL and REDIS_URL say
/// otherwise (as scripts/test does).
pub(crate) fn postgres() -> String {
    std::env::var("POSTGRESQL_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

pub(crate) fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

/// Generous: two slow cores shared with other builds and tests.
pub(crate) const READY: Duration = Duration::from_secs(90);

/// A URL of the test database whose sessions see only `schema`.
pub(crate) fn schema_url(schema: &str) -> String {
    let base = postgres();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{schema}")
}

fn random_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// One test's deployment: a schema for the server's store, another for the data the flows read
/// and write, a Redis key prefix, a JWT secret and a directory for the processes' logs.
/// Dropping it drops both schemas and deletes the prefix's keys; declare it before the
/// processes so that they are killed first.
pub(crate) struct Ctx {
    pub(crate) schema: String,
    pub(crate) data_schema: String,
    pub(crate) prefix: String,
    pub(crate) secret: String,
    pub(crate) dir: tempfile::TempDir,
    /// Connected to the data schema.
    pub(crate) data: PgPool,
}

impl Ctx {
    pub(crate) async fn new() -> Ctx {
        let id = random_id();
        let schema = format!("s_{id}");
        let data_schema = format!("d_{id}");
        let admin = PgPool::connect(&postgres())
            .await
            .expect("PostgreSQL answers (POSTGRESQL_URL or 127.0.0.1:5432)");
        admin.execute(format!("CREATE SCHEMA {schema}").as_str()).await.expect("create the store schema");
        admin.execute(format!("CREATE SCHEMA {data_schema}").as_str()).await.expect("create the data schema");
        admin.close().await;
        let data = PgPool::connect(&schema_url(&data_schema)).await.expect("data schema");
        let secret = format!("{}{}{}", random_id(), random_id(), random_id());
        Ctx {
            prefix: format!("t{id}:"),
            schema,
            data_schema,
            secret,
            dir: tempfile::tempdir().expect("tempdir"),
            data,
        }
    }

    /// POSTGRESQL_URL of the server (the store's schema).
    pub(crate) fn store_url(&self) -> String {
        schema_url(&self.schema)
    }

    /// The URL of the flows' connection (the data schema).
    pub(crate) fn data_url(&self) -> String {
        schema_url(&self.data_schema)
    }

    /// `flow ARGS` with this deployment's environment and nothing inherited that could change it.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flow"));
        command.args(args);
        for var in [
            "POSTGRESQL_URL",
            "REDIS_URL",
            "JWT_SECRET",
            "FLOW_BIND",
            "FLOW_QUEUE_PREFIX",
            "FLOW_JOB_LEASE_MS",
            "FLOW_TOKEN_TTL_S",
            "FLOW_LOG",
            "FLOW_LOG_FORMAT",
            "MAX_CONCURRENT_EXECUTIONS",
            "NODE_EXECUTION_TIMEOUT",
            "RETRY_ATTEMPTS",
            "ENABLE_METRICS",
            "METRICS_TOKEN",
            "FLOW_METRICS_BIND",
            "ALERT_INTERVAL_SECONDS",
            "ALERT_WEBHOOK_URL",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "RUST_LOG",
        ] {
            command.env_remove(var);
        }
        command
            .env("POSTGRESQL_URL", self.store_url())
            .env("REDIS_URL", redis_url())
            .env("JWT_SECRET", &self.secret)
            .env("FLOW_QUEUE_PREFIX", &self.prefix)
            .env("FLOW_LOG", "info")
            .env("FLOW_HISTORY_DB", self.dir.path().join("unused-history.db"))
            .stdin(Stdio::null());
        command
    }

    /// Starts `flow ARGS` with `env` on top of the deployment's, stdout and stderr to a log file.
    pub(crate) fn spawn(&self, name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let log = self.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = self.command(args);
        for (k, v) in env {
            command.env(k, v);
        }
        command.stdout(Stdio::from(file.try_clone().expect("log file"))).stderr(Stdio::from(file));
        let child = command.spawn().expect("flow starts");
        Proc { name: name.to_owned(), child: Some(child), log, base: None }
    }

    /// `flow serve --workers N` on a free port, once `GET /health` answers 200.
    pub(crate) async fn serve(&self, name: &str, workers: usize, env: &[(&str, &str)]) -> Proc {
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let workers = workers.to_string();
        let mut all: Vec<(&str, &str)> = vec![("FLOW_BIND", bind.as_str())];
        all.extend_from_slice(env);
        let mut proc = self.spawn(name, &["serve", "--workers", &workers], &all);
        proc.base = Some(format!("http://{bind}"));
        proc.wait_healthy().await;
        proc
    }

    /// `flow worker`, once it logged that it started.
    pub(crate) async fn worker(&self, name: &str, env: &[(&str, &str)]) -> Proc {
        let mut proc = self.spawn(name, &["worker"], env);
        proc.wait_for_log("worker started", READY).await;
        proc
    }

    /// `flow users add NAME [--admin]` with the password on stdin.
    pub(crate) fn add_user(&self, name: &str, password: &str, admin: bool) {
        let mut args = vec!["users", "add", name];
        if admin {
            args.push("--admin");
        }
        let mut child = self
            .command(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("flow users add starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("password written");
        let out = child.wait_with_output().expect("flow users add ends");
        assert!(
            out.status.success(),
            "flow users add {name}: {:?}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        let (schema, data_schema, prefix) =
            (self.schema.clone(), self.data_schema.clone(), self.prefix.clone());
        let (postgres, redis_url) = (postgres(), redis_url());
        // Not on the test's runtime (it may be shutting down): a thread with its own.
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                if let Ok(pool) = PgPool::connect(&postgres).await {
                    for s in [&schema, &data_schema] {
                        let _ = pool.execute(format!("DROP SCHEMA IF EXISTS {s} CASCADE").as_str()).await;
                    }
                    pool.close().await;
                }
                if let Ok(client) = redis::Client::open(redis_url)
                    && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                {
                    let mut cursor: u64 = 0;
                    loop {
                        let page: Result<(u64, Vec<String>), _> = redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(format!("{prefix}*"))
                            .arg("COUNT")
                            .arg(1000)
                            .query_async(&mut conn)
                            .await;
                        let Ok((next, keys)) = page else { break };
                        if !keys.is_empty() {
                            let _: Result<i64, _> = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await;
                        }
                        if next == 0 {
                            break;
                        }
                        cursor = next;
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// A port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// A `flow` process, killed (SIGKILL, by its pid) when dropped. When the test fails, the end of
/// its log is printed.
pub(crate) struct Proc {
    pub(crate) name: String,
    child: Option<Child>,
    pub(crate) log: PathBuf,
    /// `http://127.0.0.1:PORT` of a `flow serve`.
    pub(crate) base: Option<String>,
}

impl Proc {
    /// Takes charge of a process started elsewhere, its output in `log`.
    pub(crate) fn from_child(name: &str, child: Child, log: PathBuf) -> Proc {
        Proc { name: name.to_owned(), child: Some(child), log, base: None }
    }

    pub(crate) fn base(&self) -> &str {
        self.base.as_deref().expect("a flow serve process")
    }

    pub(crate) fn api(&self) -> Api {
        Api::new(self.base())
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`, and reap it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its exit status if it has ended.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits for the process to end, at most `within`.
    pub(crate) async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    async fn wait_healthy(&mut self) {
        let api = self.api();
        let deadline = Instant::now() + READY;
        loop {
            if let Some(status) = self.exited() {
                panic!("{} exited ({status}) before answering /health:\n{}", self.name, self.log_text());
            }
            if let Ok(r) = api.raw("GET", "/health", &[], None).await
                && r.status == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer /health within {READY:?}:\n{}",
                self.name,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub(crate) async fn wait_for_log(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.log_text().contains(needle) {
                return;
            }
            if let Some(status) = self.exited() {
                panic!("{} exited ({status}) before logging {needle:?}:\n{}", self.name, self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not log {needle:?} within {within:?}:\n{}",
                self.name,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(80)..];
            eprintln!("---- last lines of {} ({}) ----\n{}", self.name, self.log.display(), tail.join("\n"));
        }
    }
}

/// An HTTP answer: status, headers and the body as JSON (or a JSON string of the text when it
/// is not JSON).
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) text: String,
    pub(crate) body: Value,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the body is `{"error": {"code": "...", "message": "...", ...}}`.
    pub(crate) fn has_error_shape(&self) -> bool {
        let e = &self.body["error"];
        e["code"].as_str().is_some_and(|c| !c.is_empty())
            && e["message"].as_str().is_some_and(|m| !m.is_empty())
    }

    /// Asserts the status and the error body with `code`; `what` names the request.
    #[track_caller]
    pub(crate) fn expect_error(&self, status: u16, code: &str, what: &str) -> &Self {
        assert_eq!(
            self.status, status,
            "{what}: expected {status} {code}, got {} {}",
            self.status, self.text
        );
        assert!(self.has_error_shape(), "{what}: not an error body: {}", self.text);
        assert_eq!(self.body["error"]["code"], code, "{what}: {}", self.text);
        self
    }

    #[track_caller]
    pub(crate) fn expect(&self, status: u16, what: &str) -> &Value {
        assert_eq!(self.status, status, "{what}: got {} {}", self.status, self.text);
        &self.body
    }
}

#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) base: String,
    http: reqwest::Client,
}

impl Api {
    pub(crate) fn new(base: &str) -> Api {
        // The workspace's reqwest is built without a TLS provider of its own (the secrets
        // providers use rustls on ring); the client needs one named even for plain HTTP.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("HTTP client");
        Api { base: base.to_owned(), http }
    }

    /// Any request: `headers` as given, `body` as raw bytes.
    pub(crate) async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Resp, reqwest::Error> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Ok(Resp { status, headers, text, body })
    }

    /// A JSON request with an optional token.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        self.call_with(method, path, token, body, &[]).await
    }

    pub(crate) async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> Resp {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(b) = &bearer {
            headers.push(("authorization", b));
        }
        let bytes = body.map(|b| {
            headers.push(("content-type", "application/json"));
            serde_json::to_vec(b).expect("JSON")
        });
        self.raw(method, path, &headers, bytes)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"))
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> Resp {
        self.call("GET", path, Some(token), None).await
    }

    pub(crate) async fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.call("POST", path, Some(token), Some(body)).await
    }

    pub(crate) async fn login(&self, username: &str, password: &str) -> String {
        let r = self
            .call("POST", "/auth/login", None, Some(&json!({"username": username, "password": password})))
            .await;
        let body = r.expect(200, "login");
        assert!(body["expires_at"].is_string(), "{}", r.text);
        body["token"].as_str().expect("token").to_owned()
    }

    /// Creates a flow; returns its id.
    pub(crate) async fn create_flow(&self, token: &str, flow: &Value) -> String {
        let r = self.post("/flows", token, flow).await;
        let body = r.expect(201, "POST /flows");
        assert_eq!(r.header("etag"), Some("\"1\""), "a new flow is version 1");
        body["id"].as_str().expect("flow id").to_owned()
    }

    /// Runs a stored flow; returns the execution id.
    pub(crate) async fn run(&self, token: &str, flow_id: &str) -> String {
        let r = self.call("POST", &format!("/flows/{flow_id}/run"), Some(token), None).await;
        let body = r.expect(202, "POST /flows/{id}/run");
        body["execution_id"].as_str().expect("execution_id").to_owned()
    }

    /// Polls `GET /executions/{id}` until `done` holds for it.
    pub(crate) async fn wait_execution(
        &self,
        token: &str,
        id: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            let r = self.get(&format!("/executions/{id}"), token).await;
            if r.status == 200 {
                if done(&r.body) {
                    return r.body;
                }
                last = r.body;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("execution {id} did not reach the expected state within {within:?}; last seen: {last:#}");
    }

    /// Until the execution ended and its report (per-node rows) is in the history.
    pub(crate) async fn wait_finished(&self, token: &str, id: &str, within: Duration) -> Value {
        self.wait_execution(token, id, within, |e| {
            let state = e["state"].as_str().unwrap_or_default();
            matches!(state, "succeeded" | "failed" | "cancelled")
                && e["nodes"].as_array().is_some_and(|n| !n.is_empty())
        })
        .await
    }

    pub(crate) async fn ws(&self, token: &str) -> Ws {
        let url = format!("{}/executions?token={token}", self.base.replacen("http://", "ws://", 1));
        let (stream, _) = tokio_tungstenite::connect_async(url).await.expect("WebSocket connects");
        let mut ws = Ws { stream };
        let hello = ws.next_json(Duration::from_secs(30)).await.expect("a first message");
        assert_eq!(hello["type"], "authenticated", "{hello}");
        ws
    }
}

pub(crate) struct Ws {
    stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Ws {
    pub(crate) async fn send(&mut self, message: &Value) {
        self.stream.send(Message::Text(message.to_string().into())).await.expect("WebSocket send");
    }

    /// The next text message as JSON; None when none came within `within` or the socket closed.
    pub(crate) async fn next_json(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()??;
            match next {
                Ok(Message::Text(t)) => {
                    return Some(serde_json::from_str(t.as_str()).expect("WebSocket messages are JSON"));
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Sends a request and returns the answer (the first message that is not an update).
    pub(crate) async fn request(&mut self, message: &Value) -> Value {
        self.send(message).await;
        loop {
            let m = self.next_json(Duration::from_secs(30)).await.expect("an answer");
            if matches!(m["type"].as_str(), Some("subscribed" | "unsubscribed" | "error")) {
                return m;
            }
        }
    }

    /// Every message within `within`.
    pub(crate) async fn drain(&mut self, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let mut out = Vec::new();
        while let Some(m) =
            self.next_json(deadline.saturating_duration_since(tokio::time::Instant::now())).await
        {
            out.push(m);
        }
        out
    }
}

/// `flows/NAME` as JSON, with every `"connection": "postgres"` replaced by `connection`.
pub(crate) fn example_flow(name: &str, connection: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../flows").join(name);
    let mut flow: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("example flow")).expect("JSON");
    for node in flow["nodes"].as_array_mut().expect("nodes") {
        if node["params"]["connection"].is_string() {
            node["params"]["connection"] = json!(connection);
        }
    }
    flow
}

/// A flow of nodes chained in order, each `(id, type, params)`.
pub(crate) fn chain(name: &str, nodes: &[(&str, &str, Value)]) -> Value {
    let edges: Vec<Value> = nodes
        .windows(2)
        .map(|w| json!({"from": {"node": w[0].0, "port": "out"}, "to": {"node": w[1].0, "port": "in"}}))
        .collect();
    let nodes: Vec<Value> =
        nodes.iter().map(|(id, t, p)| json!({"id": id, "type": t, "params": p})).collect();
    json!({"version": 1, "name": name, "nodes": nodes, "edges": edges})
}

/// The node of an execution detail with that id.
pub(crate) fn node<'a>(execution: &'a Value, id: &str) -> &'a Value {
    execution["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["node_id"] == id))
        .unwrap_or_else(|| panic!("node {id} in {execution:#}"))
}

/// A token signed with `secret` for arbitrary claims (expired or forged tokens).
pub(crate) fn sign_token(secret: &[u8], claims: &Value) -> String {
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret).expect("an HS256 key"),
    )
    .expect("token signed")
}

/// The milliseconds since the epoch that a UUID v7 carries.
pub(crate) fn uuid_v7_millis(id: &str) -> u64 {
    let id = uuid::Uuid::parse_str(id).expect("a UUID");
    let (secs, nanos) = id.get_timestamp().expect("a UUID v7").to_unix();
    secs * 1000 + u64::from(nanos) / 1_000_000
}

/// Percent-encodes everything but unreserved characters (a path segment).
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
