//! The local provider: secrets encrypted at rest in one JSON file of the engine's data directory
//! (`secrets.json`), each value sealed with AES-256-GCM under a key that never touches the disk:
//! it lives in the OS keyring (or, for servers and containers, in `FLOW_SECRETS_KEY`). The
//! secret's name is the cipher's associated data, so a value moved to another name does not
//! decrypt. A copied file without the key is useless.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::SecretsError;
use crate::key::KeySource;

/// One sealed value.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sealed {
    nonce: String,
    ciphertext: String,
    updated_at: DateTime<Utc>,
}

/// The file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    secrets: BTreeMap<String, Sealed>,
    /// The providers' settings (with their credentials), sealed like the secrets, by provider.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    providers: BTreeMap<String, Sealed>,
}

/// A secret's name and when it was last set (values are never listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct SecretInfo {
    pub name: String,
    pub updated_at: DateTime<Utc>,
}

/// The encrypted store at `path`, its key from `key`.
#[derive(Debug, Clone)]
pub struct LocalStore {
    path: PathBuf,
    key: KeySource,
}

impl LocalStore {
    pub fn new(path: impl Into<PathBuf>, key: KeySource) -> Self {
        Self { path: path.into(), key }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names are what templates write after `secrets.`: letters, digits and `_`, not starting
    /// with a digit, and not a provider's name.
    pub fn check_name(name: &str) -> Result<(), SecretsError> {
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(SecretsError::Invalid(format!(
                "secret name `{name}`: use letters, digits and `_`, starting with a letter (templates write it as `{{{{ secrets.NAME }}}}`)"
            )));
        }
        if flow_runtime::PROVIDER_NAMESPACES.contains(&name) {
            return Err(SecretsError::Invalid(format!(
                "secret name `{name}` is reserved: `secrets.{name}[...]` reads from the {name} provider"
            )));
        }
        Ok(())
    }

    /// Stores `value` under `name`, replacing any earlier value; creates the key on first use.
    pub fn set(&self, name: &str, value: &str) -> Result<(), SecretsError> {
        Self::check_name(name)?;
        let mut file = self.read()?;
        let sealed = self.seal(&file, name, value)?;
        file.secrets.insert(name.to_owned(), sealed);
        self.write(&file)
    }

    /// The value of `name`; `None` when the store has no such secret.
    pub fn get(&self, name: &str) -> Result<Option<String>, SecretsError> {
        let file = self.read()?;
        file.secrets.get(name).map(|sealed| self.open(sealed, name, &format!("secret `{name}`"))).transpose()
    }

    /// Keeps `provider`'s settings (JSON, credentials included) sealed in the file.
    pub(crate) fn set_provider(&self, provider: &str, settings: &str) -> Result<(), SecretsError> {
        let mut file = self.read()?;
        let sealed = self.seal(&file, &provider_aad(provider), settings)?;
        file.providers.insert(provider.to_owned(), sealed);
        self.write(&file)
    }

    /// `provider`'s stored settings; `None` without any (and then the key is not read).
    pub(crate) fn provider(&self, provider: &str) -> Result<Option<String>, SecretsError> {
        let file = self.read()?;
        file.providers
            .get(provider)
            .map(|sealed| self.open(sealed, &provider_aad(provider), &format!("the {provider} settings")))
            .transpose()
    }

    /// Forgets `provider`'s settings; false when there were none.
    pub(crate) fn remove_provider(&self, provider: &str) -> Result<bool, SecretsError> {
        let mut file = self.read()?;
        if file.providers.remove(provider).is_none() {
            return Ok(false);
        }
        self.write(&file)?;
        Ok(true)
    }

    /// `value` sealed under `aad`; the key is created when the file holds nothing sealed yet.
    fn seal(&self, file: &StoreFile, aad: &str, value: &str) -> Result<Sealed, SecretsError> {
        let cipher = self.cipher(file.secrets.is_empty() && file.providers.is_empty())?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(&nonce, Payload { msg: value.as_bytes(), aad: aad.as_bytes() })
            .map_err(|_| SecretsError::Crypto(format!("{}: cannot encrypt `{aad}`", self.path.display())))?;
        Ok(Sealed { nonce: B64.encode(nonce), ciphertext: B64.encode(ciphertext), updated_at: Utc::now() })
    }

