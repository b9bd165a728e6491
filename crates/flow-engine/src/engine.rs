//! The engine: a runtime, the store (history and connections) and a bounded number of execution
//! slots.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use chrono::Utc;
use flow_model::{
    Connection, ConnectionKind, ConnectionTest, Flow, FlowNode, NodeDescriptor, Problem, ProblemKind,
    Suggestion, ValidationReport,
};
use flow_runtime::{
    Breakers, BuildError, ConnectionSource, Control, Event, EventBus, EventKind, ExecutionReport,
    ExecutionRequest, ExecutionState, FetchedSecrets, NodeTypes, Runtime, SecretSource, Subflows,
    Subscription,
};
use flow_store::{ExecutionDetail, ExecutionSummary, ListQuery, NewExecution, Store, StoreError};
use tokio::sync::{Semaphore, broadcast, watch};
use uuid::Uuid;

use crate::{AlertConfig, AlertEvent, EngineConfig, FlowOrigin, HistoryLocation};

/// How many finished reports stay in memory for [`Engine::wait`].
const RECENT_REPORTS: usize = 64;

/// How long an execution the host recorded as queued runs before it is recorded as running:
/// most server runs end sooner, and their history then costs one write instead of two.
const RUNNING_RECORD_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

/// Alert changes a slow subscriber may fall behind by before it skips some.
const ALERT_EVENTS: usize = 256;

/// How long [`Engine::check_connections`] waits for each system.
const REACHABILITY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("flow `{flow}` is invalid:\n{}", report.problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { flow: String, report: ValidationReport },
    #[error("execution {0} is not running")]
    NotRunning(Uuid),
    #[error("execution {0} is unknown to this engine")]
    UnknownExecution(Uuid),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("node catalog: {0}")]
    Catalog(#[from] flow_model::CatalogError),
    #[error("connection: {0}")]
    InvalidConnection(String),
    #[error(transparent)]
    Secrets(#[from] flow_secrets::SecretsError),
    #[error("METRICS_RETENTION_DAYS={0:?}: expected a whole number of days, at least 1")]
    InvalidRetention(String),
    #[error("{0}")]
    InvalidAlertRule(String),
    #[error("monitoring window `{0}`: expected a number and a unit (m, h or d), e.g. 30m, 24h, 7d")]
    InvalidWindow(String),
}

/// The named connections, read from the store once and kept in memory for nodes to look up.
#[derive(Default)]
struct ConnectionCache {
    by_name: RwLock<BTreeMap<String, Connection>>,
}

impl ConnectionSource for ConnectionCache {
    fn connection(&self, name: &str) -> Option<Connection> {
        self.by_name.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }
}

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run parameters, overriding the flow's variables.
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Carried into events and logs; a new one is made when absent.
    pub correlation_id: Option<String>,
    /// The execution's id when the host chose it (the server lists a run as queued before a
    /// worker starts it); a new one otherwise.
    pub execution_id: Option<Uuid>,
    /// The user the execution belongs to (server).
    pub owner: Option<Uuid>,
    /// The stored flow it runs (server).
    pub flow_id: Option<Uuid>,
    /// The fencing token of the worker's delivery (server): history writes of an older token
    /// are ignored, so a worker whose job was reclaimed cannot overwrite the new run's record.
    pub fence: Option<u64>,
    /// Where the flow comes from: what its sub-flow references are relative to.
    pub origin: FlowOrigin,
    /// The host recorded the execution as queued already (the server's API, before it queued
    /// the job): the engine does not record it again, and records it as running only once it
    /// has run for a quarter of a second. Events say running at once either way.
    pub recorded_as_queued: bool,
}

struct Live {
    control: Control,
    done: watch::Receiver<Option<Arc<ExecutionReport>>>,
}

struct Inner {
    runtime: Runtime,
    connections: Arc<ConnectionCache>,
    secrets: Arc<flow_secrets::Secrets>,
    store: Store,
    slots: Arc<Semaphore>,
    live: Mutex<HashMap<Uuid, Live>>,
    recent: Mutex<VecDeque<Arc<ExecutionReport>>>,
    alert_config: AlertConfig,
    alert_events: broadcast::Sender<AlertEvent>,
    /// Made at the first webhook: most engines never send one.
    webhook_client: std::sync::OnceLock<reqwest::Client>,
}

