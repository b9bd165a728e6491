//! Reaching a MongoDB connection: what its URL says (hosts for the circuit-breaker key, the
//! default database, the password to keep out of messages), one driver client per rendered URL
//! shared engine-wide, and driver errors turned into node errors that say where it happened and
//! whether a retry can help.

use std::sync::Arc;
use std::time::Duration;

use flow_model::ConnectionKind;
use flow_runtime::{BuildContext, ErrorKind, NodeError};
use mongodb::bson::Document;
use mongodb::error::{Error as DriverError, ErrorKind as DriverKind, WriteFailure};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};

/// Server selection and connect timeout when the URL sets none: the driver's 30 s default would
/// make an unreachable server look like a hang and eat the whole node timeout.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Server error codes (and labels) that mean "try again later", from the drivers' retryability
/// specification: network trouble, elections, shutdowns, write conflicts, rate limits.
const TRANSIENT_CODES: &[i32] =
    &[6, 7, 64, 89, 91, 112, 189, 262, 462, 9001, 10107, 11600, 11602, 13435, 13436];
const TRANSIENT_LABELS: &[&str] =
    &["RetryableWriteError", "TransientTransactionError", "SystemOverloadedError", "RetryableError"];

/// What a connection URL does not parse into.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UrlError {
    #[error(
        "not a MongoDB URL: expected mongodb://[user:password@]host[:port][/database][?options] or mongodb+srv://..."
    )]
    Scheme,
    #[error("the URL names no host")]
    NoHost,
}

/// The parts of a connection URL the nodes need before the driver parses it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UrlParts {
    /// `mongodb://host:port[,host:port]`: the circuit-breaker key.
    pub(crate) target: String,
    pub(crate) default_database: Option<String>,
    /// The password as written and decoded, to scrub from driver messages.
    pub(crate) secrets: Vec<String>,
}

pub(crate) fn parse_url(url: &str) -> Result<UrlParts, UrlError> {
    let (scheme, rest) = url.split_once("://").ok_or(UrlError::Scheme)?;
    if scheme != "mongodb" && scheme != "mongodb+srv" {
        return Err(UrlError::Scheme);
    }
    // Reserved characters in the user info must be percent-encoded, so the authority ends at the
    // first '/' or '?'.
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    if hosts.is_empty() {
        return Err(UrlError::NoHost);
    }
    let hosts = if scheme == "mongodb" {
        hosts.split(',').map(with_default_port).collect::<Vec<_>>().join(",")
    } else {
        hosts.to_owned()
    };
    let secrets = userinfo
        .and_then(|u| u.split_once(':'))
        .map(|(_, pw)| pw)
        .filter(|pw| !pw.is_empty())
        .map(|pw| {
            let decoded = percent_decode(pw);
            if decoded == pw { vec![pw.to_owned()] } else { vec![pw.to_owned(), decoded] }
        })
        .unwrap_or_default();
    let path = tail.strip_prefix('/').unwrap_or("");
    let db = path.split('?').next().unwrap_or("");
    Ok(UrlParts {
        target: format!("{scheme}://{hosts}"),
        default_database: (!db.is_empty()).then(|| percent_decode(db)),
        secrets,
    })
}

fn with_default_port(host: &str) -> String {
    let has_port = match host.rfind(']') {
        Some(close) => host[close..].contains(':'),
        None => host.contains(':'),
    };
    if has_port { host.to_owned() } else { format!("{host}:27017") }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replaces every secret in a message with `***`.
pub(crate) fn scrub(message: &str, secrets: &[String]) -> String {
    secrets.iter().fold(message.to_owned(), |m, s| m.replace(s.as_str(), "***"))
}

/// One driver client per rendered URL, made on first use and shared by every execution.
#[derive(Default)]
struct ClientSlot(tokio::sync::OnceCell<Client>);

/// Where a node reads or writes, for messages and for reaching it.
#[derive(Clone)]
pub(crate) struct Place {
    pub(crate) connection: String,
    pub(crate) redacted_url: String,
    pub(crate) database: String,
    pub(crate) collection: String,
    pub(crate) target: String,
    secrets: Vec<String>,
    url: String,
    slot: Arc<ClientSlot>,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MongoDB connection `{}` ({}), {}.{}",
            self.connection, self.redacted_url, self.database, self.collection
        )
    }
}

