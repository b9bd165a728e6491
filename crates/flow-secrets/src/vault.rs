//! The Vault provider: HashiCorp Vault or OpenBao KV version 2 through `vaultrs`, with token or
//! AppRole auth. A reference is `path#field` under the configured mount
//! (`{{ secrets.vault["db/creds#password"] }}`); `path` alone is fine for a secret with one field.

use std::collections::BTreeMap;

use tokio::sync::Mutex;
use vaultrs::client::{Client, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::SecretsError;

/// How the provider logs in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum VaultAuth {
    Token(String),
    AppRole { mount: String, role_id: String, secret_id: String },
}

impl std::fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VaultAuth::Token(_) => f.write_str("Token(***)"),
            VaultAuth::AppRole { mount, role_id, .. } => write!(f, "AppRole({mount}, {role_id})"),
        }
    }
}

/// Where and how to read: `VAULT_ADDR`, `VAULT_TOKEN` or `VAULT_ROLE_ID` + `VAULT_SECRET_ID`,
/// `VAULT_NAMESPACE`, `FLOW_VAULT_MOUNT` (default `secret`), `FLOW_VAULT_APPROLE_MOUNT`
/// (default `approle`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct VaultConfig {
    pub address: String,
    pub auth: VaultAuth,
    #[serde(default)]
    pub namespace: Option<String>,
    /// The KV v2 mount (`secret` by default).
    #[serde(default = "default_mount")]
    pub mount: String,
}

fn default_mount() -> String {
    "secret".into()
}

impl VaultConfig {
    /// The configuration from the environment; `None` without `VAULT_ADDR`.
    pub fn from_env() -> Result<Option<Self>, SecretsError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let Some(address) = var("VAULT_ADDR") else { return Ok(None) };
        let auth = match (var("VAULT_TOKEN"), var("VAULT_ROLE_ID"), var("VAULT_SECRET_ID")) {
            (Some(token), _, _) => VaultAuth::Token(token),
            (None, Some(role_id), Some(secret_id)) => VaultAuth::AppRole {
                mount: var("FLOW_VAULT_APPROLE_MOUNT").unwrap_or_else(|| "approle".into()),
                role_id,
                secret_id,
            },
            _ => {
                return Err(SecretsError::Invalid(
                    "VAULT_ADDR is set but neither VAULT_TOKEN nor VAULT_ROLE_ID and VAULT_SECRET_ID are"
                        .into(),
                ));
            }
        };
        Ok(Some(Self {
            address,
            auth,
            namespace: var("VAULT_NAMESPACE"),
            mount: var("FLOW_VAULT_MOUNT").unwrap_or_else(|| "secret".into()),
        }))
    }
}

/// Why a read failed, and whether trying again may help.
#[derive(Debug)]
pub struct VaultError {
    pub message: String,
    pub transient: bool,
}

/// A Vault KV v2 reader; logs in on first use.
pub struct VaultProvider {
    config: VaultConfig,
    client: Mutex<Option<VaultClient>>,
}

impl std::fmt::Debug for VaultProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultProvider").field("config", &self.config).finish_non_exhaustive()
    }
}

impl VaultProvider {
    pub fn new(config: VaultConfig) -> Self {
        // The workspace's rustls uses ring; reqwest built without a provider needs it named.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self { config, client: Mutex::new(None) }
    }

    pub(crate) fn config(&self) -> &VaultConfig {
        &self.config
    }

    /// `vault at <address>`: how errors and the circuit breaker name this provider.
    pub fn name(&self) -> String {
        format!("vault at {}", self.config.address)
    }

    /// The value of `reference` (`path#field`, or `path` for a one-field secret).
    pub async fn read(&self, reference: &str) -> Result<String, VaultError> {
        let (path, field) = match reference.rsplit_once('#') {
            Some((path, field)) => (path, Some(field)),
            None => (reference, None),
        };
        let mut client = self.client.lock().await;
        let vault: &VaultClient = match &mut *client {
            Some(vault) => vault,
            slot => slot.insert(self.login().await?),
        };
        let data: BTreeMap<String, serde_json::Value> =
            match vaultrs::kv2::read(vault, &self.config.mount, path).await {
                Ok(data) => data,
                Err(e) => {
                    let e = classify(&e, &format!("{}/{path}", self.config.mount));
                    if !e.transient {
                        // A token that expired or was revoked: log in again next time.
                        *client = None;
                    }
                    return Err(e);
                }
            };
        let value = match field {
            Some(field) => data.get(field).ok_or_else(|| VaultError {
                message: format!(
                    "{}/{path} has no field `{field}` (it has: {})",
                    self.config.mount,
                    data.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                transient: false,
            })?,
            None if data.len() == 1 => data.values().next().unwrap_or(&serde_json::Value::Null),
            None => {
                return Err(VaultError {
                    message: format!(
                        "{}/{path} has {} fields; name one as `{path}#field` (fields: {})",
                        self.config.mount,
                        data.len(),
                        data.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                    transient: false,
                });
            }
        };
        Ok(match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    async fn login(&self) -> Result<VaultClient, VaultError> {
        let invalid = |e: String| VaultError { message: e, transient: false };
        let mut settings = VaultClientSettingsBuilder::default();
        settings.address(&self.config.address);
        if let Some(ns) = &self.config.namespace {
            settings.namespace(Some(ns.clone()));
        }
        if let VaultAuth::Token(token) = &self.config.auth {
            settings.token(token);
        }
        let settings = settings.build().map_err(|e| invalid(format!("settings: {e}")))?;
        let mut client = VaultClient::new(settings).map_err(|e| invalid(format!("client: {e}")))?;
        if let VaultAuth::AppRole { mount, role_id, secret_id } = &self.config.auth {
            let auth = vaultrs::auth::approle::login(&client, mount, role_id, secret_id)
                .await
                .map_err(|e| classify(&e, &format!("AppRole login at auth/{mount}")))?;
            client.set_token(&auth.client_token);
        }
        Ok(client)
    }
}

fn classify(e: &ClientError, what: &str) -> VaultError {
    match e {
        ClientError::APIError { code: 404, .. } => {
            VaultError { message: format!("{what}: no such secret"), transient: false }
        }
        ClientError::APIError { code: 403, .. } => VaultError {
            message: format!(
                "{what}: permission denied (a wrong or expired token, or a policy without read)"
            ),
            transient: false,
        },
        ClientError::APIError { code, errors } => VaultError {
            message: format!("{what}: Vault answered {code}: {}", errors.join("; ")),
            transient: *code >= 500,
        },
        ClientError::RestClientError { .. } => {
            VaultError { message: format!("{what}: Vault cannot be reached: {e}"), transient: true }
        }
        other => VaultError { message: format!("{what}: {other}"), transient: false },
    }
}
