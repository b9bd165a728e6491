//! The three cases of SPEC section 10, run from their files in `flows/` against the real
//! PostgreSQL and the MongoDB-wire server of this machine, each in a database of its own filled by
//! the sample-data script, with exact assertions on what lands in the targets.

use std::path::{Path, PathBuf};
use std::process::Command;

use flow_engine::{Connection, ConnectionKind, Engine, ExecutionState, RunOptions, load_flow};
use serde_json::json;

const ROWS: u64 = 300;

fn postgres_url() -> String {
    std::env::var("POSTGRESQL_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn mongodb_url() -> String {
    std::env::var("MONGODB_URL").unwrap_or_else(|_| "mongodb://127.0.0.1:27018/?directConnection=true".into())
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn psql(url: &str, args: &[&str]) -> String {
    let out = Command::new("psql")
        .arg(url)
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .env("PGOPTIONS", "-c client_min_messages=warning")
        .output()
        .expect("psql runs (Debian package postgresql-client)");
    assert!(out.status.success(), "psql {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A PostgreSQL database and a MongoDB database of the test's own, with the sample data loaded,
/// and an engine whose connections `postgres` and `mongodb` point at them.
struct Setup {
    engine: Engine,
    pg_url: String,
    pg_admin: String,
    pg_db: String,
    mongo: mongodb::Database,
}

impl Setup {
    async fn new(case: &str) -> Setup {
        let suffix = format!("{case}_{}", uuid::Uuid::new_v4().simple());
        let pg_admin = postgres_url();
        let pg_db = format!("flow_{suffix}");
        psql(&pg_admin, &["-c", &format!("CREATE DATABASE {pg_db}")]);
        let pg_url = match pg_admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{pg_db}"),
            None => panic!("POSTGRESQL_URL needs a database path"),
        };
        psql(
            &pg_url,
            &[
                "-v",
                &format!("rows={ROWS}"),
                "-f",
                &repo("scripts/sample-data/postgres.sql").display().to_string(),
            ],
        );

        let mongo_db = format!("flow_{suffix}");
        let mongo_url = with_database(&mongodb_url(), &mongo_db);
        let client = mongodb::Client::with_uri_str(&mongo_url).await.expect("MongoDB URL");
        let mongo = client.database(&mongo_db);
        mongo.run_command(mongodb::bson::doc! {"ping": 1}).await.unwrap_or_else(|e| {
            panic!("MongoDB at {mongo_url} is not reachable ({e}); start it with scripts/start-mongodb")
        });

        let engine = flow_tests::engine().await;
        for (name, kind, url) in [
            ("postgres", ConnectionKind::Postgres, &pg_url),
            ("mongodb", ConnectionKind::Mongodb, &mongo_url),
        ] {
            engine
                .save_connection(Connection {
                    name: name.into(),
                    kind,
                    url: url.clone(),
                    options: Default::default(),
                })
                .await
                .expect("connection saved");
        }
        let sample = load_flow(&repo("scripts/sample-data/mongodb-documents.json")).expect("sample flow");
        let mut options = RunOptions::default();
        options.vars.insert("rows".into(), json!(ROWS));
        let seeded = engine.run(sample, options).await.expect("sample data flow starts");
        assert_eq!(seeded.state, ExecutionState::Succeeded, "{:?}", seeded.error);
        Setup { engine, pg_url, pg_admin, pg_db, mongo }
    }

    async fn run(&self, file: &str) -> std::sync::Arc<flow_engine::ExecutionReport> {
        let flow = load_flow(&repo(file)).expect("flow file");
        let report = self.engine.run(flow, RunOptions::default()).await.expect("flow starts");
        assert_eq!(report.state, ExecutionState::Succeeded, "{file}: {:?}", report.error);
        report
    }

    fn sql(&self, query: &str) -> String {
        psql(&self.pg_url, &["-c", query])
    }

    async fn drop(self) {
        self.mongo.drop().await.ok();
        drop(self.engine);
        psql(&self.pg_admin, &["-c", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.pg_db)]);
    }
}

/// The MongoDB URL with its database path replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[host_start..].find('/').map_or(base.len(), |i| host_start + i);
    let host = &base[..host_end];
    if query.is_empty() { format!("{host}/{db}") } else { format!("{host}/{db}?{query}") }
}

#[tokio::test]
async fn case1_active_users_land_in_processed_users() {
    let s = Setup::new("case1").await;
    let report = s.run("flows/case1-postgres-active-users.json").await;
    assert_eq!(report.node("active").map(|n| n.counters.records_out), Some(ROWS / 3));
    assert_eq!(s.sql("SELECT count(*), min(id), max(id) FROM processed_users"), "100|3|300");
    assert_eq!(
        s.sql("SELECT full_name, email, age FROM processed_users WHERE id = 3"),
        "User 3|user3@example.com|39"
    );
    assert_eq!(s.sql("SELECT count(*) FROM processed_users WHERE id % 3 <> 0"), "0");
    s.drop().await;
}

#[tokio::test]
async fn case2_documents_over_25_land_in_processed_users() {
    let s = Setup::new("case2").await;
    s.run("flows/case2-mongodb-to-postgres.json").await;
    // Ages cycle through 22, 31, 45, 19, 27, 60: four in six are over 25.
    assert_eq!(s.sql("SELECT count(*) FROM processed_users"), (ROWS / 6 * 4).to_string());
    assert_eq!(s.sql("SELECT count(*) FROM processed_users WHERE age <= 25"), "0");
    assert_eq!(
        s.sql("SELECT full_name, email, age FROM processed_users WHERE id = 2"),
        "Document Author 1|doc1@example.com|31"
    );
    s.drop().await;
}

#[tokio::test]
async fn case3_branches_write_mongodb_and_update_postgresql() {
    use futures::TryStreamExt;
    let s = Setup::new("case3").await;
    s.run("flows/case3-branching.json").await;
    let active = s.mongo.collection::<mongodb::bson::Document>("active_users");
    assert_eq!(active.count_documents(mongodb::bson::doc! {}).await.expect("count"), ROWS / 3);
    let first: Vec<mongodb::bson::Document> = active
        .find(mongodb::bson::doc! {"user_id": 3})
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("documents");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].get_str("full_name").ok(), Some("User 3"));
    assert_eq!(
        s.sql("SELECT status, count(*) FROM users GROUP BY status ORDER BY status"),
        "active|100\ninactive|100\nreview|100"
    );
    s.drop().await;
}
