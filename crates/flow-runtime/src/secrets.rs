//! Secrets as the runtime sees them: references named by templates (`{{ secrets.pg_password }}`,
//! `{{ secrets.vault["db/creds#password"] }}`), a source that resolves them at run time (the
//! providers live in `flow-secrets`; hosts hand them to the engine), and the redactor that keeps
//! every resolved value out of messages, events and logs.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use futures::future::BoxFuture;

/// Providers named in templates as `secrets.<provider>[...]`; any other name under `secrets` is
/// a secret of the local store.
pub const PROVIDER_NAMESPACES: [&str; 2] = ["vault", "aws"];

/// One secret a template names: its provider (`local`, `vault`, `aws`) and its key there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretRef {
    pub provider: String,
    pub key: String,
}

impl SecretRef {
    pub fn local(name: impl Into<String>) -> Self {
        Self { provider: "local".into(), key: name.into() }
    }
}

impl fmt::Display for SecretRef {
    /// As the template writes it, so an error points at what the user wrote.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.provider == "local" {
            write!(f, "secrets.{}", self.key)
        } else {
            write!(f, "secrets.{}[\"{}\"]", self.provider, self.key)
        }
    }
}

/// Secret values already fetched, by reference: what the pre-run check hands the run so that
/// each secret is fetched once per run. `Debug` shows the references, never the values.
#[derive(Clone, Default)]
pub struct FetchedSecrets(pub BTreeMap<SecretRef, String>);

impl fmt::Debug for FetchedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A secret that could not be resolved, naming the secret and its provider.
#[derive(Debug, Clone, thiserror::Error)]
#[error("secret `{reference}` ({provider}): {message}")]
pub struct SecretError {
    pub reference: SecretRef,
    /// The provider as a user would find it (`vault at http://127.0.0.1:8200`): also the key of
    /// its circuit breaker.
    pub provider: String,
    pub message: String,
    /// The provider could not be reached (worth a retry), rather than refused or lacked it.
    pub transient: bool,
}

/// Resolves secret references for executions.
pub trait SecretSource: Send + Sync {
    /// The value of `reference`.
    fn resolve<'a>(&'a self, reference: &'a SecretRef) -> BoxFuture<'a, Result<String, SecretError>>;

    /// Where `reference` is resolved (`vault at http://...`), naming its breaker.
    fn provider_of(&self, reference: &SecretRef) -> String {
        reference.provider.clone()
    }
}

/// No providers configured: every reference is an error saying so.
#[derive(Debug, Default)]
pub struct NoSecrets;

impl SecretSource for NoSecrets {
    fn resolve<'a>(&'a self, reference: &'a SecretRef) -> BoxFuture<'a, Result<String, SecretError>> {
        Box::pin(async move {
            Err(SecretError {
                reference: reference.clone(),
                provider: reference.provider.clone(),
                message: "no secret providers are configured in this engine".into(),
                transient: false,
            })
        })
    }
}

/// Values shorter than this are not redacted: scrubbing two-letter strings out of every message
/// would make messages unreadable and protect nothing.
const MIN_REDACTED_LEN: usize = 4;

/// The values to keep out of every message: each resolved secret, as is and as it appears
/// percent-encoded in a URL.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Arc<RwLock<Vec<String>>>,
}

/// The process's redactor: every secret resolved by any execution of the process is registered
/// here, so the hosts' log writers can scrub lines no execution owns.
static GLOBAL: LazyLock<Redactor> = LazyLock::new(Redactor::default);

impl Redactor {
    pub fn global() -> &'static Redactor {
        &GLOBAL
    }

    /// Adds `value` (and its URL-encoded form) to the values scrubbed.
    pub fn register(&self, value: &str) {
        if value.len() < MIN_REDACTED_LEN {
            return;
        }
        let mut values = self.values.write().unwrap_or_else(PoisonError::into_inner);
        for form in [value.to_owned(), percent_encoded(value)] {
            if !values.contains(&form) {
                values.push(form);
            }
        }
        // Longest first, so a value containing another is replaced whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// `text` with every registered value replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let values = self.values.read().unwrap_or_else(PoisonError::into_inner);
        let mut out = text.to_owned();
        for value in values.iter() {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), "***");
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.values.read().unwrap_or_else(PoisonError::into_inner).is_empty()
    }
}

/// A writer that scrubs what it writes with the process's redactor: for log writers, which get
/// each formatted event in one write.
#[derive(Debug)]
pub struct Scrubbed<W>(pub W);

impl<W: std::io::Write> std::io::Write for Scrubbed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let redactor = Redactor::global();
        if redactor.is_empty() {
            return self.0.write(buf);
        }
        self.0.write_all(redactor.scrub(&String::from_utf8_lossy(buf)).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// `value` as the userinfo of a URL carries it (RFC 3986 unreserved characters kept).
fn percent_encoded(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_values_and_their_url_encoded_form_but_not_tiny_ones() {
        let r = Redactor::default();
        r.register("s3cr3t/pw");
        r.register("ab");
        let text = "postgres://u:s3cr3t%2Fpw@h/db failed; password s3cr3t/pw; ab stays";
        assert_eq!(r.scrub(text), "postgres://u:***@h/db failed; password ***; ab stays");
    }

    #[test]
    fn references_display_as_written_in_templates() {
        assert_eq!(SecretRef::local("pg").to_string(), "secrets.pg");
        let vault = SecretRef { provider: "vault".into(), key: "db/creds#password".into() };
        assert_eq!(vault.to_string(), "secrets.vault[\"db/creds#password\"]");
    }
}
