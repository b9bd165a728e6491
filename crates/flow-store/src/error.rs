//! Errors of the store. Every message starts with the database it concerns (a SQLite file, or a
//! PostgreSQL URL with its password redacted), since a process may open more than one and the
//! message often ends up in a log far from the call.

use std::path::PathBuf;

use uuid::Uuid;

/// Why the store could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {file}: cannot create its directory: {source}")]
    CreateDir {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database {file}: cannot take the lock that serialises opening it ({lock}): {source}")]
    Lock {
        file: PathBuf,
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database {database}: cannot open: {source}")]
    Open {
        database: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database {database}: cannot migrate the schema: {source}")]
    Migrate {
        database: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("database {database}: {source}")]
    Query {
        database: String,
        #[source]
        source: sqlx::Error,
    },
    /// `what` is `execution`, `flow` or `schedule`.
    #[error("database {database}: no {what} {id}")]
    NotFound { database: String, what: &'static str, id: Uuid },
    /// A row names a user or flow that does not exist (or was deleted meanwhile).
    #[error("database {database}: {what} does not exist")]
    MissingReference { database: String, what: String },
    /// `what` is `alert rule`.
    #[error("database {database}: there is already an {what} named `{name}`")]
    NameTaken { database: String, what: &'static str, name: String },
    #[error("database {database}: username `{username}` is taken")]
    UsernameTaken { database: String, username: String },
    /// An update based on a version of a flow that is no longer the stored one; nothing was
    /// written. Reload (the stored version is `current`) and apply the change again.
    #[error("database {database}: flow {id} was changed meanwhile (it is at version {current})")]
    VersionConflict { database: String, id: Uuid, current: i64 },
    /// A value the schema cannot hold (a counter above `i64::MAX`).
    #[error("database {database}: cannot store {what}: {reason}")]
    Unstorable { database: String, what: String, reason: String },
    /// A monitoring query the caller got wrong (an empty window, a zero step, too many points).
    #[error("invalid monitoring query: {reason}")]
    InvalidQuery { reason: String },
    /// A stored value this build cannot read back (written by another version, or edited).
    #[error("database {database}: stored {column} {value:?} is invalid: {reason}")]
    Corrupt { database: String, column: &'static str, value: String, reason: String },
}

/// Whether the database refused a write because of this kind of constraint.
pub(crate) fn violates(source: &sqlx::Error, kind: sqlx::error::ErrorKind) -> bool {
    matches!(source, sqlx::Error::Database(e) if e.kind() == kind)
}

impl StoreError {
    /// Whether the database could not be reached (down, restarting, network, pool exhausted):
    /// a passing condition for the caller, unlike a query the database refused.
    pub fn is_unavailable(&self) -> bool {
        let source = match self {
            StoreError::Open { source, .. } | StoreError::Query { source, .. } => source,
            _ => return false,
        };
        matches!(
            source,
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_)
        )
    }
}
