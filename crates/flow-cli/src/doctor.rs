//! `flow doctor`: checks every configured dependency (PostgreSQL, MongoDB and Redis from
//! POSTGRESQL_URL, MONGODB_URL and REDIS_URL, and every named connection) and says for each what
//! is wrong and how to fix it. Redis is checked here, in the host, because the engine does not
//! know about Redis.

use std::time::Duration;

use flow_engine::{Connection, ConnectionKind, ConnectionTest, Engine};
use flow_model::redact_url;

/// One line of the report.
pub(crate) struct Check {
    pub(crate) name: String,
    pub(crate) target: String,
    pub(crate) result: ConnectionTest,
}

impl Check {
    pub(crate) fn ok(&self) -> bool {
        self.result.reachable && self.result.authenticated
    }
}

/// Runs every check; unset environment variables are reported as not configured, not as failures.
pub(crate) async fn run(engine: &Engine) -> (Vec<Check>, Vec<String>) {
    let mut checks = Vec::new();
    let mut skipped = Vec::new();
    for (var, kind) in
        [("POSTGRESQL_URL", ConnectionKind::Postgres), ("MONGODB_URL", ConnectionKind::Mongodb)]
    {
        match std::env::var(var).ok().filter(|v| !v.is_empty()) {
            Some(url) => {
                let connection =
                    Connection { name: var.to_owned(), kind, url: url.clone(), options: Default::default() };
                checks.push(Check {
                    name: var.to_owned(),
                    target: redact_url(&url),
                    result: engine.test_connection(&connection).await,
                });
            }
            None => skipped.push(format!("{var} is not set")),
        }
    }
    match std::env::var("REDIS_URL").ok().filter(|v| !v.is_empty()) {
        Some(url) => checks.push(Check {
            name: "REDIS_URL".into(),
            target: redact_url(&url),
            result: check_redis(&url).await,
        }),
        None => skipped.push("REDIS_URL is not set".into()),
    }
    for connection in engine.list_connections() {
        checks.push(Check {
            name: format!("connection `{}`", connection.name),
            target: connection.redacted_url(),
            result: engine.test_connection(&connection).await,
        });
    }
    (checks, skipped)
}

async fn check_redis(url: &str) -> ConnectionTest {
    let fail = |reachable: bool, message: String| ConnectionTest {
        reachable,
        authenticated: false,
        server_version: None,
        message,
    };
    let client = match redis::Client::open(url) {
        Ok(c) => c,
        Err(e) => {
            return fail(
                false,
                format!("REDIS_URL is not a valid Redis URL ({e}); expected redis://host:6379"),
            );
        }
    };
    let connect =
        tokio::time::timeout(Duration::from_secs(3), client.get_multiplexed_async_connection()).await;
    let mut conn = match connect {
        Err(_) => {
            return fail(false, "no answer within 3 s; check the host and port, and any firewall".into());
        }
        Ok(Err(e)) if e.kind() == redis::ErrorKind::AuthenticationFailed => {
            return fail(true, "Redis refused the credentials; fix the password in REDIS_URL".into());
        }
        Ok(Err(e)) if e.is_connection_refusal() => {
            return fail(
                false,
                "connection refused: Redis is not running there; start it (`redis-server`) or fix REDIS_URL"
                    .into(),
            );
        }
        Ok(Err(e)) => return fail(false, format!("cannot connect: {e}")),
        Ok(Ok(c)) => c,
    };
    let pong: Result<String, _> = redis::cmd("PING").query_async(&mut conn).await;
    if let Err(e) = pong {
        let message = if e.to_string().contains("NOAUTH") {
            "Redis needs a password: put it in REDIS_URL (redis://:password@host:6379)".to_owned()
        } else {
            format!("PING failed: {e}")
        };
        return fail(true, message);
    }
    let info: Result<redis::InfoDict, _> = redis::cmd("INFO").arg("server").query_async(&mut conn).await;
    let info = info.map(|i| i.get::<String>("redis_version").unwrap_or_default());
    ConnectionTest {
        reachable: true,
        authenticated: true,
        server_version: info.ok().filter(|v| !v.is_empty()),
        message: "ok".into(),
    }
}
