//! SPEC case 1 at scale: PostgreSQL `users` (half active) -> Filter (status = 'active') -> Field
//! Mapper (name -> full_name) -> PostgreSQL Insert into `processed_users`, against the psql
//! pipeline `COPY (SELECT ...) TO STDOUT | COPY processed_users FROM STDIN` on the same data, in
//! the same run. Each size gets a database of its own, filled with `generate_series`.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use flow_engine::{Connection, ConnectionKind, ExecutionState, Flow, RunOptions};
use serde_json::json;

pub(crate) fn admin_url() -> String {
    std::env::var("POSTGRESQL_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub(crate) fn psql(url: &str, sql: &str) -> Result<()> {
    let status = Command::new("psql")
        .args([url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGOPTIONS", "-c client_min_messages=warning")
        .status()
        .context("psql (Debian package postgresql-client)")?;
    if !status.success() {
        bail!("psql failed: {sql}");
    }
    Ok(())
}

/// A database named `flow_bench_<rows>` with `rows` users, half of them active.
fn prepare(rows: u64) -> Result<String> {
    let admin = admin_url();
    let db = format!("flow_bench_{rows}");
    psql(&admin, &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))?;
    psql(&admin, &format!("CREATE DATABASE {db}"))?;
    let url = format!("{}/{db}", admin.rsplit_once('/').context("POSTGRESQL_URL needs a database")?.0);
    psql(
        &url,
        &format!(
            "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL, \
                age integer NOT NULL, status text NOT NULL); \
             INSERT INTO users SELECT n, 'User ' || n, 'user' || n || '@example.com', 18 + n % 60, \
                CASE WHEN n % 2 = 0 THEN 'active' ELSE 'inactive' END FROM generate_series(1, {rows}) n; \
             CREATE TABLE processed_users (id bigint PRIMARY KEY, full_name text NOT NULL, \
                email text NOT NULL, age integer NOT NULL); \
             ANALYZE users;"
        ),
    )?;
    Ok(url)
}

fn flow() -> Flow {
    Flow::new("case 1")
        .with_node(
            "users",
            "postgres_query",
            json!({"connection": "pg", "query": "SELECT id, name, email, age, status FROM users"}),
        )
        .with_node("active", "filter", json!({"conditions": [{"field": "status", "op": "eq", "value": "active"}]}))
        .with_node(
            "rename",
            "field_mapper",
            json!({"operations": [{"op": "rename", "from": "name", "to": "full_name"}], "keep_only": ["id", "full_name", "email", "age"]}),
        )
        .with_node("processed", "postgres_insert", json!({"connection": "pg", "table": "processed_users"}))
        .with_edge("users", "active")
        .with_edge("active", "rename")
        .with_edge("rename", "processed")
}

/// Runs case 1 through the engine against `url`, after emptying the target.
pub(crate) async fn run_engine(url: &str) -> Result<()> {
    psql(url, "TRUNCATE processed_users")?;
    let engine = super::engine().await?;
    engine
        .save_connection(Connection {
            name: "pg".into(),
            kind: ConnectionKind::Postgres,
            url: url.into(),
            options: Default::default(),
        })
        .await?;
    let report = engine.run(flow(), RunOptions::default()).await?;
    if report.state != ExecutionState::Succeeded {
        bail!("case 1 ended {:?}: {:?}", report.state, report.error);
    }
    Ok(())
}

/// The psql pipeline doing the same work with COPY on both ends.
fn run_copy_baseline(url: &str) -> Result<()> {
    psql(url, "TRUNCATE processed_users")?;
    let mut out = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-c",
            "COPY (SELECT id, name AS full_name, email, age FROM users WHERE status = 'active') TO STDOUT",
        ])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = out.stdout.take().context("psql stdout")?;
    let status = Command::new("psql")
        .args([url, "-X", "-q", "-c", "COPY processed_users FROM STDIN"])
        .stdin(stdout)
        .status()?;
    if !out.wait()?.success() || !status.success() {
        bail!("the COPY baseline failed");
    }
    Ok(())
}

/// Engine time, COPY baseline time (best of 3 each) and peak RSS at `rows` and at a tenth of it.
pub(crate) async fn measure(rows: u64) -> Result<BTreeMap<String, f64>> {
    let url = prepare(rows)?;
    let small_url = prepare(rows / 10)?;
    let (mut engine_best, mut copy_best) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        let t = Instant::now();
        run_engine(&url).await?;
        engine_best = engine_best.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        run_copy_baseline(&url)?;
        copy_best = copy_best.min(t.elapsed().as_secs_f64());
    }
    let large = super::child_peak_rss_of(&["child-case1", &url])?;
    let small = super::child_peak_rss_of(&["child-case1", &small_url])?;
    let tag = if rows >= 1_000_000 { format!("{}m", rows / 1_000_000) } else { format!("{}k", rows / 1000) };
    let small_tag = format!("{}k", rows / 10 / 1000);
    let mut out = BTreeMap::new();
    out.insert(format!("case1_{tag}_seconds"), engine_best);
    out.insert(format!("case1_{tag}_copy_baseline_seconds"), copy_best);
    out.insert(format!("case1_{tag}_ratio_vs_copy"), engine_best / copy_best);
    out.insert(format!("case1_rss_ratio_{tag}_vs_{small_tag}"), large as f64 / small as f64);
    out.insert(format!("case1_peak_rss_kb_{tag}"), large as f64);
    out.insert(format!("case1_peak_rss_kb_{small_tag}"), small as f64);
    for db in [&url, &small_url] {
        let name = db.rsplit_once('/').map_or("", |(_, d)| d);
        psql(&admin_url(), &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
    }
    Ok(out)
}