impl Place {
    /// Resolves the named connection (URL templates rendered) and the database to use.
    pub(crate) fn resolve(
        ctx: &BuildContext,
        connection: &str,
        database: Option<&str>,
        collection: &str,
    ) -> Result<Place, NodeError> {
        let c = ctx.connection(connection)?;
        let redacted_url = c.redacted_url();
        if c.kind != ConnectionKind::Mongodb {
            return Err(NodeError::params(format!(
                "connection `{connection}` ({redacted_url}) is a {:?} connection; MongoDB nodes need a connection of kind mongodb",
                c.kind
            )));
        }
        let parts = parse_url(&c.url)
            .map_err(|e| NodeError::params(format!("connection `{connection}` ({redacted_url}): {e}")))?;
        let database = database
            .map(str::to_owned)
            .or(parts.default_database)
            .ok_or_else(|| {
                NodeError::params(format!(
                    "connection `{connection}` ({redacted_url}): no database: set the node's `database` param or name one in the URL (mongodb://host:27017/mydb)"
                ))
            })?;
        if collection.is_empty() {
            return Err(NodeError::params("params.collection: must not be empty"));
        }
        let slot = ctx.engine_resources.get_or_insert_with::<ClientSlot>(&c.url, ClientSlot::default);
        Ok(Place {
            connection: connection.to_owned(),
            redacted_url,
            database,
            collection: collection.to_owned(),
            target: parts.target,
            secrets: parts.secrets,
            url: c.url,
            slot,
        })
    }

    /// The rendered URL, as the key of values shared per connection; never shown.
    pub(crate) fn key(&self) -> &str {
        &self.url
    }

    /// The shared client for this URL, made on first use.
    pub(crate) async fn client(&self) -> Result<Client, NodeError> {
        self.slot
            .0
            .get_or_try_init(|| client_for(&self.url))
            .await
            .cloned()
            .map_err(|e| self.error("connecting", &e))
    }

    pub(crate) async fn collection(&self) -> Result<Collection<Document>, NodeError> {
        Ok(self.client().await?.database(&self.database).collection(&self.collection))
    }

    /// A driver error as a node error: transient when a retry may help (counted by the breaker),
    /// permanent otherwise; the message names the connection, the collection and the server's
    /// words, never the password.
    pub(crate) fn error(&self, doing: &str, e: &DriverError) -> NodeError {
        let kind = if is_transient(e) { ErrorKind::Transient } else { ErrorKind::Permanent };
        NodeError::new(kind, self.message(doing, e))
    }

    /// The message of [`Place::error`].
    pub(crate) fn message(&self, doing: &str, e: &DriverError) -> String {
        scrub(&format!("{self}: {doing} failed: {}{}", server_message(e), hint(e)), &self.secrets)
    }
}

/// A client for `url` with this product's defaults where the URL sets none.
pub(crate) async fn client_for(url: &str) -> Result<Client, DriverError> {
    let mut options = ClientOptions::parse(url).await?;
    options.server_selection_timeout.get_or_insert(DEFAULT_TIMEOUT);
    options.connect_timeout.get_or_insert(DEFAULT_TIMEOUT);
    options.app_name.get_or_insert_with(|| "flow-platform".to_owned());
    Client::with_options(options)
}

/// Whether another attempt may succeed.
pub(crate) fn is_transient(e: &DriverError) -> bool {
    if TRANSIENT_LABELS.iter().any(|l| e.contains_label(l)) {
        return true;
    }
    match e.kind.as_ref() {
        DriverKind::Io(_)
        | DriverKind::ConnectionPoolCleared { .. }
        | DriverKind::ServerSelection { .. }
        | DriverKind::DnsResolve { .. } => true,
        DriverKind::Command(c) => TRANSIENT_CODES.contains(&c.code),
        DriverKind::Write(WriteFailure::WriteConcernError(w)) => TRANSIENT_CODES.contains(&w.code),
        DriverKind::InsertMany(m) => {
            m.write_errors.as_ref().is_none_or(Vec::is_empty)
                && m.write_concern_error.as_ref().is_some_and(|w| TRANSIENT_CODES.contains(&w.code))
        }
        _ => false,
    }
}

/// Whether the server refused for lack of authentication or rights.
pub(crate) fn is_auth_failure(e: &DriverError) -> bool {
    match e.kind.as_ref() {
        DriverKind::Authentication { .. } => true,
        DriverKind::Command(c) => matches!(c.code, 13 | 18),
        _ => false,
    }
}

