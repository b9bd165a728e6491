//! The commands the UI invokes: thin one-line calls into the embedded [`Engine`]. Tauri maps the
//! UI's camelCase argument keys to these snake_case parameters. Every command is async, so none
//! runs on the main (UI) thread.

use std::collections::BTreeMap;
use std::path::Path;

use flow_engine::{
    Alert, AlertEvent, AlertQuery, AlertRule, Connection, ConnectionTest, Dashboard, Event, ExecutionDetail,
    ExecutionSummary, Flow, FlowMetrics, FlowOrigin, Health, ListQuery, NewAlertRule, NodeDescriptor,
    NodeMetrics, ProviderInfo, ProviderSettings, RunOptions, SecretInfo, SecretsError, SystemMetrics,
    ValidationReport, parse_window,
};
use tauri::State;
use tauri::ipc::Channel;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{CommandError, CommandResult};
use crate::examples::{self, ExampleFlow};

/// Every node type: ports, params JSON Schema, output schema (the palette and parameter panel).
#[tauri::command]
pub(crate) async fn catalog(state: State<'_, AppState>) -> CommandResult<Vec<NodeDescriptor>> {
    Ok(state.engine.catalog())
}

/// Every problem of a flow found without contacting any system: what the editor calls on a change.
#[tauri::command]
pub(crate) async fn validate_flow(state: State<'_, AppState>, flow: Flow) -> CommandResult<ValidationReport> {
    Ok(state.engine.validate(&flow))
}

/// The check a run makes before it starts (schemas described by the databases), plus whether
/// every connection the flow uses answers: what the editor calls when a flow is opened.
#[tauri::command]
pub(crate) async fn check_flow(
    state: State<'_, AppState>,
    flow: Flow,
    path: Option<String>,
) -> CommandResult<ValidationReport> {
    let no_vars = BTreeMap::new();
    let origin = origin(path);
    let (mut report, unreachable) =
        tokio::join!(state.engine.check(&flow, &no_vars, &origin), state.engine.check_connections(&flow));
    report.problems.extend(unreachable);
    Ok(report)
}

/// What the app did at start for the user (e.g. created the example connections).
#[tauri::command]
pub(crate) async fn setup_notes(state: State<'_, AppState>) -> CommandResult<Vec<String>> {
    Ok(state.setup_notes.clone())
}

/// Validates and queues a flow; returns the execution id at once.
#[tauri::command]
pub(crate) async fn start_execution(
    state: State<'_, AppState>,
    flow: Flow,
    vars: BTreeMap<String, serde_json::Value>,
    path: Option<String>,
) -> CommandResult<String> {
    let options = RunOptions { vars, origin: origin(path), ..RunOptions::default() };
    Ok(state.engine.start(flow, options).await?.to_string())
}

/// The open flow's file, which its sub-flow paths are relative to; `None` for a new flow.
fn origin(path: Option<String>) -> FlowOrigin {
    path.filter(|p| !p.is_empty()).map_or(FlowOrigin::Unsaved, |p| FlowOrigin::File(p.into()))
}

#[tauri::command]
pub(crate) async fn pause_execution(state: State<'_, AppState>, id: String) -> CommandResult<()> {
    Ok(state.engine.pause(execution_id(&id)?)?)
}

#[tauri::command]
pub(crate) async fn resume_execution(state: State<'_, AppState>, id: String) -> CommandResult<()> {
    Ok(state.engine.resume(execution_id(&id)?)?)
}

#[tauri::command]
pub(crate) async fn cancel_execution(state: State<'_, AppState>, id: String) -> CommandResult<()> {
    Ok(state.engine.cancel(execution_id(&id)?)?)
}

#[tauri::command]
pub(crate) async fn list_executions(
    state: State<'_, AppState>,
    query: ListQuery,
) -> CommandResult<Vec<ExecutionSummary>> {
    Ok(state.engine.list_executions(&query).await?)
}

#[tauri::command]
pub(crate) async fn get_execution(
    state: State<'_, AppState>,
    id: String,
) -> CommandResult<Option<ExecutionDetail>> {
    Ok(state.engine.get_execution(execution_id(&id)?).await?)
}

