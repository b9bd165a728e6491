//! Secret providers for `{{ secrets.* }}` references: the local encrypted store (`local`), Vault
//! or OpenBao KV v2 (`vault`) and AWS Secrets Manager (`aws`), behind the runtime's
//! [`SecretSource`]. Values are cached per execution by the runtime; across executions, for an
//! optional TTL, here. The engine builds [`Secrets`] from a [`SecretsConfig`] (by default the
//! environment's) and its data directory. A provider the configuration leaves out can be set up
//! in the store instead ([`Secrets::save_provider`]): its settings, credentials included, are
//! sealed in the local store's file like a secret; the configuration (environment) wins.

mod aws;
mod key;
mod local;
mod vault;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use flow_runtime::{SecretError, SecretRef, SecretSource};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

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

/// A provider's settings as the store keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "provider", rename_all = "snake_case")]
#[ts(export)]
pub enum ProviderSettings {
    Vault(VaultConfig),
    Aws(AwsConfig),
}

impl ProviderSettings {
    fn name(&self) -> &'static str {
        match self {
            ProviderSettings::Vault(_) => "vault",
            ProviderSettings::Aws(_) => "aws",
        }
    }
}

/// Where a provider's settings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ProviderSource {
    /// The environment (or the host's configuration): the store cannot change it.
    Environment,
    Store,
}

/// A configured provider as listed: where it reads and how it logs in, never its credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ProviderInfo {
    /// `vault` or `aws`.
    pub provider: String,
    /// The Vault address and mount, or the AWS region and endpoint.
    pub target: String,
    /// `token`, `approle (role id …)` or `access key …`.
    pub auth: String,
    pub source: ProviderSource,
}

/// One provider and where its settings came from.
struct Slot<P> {
    provider: Arc<P>,
    source: ProviderSource,
}

/// The configured providers.
pub struct Secrets {
    local: LocalStore,
    vault: RwLock<Option<Slot<VaultProvider>>>,
    aws: RwLock<Option<Slot<AwsProvider>>>,
    ttl: Duration,
    cache: Mutex<HashMap<SecretRef, (Instant, String)>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").field("local", &self.local).finish_non_exhaustive()
    }
}

