//! Flow Platform desktop app: the flow editor (the web UI in `ui/`) in a Tauri window, on the
//! flow engine embedded in this process. The UI calls the commands of `commands` and receives the
//! engine's events through `bridge`. `FLOW_LOG=info` (or `debug`) logs JSON to stderr;
//! OTEL_EXPORTER_OTLP_ENDPOINT exports the engine's spans (`flow-telemetry`).

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod app;
mod bridge;
mod commands;
mod error;
mod examples;
mod first_run;
mod test_hooks;
#[cfg(target_os = "linux")]
mod webkit_renderer;

use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    #[cfg(target_os = "linux")]
    webkit_renderer::choose();
    let telemetry = match flow_telemetry::Telemetry::from_env("flow-desktop") {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("flow-desktop: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(|| flow_engine::Scrubbed(std::io::stderr()))
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLOW_LOG").unwrap_or_else(|_| "warn".into()),
        );
    let registry = tracing_subscriber::registry().with(logs);
    // Not an Option layer: an absent one would still enable every span for the registry.
    match &telemetry {
        Some(t) => registry.with(t.layer()).init(),
        None => registry.init(),
    }
    let runtime = match app::engine_runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("flow-desktop: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    tauri::async_runtime::set(runtime.handle().clone());
    let code = match app::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flow-desktop: {e}");
            std::process::ExitCode::FAILURE
        }
    };
    // Outside the runtime: the exporter's client blocks while it sends the last spans.
    drop(runtime);
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    code
}
