//! The `flow` binary as a user runs it: exit codes, messages and output formats.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn flow(args: &[&str], history: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(args)
        .env("FLOW_HISTORY_DB", history)
        .env_remove("RETRY_ATTEMPTS")
        .output()
        .expect("flow runs")
}

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows").join(name).display().to_string()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_accepts_the_examples_and_lists_every_problem_of_a_bad_flow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("h.db");
    let ok = flow(&["validate", &example("active-users.json"), &example("fan-out-merge.json")], &db);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stdout));
    assert_eq!(text(&ok.stdout).matches(": valid").count(), 2);

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"version": 1, "name": "bad", "nodes": [
            {"id": "a", "type": "limit", "params": {"count": -1}},
            {"id": "b", "type": "warp_drive", "params": {}}
        ]}"#,
    )
    .expect("write");
    let out = flow(&["validate", bad.to_str().expect("utf-8 path")], &db);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("3 problem(s)"), "{stdout}");
    assert!(stdout.contains("node `a`: params/count"), "{stdout}");
    assert!(stdout.contains("node `a`: required input `in` is not connected"), "{stdout}");
    assert!(stdout.contains("unknown node type `warp_drive`"), "{stdout}");
    assert!(!db.exists(), "validate must not create a history database");
}

#[test]
fn broken_json_is_reported_with_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, "{\n  \"version\": 1,\n  \"nodes\": [,]\n}\n").expect("write");
    let out = flow(&["validate", bad.to_str().expect("utf-8 path")], &dir.path().join("h.db"));
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("broken.json:3:13: broken JSON"), "{stdout}");
}

#[test]
fn run_json_prints_the_event_stream_and_records_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("h.db");
    let out = flow(&["run", &example("active-users.json"), "--json"], &db);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let events: Vec<serde_json::Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    let last = events.last().expect("events");
    assert_eq!(last["event"], "execution_state");
    assert_eq!(last["state"], "succeeded");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "node_state" && e["node"] == "active" && e["state"] == "succeeded")
    );
    let done = events
        .iter()
        .rev()
        .find(|e| e["event"] == "node_state" && e["node"] == "rename" && e["state"] == "succeeded")
        .expect("rename finished");
    assert_eq!(done["counters"]["records_out"], 334, "1000 generated users cycle through three statuses");
    assert!(db.exists(), "the run is recorded in the history database");
}

#[test]
fn run_exits_non_zero_when_the_flow_fails_and_vars_reach_templates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("fails.json");
    std::fs::write(
        &file,
        r#"{"version": 1, "name": "fails", "variables": {"n": 5}, "nodes": [
            {"id": "rows", "type": "generate_rows", "params": {"count": 10, "fields": {"x": {"value": 1}}}},
            {"id": "boom", "type": "fail", "params": {"after_records": 3, "message": "{{ vars.reason }}"}},
            {"id": "out", "type": "collect", "params": {}}
        ], "edges": [
            {"from": {"node": "rows", "port": "out"}, "to": {"node": "boom", "port": "in"}},
            {"from": {"node": "boom", "port": "out"}, "to": {"node": "out", "port": "in"}}
        ]}"#,
    )
    .expect("write");
    let path = file.to_str().expect("utf-8 path");
    let out = flow(&["run", path, "--var", "reason=disk on fire"], &dir.path().join("h.db"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("disk on fire after 3 records"), "{stderr}");
    assert!(stderr.contains("Skipped"), "downstream shown as skipped: {stderr}");
}

#[test]
fn catalog_lists_every_node_type_with_its_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = flow(&["catalog"], &dir.path().join("h.db"));
    assert_eq!(out.status.code(), Some(0));
    let catalog: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    let types: Vec<&str> = catalog.iter().filter_map(|d| d["type"].as_str()).collect();
    for t in [
        "aggregate",
        "code",
        "collect",
        "delay",
        "fail",
        "field_mapper",
        "filter",
        "generate_rows",
        "limit",
        "merge",
        "sort",
        "static_data",
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    let limit = catalog.iter().find(|d| d["type"] == "limit").expect("limit");
    assert_eq!(limit["params_schema"]["properties"]["offset"]["default"], 0);
}

