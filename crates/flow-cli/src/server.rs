//! `flow serve`, `flow worker` and `flow users`: the server mode's commands. Settings come from
//! the environment (see docs/server.md); a missing or unusable one, or an unreachable
//! PostgreSQL or Redis, ends the command with one line saying which and how to fix it.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use flow_server::{ApiSettings, Settings};
use flow_store::{Role, Store};
use tokio_util::sync::CancellationToken;

#[derive(Subcommand)]
pub(crate) enum UsersAction {
    /// Create a user; the password is read from stdin (or asked for on a terminal), never argv.
    Add {
        name: String,
        /// An admin sees and manages everything, including connections and the queue.
        #[arg(long)]
        admin: bool,
    },
    /// List the users.
    List,
    /// Delete a user.
    Remove { name: String },
}

/// Cancelled on Ctrl-C or SIGTERM, so the server drains and the worker lets its jobs finish.
fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
        stop.cancel();
    });
    token
}

pub(crate) async fn serve(workers: Option<usize>) -> Result<ExitCode> {
    let settings = Settings::from_env()?;
    let api = ApiSettings::from_env()?;
    let workers = workers.unwrap_or(settings.engine.max_concurrent_executions);
    flow_server::serve(settings, api, workers, shutdown_on_signals()).await?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn worker() -> Result<ExitCode> {
    let settings = Settings::from_env()?;
    flow_server::work(settings, shutdown_on_signals()).await?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn users(action: UsersAction) -> Result<ExitCode> {
    let url = std::env::var("POSTGRESQL_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .context("POSTGRESQL_URL is not set: users live in the server's PostgreSQL database")?;
    let store = Store::connect_postgres(&url).await?;
    match action {
        UsersAction::Add { name, admin } => {
            let password = read_password(&name)?;
            let hash = flow_server::auth::hash_password(&password).map_err(anyhow::Error::msg)?;
            let role = if admin { Role::Admin } else { Role::User };
            let user = store.create_user(&name, &hash, role).await?;
            println!("created user `{}` ({:?}, id {})", user.username, user.role, user.id);
        }
        UsersAction::List => {
            for user in store.list_users().await? {
                println!(
                    "{:<24} {:<6} {} {}",
                    user.username,
                    format!("{:?}", user.role).to_lowercase(),
                    user.id,
                    user.created_at
                );
            }
        }
        UsersAction::Remove { name } => {
            if !store.delete_user(&name).await? {
                eprintln!("no user named `{name}`");
                return Ok(ExitCode::from(1));
            }
            println!("removed user `{name}`");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The new user's password: asked twice on a terminal, else the first line of stdin.
fn read_password(name: &str) -> Result<String> {
    let password = if std::io::stdin().is_terminal() {
        crate::secrets::prompt_twice(&format!("password for `{name}`"))?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if password.chars().count() < 8 {
        bail!("the password must have at least 8 characters");
    }
    Ok(password)
}
