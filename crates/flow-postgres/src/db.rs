//! A named PostgreSQL connection as the nodes use it: looked up and rendered through the build
//! context, its pool shared engine-wide per rendered URL (created lazily, sized by the
//! connection's options), its circuit-breaker target, and errors that name the connection.

use std::str::FromStr;
use std::time::Duration;

use flow_model::ConnectionKind;
use flow_runtime::{BuildContext, NodeError};
use serde::Deserialize;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, Transaction};

use crate::connect::connect;
use crate::error::{PgError, scrub};

/// How long a node waits for a direct connection that explains why the pool had none.
const DIAGNOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Pool settings from a connection's `options`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolSettings {
    #[serde(default = "default_max_connections")]
    max_connections: u32,
    #[serde(default)]
    min_connections: u32,
    /// How long a node waits for a free connection (or for the server to accept one).
    #[serde(default = "default_acquire_timeout_ms")]
    acquire_timeout_ms: u64,
    #[serde(default)]
    idle_timeout_ms: Option<u64>,
    #[serde(default)]
    max_lifetime_ms: Option<u64>,
}

fn default_max_connections() -> u32 {
    10
}

fn default_acquire_timeout_ms() -> u64 {
    5_000
}

/// A PostgreSQL connection of one node.
#[derive(Clone)]
pub(crate) struct Db {
    name: String,
    /// The rendered URL: the key of the pool and of the execution's transaction.
    url: String,
    options: PgConnectOptions,
    pool: PgPool,
    target: String,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("name", &self.name).field("target", &self.target).finish_non_exhaustive()
    }
}

impl Db {
    /// The named connection, with the engine-wide pool for its URL.
    pub(crate) fn open(ctx: &BuildContext, name: &str) -> Result<Db, NodeError> {
        let conn = ctx.connection(name)?;
        if conn.kind != ConnectionKind::Postgres {
            return Err(NodeError::params(format!(
                "connection `{name}` is a {:?} connection; this node needs a PostgreSQL one",
                conn.kind
            )));
        }
        let options = PgConnectOptions::from_str(&conn.url).map_err(|e| {
            NodeError::params(scrub(
                format!(
                    "connection `{name}`: `{}` is not a PostgreSQL URL ({e}); expected postgres://user:password@host:5432/database",
                    conn.redacted_url()
                ),
                &conn.url,
            ))
        })?;
        // Sessions show up as this application in pg_stat_activity unless the URL names one.
        let options = match options.get_application_name() {
            Some(_) => options,
            None => options.application_name("flow-platform"),
        };
        let settings: PoolSettings = serde_json::from_value(serde_json::Value::Object(conn.options.clone()))
            .map_err(|e| {
                NodeError::params(format!(
                    "connection `{name}`: options: {e} (known: max_connections, min_connections, acquire_timeout_ms, idle_timeout_ms, max_lifetime_ms)"
                ))
            })?;
        let pool = ctx.engine_resources.get_or_insert_with::<PgPool>(&conn.url, || {
            let mut pool = PgPoolOptions::new()
                .max_connections(settings.max_connections.max(1))
                .min_connections(settings.min_connections)
                .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms));
            // Unset ones keep sqlx's defaults (10 min idle, 30 min lifetime).
            if let Some(ms) = settings.idle_timeout_ms {
                pool = pool.idle_timeout(Duration::from_millis(ms));
            }
            if let Some(ms) = settings.max_lifetime_ms {
                pool = pool.max_lifetime(Duration::from_millis(ms));
            }
            pool.connect_lazy_with(options.clone())
        });
        let target = format!(
            "postgres://{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username())
        );
        Ok(Db { name: name.to_owned(), url: conn.url, options, pool: (*pool).clone(), target })
    }

    /// The circuit-breaker key: `postgres://host:port/database`.
    pub(crate) fn target(&self) -> String {
        self.target.clone()
    }

    /// The rendered URL, which keys the execution's transaction.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A node error naming the connection (with its URL, password hidden) and what was done.
    pub(crate) fn error(&self, doing: &str, e: PgError) -> NodeError {
        let message =
            format!("connection `{}` ({}): {doing}: {e}", self.name, flow_model::redact_url(&self.url));
        NodeError::new(e.kind(), scrub(message, &self.url))
    }

    /// A pooled connection; when the pool has none, says why.
    pub(crate) async fn acquire(&self) -> Result<PoolConnection<Postgres>, PgError> {
        match self.pool.acquire().await {
            Ok(conn) => Ok(conn),
            Err(sqlx::Error::PoolTimedOut) => Err(self.diagnose().await),
            Err(e) => Err(e.into()),
        }
    }

    /// A new transaction on a pooled connection.
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Postgres>, PgError> {
        match self.pool.begin().await {
            Ok(tx) => Ok(tx),
            Err(sqlx::Error::PoolTimedOut) => Err(self.diagnose().await),
            Err(e) => Err(e.into()),
        }
    }

    /// The pool timed out: the pool keeps retrying a refused connection until then, so a direct
    /// attempt tells a closed port or an unknown host from a pool whose connections are all busy.
    async fn diagnose(&self) -> PgError {
        let waited = self.pool.options().get_acquire_timeout().as_millis();
        if self.pool.size() > 0 {
            return PgError::Unreachable(format!(
                "no free connection within {waited} ms: all {} connections of the pool are busy; raise `max_connections` in the connection's options",
                self.pool.size()
            ));
        }
        match connect(&self.options, DIAGNOSE_TIMEOUT).await {
            Ok(conn) => {
                if let Err(e) = conn.close().await {
                    tracing::debug!(error = %e, "closing the diagnostic connection");
                }
                PgError::Unreachable(format!(
                    "no connection within {waited} ms, though the server answers now"
                ))
            }
            Err(d) => d.into_error(),
        }
    }
}
