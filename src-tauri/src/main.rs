//! Flow Platform desktop app: the flow editor (the web UI in `ui/`) in a Tauri window, on the
//! flow engine embedded in this process. The UI calls the commands of `commands` and receives the
//! engine's events through `bridge`. `FLOW_LOG=info` (or `debug`) logs JSON to stderr.

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

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    #[cfg(target_os = "linux")]
    webkit_renderer::choose();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLOW_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .json()
        .with_writer(|| flow_engine::Scrubbed(std::io::stderr()))
        .init();
    let runtime = match app::engine_runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("flow-desktop: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    tauri::async_runtime::set(runtime.handle().clone());
    match app::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flow-desktop: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