    /// The value `sealed` holds under `aad`; errors name it as `what`.
    fn open(&self, sealed: &Sealed, aad: &str, what: &str) -> Result<String, SecretsError> {
        let cipher = self.cipher(false)?;
        let undecodable = |part: &str| {
            SecretsError::Crypto(format!("{}: {what}: {part} is not valid base64", self.path.display()))
        };
        let nonce = B64.decode(&sealed.nonce).map_err(|_| undecodable("nonce"))?;
        let ciphertext = B64.decode(&sealed.ciphertext).map_err(|_| undecodable("ciphertext"))?;
        if nonce.len() != 12 {
            return Err(SecretsError::Crypto(format!(
                "{}: {what}: the nonce is not 12 bytes",
                self.path.display()
            )));
        }
        let plain = cipher
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ciphertext, aad: aad.as_bytes() })
            .map_err(|_| {
                SecretsError::Crypto(format!(
                    "{}: {what} does not decrypt with this machine's key ({}): the file was copied from elsewhere, altered, or the key was replaced",
                    self.path.display(),
                    self.key
                ))
            })?;
        String::from_utf8(plain)
            .map_err(|_| SecretsError::Crypto(format!("{}: {what} is not UTF-8 text", self.path.display())))
    }

    /// Every secret's name and update time, without decrypting anything.
    pub fn list(&self) -> Result<Vec<SecretInfo>, SecretsError> {
        Ok(self
            .read()?
            .secrets
            .into_iter()
            .map(|(name, sealed)| SecretInfo { name, updated_at: sealed.updated_at })
            .collect())
    }

    /// Removes `name`; false when there was none.
    pub fn remove(&self, name: &str) -> Result<bool, SecretsError> {
        let mut file = self.read()?;
        if file.secrets.remove(name).is_none() {
            return Ok(false);
        }
        self.write(&file)?;
        Ok(true)
    }

    fn cipher(&self, create: bool) -> Result<Aes256Gcm, SecretsError> {
        let key = self.key.key(create)?;
        Ok(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)))
    }

    fn read(&self) -> Result<StoreFile, SecretsError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StoreFile::default()),
            Err(e) => return Err(SecretsError::Io(format!("{}: {e}", self.path.display()))),
        };
        serde_json::from_str(&text)
            .map_err(|e| SecretsError::Invalid(format!("{}: not a secrets file: {e}", self.path.display())))
    }

    /// Writes through a temporary file and a rename, so a crash never leaves half a file; the
    /// file is readable by its owner only.
    fn write(&self, file: &StoreFile) -> Result<(), SecretsError> {
        let io = |e: std::io::Error| SecretsError::Io(format!("{}: {e}", self.path.display()));
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let file = StoreFile { version: 1, secrets: file.secrets.clone(), providers: file.providers.clone() };
        let text = serde_json::to_vec_pretty(&file).map_err(|e| SecretsError::Io(e.to_string()))?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        restrict(&tmp).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

/// A provider's settings are sealed under another name than any secret can have (secret names
/// have no `:`), so one cannot be moved to the other.
fn provider_aad(provider: &str) -> String {
    format!("provider:{provider}")
}

#[cfg(unix)]
fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, key: [u8; 32]) -> LocalStore {
        LocalStore::new(dir.join("secrets.json"), KeySource::Fixed(key))
    }

    #[test]
    fn values_round_trip_and_never_reach_the_file_in_clear() {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = store(dir.path(), [7; 32]);
        s.set("pg_password", "canary-4f1d9c").expect("set");
        s.set("api_token", "t0k3n").expect("set");
        assert_eq!(s.get("pg_password").expect("get").as_deref(), Some("canary-4f1d9c"));
        let names: Vec<String> = s.list().expect("list").into_iter().map(|i| i.name).collect();
        assert_eq!(names, ["api_token", "pg_password"]);
        let raw = std::fs::read_to_string(s.path()).expect("file");
        assert!(!raw.contains("canary-4f1d9c") && !raw.contains("t0k3n"), "{raw}");
        assert!(s.remove("api_token").expect("remove"));
        assert!(!s.remove("api_token").expect("remove again"));
        assert_eq!(s.get("api_token").expect("get"), None);
    }

    #[test]
    fn a_copied_file_without_its_key_does_not_decrypt() {
        let dir = tempfile::tempdir().expect("temp dir");
        store(dir.path(), [1; 32]).set("pw", "hunter22").expect("set");
        let err = store(dir.path(), [2; 32]).get("pw").expect_err("another key");
        assert!(err.to_string().contains("does not decrypt"), "{err}");
    }

    #[test]
    fn a_value_moved_to_another_name_does_not_decrypt() {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = store(dir.path(), [3; 32]);
        s.set("a_name", "value-one").expect("set");
        let raw = std::fs::read_to_string(s.path()).expect("file").replace("\"a_name\"", "\"b_name\"");
        std::fs::write(s.path(), raw).expect("write");
        assert!(s.get("b_name").is_err());
    }

    #[test]
    fn names_must_be_template_identifiers_and_not_providers() {
        assert!(LocalStore::check_name("pg_password").is_ok());
        for bad in ["", "1x", "a-b", "a.b", "vault", "aws"] {
            assert!(LocalStore::check_name(bad).is_err(), "{bad}");
        }
    }
}
