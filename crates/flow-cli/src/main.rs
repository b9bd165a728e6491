//! `flow`: the command-line host of the engine. `validate` and `catalog` need no database;
//! `run` executes a flow with a live per-node progress display (or JSON lines with `--json`);
//! `connections` manages named connections and `doctor` checks every configured dependency.

mod alerts;
mod doctor;
mod logs;
mod monitor;
mod progress;
mod secrets;
mod server;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use flow_engine::{
    Connection, ConnectionKind, Engine, EngineConfig, ExecutionState, FlowOrigin, HistoryLocation,
    RunOptions, load_flow,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "flow", version, about = "Flow Platform: run and check data flows")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check flow files as a run would before its first record (graph, params, templates,
    /// expressions, named connections); exit 1 listing every problem when one is invalid.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A run variable, `name=value`, as `run` takes it.
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Store database with the named connections (default: FLOW_HISTORY_DB or the user's
        /// data directory).
        #[arg(long, value_name = "PATH")]
        history: Option<PathBuf>,
    },
    /// Run a flow file on the embedded engine.
    Run {
        file: PathBuf,
        /// A run variable, `name=value` (value parsed as JSON when it is valid JSON, else text).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Print the event stream as JSON lines instead of the progress display.
        #[arg(long)]
        json: bool,
        /// Store database (default: FLOW_HISTORY_DB or the user's data directory).
        #[arg(long, value_name = "PATH")]
        history: Option<PathBuf>,
    },
    /// Print the node catalog as JSON.
    Catalog,
    /// Manage named connections (kept in the engine's store).
    Connections {
        #[command(subcommand)]
        action: ConnectionsAction,
        /// Store database (default: FLOW_HISTORY_DB or the user's data directory).
        #[arg(long, value_name = "PATH", global = true)]
        history: Option<PathBuf>,
    },
    /// Manage the local encrypted secrets (`{{ secrets.NAME }}` in params and connection URLs).
    Secrets {
        #[command(subcommand)]
        action: secrets::SecretsAction,
        /// Store database; the secrets file sits beside it (default: FLOW_HISTORY_DB or the
        /// user's data directory).
        #[arg(long, value_name = "PATH", global = true)]
        history: Option<PathBuf>,
    },
    /// Check PostgreSQL, MongoDB and Redis (POSTGRESQL_URL, MONGODB_URL, REDIS_URL) and every
    /// named connection; exit 1 when a configured one fails.
    Doctor {
        /// Store database (default: FLOW_HISTORY_DB or the user's data directory).
        #[arg(long, value_name = "PATH")]
        history: Option<PathBuf>,
    },
    /// Print the machine, the health of the history store and every named connection, and the
    /// history's executions over a window: totals, success rate, duration percentiles, per flow
    /// and per node (from the per-minute rollups, kept METRICS_RETENTION_DAYS, default 30).
    Monitor {
        /// How far back: a number and m, h or d (30m, 24h, 7d).
        #[arg(long, default_value = "1h")]
        window: String,
        /// Print one JSON document instead of tables.
        #[arg(long)]
        json: bool,
        /// Store database (default: FLOW_HISTORY_DB or the user's data directory).
        #[arg(long, value_name = "PATH")]
        history: Option<PathBuf>,
    },
    /// Alert rules and the alerts they raised; `check` judges the rules once (the desktop app
    /// and `flow serve` judge them every ALERT_INTERVAL_SECONDS).
    Alerts {
        #[command(subcommand)]
        action: alerts::AlertsAction,
        /// Store database (default: FLOW_HISTORY_DB or the user's data directory).
        #[arg(long, value_name = "PATH", global = true)]
        history: Option<PathBuf>,
    },
    /// Run the server: REST + WebSocket API on FLOW_BIND, the cron scheduler, and a worker
    /// (POSTGRESQL_URL, REDIS_URL, JWT_SECRET; see docs/server.md).
    Serve {
        /// Executions the in-process worker runs at once (default MAX_CONCURRENT_EXECUTIONS);
        /// 0 for the API alone.
        #[arg(long, value_name = "N")]
        workers: Option<usize>,
    },
    /// Run a worker alone: executions queued by any `flow serve` (POSTGRESQL_URL, REDIS_URL).
    Worker,
    /// Manage the server's users (in POSTGRESQL_URL).
    Users {
        #[command(subcommand)]
        action: server::UsersAction,
    },
}

