// The desktop host: engine commands through Tauri's invoke, native dialogs, the settings store.
import { Channel, invoke } from '@tauri-apps/api/core';
import { confirm, open, save } from '@tauri-apps/plugin-dialog';
import { load, type Store } from '@tauri-apps/plugin-store';
import { DEFAULT_SETTINGS, type Backend, type ExampleFlow, type Platform, type SecretProviderName, type Settings } from './backend';
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

export class TauriBackend implements Backend {
  private channel: Channel<EngineEvent[]> | null = null;
  private alertChannel: Channel<AlertEvent> | null = null;

  catalog(): Promise<NodeDescriptor[]> {
    return invoke('catalog');
  }
  validateFlow(flow: Flow): Promise<ValidationReport> {
    return invoke('validate_flow', { flow });
  }
  checkFlow(flow: Flow, path: string | null): Promise<ValidationReport> {
    return invoke('check_flow', { flow, path });
  }
  startExecution(flow: Flow, vars: Record<string, unknown>, path: string | null): Promise<string> {
    return invoke('start_execution', { flow, vars, path });
  }
  pauseExecution(id: string): Promise<void> {
    return invoke('pause_execution', { id });
  }
  resumeExecution(id: string): Promise<void> {
    return invoke('resume_execution', { id });
  }
  cancelExecution(id: string): Promise<void> {
    return invoke('cancel_execution', { id });
  }
  listExecutions(query: ListQuery): Promise<ExecutionSummary[]> {
    return invoke('list_executions', { query });
  }
  getExecution(id: string): Promise<ExecutionDetail | null> {
    return invoke('get_execution', { id });
  }
  loadFlowFile(path: string): Promise<Flow> {
    return invoke('load_flow_file', { path });
  }
  saveFlowFile(path: string, flow: Flow): Promise<void> {
    return invoke('save_flow_file', { path, flow });
  }
  exampleFlows(): Promise<ExampleFlow[]> {
    return invoke('example_flows');
  }
  listConnections(): Promise<Connection[]> {
    return invoke('list_connections');
  }
  saveConnection(connection: Connection): Promise<void> {
    return invoke('save_connection', { connection });
  }
  deleteConnection(name: string): Promise<void> {
    return invoke('delete_connection', { name });
  }
  testConnection(connection: Connection): Promise<ConnectionTest> {
    return invoke('test_connection', { connection });
  }
  listSecrets(): Promise<SecretInfo[]> {
    return invoke('list_secrets');
  }
  setSecret(name: string, value: string): Promise<void> {
    return invoke('set_secret', { name, value });
  }
  deleteSecret(name: string): Promise<void> {
    return invoke('delete_secret', { name });
  }
  secretProviders(): Promise<ProviderInfo[]> {
    return invoke('secret_providers');
  }
  saveSecretProvider(settings: ProviderSettings): Promise<void> {
    return invoke('save_secret_provider', { settings });
  }
  removeSecretProvider(provider: SecretProviderName): Promise<boolean> {
    return invoke('remove_secret_provider', { provider });
  }
  monitoringSystem(): Promise<SystemMetrics> {
    return invoke('monitoring_system');
  }
  monitoringHealth(): Promise<Health> {
    return invoke('monitoring_health');
  }
  monitoringDashboard(window: string, step: number | null): Promise<Dashboard> {
    return invoke('monitoring_dashboard', { window, step });
  }
  monitoringFlows(window: string): Promise<FlowMetrics[]> {
    return invoke('monitoring_flows', { window });
  }
  monitoringNodes(window: string, flow: string | null): Promise<NodeMetrics[]> {
    return invoke('monitoring_nodes', { window, flow });
  }
  listAlerts(firing: boolean): Promise<Alert[]> {
    return invoke('list_alerts', { firing });
  }
  alertRules(): Promise<AlertRule[]> {
    return invoke('alert_rules');
  }
  createAlertRule(rule: NewAlertRule): Promise<AlertRule> {
    return invoke('create_alert_rule', { rule });
  }
  deleteAlertRule(id: string): Promise<void> {
    return invoke('delete_alert_rule', { id });
  }
  setupNotes(): Promise<string[]> {
    return invoke('setup_notes');
  }
  async subscribeEvents(onEvents: (events: EngineEvent[]) => void): Promise<void> {
    if (this.channel) throw new Error('already subscribed to engine events');
    const channel = new Channel<EngineEvent[]>();
    channel.onmessage = onEvents;
    // Kept referenced for the life of the app so the channel is never collected.
    this.channel = channel;
    await invoke('subscribe_events', { onEvents: channel });
  }
  async subscribeAlerts(onAlert: (event: AlertEvent) => void): Promise<void> {
    if (this.alertChannel) throw new Error('already subscribed to alerts');
    const channel = new Channel<AlertEvent>();
    channel.onmessage = onAlert;
    // Kept referenced like the events' channel.
    this.alertChannel = channel;
    await invoke('subscribe_alerts', { onAlert: channel });
  }
}

const FLOW_FILTERS = [{ name: 'Flow', extensions: ['json'] }];

export class TauriPlatform implements Platform {
  private store: Promise<Store> | null = null;

  private settingsStore(): Promise<Store> {
    this.store ??= load('settings.json', { defaults: {}, autoSave: false });
    return this.store;
  }

  async openFlowDialog(defaultPath: string | null): Promise<string | null> {
    const picked = await open({
      multiple: false,
      directory: false,
      filters: FLOW_FILTERS,
      defaultPath: defaultPath ?? undefined,
    });
    return typeof picked === 'string' ? picked : null;
  }

  async saveFlowDialog(defaultPath: string | null): Promise<string | null> {
    const picked = await save({ filters: FLOW_FILTERS, defaultPath: defaultPath ?? undefined });
    return picked ?? null;
  }

  async confirm(message: string): Promise<boolean> {
    try {
      return await confirm(message, { title: 'Flow Platform', kind: 'warning', okLabel: 'Discard', cancelLabel: 'Keep editing' });
    } catch {
      // The native message dialog is not granted to this window: the webview's own prompt.
      return window.confirm(message);
    }
  }

  async loadSettings(): Promise<Settings> {
    const store = await this.settingsStore();
    const flowsFolder = await store.get<string | null>('flowsFolder');
    const recentFiles = await store.get<string[]>('recentFiles');
    const theme = await store.get<string>('theme');
    return {
      flowsFolder: typeof flowsFolder === 'string' ? flowsFolder : DEFAULT_SETTINGS.flowsFolder,
      recentFiles: Array.isArray(recentFiles) ? recentFiles.filter((f) => typeof f === 'string') : [],
      theme: theme === 'light' || theme === 'dark' ? theme : DEFAULT_SETTINGS.theme,
    };
  }

  async saveSettings(settings: Settings): Promise<void> {
    const store = await this.settingsStore();
    await store.set('flowsFolder', settings.flowsFolder);
    await store.set('recentFiles', settings.recentFiles);
    await store.set('theme', settings.theme);
    await store.save();
  }
}
