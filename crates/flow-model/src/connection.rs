//! Named connections: how flows reach external systems. A flow names a connection; the URL lives
//! in the engine's store and may reference secrets with templates (`{{ env.PG_PASSWORD }}`), so
//! credentials never appear in flow files.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What kind of system a connection reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ConnectionKind {
    Postgres,
    Mongodb,
}

/// A named connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Connection {
    pub name: String,
    pub kind: ConnectionKind,
    /// Connection URL; templates are rendered at run time (`{{ env.X }}`).
    pub url: String,
    /// Kind-specific options, e.g. `{"max_connections": 10}`.
    #[serde(default)]
    #[ts(type = "Record<string, unknown>")]
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// The answer of a connection test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ConnectionTest {
    pub reachable: bool,
    pub authenticated: bool,
    pub server_version: Option<String>,
    /// What went wrong and how to fix it, or a confirmation.
    pub message: String,
}

impl Connection {
    /// The URL with any password replaced, for messages.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// Replaces the password of a `scheme://user:password@host` URL with `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_owned() };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.rfind('@') else { return url.to_owned() };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &url[..scheme_end + 3], &rest[..colon], &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://bob:s3cret@db:5432/x"), "postgres://bob:***@db:5432/x");
        assert_eq!(
            redact_url("mongodb://db:27017/?directConnection=true"),
            "mongodb://db:27017/?directConnection=true"
        );
        assert_eq!(redact_url("postgres://bob@db/x"), "postgres://bob@db/x");
    }
}