#[derive(Subcommand)]
enum ConnectionsAction {
    /// List named connections (passwords redacted).
    List,
    /// Create or replace a named connection. Put secrets in templates, e.g.
    /// `postgres://app:{{ env.PG_PASSWORD }}@db:5432/app`.
    Add {
        name: String,
        #[arg(long, value_parser = parse_kind)]
        kind: ConnectionKind,
        #[arg(long)]
        url: String,
        /// A kind-specific option, `name=value` (e.g. max_connections=10).
        #[arg(long = "option", value_name = "NAME=VALUE")]
        options: Vec<String>,
    },
    /// Delete a named connection.
    Remove { name: String },
    /// Test a named connection: reachable, authenticated, server version.
    Test { name: String },
}

fn parse_kind(s: &str) -> Result<ConnectionKind, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("unknown connection kind `{s}` (postgres or mongodb)"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = match logs::Format::from_env() {
        Ok(format) => format,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match flow_telemetry::Telemetry::from_env("flow") {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // The event stream of `run --json` is for programs: its logs are JSON lines too.
    let json_run = matches!(cli.command, Command::Run { json: true, .. });
    let logs = logs::Logs::install(if json_run { logs::Format::Json } else { format }, telemetry.as_ref());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = match runtime.block_on(dispatch(cli.command, &logs)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    };
    // Outside the runtime: the exporter's client blocks while it sends the last spans.
    drop(runtime);
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    code
}

async fn dispatch(command: Command, logs: &logs::Logs) -> Result<ExitCode> {
    match command {
        Command::Validate { files, vars, history } => validate(&files, &parse_vars(&vars)?, history).await,
        Command::Run { file, vars, json, history } => run(file, vars, json, history, logs).await,
        Command::Catalog => {
            let engine = offline_engine().await?;
            println!("{}", serde_json::to_string_pretty(&engine.catalog())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Connections { action, history } => connections(action, &stored_engine(history).await?).await,
        Command::Secrets { action, history } => secrets::run(action, stored_engine(history).await?.secrets()),
        Command::Doctor { history } => doctor(&stored_engine(history).await?).await,
        Command::Monitor { window, json, history } => {
            monitor::run(&stored_engine(history).await?, &window, json).await
        }
        Command::Alerts { action, history } => alerts::run(&stored_engine(history).await?, action).await,
        Command::Serve { workers } => server::serve(workers).await,
        Command::Worker => server::worker().await,
        Command::Users { action } => server::users(action).await,
    }
}

/// An engine on the user's store, where history and named connections live.
async fn stored_engine(history: Option<PathBuf>) -> Result<Engine> {
    Ok(Engine::open(engine_config(history)?).await?)
}

/// The engine's settings from the environment, with `--history` overriding FLOW_HISTORY_DB.
fn engine_config(history: Option<PathBuf>) -> Result<EngineConfig> {
    let mut config = EngineConfig::from_env()?;
    if let Some(path) = history {
        config.history = HistoryLocation::File(path);
    }
    Ok(config)
}

async fn connections(action: ConnectionsAction, engine: &Engine) -> Result<ExitCode> {
    match action {
        ConnectionsAction::List => {
            for c in engine.list_connections() {
                println!(
                    "{:<20} {:<8} {}",
                    c.name,
                    serde_json::to_value(c.kind)?.as_str().unwrap_or(""),
                    c.redacted_url()
                );
            }
        }
        ConnectionsAction::Add { name, kind, url, options } => {
            let options = parse_vars(&options)?.into_iter().collect();
            engine.save_connection(Connection { name: name.clone(), kind, url, options }).await?;
            println!("saved connection `{name}`");
        }
        ConnectionsAction::Remove { name } => {
            if !engine.delete_connection(&name).await? {
                eprintln!("no connection named `{name}`");
                return Ok(ExitCode::from(1));
            }
            println!("removed connection `{name}`");
        }
        ConnectionsAction::Test { name } => {
            let Some(c) = engine.list_connections().into_iter().find(|c| c.name == name) else {
                eprintln!("no connection named `{name}`");
                return Ok(ExitCode::from(1));
            };
            let t = engine.test_connection(&c).await;
            println!("{}", serde_json::to_string_pretty(&t)?);
            return Ok(if t.reachable && t.authenticated { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn doctor(engine: &Engine) -> Result<ExitCode> {
    let (checks, skipped) = doctor::run(engine).await;
    for c in &checks {
        let mark = if c.ok() { "ok  " } else { "FAIL" };
        let version =
            c.result.server_version.as_deref().map(|v| format!(" (version {v})")).unwrap_or_default();
        println!("{mark} {:<28} {}{version}", c.name, c.target);
        if !c.ok() {
            println!("     {}", c.result.message);
        }
    }
    for s in &skipped {
        println!("--   {s}; not checked");
    }
    Ok(if checks.iter().all(doctor::Check::ok) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// An engine for commands that run nothing, so they touch no history file.
async fn offline_engine() -> Result<Engine> {
    let config = EngineConfig { history: HistoryLocation::InMemory, ..EngineConfig::from_env()? };
    Ok(Engine::open(config).await?)
}

async fn validate(
    files: &[PathBuf],
    vars: &BTreeMap<String, serde_json::Value>,
    history: Option<PathBuf>,
) -> Result<ExitCode> {
    // Nodes must name connections of the store; a store that does not exist yet has none, and
    // validating does not create it.
    let mut config = engine_config(history)?;
    let store = match &config.history {
        HistoryLocation::Default => Some(HistoryLocation::default_path()),
        HistoryLocation::File(path) => Some(path.clone()),
        HistoryLocation::InMemory => None,
    };
    if !store.is_some_and(|path| path.exists()) {
        config.history = HistoryLocation::InMemory;
    }
    let engine = Engine::open(config).await?;
    let mut ok = true;
    for file in files {
        match load_flow(file) {
            Err(e) => {
                ok = false;
                println!("{e}");
            }
            Ok(flow) => {
                let report = engine.validate_at(&flow, vars, &FlowOrigin::File(file.clone())).await;
                if report.is_valid() {
                    println!("{}: valid", file.display());
                } else {
                    ok = false;
                    println!("{}: {} problem(s)", file.display(), report.problems.len());
                    for p in &report.problems {
                        println!("  - {p}");
                    }
                }
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn parse_vars(vars: &[String]) -> Result<BTreeMap<String, serde_json::Value>> {
    vars.iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').with_context(|| format!("--var {kv}: expected NAME=VALUE"))?;
            let value = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.to_owned()));
            Ok((k.to_owned(), value))
        })
        .collect()
}

async fn run(
    file: PathBuf,
    vars: Vec<String>,
    json: bool,
    history: Option<PathBuf>,
    logs: &logs::Logs,
) -> Result<ExitCode> {
    let flow = match load_flow(&file) {
        Ok(flow) => flow,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    let engine = Engine::open(engine_config(history)?).await?;
    let options = RunOptions {
        vars: parse_vars(&vars)?,
        origin: FlowOrigin::File(file.clone()),
        ..RunOptions::default()
    };
    // Subscribe before starting so no event is missed.
    let mut events = engine.subscribe(None);
    let nodes: Vec<String> = flow.nodes.iter().map(|n| n.id.clone()).collect();
    let id = match engine.start(flow, options).await {
        Ok(id) => id,
        Err(flow_engine::EngineError::Invalid { flow, report }) => {
            eprintln!("{}: flow `{flow}` is invalid:", file.display());
            for p in &report.problems {
                eprintln!("  - {p}");
            }
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    let mut display = (!json).then(|| progress::Display::new(&nodes));
    let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    if display.is_some() && on_terminal {
        logs.hold();
    }
    let mut interrupted = false;
    let mut stdout = std::io::stdout().lock();
    loop {
        let event = tokio::select! {
            e = events.next() => e,
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                engine.cancel(id).ok();
                continue;
            }
        };
        let Some(event) = event else { break };
        if event.execution_id != id {
            continue;
        }
        match &mut display {
            Some(d) => d.apply(&event),
            None => writeln!(stdout, "{}", serde_json::to_string(&*event)?)?,
        }
        if let flow_engine::EventKind::ExecutionState { state, .. } = &event.kind
            && state.is_terminal()
        {
            break;
        }
    }
    let report = engine.wait(id).await?;
    if let Some(d) = display {
        d.finish(&report);
    }
    logs.release();
    Ok(match report.state {
        ExecutionState::Succeeded => ExitCode::SUCCESS,
        ExecutionState::Cancelled if interrupted => ExitCode::from(130),
        _ => ExitCode::from(1),
    })
}
