// What the UI needs from its host. The desktop shell implements it with Tauri commands
// (tauri.ts); a remote server backend can implement the same interface. Nothing outside
// src/api/ imports a host library.
import type {
  Alert,
  AlertEvent,
  AlertRule,
  Connection,
  ConnectionTest,
  Dashboard,
  EngineEvent,
  ExecutionDetail,
  ExecutionSummary,
  Flow,
  FlowMetrics,
  Health,
  ListQuery,
  NewAlertRule,
  NodeDescriptor,
  NodeMetrics,
  ProviderInfo,
  ProviderSettings,
  SecretInfo,
  SystemMetrics,
  ValidationReport,
} from './types';

export interface ExampleFlow {
  path: string;
  name: string;
}

/** The engine, as the UI sees it. Every method rejects with the engine's message (a string). */
export interface Backend {
  catalog(): Promise<NodeDescriptor[]>;
  /** The static checks only: fast enough to run on every edit. */
  validateFlow(flow: Flow): Promise<ValidationReport>;
  /**
   * The full pre-run check, with I/O: output schemas described by the databases, and whether
   * each named connection the flow uses answers. Takes up to a few seconds. `path` is the flow's
   * file (null for a new flow): sub-flow paths are relative to it.
   */
  checkFlow(flow: Flow, path: string | null): Promise<ValidationReport>;
  /** Starts a run; `path` as for checkFlow. */
  startExecution(flow: Flow, vars: Record<string, unknown>, path: string | null): Promise<string>;
  pauseExecution(id: string): Promise<void>;
  resumeExecution(id: string): Promise<void>;
  cancelExecution(id: string): Promise<void>;
  listExecutions(query: ListQuery): Promise<ExecutionSummary[]>;
  getExecution(id: string): Promise<ExecutionDetail | null>;
  loadFlowFile(path: string): Promise<Flow>;
  saveFlowFile(path: string, flow: Flow): Promise<void>;
  exampleFlows(): Promise<ExampleFlow[]>;
  listConnections(): Promise<Connection[]>;
  saveConnection(connection: Connection): Promise<void>;
  deleteConnection(name: string): Promise<void>;
  testConnection(connection: Connection): Promise<ConnectionTest>;
  /** The local secrets' names and dates; values never come back. */
  listSecrets(): Promise<SecretInfo[]>;
  setSecret(name: string, value: string): Promise<void>;
  deleteSecret(name: string): Promise<void>;
  /** The remote secret providers (Vault, AWS) set up, and by what; never their credentials. */
  secretProviders(): Promise<ProviderInfo[]>;
  /** Sets up a provider and keeps its settings sealed in the local store; refused when the environment configures it. */
  saveSecretProvider(settings: ProviderSettings): Promise<void>;
  /** Forgets a provider's stored settings; false when there were none. */
  removeSecretProvider(provider: SecretProviderName): Promise<boolean>;
  /** The machine and the app: CPU, memory, the app's RSS, uptime, active executions. */
  monitoringSystem(): Promise<SystemMetrics>;
  /** Whether the history store and every named connection answer (each tested, within 5 s). */
  monitoringHealth(): Promise<Health>;
  /**
   * Executions that finished in the last `window` (`30m`, `1h`, `24h`, `7d`): totals and one
   * point per `step` minutes (null: about a hundred points; at most 1,500 points).
   */
  monitoringDashboard(window: string, step: number | null): Promise<Dashboard>;
  /** Per flow name, over the last `window`. */
  monitoringFlows(window: string): Promise<FlowMetrics[]>;
  /** Per node, of `flow` only when given, over the last `window`. */
  monitoringNodes(window: string, flow: string | null): Promise<NodeMetrics[]>;
  /** Alerts, newest first: only those still firing with `firing`, else the latest 100 of all. */
  listAlerts(firing: boolean): Promise<Alert[]>;
  /** The alert rules, by name. */
  alertRules(): Promise<AlertRule[]>;
  /** Checks and stores a rule; rejects with a message that names the field that is wrong. */
  createAlertRule(rule: NewAlertRule): Promise<AlertRule>;
  /** Deletes a rule; its firing alert resolves, and its alerts stay as history. */
  deleteAlertRule(id: string): Promise<void>;
  /** Subscribes once; an event comes as the app's evaluator fires or resolves an alert (every ALERT_INTERVAL_SECONDS). */
  subscribeAlerts(onAlert: (event: AlertEvent) => void): Promise<void>;
  /** What the app did on its first start (e.g. connections it created); possibly empty. */
  setupNotes(): Promise<string[]>;
  /** Subscribes once; events arrive in coalesced batches. */
  subscribeEvents(onEvents: (events: EngineEvent[]) => void): Promise<void>;
}

/** The remote secret providers, as `ProviderSettings.provider` names them. */
export type SecretProviderName = ProviderSettings['provider'];

export type Theme = 'dark' | 'light';

export interface Settings {
  flowsFolder: string | null;
  recentFiles: string[];
  theme: Theme;
}

export const DEFAULT_SETTINGS: Settings = { flowsFolder: null, recentFiles: [], theme: 'dark' };

/** Host services around the engine: file dialogs and persisted settings. */
export interface Platform {
  /** A flow file to open, or null when the user cancelled. */
  openFlowDialog(defaultPath: string | null): Promise<string | null>;
  /** Where to save a flow, or null when the user cancelled. */
  saveFlowDialog(defaultPath: string | null): Promise<string | null>;
  /** Asks a yes/no question (e.g. before discarding unsaved changes); true for yes. */
  confirm(message: string): Promise<boolean>;
  loadSettings(): Promise<Settings>;
  saveSettings(settings: Settings): Promise<void>;
}

/** Turns whatever a host rejected with into a message for people. */
export function errorMessage(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e instanceof Error) return e.message;
  if (e && typeof e === 'object' && 'message' in e && typeof e.message === 'string') return e.message;
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}
