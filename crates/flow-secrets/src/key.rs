//! Where the local store's 256-bit key lives: the OS keyring (the Secret Service when a desktop
//! session offers one, else the kernel's keyutils, so it also works headless), or the
//! `FLOW_SECRETS_KEY` environment variable (base64 of 32 bytes) for servers and containers.

use std::fmt;

use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::SecretsError;

/// The keyring service the key is filed under; the user is the store file's path, so two data
/// directories have two keys.
const KEYRING_SERVICE: &str = "flow-platform-secrets";

#[derive(Clone)]
pub enum KeySource {
    /// In the OS keyring, as the entry (`KEYRING_SERVICE`, `user`).
    Keyring { user: String },
    /// Given (from `FLOW_SECRETS_KEY`, or by a test).
    Fixed([u8; 32]),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for KeySource {
    /// Where the key is, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Keyring { user } => write!(f, "OS keyring entry {KEYRING_SERVICE}/{user}"),
            KeySource::Fixed(_) => write!(f, "FLOW_SECRETS_KEY"),
        }
    }
}

impl KeySource {
    /// `FLOW_SECRETS_KEY` when set (and valid), else the keyring entry for `user`.
    pub fn from_env(user: &str) -> Result<Self, SecretsError> {
        match std::env::var("FLOW_SECRETS_KEY") {
            Ok(text) => Self::parse(&text),
            Err(_) => Ok(KeySource::Keyring { user: user.to_owned() }),
        }
    }

    /// A key written as base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, SecretsError> {
        let bytes = B64.decode(text.trim()).map_err(|_| {
            SecretsError::Invalid(
                "FLOW_SECRETS_KEY is not base64 (make one with `openssl rand -base64 32`)".into(),
            )
        })?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            SecretsError::Invalid("FLOW_SECRETS_KEY must be 32 bytes (`openssl rand -base64 32`)".into())
        })?;
        Ok(KeySource::Fixed(key))
    }

    /// The key; with `create`, a keyring without one gets a new random key.
    pub(crate) fn key(&self, create: bool) -> Result<[u8; 32], SecretsError> {
        let user = match self {
            KeySource::Fixed(key) => return Ok(*key),
            KeySource::Keyring { user } => user,
        };
        let mut unavailable = Vec::new();
        let mut reachable = Vec::new();
        for backend in backends() {
            let entry = match backend.entry(user) {
                Ok(entry) => entry,
                Err(e) => {
                    unavailable.push(format!("{}: {e}", backend.name));
                    continue;
                }
            };
            match entry.get_secret() {
                Ok(bytes) => {
                    return bytes.try_into().map_err(|_| {
                        SecretsError::Keyring(format!(
                            "{self} ({}): the stored key is not 32 bytes",
                            backend.name
                        ))
                    });
                }
                Err(keyring::Error::NoEntry) => reachable.push((backend, entry)),
                Err(e) => unavailable.push(format!("{}: {e}", backend.name)),
            }
        }
        let Some((backend, entry)) = reachable.into_iter().next() else {
            return Err(SecretsError::Keyring(format!(
                "{self}: no keyring answers ({}); set FLOW_SECRETS_KEY (`openssl rand -base64 32`) instead",
                unavailable.join("; ")
            )));
        };
        if !create {
            return Err(SecretsError::Keyring(format!(
                "{self} has no key: this store was made on another machine or its key was deleted; set FLOW_SECRETS_KEY to the key it was made with, or delete {user} and set the secrets again"
            )));
        }
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        entry
            .set_secret(&key)
            .map_err(|e| {
                SecretsError::Keyring(format!(
                    "{self} ({}): cannot store a new key: {e}; without a login keyring, set FLOW_SECRETS_KEY (`openssl rand -base64 32`)",
                    backend.name
                ))
            })?;
        Ok(key)
    }
}

/// One keyring the key may live in.
struct Backend {
    name: &'static str,
    builder: Box<keyring::credential::CredentialBuilder>,
}

impl Backend {
    fn entry(&self, user: &str) -> Result<keyring::Entry, keyring::Error> {
        Ok(keyring::Entry::new_with_credential(self.builder.build(None, KEYRING_SERVICE, user)?))
    }
}

/// The keyrings to ask, in order. The Secret Service keeps the key across reboots but needs a
/// desktop session bus and a keyring daemon on it; the kernel keyring (keyutils) works headless.
/// A key is looked for in each, and a new one goes to the first that answers, so a session bus
/// without a keyring daemon (a minimal desktop, Xvfb) still works.
fn backends() -> Vec<Backend> {
    let mut list = Vec::new();
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
        list.push(Backend {
            name: "Secret Service",
            builder: keyring::secret_service::default_credential_builder(),
        });
    }
    list.push(Backend { name: "kernel keyring", builder: keyring::keyutils::default_credential_builder() });
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_the_environment_must_be_32_bytes_of_base64() {
        assert!(matches!(KeySource::parse(&B64.encode([9u8; 32])), Ok(KeySource::Fixed(k)) if k == [9; 32]));
        assert!(KeySource::parse("not base64!").is_err());
        assert!(KeySource::parse(&B64.encode([1u8; 16])).is_err());
        assert_eq!(KeySource::Fixed([0; 32]).to_string(), "FLOW_SECRETS_KEY");
    }
}
