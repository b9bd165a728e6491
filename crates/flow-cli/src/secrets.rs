//! `flow secrets`: the local encrypted secrets store that `{{ secrets.NAME }}` reads, and the
//! Vault and AWS providers' settings kept sealed in it. Values and credentials come from a
//! no-echo prompt or from stdin, never from the command line (argv is visible to every user of
//! the machine through `ps`).

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;
use flow_engine::{
    AwsConfig, AwsCredentials, LocalStore, ProviderSettings, ProviderSource, Secrets, VaultAuth, VaultConfig,
};

#[derive(Subcommand)]
pub(crate) enum SecretsAction {
    /// Store a secret (the value from a prompt, or stdin when piped), replacing any earlier one.
    Set { name: String },
    /// List the secrets' names and when each was set (never the values).
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret.
    Remove { name: String },
    /// Read `{{ secrets.vault["path#field"] }}` from this Vault or OpenBao (KV v2); the token (or,
    /// with --role-id, the AppRole secret id) comes from a prompt or stdin. Kept sealed in the
    /// secrets store; VAULT_ADDR in the environment takes precedence.
    Vault {
        /// e.g. https://vault.example.com:8200
        address: String,
        /// The KV v2 mount.
        #[arg(long, default_value = "secret")]
        mount: String,
        #[arg(long)]
        namespace: Option<String>,
        /// Log in with AppRole as this role instead of with a token.
        #[arg(long)]
        role_id: Option<String>,
        /// Where the AppRole auth method is mounted.
        #[arg(long, default_value = "approle")]
        approle_mount: String,
    },
    /// Read `{{ secrets.aws["id#key"] }}` from AWS Secrets Manager in REGION; the secret access
    /// key comes from a prompt or stdin. Kept sealed in the secrets store; AWS_REGION in the
    /// environment takes precedence.
    Aws {
        region: String,
        #[arg(long)]
        access_key_id: String,
        /// Another endpoint than AWS's (a test server, a VPC endpoint).
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// List the Vault and AWS providers set up: where each reads, how it logs in (never the
    /// credentials) and whether the environment or the store configures it.
    Providers {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget the stored settings of a provider (`vault` or `aws`).
    Forget { provider: String },
}

/// Exit 1 when there is no secret to remove; errors exit 2, as everywhere in `flow`.
pub(crate) fn run(action: SecretsAction, secrets: &Secrets) -> Result<ExitCode> {
    let store = secrets.local();
    match action {
        SecretsAction::Set { name } => {
            LocalStore::check_name(&name)?;
            let value = read_value(&format!("value of `{name}`"))?;
            store.set(&name, &value)?;
            println!(
                "secret `{name}` stored in {} (use it as {{{{ secrets.{name} }}}})",
                store.path().display()
            );
        }
        SecretsAction::List { json } => {
            let secrets = store.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&secrets)?);
            } else if secrets.is_empty() {
                println!("no secrets in {}", store.path().display());
            } else {
                for s in secrets {
                    println!("{:<32} set {}", s.name, s.updated_at.format("%Y-%m-%d %H:%M:%S UTC"));
                }
            }
        }
        SecretsAction::Remove { name } => {
            if !store.remove(&name)? {
                eprintln!("no secret `{name}` in {}", store.path().display());
                return Ok(ExitCode::from(1));
            }
            println!("secret `{name}` removed");
        }
        SecretsAction::Vault { address, mount, namespace, role_id, approle_mount } => {
            let auth = match role_id {
                Some(role_id) => VaultAuth::AppRole {
                    mount: approle_mount,
                    role_id,
                    secret_id: read_value("the AppRole secret id")?,
                },
                None => VaultAuth::Token(read_value("the Vault token")?),
            };
            secrets.save_provider(ProviderSettings::Vault(VaultConfig {
                address,
                auth,
                namespace,
                mount,
            }))?;
            println!(
                "vault settings stored in {} (use {{{{ secrets.vault[\"path#field\"] }}}})",
                store.path().display()
            );
        }
        SecretsAction::Aws { region, access_key_id, endpoint } => {
            let secret_access_key = read_value("the secret access key")?;
            let credentials = AwsCredentials { access_key_id, secret_access_key, session_token: None };
            secrets.save_provider(ProviderSettings::Aws(AwsConfig { region, endpoint, credentials }))?;
            println!(
                "aws settings stored in {} (use {{{{ secrets.aws[\"id#key\"] }}}})",
                store.path().display()
            );
        }
        SecretsAction::Providers { json } => {
            let providers = secrets.providers();
            if json {
                println!("{}", serde_json::to_string_pretty(&providers)?);
            } else if providers.is_empty() {
                println!("no Vault or AWS provider set up (the local store is always there)");
            } else {
                for p in providers {
                    let source = match p.source {
                        ProviderSource::Environment => "the environment",
                        ProviderSource::Store => "the store",
                    };
                    println!("{:<6} {}  auth: {}  (set by {source})", p.provider, p.target, p.auth);
                }
            }
        }
        SecretsAction::Forget { provider } => {
            if !secrets.remove_provider(&provider)? {
                eprintln!("no stored {provider} settings in {}", store.path().display());
                return Ok(ExitCode::from(1));
            }
            println!("{provider} settings removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Asked twice without echo on a terminal; else all of stdin, without its final newline.
fn read_value(what: &str) -> Result<String> {
    let value = if std::io::stdin().is_terminal() {
        prompt_twice(what)?
    } else {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        let trimmed = text.strip_suffix('\n').unwrap_or(&text);
        trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned()
    };
    if value.is_empty() {
        bail!("{what} is empty");
    }
    Ok(value)
}

/// Asks for `what` twice on the terminal without echo; the two answers must match.
pub(crate) fn prompt_twice(what: &str) -> Result<String> {
    let first = rpassword::prompt_password(format!("{what}: "))?;
    let again = rpassword::prompt_password("again: ")?;
    if first != again {
        bail!("the two entries differ");
    }
    Ok(first)
}
