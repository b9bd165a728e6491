//! The application: opens the embedded engine (history in the app data directory unless
//! FLOW_HISTORY_DB is set), registers the plugins and commands, starts judging the alert rules,
//! and opens the main window.

use std::path::PathBuf;

use flow_engine::{AlertEvent, Engine, EngineConfig, Event, HistoryLocation};
use tauri::ipc::Channel;
use tauri::webview::PageLoadEvent;
use tauri::{App, Manager, WebviewUrl, WebviewWindowBuilder};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::bridge::Bridges;
use crate::{commands, examples, first_run, test_hooks};

/// What the commands share.
pub(crate) struct AppState {
    pub(crate) engine: Engine,
    /// Where the example flows are, if anywhere.
    pub(crate) examples_dir: Option<PathBuf>,
    /// What the app did at start for the user (see `first_run`), shown as notices.
    pub(crate) setup_notes: Vec<String>,
    bridges: Bridges,
}

impl AppState {
    /// Starts forwarding the engine's events to a webview's channel.
    pub(crate) fn subscribe_events(&self, webview: &str, channel: Channel<Vec<Event>>) {
        let subscription = self.engine.subscribe(None);
        let task = tauri::async_runtime::spawn(flow_engine::coalesce::forward(subscription, move |batch| {
            channel.send(batch).is_ok()
        }));
        self.bridges.add(webview, task);
    }

    /// Starts forwarding alert changes to a webview's channel.
    pub(crate) fn subscribe_alerts(&self, webview: &str, channel: Channel<AlertEvent>) {
        let mut changes = self.engine.subscribe_alerts();
        let task = tauri::async_runtime::spawn(async move {
            loop {
                match changes.recv().await {
                    Ok(event) => {
                        if channel.send(event).is_err() {
                            break;
                        }
                    }
                    // The panel reads missed alerts from the store on its next refresh.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        self.bridges.add(webview, task);
    }
}

/// The async runtime of the commands and the engine. By default it has one worker thread fewer
/// than the machine has cores (at least one), so a CPU-bound execution never takes the last core
/// from the webview. FLOW_ENGINE_THREADS sets the number of worker threads.
pub(crate) fn engine_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = std::env::var("FLOW_ENGINE_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(cores.saturating_sub(1).max(1));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("flow-engine")
        .enable_all()
        .build()
}

/// Builds and runs the app until its last window closes.
pub(crate) fn run() -> Result<(), tauri::Error> {
    let testing = test_hooks::enabled();
    let mut builder = tauri::Builder::default().plugin(tauri_plugin_store::Builder::default().build());
    builder = if testing {
        builder.plugin(test_hooks::dialog_stand_in())
    } else {
        builder
            .plugin(tauri_plugin_dialog::init())
            .plugin(tauri_plugin_window_state::Builder::default().build())
    };
    builder
        .setup(move |app| {
            setup(app, testing)?;
            Ok(())
        })
        .on_page_load(|webview, payload| {
            // A reload drops the page's channels: stop the bridges that fed them.
            if payload.event() == PageLoadEvent::Started
                && let Some(state) = webview.try_state::<AppState>()
            {
                state.bridges.stop(webview.label());
            }
        })
        .invoke_handler(tauri::generate_handler![
            commands::catalog,
            commands::validate_flow,
            commands::check_flow,
            commands::setup_notes,
            commands::start_execution,
            commands::pause_execution,
            commands::resume_execution,
            commands::cancel_execution,
            commands::list_executions,
            commands::get_execution,
            commands::load_flow_file,
            commands::save_flow_file,
            commands::example_flows,
            commands::list_connections,
            commands::save_connection,
            commands::delete_connection,
            commands::test_connection,
            commands::list_secrets,
            commands::set_secret,
            commands::delete_secret,
            commands::secret_providers,
            commands::save_secret_provider,
            commands::remove_secret_provider,
            commands::monitoring_system,
            commands::monitoring_health,
            commands::monitoring_dashboard,
            commands::monitoring_flows,
            commands::monitoring_nodes,
            commands::list_alerts,
            commands::alert_rules,
            commands::create_alert_rule,
            commands::delete_alert_rule,
            commands::subscribe_alerts,
            commands::subscribe_events,
        ])
        .run(tauri::generate_context!())
}

/// Why the app could not start.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error(transparent)]
    Config(#[from] flow_engine::ConfigError),
    #[error("cannot open the engine: {0}")]
    Engine(#[from] flow_engine::EngineError),
    #[error(transparent)]
    Tauri(#[from] tauri::Error),
}

fn setup(app: &mut App, testing: bool) -> Result<(), SetupError> {
    let mut config = EngineConfig::from_env()?;
    if config.history == HistoryLocation::Default {
        config.history = HistoryLocation::File(app.path().app_data_dir()?.join("history.db"));
    }
    tracing::info!(history = ?config.history, "opening the engine");
    let engine = tauri::async_runtime::block_on(Engine::open(config))?;
    let setup_notes = tauri::async_runtime::block_on(first_run::create_example_connections(&engine));
    let examples_dir = examples::find_dir(
        std::env::var_os("FLOW_EXAMPLES_DIR").map(PathBuf::from),
        app.path().resource_dir().ok(),
    );
    // Alert rules are judged for as long as the app runs.
    let watching = engine.clone();
    tauri::async_runtime::spawn(async move { watching.watch_alerts(CancellationToken::new()).await });
    app.manage(AppState { engine, examples_dir, setup_notes, bridges: Bridges::default() });

    let mut window = WebviewWindowBuilder::new(app, "main", WebviewUrl::default())
        .title("Flow Platform")
        .inner_size(1280.0, 800.0)
        .min_inner_size(800.0, 500.0);
    if testing {
        window = window.initialization_script(test_hooks::INIT_SCRIPT);
    }
    window.build()?;
    Ok(())
}