impl Secrets {
    /// The providers `config` sets up, with the local store in `data_dir` (`secrets.json`);
    /// a provider `config` leaves out comes from the store's settings when it has them.
    pub fn new(data_dir: &Path, config: SecretsConfig) -> Result<Self, SecretsError> {
        let path = data_dir.join("secrets.json");
        let key = match config.key {
            Some(key) => key,
            None => KeySource::from_env(&path.display().to_string())?,
        };
        let secrets = Self {
            local: LocalStore::new(path, key),
            vault: RwLock::new(config.vault.map(|c| Slot {
                provider: Arc::new(VaultProvider::new(c)),
                source: ProviderSource::Environment,
            })),
            aws: RwLock::new(config.aws.map(|c| Slot {
                provider: Arc::new(AwsProvider::new(c)),
                source: ProviderSource::Environment,
            })),
            ttl: config.cache_ttl,
            cache: Mutex::new(HashMap::new()),
        };
        for name in ["vault", "aws"] {
            // A store whose settings cannot be read (its key is gone) must not stop the engine:
            // references to that provider report it as not configured.
            match secrets.stored(name) {
                Ok(Some(settings)) => secrets.install(settings, ProviderSource::Store),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(provider = name, error = %e, "stored secret provider settings ignored")
                }
            }
        }
        Ok(secrets)
    }

    pub fn local(&self) -> &LocalStore {
        &self.local
    }

    /// The providers set up (the local store is always there), without their credentials.
    pub fn providers(&self) -> Vec<ProviderInfo> {
        let mut all = Vec::new();
        if let Some(slot) = &*self.vault.read().unwrap_or_else(PoisonError::into_inner) {
            let c = slot.provider.config();
            let auth = match &c.auth {
                VaultAuth::Token(_) => "token".to_owned(),
                VaultAuth::AppRole { role_id, .. } => format!("approle (role id {role_id})"),
            };
            let namespace = c.namespace.as_ref().map(|n| format!(", namespace {n}")).unwrap_or_default();
            all.push(ProviderInfo {
                provider: "vault".into(),
                target: format!("{} (mount {}{namespace})", c.address, c.mount),
                auth,
                source: slot.source,
            });
        }
        if let Some(slot) = &*self.aws.read().unwrap_or_else(PoisonError::into_inner) {
            let c = slot.provider.config();
            let endpoint = c.endpoint.as_ref().map(|e| format!(" at {e}")).unwrap_or_default();
            all.push(ProviderInfo {
                provider: "aws".into(),
                target: format!("{}{endpoint}", c.region),
                auth: format!("access key {}", c.credentials.access_key_id),
                source: slot.source,
            });
        }
        all
    }

    /// Sets up a provider from `settings` and keeps them, sealed, in the store; refused when the
    /// environment configures that provider (it would win on the next start anyway).
    pub fn save_provider(&self, settings: ProviderSettings) -> Result<(), SecretsError> {
        let name = settings.name();
        if self.source_of(name) == Some(ProviderSource::Environment) {
            return Err(SecretsError::Invalid(format!(
                "the {name} provider is configured by the environment ({}); unset it to keep settings in the store",
                if name == "vault" { "VAULT_ADDR" } else { "AWS_REGION" }
            )));
        }
        match &settings {
            ProviderSettings::Vault(c) if c.address.trim().is_empty() => {
                return Err(SecretsError::Invalid("vault: the address is empty".into()));
            }
            ProviderSettings::Aws(c) if c.region.trim().is_empty() => {
                return Err(SecretsError::Invalid("aws: the region is empty".into()));
            }
            _ => {}
        }
        let json = serde_json::to_string(&settings).map_err(|e| SecretsError::Invalid(e.to_string()))?;
        self.local.set_provider(name, &json)?;
        self.install(settings, ProviderSource::Store);
        Ok(())
    }

    /// Forgets the store's settings of `provider` (`vault` or `aws`); false when it had none.
    /// A provider the environment configures stays.
    pub fn remove_provider(&self, provider: &str) -> Result<bool, SecretsError> {
        if !["vault", "aws"].contains(&provider) {
            return Err(SecretsError::Invalid(format!(
                "unknown secret provider `{provider}` (vault or aws)"
            )));
        }
        let removed = self.local.remove_provider(provider)?;
        if self.source_of(provider) == Some(ProviderSource::Store) {
            match provider {
                "vault" => *self.vault.write().unwrap_or_else(PoisonError::into_inner) = None,
                _ => *self.aws.write().unwrap_or_else(PoisonError::into_inner) = None,
            }
            self.cache.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
        Ok(removed)
    }

    fn stored(&self, provider: &str) -> Result<Option<ProviderSettings>, SecretsError> {
        let Some(json) = self.local.provider(provider)? else { return Ok(None) };
        serde_json::from_str(&json).map(Some).map_err(|e| {
            SecretsError::Invalid(format!("{}: the {provider} settings: {e}", self.local.path().display()))
        })
    }

    /// Puts `settings` in place of the provider's, unless the environment configures it.
    fn install(&self, settings: ProviderSettings, source: ProviderSource) {
        if self.source_of(settings.name()) == Some(ProviderSource::Environment) {
            return;
        }
        match settings {
            ProviderSettings::Vault(c) => {
                *self.vault.write().unwrap_or_else(PoisonError::into_inner) =
                    Some(Slot { provider: Arc::new(VaultProvider::new(c)), source });
            }
            ProviderSettings::Aws(c) => {
                *self.aws.write().unwrap_or_else(PoisonError::into_inner) =
                    Some(Slot { provider: Arc::new(AwsProvider::new(c)), source });
            }
        }
        // Values fetched with the old settings may not be what the new ones read.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    fn source_of(&self, provider: &str) -> Option<ProviderSource> {
        match provider {
            "vault" => self.vault.read().unwrap_or_else(PoisonError::into_inner).as_ref().map(|s| s.source),
            "aws" => self.aws.read().unwrap_or_else(PoisonError::into_inner).as_ref().map(|s| s.source),
            _ => None,
        }
    }

    fn vault(&self) -> Option<Arc<VaultProvider>> {
        self.vault.read().unwrap_or_else(PoisonError::into_inner).as_ref().map(|s| Arc::clone(&s.provider))
    }

    fn aws(&self) -> Option<Arc<AwsProvider>> {
        self.aws.read().unwrap_or_else(PoisonError::into_inner).as_ref().map(|s| Arc::clone(&s.provider))
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
            "vault" => match self.vault() {
                Some(vault) => vault.read(&reference.key).await.map_err(|e| fail(e.message, e.transient)),
                None => Err(fail(
                    "Vault is not configured (set VAULT_ADDR and VAULT_TOKEN, or `flow secrets vault`)".into(),
                    false,
                )),
            },
            "aws" => match self.aws() {
                Some(aws) => aws.read(&reference.key).await.map_err(|e| fail(e.message, e.transient)),
                None => Err(fail(
                    "AWS Secrets Manager is not configured (set AWS_REGION and credentials, or `flow secrets aws`)"
                        .into(),
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
            "vault" => self.vault().map_or_else(|| "vault".into(), |v| v.name()),
            "aws" => self.aws().map_or_else(|| "aws".into(), |a| a.name()),
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

    fn vault_settings(token: &str) -> ProviderSettings {
        ProviderSettings::Vault(VaultConfig {
            address: "http://127.0.0.1:1".into(),
            auth: VaultAuth::Token(token.into()),
            namespace: None,
            mount: "kv".into(),
        })
    }

    #[test]
    fn stored_provider_settings_are_sealed_and_serve_the_next_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = secrets(dir.path(), Duration::ZERO);
        assert!(s.providers().is_empty());
        s.save_provider(vault_settings("canary-vault-token")).expect("saved");
        let raw = std::fs::read_to_string(s.local().path()).expect("file");
        assert!(!raw.contains("canary-vault-token") && !raw.contains("127.0.0.1"), "{raw}");

        let next = secrets(dir.path(), Duration::ZERO);
        let listed = next.providers();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (
                listed[0].provider.as_str(),
                listed[0].target.as_str(),
                listed[0].auth.as_str(),
                listed[0].source
            ),
            ("vault", "http://127.0.0.1:1 (mount kv)", "token", ProviderSource::Store)
        );
        assert_eq!(
            next.provider_of(&SecretRef { provider: "vault".into(), key: "a".into() }),
            "vault at http://127.0.0.1:1"
        );
        assert!(next.remove_provider("vault").expect("removed"));
        assert!(next.providers().is_empty());
        assert!(secrets(dir.path(), Duration::ZERO).providers().is_empty(), "forgotten for good");
        assert!(next.remove_provider("nope").is_err());
    }

    #[test]
    fn the_environment_wins_over_the_store() {
        let dir = tempfile::tempdir().expect("temp dir");
        secrets(dir.path(), Duration::ZERO).save_provider(vault_settings("stored")).expect("saved");
        let configured = VaultConfig {
            address: "http://127.0.0.1:2".into(),
            auth: VaultAuth::Token("from-env".into()),
            namespace: None,
            mount: "kv".into(),
        };
        let config = SecretsConfig {
            vault: Some(configured),
            key: Some(KeySource::Fixed([5; 32])),
            ..SecretsConfig::default()
        };
        let s = Secrets::new(dir.path(), config).expect("secrets");
        let listed = s.providers();
        assert_eq!(
            (listed[0].target.as_str(), listed[0].source),
            ("http://127.0.0.1:2 (mount kv)", ProviderSource::Environment)
        );
        let refused = s.save_provider(vault_settings("other")).expect_err("refused");
        assert!(refused.to_string().contains("VAULT_ADDR"), "{refused}");
    }
}