fn flow_env(args: &[&str], history: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flow"));
    cmd.args(args).env("FLOW_HISTORY_DB", history);
    for var in ["POSTGRESQL_URL", "MONGODB_URL", "REDIS_URL"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("flow runs")
}

#[test]
fn doctor_checks_configured_services_and_says_how_to_fix_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("h.db");
    let good = flow_env(
        &["doctor"],
        &db,
        &[
            ("POSTGRESQL_URL", "postgres://postgres@127.0.0.1:5432/test"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
        ],
    );
    let stdout = text(&good.stdout);
    assert_eq!(good.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("ok   POSTGRESQL_URL") && stdout.contains("ok   REDIS_URL"), "{stdout}");
    assert!(stdout.contains("MONGODB_URL is not set"), "{stdout}");

    let bad = flow_env(&["doctor"], &db, &[("REDIS_URL", "redis://127.0.0.1:1")]);
    let stdout = text(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL REDIS_URL") && stdout.contains("Redis is not running there"), "{stdout}");
}

#[test]
fn connections_are_added_listed_tested_and_removed_without_showing_passwords() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("h.db");
    let add = flow_env(
        &[
            "connections",
            "add",
            "pg",
            "--kind",
            "postgres",
            "--url",
            "postgres://postgres:s3cret@127.0.0.1:5432/test",
        ],
        &db,
        &[],
    );
    assert_eq!(add.status.code(), Some(0), "{}", text(&add.stderr));
    let list = flow_env(&["connections", "list"], &db, &[]);
    let stdout = text(&list.stdout);
    assert!(
        stdout.contains("pg") && stdout.contains("postgres://postgres:***@127.0.0.1:5432/test"),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret"), "{stdout}");

    let test = flow_env(&["connections", "test", "pg"], &db, &[]);
    assert_eq!(test.status.code(), Some(0), "{}", text(&test.stdout));
    let answer: serde_json::Value = serde_json::from_slice(&test.stdout).expect("JSON");
    assert_eq!((answer["reachable"].as_bool(), answer["authenticated"].as_bool()), (Some(true), Some(true)));

    // The doctor checks named connections too; a closed port fails it.
    flow_env(
        &[
            "connections",
            "add",
            "down",
            "--kind",
            "postgres",
            "--url",
            "postgres://postgres@127.0.0.1:1/test",
        ],
        &db,
        &[],
    );
    let doctor = flow_env(&["doctor"], &db, &[]);
    let stdout = text(&doctor.stdout);
    assert_eq!(doctor.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ok   connection `pg`") && stdout.contains("FAIL connection `down`"), "{stdout}");

    let removed = flow_env(&["connections", "remove", "down"], &db, &[]);
    assert_eq!(removed.status.code(), Some(0));
    let again = flow_env(&["connections", "remove", "down"], &db, &[]);
    assert_eq!(again.status.code(), Some(1));
}

#[test]
fn validate_reports_broken_code_templates_and_connections_like_a_run_would() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("h.db");
    let bad = dir.path().join("four.json");
    std::fs::write(
        &bad,
        r#"{"version": 1, "name": "four broken", "nodes": [
            {"id": "src", "type": "generate_rows", "params": {"count": 5, "fields": {"age": {"value": 30}}}},
            {"id": "expr", "type": "filter", "params": {"mode": "expression", "expression": "age >>> (("}},
            {"id": "script", "type": "code", "params": {"script": "let x = ; record"}},
            {"id": "tmpl", "type": "limit", "params": {"count": "{{ vars.n "}},
            {"id": "users", "type": "postgres_query", "params": {"connection": "postgres", "query": "SELECT 1"}}
        ], "edges": [
            {"from": {"node": "src", "port": "out"}, "to": {"node": "expr", "port": "in"}},
            {"from": {"node": "expr", "port": "out"}, "to": {"node": "script", "port": "in"}},
            {"from": {"node": "script", "port": "out"}, "to": {"node": "tmpl", "port": "in"}}
        ]}"#,
    )
    .expect("write");
    let path = bad.to_str().expect("utf-8 path");
    let out = flow(&["validate", path], &db);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("4 problem(s)"), "{stdout}");
    for node in ["expr", "script", "tmpl", "users"] {
        assert!(stdout.contains(&format!("node `{node}`: ")), "{node} not named in {stdout}");
    }
    assert!(stdout.contains("connection `postgres` does not exist"), "{stdout}");

    // With the connection in the store, only the three broken params remain.
    let added = flow(
        &["connections", "add", "postgres", "--kind", "postgres", "--url", "postgres://u@127.0.0.1:1/db"],
        &db,
    );
    assert_eq!(added.status.code(), Some(0), "{}", text(&added.stderr));
    let out = flow(&["validate", path], &db);
    assert!(text(&out.stdout).contains("3 problem(s)"), "{}", text(&out.stdout));
}

