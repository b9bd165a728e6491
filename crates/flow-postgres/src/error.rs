//! What can go wrong talking to PostgreSQL, sorted by what another attempt can do about it: the
//! kind decides retries and the circuit breaker (connection trouble is transient, a rejected
//! statement is permanent). Messages carry the server's message, detail and hint.

use flow_runtime::ErrorKind;
use sqlx::error::DatabaseError;
use sqlx::postgres::PgDatabaseError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PgError {
    /// The server cannot be reached, or the connection broke: another attempt may work.
    #[error("{0}")]
    Unreachable(String),
    /// The server turned the user down (unknown role, wrong password, pg_hba.conf).
    #[error(
        "{0}; check the user name and password of the connection, and that pg_hba.conf lets this user in"
    )]
    Refused(String),
    /// The database named in the URL does not exist.
    #[error("{0}; create the database or fix its name in the connection URL")]
    MissingDatabase(String),
    /// A clash with concurrent work (serialization failure, deadlock, lock timeout, a cancelled
    /// statement): the same statement may succeed on another attempt.
    #[error("{0}")]
    Conflict(String),
    /// The server rejected the statement (SQL, constraint, type): another attempt will not help.
    #[error("{0}")]
    Statement(String),
    /// The connection of the execution's transaction broke, so the server dropped its writes.
    #[error(
        "the connection of the execution's transaction broke ({0}); the writes made in it are gone, so the batch cannot be retried"
    )]
    TransactionLost(String),
}

impl PgError {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            PgError::Unreachable(_) | PgError::Conflict(_) => ErrorKind::Transient,
            PgError::Refused(_)
            | PgError::MissingDatabase(_)
            | PgError::Statement(_)
            | PgError::TransactionLost(_) => ErrorKind::Permanent,
        }
    }
}

impl From<sqlx::Error> for PgError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                let text = server_message(db.as_ref(), &code);
                match code.as_str() {
                    "40001" | "40P01" | "55P03" | "57014" => PgError::Conflict(text),
                    "28000" | "28P01" => PgError::Refused(text),
                    "3D000" => PgError::MissingDatabase(text),
                    // Connection exceptions, insufficient resources, server shutting down or starting.
                    c if c.starts_with("08") || c.starts_with("53") || c.starts_with("57P") => {
                        PgError::Unreachable(text)
                    }
                    _ => PgError::Statement(text),
                }
            }
            sqlx::Error::Io(io) => PgError::Unreachable(match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "connection refused: nothing is listening on that host and port".to_owned()
                }
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof => format!("the server closed the connection ({io})"),
                _ => io.to_string(),
            }),
            e @ (sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed) => PgError::Unreachable(e.to_string()),
            other => PgError::Statement(other.to_string()),
        }
    }
}

/// The server's message with its detail and hint, and the SQLSTATE for searching.
fn server_message(db: &dyn DatabaseError, code: &str) -> String {
    let mut text = db.message().to_owned();
    if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
        if let Some(detail) = pg.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = pg.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
    }
    if !code.is_empty() {
        text.push_str(&format!(" [SQLSTATE {code}]"));
    }
    text
}

/// Removes a connection URL's password from a message, should a driver message ever echo it.
pub(crate) fn scrub(message: String, url: &str) -> String {
    let mut message = message.replace(url, &flow_model::redact_url(url));
    if let Some(password) = password_of(url)
        && password.len() >= 4
    {
        message = message.replace(password, "***");
    }
    message
}

/// The password of a `scheme://user:password@host` URL, as written.
fn password_of(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let userinfo = &rest[..rest.rfind('@')?];
    let colon = userinfo.find(':')?;
    Some(&userinfo[colon + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_scrubbed_from_messages() {
        let url = "postgres://bob:s3cret-pw@db:5432/x";
        let message = format!("could not use {url}: bad s3cret-pw");
        let scrubbed = scrub(message, url);
        assert!(!scrubbed.contains("s3cret"), "{scrubbed}");
        assert!(scrubbed.contains("postgres://bob:***@db:5432/x"), "{scrubbed}");
        assert_eq!(scrub("no secret here".into(), "postgres://bob@db/x"), "no secret here");
    }

    #[test]
    fn io_errors_are_transient_and_sql_errors_permanent() {
        let refused = PgError::from(sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into()));
        assert_eq!(refused.kind(), ErrorKind::Transient);
        assert!(refused.to_string().contains("refused"));
        assert_eq!(PgError::from(sqlx::Error::RowNotFound).kind(), ErrorKind::Permanent);
    }
}