/// The engine handle; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens the history (marking executions a previous process left unfinished as interrupted)
    /// and loads the node catalog.
    pub async fn open(config: EngineConfig) -> Result<Engine, EngineError> {
        let store = match &config.history {
            HistoryLocation::Default => Store::open(&HistoryLocation::default_path()).await?,
            HistoryLocation::File(path) => Store::open(path).await?,
            HistoryLocation::InMemory => Store::in_memory().await?,
        };
        let interrupted = store.mark_interrupted().await?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "executions left unfinished by a previous process marked failed");
        }
        // A desktop or CLI store has no server to prune its metrics: do it at every open.
        crate::monitoring::apply_retention(&store, crate::monitoring::metrics_retention_days()?).await?;
        Engine::with_store(config, store).await
    }

    /// An engine on a store opened by the host (the server's PostgreSQL, shared by many
    /// processes: nothing is marked interrupted here, the job queue reclaims runs instead).
    /// `config.history` is not used.
    pub async fn with_store(config: EngineConfig, store: Store) -> Result<Engine, EngineError> {
        let connections = Arc::new(ConnectionCache::default());
        let types = Arc::new(NodeTypes::new(flow_nodes::catalog())?);
        let secrets_dir = config.secrets_dir.clone().unwrap_or_else(|| config.history.data_dir());
        let secrets_config = match config.secrets.clone() {
            Some(c) => c,
            None => flow_secrets::SecretsConfig::from_env()?,
        };
        let secrets = Arc::new(flow_secrets::Secrets::new(&secrets_dir, secrets_config)?);
        let runtime = Runtime::new(
            types,
            Arc::new(Breakers::new(config.breaker)),
            EventBus::default(),
            config.runtime.clone(),
            Arc::clone(&connections) as Arc<dyn ConnectionSource>,
        )
        .with_secrets(Arc::clone(&secrets) as Arc<dyn SecretSource>);
        let engine = Engine {
            inner: Arc::new(Inner {
                runtime,
                connections,
                secrets,
                store,
                slots: Arc::new(Semaphore::new(config.max_concurrent_executions.max(1))),
                live: Mutex::new(HashMap::new()),
                recent: Mutex::new(VecDeque::new()),
                alert_config: config.alerts.clone(),
                alert_events: broadcast::channel(ALERT_EVENTS).0,
                webhook_client: std::sync::OnceLock::new(),
            }),
        };
        engine.reload_connections().await?;
        Ok(engine)
    }

    /// Reads the named connections from the store again: another process sharing the store (a
    /// server process, the CLI) may have changed them.
    pub async fn reload_connections(&self) -> Result<(), EngineError> {
        let fresh =
            self.inner.store.list_connections().await?.into_iter().map(|c| (c.name.clone(), c)).collect();
        *self.inner.connections.by_name.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// Every node type's descriptor.
    pub fn catalog(&self) -> Vec<NodeDescriptor> {
        self.inner.runtime.types().catalog().descriptors()
    }

    /// Validates a flow without contacting any system: the catalog's checks (graph, params
    /// schemas, fields), every node built as a run builds it (templates, expressions, scripts,
    /// connection settings) and the named connections nodes use. What the editor calls on every
    /// change and `flow validate` runs.
    pub fn validate(&self, flow: &Flow) -> ValidationReport {
        self.validate_with_vars(flow, &BTreeMap::new())
    }

    /// [`Engine::validate`] with run variables overriding the flow's.
    pub fn validate_with_vars(
        &self,
        flow: &Flow,
        vars: &BTreeMap<String, serde_json::Value>,
    ) -> ValidationReport {
        self.validate_with(flow, vars, &HashMap::new())
    }

    /// [`Engine::validate_with_vars`], with the sub-flows the flow's `subflow` nodes run
    /// followed from `origin` and checked too: what `flow validate` runs.
    pub async fn validate_at(
        &self,
        flow: &Flow,
        vars: &BTreeMap<String, serde_json::Value>,
        origin: &FlowOrigin,
    ) -> ValidationReport {
        let mut report = self.validate_with_vars(flow, vars);
        report.problems.extend(self.resolve_subflows(flow, origin, vars).await.1);
        report
    }

    /// [`Engine::validate`] with run variables and the output schemas external systems report
    /// (e.g. the columns of a SQL query); what runs before every execution. A connection the
    /// engine does not know is looked for in the store first (see [`Engine::validate_shared`]).
    /// Sub-flows are followed from `origin`.
    pub async fn check(
        &self,
        flow: &Flow,
        vars: &BTreeMap<String, serde_json::Value>,
        origin: &FlowOrigin,
    ) -> ValidationReport {
        self.check_fetching(flow, vars, origin).await.0
    }

    /// [`Engine::check`], the secrets it fetched to ask the external systems, and the
    /// sub-flows it followed.
    async fn check_fetching(
        &self,
        flow: &Flow,
        vars: &BTreeMap<String, serde_json::Value>,
        origin: &FlowOrigin,
    ) -> (ValidationReport, FetchedSecrets, Subflows) {
        let discovered = self.inner.runtime.describe(flow, vars).await;
        let report = self.validate_with(flow, vars, &discovered.schemas);
        let mut report = match self.reread_connections_for(&report).await {
            Ok(true) => self.validate_with(flow, vars, &discovered.schemas),
            Ok(false) => report,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the connections again");
                report
            }
        };
        let (subflows, problems) = self.resolve_subflows(flow, origin, vars).await;
        report.problems.extend(problems);
        (report, discovered.secrets, subflows)
    }

    /// [`Engine::validate_at`], but a connection the engine does not know is looked for in the
    /// store first: another process sharing the store (a server's API process, the desktop
    /// beside the CLI) may have just created it. Connections are otherwise read only when
    /// [`Engine::reload_connections`] is called, not per validation.
    pub async fn validate_shared(
        &self,
        flow: &Flow,
        vars: &BTreeMap<String, serde_json::Value>,
        origin: &FlowOrigin,
    ) -> Result<ValidationReport, EngineError> {
        let report = self.validate_at(flow, vars, origin).await;
        Ok(if self.reread_connections_for(&report).await? {
            self.validate_at(flow, vars, origin).await
        } else {
            report
        })
    }

    /// Reads the connections again when `report` names one the engine does not know; says
    /// whether it did.
    async fn reread_connections_for(&self, report: &ValidationReport) -> Result<bool, EngineError> {
        if !report.problems.iter().any(|p| p.kind == ProblemKind::UnknownConnection) {
            return Ok(false);
        }
        self.reload_connections().await?;
        Ok(true)
    }

    pub(crate) fn validate_with(
        &self,
        flow: &Flow,
        vars: &BTreeMap<String, serde_json::Value>,
        discovered: &HashMap<String, flow_model::RecordSchema>,
    ) -> ValidationReport {
        let catalog = self.inner.runtime.types().catalog();
        let mut report = catalog.validate_with(flow, discovered);
        // Nodes whose params break their schema or whose connection is missing are reported
        // already; building them would only say the same again less clearly.
        let mut reported: HashSet<String> = report
            .problems
            .iter()
            .filter(|p| matches!(p.kind, ProblemKind::InvalidParams | ProblemKind::UnknownNodeType))
            .filter_map(|p| p.node.clone())
            .collect();
        for node in &flow.nodes {
            let Some(name) = connection_name(node) else { continue };
            if self.inner.connections.connection(name).is_some() {
                continue;
            }
            let mut problem = Problem::new(
                ProblemKind::UnknownConnection,
                format!("node `{}`: connection `{name}` does not exist", node.id),
            )
            .node(&node.id)
            .field("/connection");
            if let Some(kind) = catalog.connection_kind(&node.node_type) {
                problem = problem
                    .suggest(Suggestion::CreateConnection { name: name.to_owned(), connection_kind: kind });
            }
            report.problems.push(problem);
            reported.insert(node.id.clone());
        }
        for (node, error) in self.inner.runtime.dry_build(flow, vars, |n| !reported.contains(&n.id)) {
            report.problems.push(build_problem(&node, error));
        }
        report
    }

    /// Asks every system the flow's nodes reach through named connections whether it answers,
    /// concurrently; one problem per node whose connection does not, with what to fix.
    pub async fn check_connections(&self, flow: &Flow) -> Vec<Problem> {
        let names: BTreeSet<&str> = flow.nodes.iter().filter_map(connection_name).collect();
        let tests = names.into_iter().filter_map(|name| {
            let connection = self.inner.connections.connection(name)?;
            Some(async move {
                let test = self.test_connection_within_timeout(&connection).await;
                (connection, test)
            })
        });
        let failed: Vec<(Connection, ConnectionTest)> = futures::future::join_all(tests)
            .await
            .into_iter()
            .filter(|(_, t)| !(t.reachable && t.authenticated))
            .collect();
        let mut problems = Vec::new();
        for node in &flow.nodes {
            let Some(name) = connection_name(node) else { continue };
            if let Some((connection, test)) = failed.iter().find(|(c, _)| c.name == name) {
                problems.push(
                    Problem::new(
                        ProblemKind::ConnectionUnreachable,
                        format!(
                            "node `{}`: connection `{name}` ({}) does not answer: {}",
                            node.id,
                            connection.redacted_url(),
                            test.message
                        ),
                    )
                    .node(&node.id)
                    .field("/connection")
                    .suggest(Suggestion::EditConnection { name: name.to_owned() }),
                );
            }
        }
        problems
    }

    /// Validates and queues a flow; returns the execution id at once. The execution starts when
    /// one of the MAX_CONCURRENT_EXECUTIONS slots is free, in the order executions were started.
    pub async fn start(&self, flow: Flow, options: RunOptions) -> Result<Uuid, EngineError> {
        // The secrets the check fetched serve the run too: each is fetched once per run.
        let (report, secrets, subflows) = self.check_fetching(&flow, &options.vars, &options.origin).await;
        if !report.is_valid() {
            return Err(EngineError::Invalid { flow: flow.name, report });
        }
        let id = options.execution_id.unwrap_or_else(Uuid::now_v7);
        let correlation_id = options.correlation_id.unwrap_or_else(|| Uuid::new_v4().to_string());
        // With a slot free now the execution is running at once, and recorded so in one write.
        let free_slot = Arc::clone(&self.inner.slots).try_acquire_owned().ok();
        let recorded_as_queued = options.recorded_as_queued;
        if !recorded_as_queued {
            self.inner
                .store
                .record_started(&NewExecution {
                    id,
                    correlation_id: correlation_id.clone(),
                    flow: flow.name.clone(),
                    state: if free_slot.is_some() { ExecutionState::Running } else { ExecutionState::Queued },
                    started_at: Utc::now(),
                    owner: options.owner,
                    flow_id: options.flow_id,
                    fence: options.fence,
                    parent_id: None,
                })
                .await?;
        }
        let control = Control::default();
        let (done_tx, done_rx) = watch::channel(None);
        self.lock_live().insert(id, Live { control: control.clone(), done: done_rx });
        self.inner.runtime.bus().publish(Event {
            execution_id: id,
            correlation_id: correlation_id.clone(),
            at: Utc::now(),
            kind: EventKind::ExecutionState {
                flow: flow.name.clone(),
                state: ExecutionState::Queued,
                error: None,
            },
        });
        let fence = options.fence;
        let request = ExecutionRequest {
            id,
            correlation_id,
            flow,
            vars: options.vars,
            secrets,
            subflows,
            parent: None,
        };
        let owner = options.owner;
        let engine = self.clone();
        tokio::spawn(async move {
            let record_running = || async {
                if let Err(e) = engine.inner.store.record_state(id, ExecutionState::Running, fence).await {
                    tracing::error!(execution_id = %id, error = %e, "history");
                }
            };
            let permit = match free_slot {
                Some(permit) => Some(permit),
                None => {
                    // Waiting for a slot happens here, in call order: tokio's semaphore is fair.
                    let permit = tokio::select! {
                        permit = Arc::clone(&engine.inner.slots).acquire_owned() => permit.ok(),
                        () = control.cancelled() => None,
                    };
                    if !recorded_as_queued {
                        record_running().await;
                    }
                    permit
                }
            };
            let run = engine.inner.runtime.run(request, control);
            let report = if recorded_as_queued {
                // Recorded as running only if the run is still going by then, while it goes on;
                // that write is committed before the final one, so they cannot cross.
                let mut run = std::pin::pin!(run);
                tokio::select! {
                    report = &mut run => report,
                    () = tokio::time::sleep(RUNNING_RECORD_DELAY) => tokio::join!(run, record_running()).0,
                }
            } else {
                run.await
            };
            let report = Arc::new(report);
            drop(permit);
            if let Err(e) = engine.inner.store.record_finished(&report, fence).await {
                tracing::error!(execution_id = %id, error = %e, "history: could not record the outcome");
            }
            if let Err(e) = engine.record_children(&report, owner).await {
                tracing::error!(execution_id = %id, error = %e, "history: could not record a sub-flow's execution");
            }
            {
                let mut recent = engine.inner.recent.lock().unwrap_or_else(|p| p.into_inner());
                recent.push_back(Arc::clone(&report));
                while recent.len() > RECENT_REPORTS {
                    recent.pop_front();
                }
            }
            engine.lock_live().remove(&id);
            done_tx.send_replace(Some(report));
        });
        Ok(id)
    }

    /// Records the executions of `report`'s sub-flows, and theirs, each with its parent's id.
    async fn record_children(&self, report: &ExecutionReport, owner: Option<Uuid>) -> Result<(), StoreError> {
        let mut pending: Vec<&ExecutionReport> = report.children.iter().collect();
        while let Some(child) = pending.pop() {
            self.inner
                .store
                .record_started(&NewExecution {
                    id: child.id,
                    correlation_id: child.correlation_id.clone(),
                    flow: child.flow.clone(),
                    state: ExecutionState::Running,
                    started_at: child.started_at,
                    owner,
                    flow_id: None,
                    fence: None,
                    parent_id: child.parent_id,
                })
                .await?;
            self.inner.store.record_finished(child, None).await?;
            pending.extend(child.children.iter());
        }
        Ok(())
    }

    /// Starts a flow and waits for its outcome.
    pub async fn run(&self, flow: Flow, options: RunOptions) -> Result<Arc<ExecutionReport>, EngineError> {
        let id = self.start(flow, options).await?;
        self.wait(id).await
    }

    /// Waits for an execution started by this engine to end.
    pub async fn wait(&self, id: Uuid) -> Result<Arc<ExecutionReport>, EngineError> {
        let done = self.lock_live().get(&id).map(|l| l.done.clone());
        if let Some(mut done) = done
            && let Ok(report) = done.wait_for(Option::is_some).await
            && let Some(report) = report.as_ref()
        {
            return Ok(Arc::clone(report));
        }
        let recent = self.inner.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().find(|r| r.id == id).cloned().ok_or(EngineError::UnknownExecution(id))
    }

    pub fn pause(&self, id: Uuid) -> Result<(), EngineError> {
        self.control(id).map(|c| c.pause())
    }

    pub fn resume(&self, id: Uuid) -> Result<(), EngineError> {
        self.control(id).map(|c| c.resume())
    }

    pub fn cancel(&self, id: Uuid) -> Result<(), EngineError> {
        self.control(id).map(|c| c.cancel())
    }

    /// Events of every execution (`None`) or of one.
    pub fn subscribe(&self, execution: Option<Uuid>) -> Subscription {
        self.inner.runtime.bus().subscribe(execution)
    }

    pub async fn list_executions(&self, query: &ListQuery) -> Result<Vec<ExecutionSummary>, EngineError> {
        Ok(self.inner.store.list(query).await?)
    }

    pub async fn get_execution(&self, id: Uuid) -> Result<Option<ExecutionDetail>, EngineError> {
        Ok(self.inner.store.get(id).await?)
    }

    /// Every named connection, by name.
    pub fn list_connections(&self) -> Vec<Connection> {
        self.inner.connections.by_name.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Creates or replaces a named connection.
    pub async fn save_connection(&self, connection: Connection) -> Result<(), EngineError> {
        if connection.name.trim().is_empty() {
            return Err(EngineError::InvalidConnection("a connection needs a name".into()));
        }
        if connection.url.trim().is_empty() {
            return Err(EngineError::InvalidConnection(format!(
                "connection `{}` needs a URL",
                connection.name
            )));
        }
        self.inner.store.save_connection(&connection).await?;
        self.inner
            .connections
            .by_name
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(connection.name.clone(), connection);
        Ok(())
    }

    /// Tests a connection (saved or not): reachable, authenticated, server version, and what to fix.
    /// Templates in its URL (`{{ env.PG_PASSWORD }}`, `{{ secrets.pg }}`) are rendered first.
    pub async fn test_connection(&self, connection: &Connection) -> ConnectionTest {
        let url = match self.render_url(connection).await {
            Ok(url) => url,
            Err(message) => {
                return ConnectionTest {
                    reachable: false,
                    authenticated: false,
                    server_version: None,
                    message: format!("connection `{}`: {message}", connection.name),
                };
            }
        };
        let mut test = match connection.kind {
            ConnectionKind::Postgres => flow_postgres::test_connection(&url).await,
            ConnectionKind::Mongodb => flow_mongodb::test_connection(&url).await,
        };
        // The drivers keep the URL's password out of their messages; any other secret too.
        test.message = flow_runtime::Redactor::global().scrub(&test.message);
        test
    }

    /// [`Engine::test_connection`], failing when the system has not answered within 5 s.
    pub(crate) async fn test_connection_within_timeout(&self, connection: &Connection) -> ConnectionTest {
        match tokio::time::timeout(REACHABILITY_TIMEOUT, self.test_connection(connection)).await {
            Ok(test) => test,
            Err(_) => ConnectionTest {
                reachable: false,
                authenticated: false,
                server_version: None,
                message: format!(
                    "no answer within {} s: is the server running at {}?",
                    REACHABILITY_TIMEOUT.as_secs(),
                    connection.redacted_url()
                ),
            },
        }
    }

    /// `connection`'s URL with its secrets fetched and its templates rendered.
    async fn render_url(&self, connection: &Connection) -> Result<String, String> {
        let templates = flow_runtime::Templates::new(BTreeMap::new(), "test", "test", "");
        for reference in templates.secrets_in(&serde_json::Value::String(connection.url.clone())) {
            let value = self.inner.secrets.resolve(&reference).await.map_err(|e| e.to_string())?;
            templates.add_secret(reference, value);
        }
        templates.render(&connection.url).map_err(|e| format!("url template: {e}"))
    }

    /// The local encrypted secrets store (`{{ secrets.NAME }}`): what `flow secrets` and the
    /// desktop's Secrets dialog manage.
    pub fn local_secrets(&self) -> &flow_secrets::LocalStore {
        self.inner.secrets.local()
    }

    /// The secret providers: the local store, and Vault and AWS as the environment or the store
    /// set them up (`flow secrets vault|aws|providers`, the desktop's Secrets dialog).
    pub fn secrets(&self) -> &flow_secrets::Secrets {
        &self.inner.secrets
    }

    /// Deletes a named connection; false when there was none.
    pub async fn delete_connection(&self, name: &str) -> Result<bool, EngineError> {
        let deleted = self.inner.store.delete_connection(name).await?;
        self.inner.connections.by_name.write().unwrap_or_else(|p| p.into_inner()).remove(name);
        Ok(deleted)
    }

    pub(crate) fn alert_config(&self) -> &AlertConfig {
        &self.inner.alert_config
    }

    pub(crate) fn alert_events(&self) -> &broadcast::Sender<AlertEvent> {
        &self.inner.alert_events
    }

    pub(crate) fn webhook_client(&self) -> &reqwest::Client {
        self.inner.webhook_client.get_or_init(|| {
            // Webhooks may be https; reqwest is built without a default crypto provider.
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::new()
        })
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Executions of this engine started and not finished (queued for a slot, running, paused).
    pub(crate) fn active_executions(&self) -> usize {
        self.lock_live().len()
    }

    fn control(&self, id: Uuid) -> Result<Control, EngineError> {
        self.lock_live().get(&id).map(|l| l.control.clone()).ok_or(EngineError::NotRunning(id))
    }

    fn lock_live(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Live>> {
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The named connection a node's params name, unless it is a template (known at run time only).
fn connection_name(node: &FlowNode) -> Option<&str> {
    node.params.get("connection").and_then(|v| v.as_str()).filter(|name| !name.contains("{{"))
}

/// A node that cannot be built, as a problem naming the node and, where known, the param.
fn build_problem(node: &str, error: BuildError) -> Problem {
    let (kind, field) = match &error {
        BuildError::Template(t) => (ProblemKind::InvalidTemplate, Some(t.param.clone())),
        BuildError::Node(e) => match &e.code_param {
            Some(pointer) => (ProblemKind::InvalidExpression, Some(pointer.clone())),
            None => (ProblemKind::InvalidParams, None),
        },
    };
    let problem = Problem::new(kind, format!("node `{node}`: {error}")).node(node);
    match field {
        Some(field) => problem.field(&field),
        None => problem,
    }
}