#[test]
fn logs_are_text_by_default_and_json_on_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("h.db");
    let file = example("active-users.json");
    // At debug level the store logs its queries, so every run has log lines.
    let text_run = flow_env(&["run", &file], &db, &[("FLOW_LOG", "debug")]);
    let stderr = text(&text_run.stderr);
    assert_eq!(text_run.status.code(), Some(0), "{stderr}");
    let log_lines: Vec<&str> = stderr.lines().filter(|l| l.contains(" DEBUG ")).collect();
    assert!(!log_lines.is_empty(), "no text log line in {stderr}");
    assert!(!stderr.lines().any(|l| l.starts_with('{')), "JSON log lines in text mode: {stderr}");

    let json_run = flow_env(&["run", &file], &db, &[("FLOW_LOG", "debug"), ("FLOW_LOG_FORMAT", "json")]);
    let stderr = text(&json_run.stderr);
    let json_lines: Vec<serde_json::Value> =
        stderr.lines().filter(|l| l.starts_with('{')).filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(json_lines.iter().any(|l| l["level"] == "DEBUG"), "no JSON log line in {stderr}");

    let bad = flow_env(&["run", &file], &db, &[("FLOW_LOG_FORMAT", "yaml")]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("FLOW_LOG_FORMAT=`yaml`"), "{}", text(&bad.stderr));
}

/// Twenty processes open and migrate one new store at the same moment, twenty times over: every
/// one succeeds and each migration is applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_processes_open_a_new_store_at_once() {
    use sqlx::Connection;
    for round in 0..20 {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join(format!("round-{round}.db"));
        let children: Vec<_> = (0..20)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_flow"))
                    .args(["connections", "list"])
                    .env("FLOW_HISTORY_DB", &db)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("flow starts")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("flow ends");
            assert_eq!(out.status.code(), Some(0), "round {round}: {}", text(&out.stderr));
        }
        let url = format!("sqlite://{}", db.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("store opens");
        let applied: Vec<(i64, bool)> =
            sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .expect("migrations table");
        let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../flow-store/migrations"))
            .expect("migrations dir")
            .count();
        assert_eq!(applied.len(), migrations, "round {round}: {applied:?}");
        assert!(applied.iter().all(|(_, ok)| *ok), "round {round}: {applied:?}");
    }
}

/// `flow` with a value on stdin.
fn flow_stdin(args: &[&str], history: &Path, env: &[(&str, &str)], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flow"));
    cmd.args(args).env("FLOW_HISTORY_DB", history);
    for (k, v) in env {
        cmd.env(k, v);
    }
    with_stdin(cmd, stdin)
}

/// Runs `cmd` with `stdin` written to it, and collects its output.
fn with_stdin(mut cmd: Command, stdin: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} runs: {e}"));
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("written");
    child.wait_with_output().expect("the command ends")
}

#[test]
fn secrets_are_set_from_stdin_listed_without_values_used_and_kept_out_of_every_output() {
    const CANARY: &str = "canary-b7d4e1f0";
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("h.db");
    // A key from the environment, as on a server: the test leaves the OS keyring alone.
    let key = [("FLOW_SECRETS_KEY", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="), ("FLOW_LOG", "debug")];
    let set = flow_stdin(&["secrets", "set", "canary"], &db, &key, &format!("{CANARY}\n"));
    assert_eq!(set.status.code(), Some(0), "{}", text(&set.stderr));
    let bad = flow_stdin(&["secrets", "set", "not-a-name"], &db, &key, "x\n");
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("secret name `not-a-name`"), "{}", text(&bad.stderr));
    let list = flow_env(&["secrets", "list"], &db, &key);
    assert!(
        text(&list.stdout).contains("canary") && !text(&list.stdout).contains(CANARY),
        "{}",
        text(&list.stdout)
    );

    let pg =
        std::env::var("POSTGRESQL_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let flow = dir.path().join("leaky.json");
    std::fs::write(
        &flow,
        serde_json::json!({"version": 1, "name": "leaky", "nodes": [
            {"id": "q", "type": "postgres_query", "params": {"connection": "pg",
                "query": "SELECT * FROM \"{{ secrets.canary }}\""}}
        ], "edges": []})
        .to_string(),
    )
    .expect("flow file");
    let add = flow_env(
        &[
            "connections",
            "add",
            "pg",
            "--kind",
            "postgres",
            "--url",
            &pg.replacen("://postgres@", "://postgres:{{ secrets.canary }}@", 1),
        ],
        &db,
        &key,
    );
    assert_eq!(add.status.code(), Some(0), "{}", text(&add.stderr));
    for args in [vec!["run", "--json"], vec!["run"]] {
        let mut args = args;
        let path = flow.display().to_string();
        args.push(&path);
        let run = flow_env(&args, &db, &key);
        assert_eq!(run.status.code(), Some(1), "{args:?}: {}", text(&run.stderr));
        let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));
        assert!(stdout.contains("***") || stderr.contains("***"), "{args:?}: the error shows the redaction");
        assert!(!stdout.contains(CANARY) && !stderr.contains(CANARY), "{args:?}:\n{stdout}\n{stderr}");
    }
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("file");
        assert!(
            !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
            "{} holds the secret",
            path.display()
        );
    }

    let removed = flow_env(&["secrets", "remove", "canary"], &db, &key);
    assert_eq!(removed.status.code(), Some(0), "{}", text(&removed.stderr));
    let again = flow_env(&["secrets", "remove", "canary"], &db, &key);
    assert_eq!(again.status.code(), Some(1));
}