/// Reads a flow file; errors name the file, line, column and JSON path.
#[tauri::command]
pub(crate) async fn load_flow_file(path: String) -> CommandResult<Flow> {
    Ok(flow_model::load_flow(Path::new(&path))?)
}

/// Writes a flow file in its canonical form.
#[tauri::command]
pub(crate) async fn save_flow_file(path: String, flow: Flow) -> CommandResult<()> {
    Ok(flow_model::save_flow(&flow, Path::new(&path))?)
}

/// The example flows (`*.json` of the examples folder), by file name.
#[tauri::command]
pub(crate) async fn example_flows(state: State<'_, AppState>) -> CommandResult<Vec<ExampleFlow>> {
    examples::list(state.examples_dir.as_deref().ok_or(CommandError::NoExamples)?)
}

#[tauri::command]
pub(crate) async fn list_connections(state: State<'_, AppState>) -> CommandResult<Vec<Connection>> {
    Ok(state.engine.list_connections())
}

/// Creates or replaces a named connection.
#[tauri::command]
pub(crate) async fn save_connection(state: State<'_, AppState>, connection: Connection) -> CommandResult<()> {
    Ok(state.engine.save_connection(connection).await?)
}

/// Deletes a named connection; false when there was none.
#[tauri::command]
pub(crate) async fn delete_connection(state: State<'_, AppState>, name: String) -> CommandResult<bool> {
    Ok(state.engine.delete_connection(&name).await?)
}

/// Tries a connection (saved or not): reachable, authenticated, server version, what to fix.
#[tauri::command]
pub(crate) async fn test_connection(
    state: State<'_, AppState>,
    connection: Connection,
) -> CommandResult<ConnectionTest> {
    Ok(state.engine.test_connection(&connection).await)
}

/// The local secrets' names and when each was set; never their values.
#[tauri::command]
pub(crate) async fn list_secrets(state: State<'_, AppState>) -> CommandResult<Vec<SecretInfo>> {
    let store = state.engine.local_secrets().clone();
    Ok(blocking(move || store.list()).await?)
}

/// Stores a secret in the local encrypted store (its key in the OS keyring).
#[tauri::command]
pub(crate) async fn set_secret(state: State<'_, AppState>, name: String, value: String) -> CommandResult<()> {
    let store = state.engine.local_secrets().clone();
    Ok(blocking(move || store.set(&name, &value)).await?)
}

/// Removes a secret.
#[tauri::command]
pub(crate) async fn delete_secret(state: State<'_, AppState>, name: String) -> CommandResult<()> {
    let store = state.engine.local_secrets().clone();
    let missing = name.clone();
    if blocking(move || store.remove(&name)).await? { Ok(()) } else { Err(CommandError::NoSecret(missing)) }
}

/// The Vault and AWS providers set up, and by what; never their credentials.
#[tauri::command]
pub(crate) async fn secret_providers(state: State<'_, AppState>) -> CommandResult<Vec<ProviderInfo>> {
    Ok(state.engine.secrets().providers())
}

/// Sets up Vault or AWS Secrets Manager with `settings`, kept sealed in the secrets store.
#[tauri::command]
pub(crate) async fn save_secret_provider(
    state: State<'_, AppState>,
    settings: ProviderSettings,
) -> CommandResult<()> {
    let engine = state.engine.clone();
    Ok(blocking(move || engine.secrets().save_provider(settings)).await?)
}

/// Forgets the stored settings of `provider` (`vault` or `aws`); false when there were none.
#[tauri::command]
pub(crate) async fn remove_secret_provider(
    state: State<'_, AppState>,
    provider: String,
) -> CommandResult<bool> {
    let engine = state.engine.clone();
    Ok(blocking(move || engine.secrets().remove_provider(&provider)).await?)
}

/// The machine and this app: CPU, memory, RSS, uptime, active executions (the monitoring panel).
#[tauri::command]
pub(crate) async fn monitoring_system(state: State<'_, AppState>) -> CommandResult<SystemMetrics> {
    Ok(state.engine.system().await)
}

