//! Errors of the history store. Every message starts with the database it concerns, since an
//! engine may open more than one and the message often ends up in a log far from the call.

use std::path::PathBuf;

use uuid::Uuid;

/// Why the history could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {file}: cannot create its directory: {source}")]
    CreateDir {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database {file}: cannot open: {source}")]
    Open {
        file: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("database {file}: cannot migrate the schema: {source}")]
    Migrate {
        file: PathBuf,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("database {file}: {source}")]
    Query {
        file: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("database {file}: no execution {id}")]
    NotFound { file: PathBuf, id: Uuid },
    /// A value the schema cannot hold (a counter above `i64::MAX`).
    #[error("database {file}: cannot store {what}: {reason}")]
    Unstorable { file: PathBuf, what: String, reason: String },
    /// A stored value this build cannot read back (written by another version, or edited).
    #[error("database {file}: stored {column} {value:?} is invalid: {reason}")]
    Corrupt { file: PathBuf, column: &'static str, value: String, reason: String },
}