/// `flow` in a session keyring of its own (`keyctl session -`, Debian keyutils), as a separate
/// login on a headless machine: no desktop bus, no FLOW_SECRETS_KEY, so the key goes to the
/// kernel keyring.
fn flow_keyring(args: &[&str], history: &Path, stdin: &str) -> Output {
    // keyctl comes from Debian's keyutils, which scripts/test installs.
    let mut cmd = Command::new("keyctl");
    cmd.args(["session", "-", env!("CARGO_BIN_EXE_flow")])
        .args(args)
        .env("FLOW_HISTORY_DB", history)
        .env_remove("FLOW_SECRETS_KEY")
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    with_stdin(cmd, stdin)
}

/// Like [`flow_keyring`], on a desktop session bus of its own that offers no Secret Service
/// (`dbus-run-session`, Debian dbus-daemon), as on a minimal desktop.
fn flow_bus_without_keyring_daemon(args: &[&str], history: &Path, stdin: &str) -> Output {
    let mut cmd = Command::new("dbus-run-session");
    cmd.args(["--", "keyctl", "session", "-", env!("CARGO_BIN_EXE_flow")])
        .args(args)
        .env("FLOW_HISTORY_DB", history)
        .env_remove("FLOW_SECRETS_KEY");
    with_stdin(cmd, stdin)
}

#[test]
fn the_local_store_key_lives_in_the_os_keyring_even_without_a_keyring_daemon_and_a_copied_store_is_useless() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("h.db");
    // Set where a session bus offers no Secret Service: the key falls back to the kernel keyring,
    // where a later session without any bus finds it.
    let set = flow_bus_without_keyring_daemon(&["secrets", "set", "kr_value"], &db, "v-3f9a0c");
    assert_eq!(set.status.code(), Some(0), "{}", text(&set.stderr));
    let flow = dir.path().join("uses.json");
    std::fs::write(
        &flow,
        r#"{"version": 1, "name": "uses", "nodes": [
            {"id": "d", "type": "static_data", "params": {"records": [{"v": "{{ secrets.kr_value }}"}]}}
        ], "edges": []}"#,
    )
    .expect("flow file");
    let path = flow.display().to_string();
    let run = flow_keyring(&["run", "--json", &path], &db, "");
    assert_eq!(run.status.code(), Some(0), "another session reads the key: {}", text(&run.stderr));

    let elsewhere = tempfile::tempdir().expect("tempdir");
    std::fs::copy(dir.path().join("secrets.json"), elsewhere.path().join("secrets.json")).expect("copied");
    let copied = flow_keyring(&["run", &path], &elsewhere.path().join("h.db"), "");
    assert_eq!(copied.status.code(), Some(1));
    let out = text(&copied.stdout) + &text(&copied.stderr);
    assert!(out.contains("has no key") && out.contains("secrets.kr_value"), "{out}");
}

