//! Opening one connection directly, outside any pool, and saying precisely why it failed (unknown
//! host, closed port, silent host, refused user, missing database) and how to fix it. Used by
//! [`test_connection`] and by the nodes when their pool cannot hand out a connection.

use std::str::FromStr;
use std::time::Duration;

use flow_model::{ConnectionTest, redact_url};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::error::{PgError, scrub};

/// How long a connection test may wait for the host.
const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a direct connection failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diagnosis {
    pub(crate) reachable: bool,
    pub(crate) authenticated: bool,
    pub(crate) message: String,
}

impl Diagnosis {
    /// The failure as the error of a node call.
    pub(crate) fn into_error(self) -> PgError {
        if !self.reachable { PgError::Unreachable(self.message) } else { PgError::Statement(self.message) }
    }
}

/// Opens one connection with `opts`, waiting at most `within` for each step.
pub(crate) async fn connect(opts: &PgConnectOptions, within: Duration) -> Result<PgConnection, Diagnosis> {
    let (host, port) = (opts.get_host(), opts.get_port());
    let at = format!("{host}:{port}");
    let unreachable = |message: String| Diagnosis { reachable: false, authenticated: false, message };
    // A name that does not resolve is told apart from a closed port before connecting.
    if opts.get_socket().is_none() && !host.starts_with('/') {
        match tokio::time::timeout(within, tokio::net::lookup_host((host, port))).await {
            Err(_) => {
                return Err(unreachable(format!(
                    "looking up host `{host}` took longer than {} s: check the host name and the DNS settings",
                    within.as_secs()
                )));
            }
            Ok(Err(_)) => {
                return Err(unreachable(format!(
                    "unknown host `{host}`: the name does not resolve; fix the host in the connection URL"
                )));
            }
            Ok(Ok(_)) => {}
        }
    }
    let error = match tokio::time::timeout(within, PgConnection::connect_with(opts)).await {
        Ok(Ok(conn)) => return Ok(conn),
        Err(_) => {
            return Err(unreachable(format!(
                "no answer from {at} within {} s: the host may be down, or a firewall drops the connection",
                within.as_secs()
            )));
        }
        Ok(Err(e)) => e,
    };
    if let sqlx::Error::Io(io) = &error
        && io.kind() == std::io::ErrorKind::ConnectionRefused
    {
        return Err(unreachable(format!(
            "nothing is listening on {at} (connection refused): start PostgreSQL there, or fix the host and port in the connection URL"
        )));
    }
    Err(match PgError::from(error) {
        e @ PgError::Refused(_) => Diagnosis {
            reachable: true,
            authenticated: false,
            message: format!("{at} refused user `{}`: {e}", opts.get_username()),
        },
        e @ PgError::MissingDatabase(_) => {
            Diagnosis { reachable: true, authenticated: true, message: e.to_string() }
        }
        PgError::Unreachable(m) => unreachable(format!("cannot connect to {at}: {m}")),
        e => Diagnosis { reachable: true, authenticated: false, message: format!("{at}: {e}") },
    })
}

/// Tests a PostgreSQL URL: is the server reachable, are the credentials accepted, which version
/// is it. The message says what is wrong and how to fix it; it never contains the password.
pub async fn test_connection(url: &str) -> ConnectionTest {
    let redacted = redact_url(url);
    let failed = |reachable: bool, authenticated: bool, message: String| ConnectionTest {
        reachable,
        authenticated,
        server_version: None,
        message: scrub(format!("{redacted}: {message}"), url),
    };
    let opts = match PgConnectOptions::from_str(url) {
        Ok(opts) => opts,
        Err(e) => {
            return failed(
                false,
                false,
                format!("not a PostgreSQL URL ({e}); expected postgres://user:password@host:5432/database"),
            );
        }
    };
    let mut conn = match connect(&opts, TEST_TIMEOUT).await {
        Ok(conn) => conn,
        Err(d) => return failed(d.reachable, d.authenticated, d.message),
    };
    let version = sqlx::query_scalar::<_, String>("SHOW server_version").fetch_one(&mut conn).await;
    if let Err(e) = conn.close().await {
        tracing::debug!(error = %e, "closing the test connection");
    }
    match version {
        Ok(version) => ConnectionTest {
            reachable: true,
            authenticated: true,
            message: format!(
                "connected to PostgreSQL {version} at {}:{}, database `{}`, as `{}`",
                opts.get_host(),
                opts.get_port(),
                opts.get_database().unwrap_or(opts.get_username()),
                opts.get_username()
            ),
            server_version: Some(version),
        },
        Err(e) => failed(
            true,
            true,
            format!("connected, but reading the server version failed: {}", PgError::from(e)),
        ),
    }
}