/// The server's (or the driver's) own words, without the driver's wrapping.
pub(crate) fn server_message(e: &DriverError) -> String {
    match e.kind.as_ref() {
        DriverKind::Command(c) => format!("{} ({})", c.message, code(&c.code_name, c.code)),
        DriverKind::Write(WriteFailure::WriteError(w)) => format!("{} (code {})", w.message, w.code),
        DriverKind::Write(WriteFailure::WriteConcernError(w)) => {
            format!("write concern: {} ({})", w.message, code(&w.code_name, w.code))
        }
        DriverKind::InsertMany(m) => match m.write_errors.as_ref().and_then(|w| w.first()) {
            Some(w) => format!("document {} of the batch: {} (code {})", w.index, w.message, w.code),
            None => match &m.write_concern_error {
                Some(w) => format!("write concern: {} ({})", w.message, code(&w.code_name, w.code)),
                None => e.kind.to_string(),
            },
        },
        DriverKind::ServerSelection { message, .. } => selection_summary(message),
        DriverKind::Authentication { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn code(name: &str, code: i32) -> String {
    if name.is_empty() { format!("code {code}") } else { format!("{name}, code {code}") }
}

/// The gist of the driver's server-selection message (which dumps the whole topology): each
/// server's address and last error, e.g. `127.0.0.1:1: I/O error: Connection refused`.
fn selection_summary(message: &str) -> String {
    let servers: Vec<String> = message
        .split("{ Address: ")
        .skip(1)
        .map(|server| {
            let address = server.split(',').next().unwrap_or_default().trim();
            match server.split_once("Error: Kind: ") {
                Some((_, rest)) => {
                    format!("{address}: {}", rest.split(", labels").next().unwrap_or(rest).trim())
                }
                None => format!("{address}: no answer"),
            }
        })
        .collect();
    if servers.is_empty() {
        message.to_owned()
    } else {
        format!("no server could be selected ({})", servers.join("; "))
    }
}

fn hint(e: &DriverError) -> &'static str {
    match e.kind.as_ref() {
        DriverKind::ServerSelection { .. } | DriverKind::Io(_) | DriverKind::DnsResolve { .. } => {
            " — check that the server is running and that the host and port in the connection URL are right (a single server needs directConnection=true)"
        }
        _ if is_auth_failure(e) => {
            " — check the user name, password and authSource in the connection URL, and the user's roles"
        }
        _ => "",
    }
}

/// A place for unit tests that never reach a server.
#[cfg(test)]
pub(crate) fn test_place() -> Place {
    Place {
        connection: "mongo".into(),
        redacted_url: "mongodb://u:***@db:27017/app".into(),
        database: "app".into(),
        collection: "people".into(),
        target: "mongodb://db:27017".into(),
        secrets: vec!["pw".into()],
        url: "mongodb://u:pw@db:27017/app".into(),
        slot: Arc::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_gives_breaker_target_default_database_and_secrets() {
        let p = parse_url("mongodb://bob:p%40ss@db1,db2:27018/shop?replicaSet=rs0").expect("parses");
        assert_eq!(p.target, "mongodb://db1:27017,db2:27018");
        assert_eq!(p.default_database.as_deref(), Some("shop"));
        assert_eq!(p.secrets, ["p%40ss", "p@ss"]);

        let p = parse_url("mongodb://127.0.0.1:27018/?directConnection=true").expect("parses");
        assert_eq!(p.target, "mongodb://127.0.0.1:27018");
        assert_eq!(p.default_database, None);
        assert!(p.secrets.is_empty());

        let p = parse_url("mongodb://[::1]/db").expect("parses");
        assert_eq!((p.target.as_str(), p.default_database.as_deref()), ("mongodb://[::1]:27017", Some("db")));
        let p = parse_url("mongodb+srv://u:pw@cluster0.example.net/app").expect("parses");
        assert_eq!(p.target, "mongodb+srv://cluster0.example.net");

        assert_eq!(parse_url("postgres://x/y"), Err(UrlError::Scheme));
        assert_eq!(parse_url("mongodb:///db"), Err(UrlError::NoHost));
    }

    #[test]
    fn secrets_are_scrubbed_from_messages() {
        let secrets = parse_url("mongodb://bob:s%2Fcret@h/db").expect("parses").secrets;
        assert_eq!(
            scrub("auth failed for bob:s/cret and s%2Fcret", &secrets),
            "auth failed for bob:*** and ***"
        );
    }

    #[test]
    fn server_selection_messages_are_summarised() {
        let driver = "Server selection timeout: No available servers. Topology: { Type: Single, Servers: [ { Address: 127.0.0.1:1, Type: Unknown, Error: Kind: I/O error: Connection refused (os error 111), labels: {}, source: None } ] }";
        assert_eq!(
            selection_summary(driver),
            "no server could be selected (127.0.0.1:1: I/O error: Connection refused (os error 111))"
        );
        assert_eq!(selection_summary("something else"), "something else");
    }

    #[test]
    fn network_and_selection_errors_are_transient_others_permanent() {
        let io = DriverError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(is_transient(&io));
        assert!(!is_transient(&DriverError::custom("bug")));
        assert!(hint(&io).contains("server is running"));
    }
}