#[test]
fn vault_and_aws_settings_are_stored_from_stdin_listed_without_credentials_used_and_forgotten() {
    const TOKEN: &str = "canary-token-2c9e41";
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("h.db");
    let key = [("FLOW_SECRETS_KEY", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=")];
    // Nothing listens there: the run below shows that it reads the stored address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let address = format!("http://127.0.0.1:{closed}");
    let vault =
        flow_stdin(&["secrets", "vault", &address, "--mount", "kv"], &db, &key, &format!("{TOKEN}\n"));
    assert_eq!(vault.status.code(), Some(0), "{}", text(&vault.stderr));
    let aws = flow_stdin(
        &["secrets", "aws", "eu-west-1", "--access-key-id", "AKIATEST", "--endpoint", "http://127.0.0.1:9"],
        &db,
        &key,
        "secret-key-canary\n",
    );
    assert_eq!(aws.status.code(), Some(0), "{}", text(&aws.stderr));

    let listed = flow_env(&["secrets", "providers", "--json"], &db, &key);
    let providers: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(
        providers,
        serde_json::json!([
            {"provider": "vault", "target": format!("{address} (mount kv)"), "auth": "token", "source": "store"},
            {"provider": "aws", "target": "eu-west-1 at http://127.0.0.1:9", "auth": "access key AKIATEST", "source": "store"},
        ])
    );
    let store = std::fs::read_to_string(dir.path().join("secrets.json")).expect("the store");
    assert!(!store.contains(TOKEN) && !store.contains("secret-key-canary"), "sealed: {store}");

    let flow = dir.path().join("vault.json");
    std::fs::write(
        &flow,
        serde_json::json!({"version": 1, "name": "vault", "nodes": [
            {"id": "read", "type": "static_data", "params": {"records": [{"v": "{{ secrets.vault[\"db#pw\"] }}"}]},
             "settings": {"retry": {"attempts": 0}}}
        ], "edges": []})
        .to_string(),
    )
    .expect("flow file");
    let run = flow_env(&["run", &flow.display().to_string()], &db, &key);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    assert!(text(&run.stderr).contains(&format!("vault at {address}")), "{}", text(&run.stderr));

    let forgot = flow_env(&["secrets", "forget", "vault"], &db, &key);
    assert_eq!(forgot.status.code(), Some(0), "{}", text(&forgot.stderr));
    assert_eq!(flow_env(&["secrets", "forget", "vault"], &db, &key).status.code(), Some(1));
    let listed = flow_env(&["secrets", "providers"], &db, &key);
    assert!(
        !text(&listed.stdout).contains("vault") && text(&listed.stdout).contains("aws"),
        "{}",
        text(&listed.stdout)
    );
}

#[test]
fn monitor_json_counts_the_runs_of_the_history_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("h.db");
    let write = |name: &str, middle: &str| {
        let file = dir.path().join(format!("{name}.json"));
        std::fs::write(
            &file,
            format!(
                r#"{{"version": 1, "name": "{name}", "nodes": [
                    {{"id": "rows", "type": "generate_rows", "params": {{"count": 10, "fields": {{"x": {{"value": 1}}}}}}}},
                    {{"id": "mid", {middle}}},
                    {{"id": "out", "type": "collect", "params": {{}}}}
                ], "edges": [
                    {{"from": {{"node": "rows", "port": "out"}}, "to": {{"node": "mid", "port": "in"}}}},
                    {{"from": {{"node": "mid", "port": "out"}}, "to": {{"node": "out", "port": "in"}}}}
                ]}}"#
            ),
        )
        .expect("write");
        file.display().to_string()
    };
    let ok = write("ok", r#""type": "limit", "params": {"count": 4}"#);
    let fails = write("fails", r#""type": "fail", "params": {"after_records": 3, "message": "boom"}"#);
    for (file, code) in [(&ok, 0), (&ok, 0), (&fails, 1)] {
        let out = flow(&["run", file], &db);
        assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
    }

    let out = flow(&["monitor", "--json", "--window", "1h"], &db);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let dashboard = &report["dashboard"];
    let counts = |v: &serde_json::Value| {
        ["executions", "succeeded", "failed", "cancelled"].map(|k| v[k].as_u64().unwrap_or(u64::MAX))
    };
    assert_eq!(counts(dashboard), [3, 2, 1, 0], "{dashboard:#}");
    assert_eq!(dashboard["success_rate"].as_f64(), Some(2.0 / 3.0));
    let point_total: u64 = dashboard["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["executions"].as_u64().unwrap_or_default())
        .sum();
    assert_eq!(point_total, 3);

    let flows = report["flows"].as_array().expect("flows");
    let names: Vec<&str> = flows.iter().filter_map(|f| f["flow"].as_str()).collect();
    assert_eq!(names, ["fails", "ok"]);
    assert_eq!(counts(&flows[0]), [1, 0, 1, 0]);
    assert_eq!(flows[0]["error_rate"], 1.0);
    assert_eq!(counts(&flows[1]), [2, 2, 0, 0]);
    assert_eq!(flows[1]["error_rate"], 0.0);
    // Per run of `ok`: rows 10 out, mid 4 out; Collect keeps what it gets and sends nothing on.
    assert_eq!(flows[1]["records_out"], 2 * (10 + 4));

    let nodes = report["nodes"].as_array().expect("nodes");
    let node = |flow: &str, id: &str| {
        nodes
            .iter()
            .find(|n| n["flow"] == flow && n["node_id"] == id)
            .unwrap_or_else(|| panic!("{flow}/{id}: {nodes:#?}"))
    };
    let figures = |n: &serde_json::Value| {
        ["runs", "failed", "records_in", "records_out"].map(|k| n[k].as_u64().unwrap_or(u64::MAX))
    };
    assert_eq!(figures(node("ok", "rows")), [2, 0, 0, 20]);
    assert_eq!(figures(node("ok", "mid")), [2, 0, 20, 8]);
    assert_eq!(figures(node("ok", "out")), [2, 0, 8, 0]);
    assert_eq!(node("fails", "mid")["node_type"], "fail");
    assert_eq!(
        (node("fails", "mid")["runs"].as_u64(), node("fails", "mid")["failed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(report["health"]["store"]["ok"], true);
    assert_eq!(report["system"]["active_executions"], 0);
    assert!(report["system"]["memory_total_bytes"].as_u64().is_some_and(|m| m > 0), "{:#}", report["system"]);
}

#[test]
fn alert_rules_are_added_checked_listed_and_removed_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("h.db");
    let file = dir.path().join("nightly.json");
    let write = |after_records: u32| {
        std::fs::write(
            &file,
            format!(
                r#"{{"version": 1, "name": "nightly", "nodes": [
                    {{"id": "rows", "type": "generate_rows", "params": {{"count": 10, "fields": {{"x": {{"value": 1}}}}}}}},
                    {{"id": "mid", "type": "fail", "params": {{"after_records": {after_records}, "message": "boom"}}}}
                ], "edges": [{{"from": {{"node": "rows", "port": "out"}}, "to": {{"node": "mid", "port": "in"}}}}]}}"#
            ),
        )
        .expect("write");
    };
    let run = |code: i32| {
        let out = flow(&["run", file.to_str().expect("utf-8 path")], &db);
        assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
    };

    let bad = flow(&["alerts", "add", "bad", "custom", "failures > 1"], &db);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("alert rule `bad`: condition:"), "{}", text(&bad.stderr));
    let add = flow(&["alerts", "add", "nightly failing", "flow-failing", "nightly", "--window", "10m"], &db);
    assert_eq!(add.status.code(), Some(0), "{}", text(&add.stderr));
    let rules = flow(&["alerts", "rules", "--json"], &db);
    let rules: serde_json::Value = serde_json::from_slice(&rules.stdout).expect("JSON");
    assert_eq!(
        rules[0]["condition"],
        serde_json::json!({"kind": "flow_failing", "flow": "nightly", "failures": 1, "window_minutes": 10})
    );

    write(3);
    run(1);
    let check = flow(&["alerts", "check"], &db);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    assert!(
        text(&check.stdout)
            .starts_with("FIRED     nightly failing: flow `nightly` failed once in the last 10 minutes"),
        "{}",
        text(&check.stdout)
    );
    let again = flow(&["alerts", "check"], &db);
    assert_eq!(text(&again.stdout), "", "fired once");
    let monitor = flow(&["monitor", "--json"], &db);
    let monitor: serde_json::Value = serde_json::from_slice(&monitor.stdout).expect("JSON");
    assert_eq!(monitor["firing_alerts"][0]["rule_name"], "nightly failing");

    write(100);
    run(0);
    let check = flow(&["alerts", "check", "--json"], &db);
    let line: serde_json::Value = serde_json::from_slice(&check.stdout).expect("one JSON line");
    assert_eq!(line["change"], "resolved");
    let list = flow(&["alerts", "list", "--json"], &db);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).expect("JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert!(list[0]["resolution"].as_str().is_some_and(|r| r.starts_with("flow `nightly` succeeded")));

    assert_eq!(flow(&["alerts", "remove", "nightly failing"], &db).status.code(), Some(0));
    let gone = flow(&["alerts", "remove", "nightly failing"], &db);
    assert_eq!(
        (gone.status.code(), text(&gone.stderr).trim()),
        (Some(1), "no alert rule named `nightly failing`")
    );
}
