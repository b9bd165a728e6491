//! Secret providers for `{{ secrets.* }}` references: the local encrypted store (`local`), Vault
//! or OpenBao KV v2 (`vault`) and AWS Secrets Manager (`aws`), behind the runtime's
//! [`SecretSource`]. Values are cached per execution by the runtime; across executions, for an
//! optional TTL, here. The engine builds [`Secrets`] from a [`SecretsConfig`] (by default the
//! environment's) and its data directory.

mod aws;
mod key;
mod local;
mod vault;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use flow_runtime::{SecretError, SecretRef, SecretSource};
use futures::future::BoxFuture;

pub use aws::{AwsConfig, AwsCredentials, AwsProvider};
pub use key::KeySource;
pub use local::{LocalStore, SecretInfo};
pub use vault::{VaultAuth, VaultConfig, VaultProvider};

/// What the providers' configuration and the local store can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretsError {
    #[error("{0}")]
    Invalid(String),
    #[error("secrets store: {0}")]
    Io(String),
    #[error("secrets store: {0}")]
    Crypto(String),
    #[error("keyring: {0}")]
    Keyring(String),
}

/// How the providers are set up: by `SecretsConfig::from_env`, or by a host or test directly.
#[derive(Debug, Clone, Default)]
pub struct SecretsConfig {
    pub vault: Option<VaultConfig>,
    pub aws: Option<AwsConfig>,
    /// The local store's key; `None`: `FLOW_SECRETS_KEY`, else the OS keyring.
    pub key: Option<KeySource>,
    /// How long a fetched value serves later executions; zero: fetched by every execution.
    pub cache_ttl: Duration,
}

impl SecretsConfig {
    /// `VAULT_*`, `AWS_*` and `FLOW_SECRETS_CACHE_TTL_SECONDS`; the key is read when the store
    /// is opened.
    pub fn from_env() -> Result<Self, SecretsError> {
        let cache_ttl = match std::env::var("FLOW_SECRETS_CACHE_TTL_SECONDS") {
            Ok(s) => Duration::from_secs(s.trim().parse().map_err(|_| {
                SecretsError::Invalid(format!(
                    "FLOW_SECRETS_CACHE_TTL_SECONDS: `{s}` is not a number of seconds"
                ))
            })?),
            Err(_) => Duration::ZERO,
        };
        Ok(Self { vault: VaultConfig::from_env()?, aws: AwsConfig::from_env()?, key: None, cache_ttl })
    }
}

/// The configured providers.
#[derive(Debug)]
pub struct Secrets {
    local: LocalStore,
    vault: Option<VaultProvider>,
    aws: Option<AwsProvider>,
    ttl: Duration,
    cache: Mutex<HashMap<SecretRef, (Instant, String)>>,
}

impl Secrets {
    /// The providers `config` sets up, with the local store in `data_dir` (`secrets.json`).
    pub fn new(data_dir: &Path, config: SecretsConfig) -> Result<Self, SecretsError> {
        let path = data_dir.join("secrets.json");
        let key = match config.key {
            Some(key) => key,
            None => KeySource::from_env(&path.display().to_string())?,
        };
        Ok(Self {
            local: LocalStore::new(path, key),
            vault: config.vault.map(VaultProvider::new),
            aws: config.aws.map(AwsProvider::new),
            ttl: config.cache_ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn local(&self) -> &LocalStore {
        &self.local
    }

    async fn fetch(&self, reference: &SecretRef) -> Result<String, SecretError> {
        let provider = self.provider_of(reference);
        let fail = |message: String, transient: bool| SecretError {
            reference: reference.clone(),
            provider: provider.clone(),
            message,
            transient,
        };
        match reference.provider.as_str() {
            "local" => match self.local.get(&reference.key) {
                Ok(Some(value)) => Ok(value),
                Ok(None) => Err(fail(
                    format!(
                        "no such secret in {} (add it with `flow secrets set {}`)",
                        self.local.path().display(),
                        reference.key
                    ),
                    false,
                )),
                Err(e) => Err(fail(e.to_string(), false)),
            },
            "vault" => match &self.vault {
                Some(vault) => vault.read(&reference.key).await.map_err(|e| fail(e.message, e.transient)),
                None => Err(fail("Vault is not configured (set VAULT_ADDR and VAULT_TOKEN)".into(), false)),
            },
            "aws" => match &self.aws {
                Some(aws) => aws.read(&reference.key).await.map_err(|e| fail(e.message, e.transient)),
                None => Err(fail(
                    "AWS Secrets Manager is not configured (set AWS_REGION and credentials)".into(),
                    false,
                )),
            },
            other => Err(fail(format!("unknown secret provider `{other}`"), false)),
        }
    }
}

impl SecretSource for Secrets {
    fn resolve<'a>(&'a self, reference: &'a SecretRef) -> BoxFuture<'a, Result<String, SecretError>> {
        Box::pin(async move {
            if !self.ttl.is_zero() {
                let cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some((at, value)) = cache.get(reference)
                    && at.elapsed() < self.ttl
                {
                    return Ok(value.clone());
                }
            }
            let value = self.fetch(reference).await?;
            if !self.ttl.is_zero() {
                self.cache
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(reference.clone(), (Instant::now(), value.clone()));
            }
            Ok(value)
        })
    }

    fn provider_of(&self, reference: &SecretRef) -> String {
        match reference.provider.as_str() {
            "vault" => self.vault.as_ref().map_or_else(|| "vault".into(), VaultProvider::name),
            "aws" => self.aws.as_ref().map_or_else(|| "aws".into(), AwsProvider::name),
            _ => format!("local store {}", self.local.path().display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(dir: &Path, cache_ttl: Duration) -> Secrets {
        let config =
            SecretsConfig { key: Some(KeySource::Fixed([5; 32])), cache_ttl, ..SecretsConfig::default() };
        Secrets::new(dir, config).expect("secrets")
    }

    #[tokio::test]
    async fn a_ttl_serves_later_runs_from_the_cache_and_zero_fetches_every_time() {
        let dir = tempfile::tempdir().expect("temp dir");
        let reference = SecretRef::local("pw");
        let (cached, fresh) =
            (secrets(dir.path(), Duration::from_secs(600)), secrets(dir.path(), Duration::ZERO));
        cached.local().set("pw", "first").expect("set");
        assert_eq!(cached.resolve(&reference).await.expect("resolves"), "first");
        assert_eq!(fresh.resolve(&reference).await.expect("resolves"), "first");
        cached.local().set("pw", "second").expect("set");
        assert_eq!(cached.resolve(&reference).await.expect("cached"), "first");
        assert_eq!(fresh.resolve(&reference).await.expect("fetched again"), "second");
    }

    #[tokio::test]
    async fn errors_name_the_secret_and_the_provider() {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = secrets(dir.path(), Duration::ZERO);
        let missing = s.resolve(&SecretRef::local("nope")).await.expect_err("missing");
        assert!(missing.to_string().starts_with("secret `secrets.nope` (local store "), "{missing}");
        assert!(!missing.transient);
        let vault = SecretRef { provider: "vault".into(), key: "a#b".into() };
        let unconfigured = s.resolve(&vault).await.expect_err("no vault");
        assert!(unconfigured.to_string().contains("set VAULT_ADDR"), "{unconfigured}");
    }
}
