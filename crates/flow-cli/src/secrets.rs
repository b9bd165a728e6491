//! `flow secrets`: the local encrypted secrets store that `{{ secrets.NAME }}` reads. Values come
//! from a no-echo prompt or from stdin, never from the command line (argv is visible to every
//! user of the machine through `ps`).

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;
use flow_engine::LocalStore;

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
}

/// Exit 1 when there is no secret to remove; errors exit 2, as everywhere in `flow`.
pub(crate) fn run(action: SecretsAction, store: &LocalStore) -> Result<ExitCode> {
    match action {
        SecretsAction::Set { name } => {
            LocalStore::check_name(&name)?;
            let value = read_value(&name)?;
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
    }
    Ok(ExitCode::SUCCESS)
}

/// Asked twice without echo on a terminal; else all of stdin, without its final newline.
fn read_value(name: &str) -> Result<String> {
    let value = if std::io::stdin().is_terminal() {
        prompt_twice(&format!("value of `{name}`"))?
    } else {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        let trimmed = text.strip_suffix('\n').unwrap_or(&text);
        trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned()
    };
    if value.is_empty() {
        bail!("the value of `{name}` is empty");
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