/// Whether the history store and every named connection answer.
#[tauri::command]
pub(crate) async fn monitoring_health(state: State<'_, AppState>) -> CommandResult<Health> {
    Ok(state.engine.health().await)
}

/// Executions that finished in the last `window` (`30m`, `24h`, `7d`), per `step` minutes.
#[tauri::command]
pub(crate) async fn monitoring_dashboard(
    state: State<'_, AppState>,
    window: String,
    step: Option<u32>,
) -> CommandResult<Dashboard> {
    Ok(state.engine.monitoring_dashboard(parse_window(&window)?, step).await?)
}

/// Per flow: count, error rate, durations and records over the last `window`.
#[tauri::command]
pub(crate) async fn monitoring_flows(
    state: State<'_, AppState>,
    window: String,
) -> CommandResult<Vec<FlowMetrics>> {
    Ok(state.engine.monitoring_flows(parse_window(&window)?).await?)
}

/// Per node (of `flow`, when given): count, error rate, durations and records over `window`.
#[tauri::command]
pub(crate) async fn monitoring_nodes(
    state: State<'_, AppState>,
    window: String,
    flow: Option<String>,
) -> CommandResult<Vec<NodeMetrics>> {
    Ok(state.engine.monitoring_nodes(parse_window(&window)?, flow.as_deref()).await?)
}

/// Alerts, newest first (only those firing with `firing`).
#[tauri::command]
pub(crate) async fn list_alerts(state: State<'_, AppState>, firing: bool) -> CommandResult<Vec<Alert>> {
    Ok(state.engine.alerts(&AlertQuery { firing, limit: None }).await?)
}

/// The alert rules, by name.
#[tauri::command]
pub(crate) async fn alert_rules(state: State<'_, AppState>) -> CommandResult<Vec<AlertRule>> {
    Ok(state.engine.alert_rules().await?)
}

/// Adds an alert rule; the error names the field that is wrong.
#[tauri::command]
pub(crate) async fn create_alert_rule(
    state: State<'_, AppState>,
    rule: NewAlertRule,
) -> CommandResult<AlertRule> {
    Ok(state.engine.create_alert_rule(rule).await?)
}

/// Deletes an alert rule (its firing alert resolves).
#[tauri::command]
pub(crate) async fn delete_alert_rule(state: State<'_, AppState>, id: String) -> CommandResult<()> {
    let id = Uuid::parse_str(id.trim()).map_err(|_| CommandError::AlertRuleId(id.clone()))?;
    state.engine.delete_alert_rule(id).await?;
    Ok(())
}

/// Streams alert changes (fired, resolved) to the page until it reloads or closes; the app
/// judges the rules every ALERT_INTERVAL_SECONDS.
#[tauri::command]
pub(crate) async fn subscribe_alerts(
    state: State<'_, AppState>,
    webview: tauri::Webview,
    on_alert: Channel<AlertEvent>,
) -> CommandResult<()> {
    state.subscribe_alerts(webview.label(), on_alert);
    Ok(())
}

/// Runs `f` off the async threads: the store reads a file and the keyring may wait on D-Bus.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SecretsError> + Send + 'static,
) -> Result<T, SecretsError> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(SecretsError::Io(format!("the secrets task failed: {e}"))))
}

/// Streams the events of every execution to the page through `on_events`, in coalesced batches
/// (see `bridge`), until the page reloads or closes.
#[tauri::command]
pub(crate) async fn subscribe_events(
    state: State<'_, AppState>,
    webview: tauri::Webview,
    on_events: Channel<Vec<Event>>,
) -> CommandResult<()> {
    state.subscribe_events(webview.label(), on_events);
    Ok(())
}

fn execution_id(id: &str) -> CommandResult<Uuid> {
    Uuid::parse_str(id.trim()).map_err(|_| CommandError::ExecutionId(id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::execution_id;

    #[test]
    fn execution_ids_are_checked() {
        assert!(execution_id("0193a0a4-8c3e-7b5e-9d7c-0a1b2c3d4e5f").is_ok());
        let e = execution_id("../etc").err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("`../etc` is not an execution id"));
    }
}
