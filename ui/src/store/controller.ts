// The app's conversations with the engine: live validation (debounced), the pre-run check, runs,
// files, history, settings, dialogs. State lives in the stores; this only sequences the calls and
// reports errors.
import { createStore, type StoreApi } from 'zustand/vanilla';
import { DEFAULT_SETTINGS, errorMessage, type Backend, type ExampleFlow, type Platform, type SecretProviderName, type Settings, type Theme } from '../api';
import type {
  Alert,
  AlertEvent,
  AlertRule,
  Connection,
  ConnectionTest,
  Dashboard,
  ExecutionSummary,
  Flow,
  FlowMetrics,
  Health,
  NewAlertRule,
  NodeMetrics,
  ProviderInfo,
  ProviderSettings,
  SecretInfo,
  Suggestion,
  SystemMetrics,
} from '../api/types';
import { alertNotice, withAlert, withRule } from '../model/alerts';
import type { ConnectionFocus } from '../model/connections';
import { isTerminalExecution } from '../model/execution';
import { stepMinutes, type MonitoringWindow } from '../model/monitoring';
import { connectionFocus } from '../model/suggestions';
import { isRunActive, type FlowStore } from './flowStore';

export const VALIDATE_DEBOUNCE_MS = 300;
/** The pre-run check takes seconds and reaches the databases: on window focus, at most this often. */
export const FOCUS_CHECK_INTERVAL_MS = 30_000;
const WATCHDOG_MS = 3000;
/** The monitoring panel refreshes this often while it is open. */
export const MONITORING_REFRESH_MS = 5000;
const RECENT_LIMIT = 10;

/** The open dialog; the Connections dialog may open on a given connection. */
export type Dialog = { kind: 'variables' } | { kind: 'connections'; focus: ConnectionFocus | null } | { kind: 'secrets' };

/** The monitoring panel: whether it is open, its window, and the engine's last answers. */
export interface MonitoringData {
  open: boolean;
  window: MonitoringWindow;
  system: SystemMetrics | null;
  health: Health | null;
  /** Of the window chosen (cleared when it changes). */
  dashboard: Dashboard | null;
  flows: FlowMetrics[] | null;
  nodes: NodeMetrics[] | null;
  /** Newest first, firing and resolved; live events update it between refreshes. */
  alerts: Alert[] | null;
  /** By name. */
  alertRules: AlertRule[] | null;
  /** What the last refresh could not get, one line a part; null when it got everything. */
  error: string | null;
  /** When the last refresh ended (ms since the epoch). */
  updatedAt: number | null;
}

export interface AppData {
  settings: Settings;
  examples: ExampleFlow[];
  catalogError: string | null;
  historyLoading: boolean;
  viewedId: string | null;
  dialog: Dialog | null;
  monitoring: MonitoringData;
}

export type AppStore = StoreApi<AppData>;

function dirname(path: string): string {
  const i = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return i > 0 ? path.slice(0, i) : path;
}

export class Controller {
  readonly app: AppStore;
  private validateTimer: ReturnType<typeof setTimeout> | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  /** Numbers the pre-run checks, so that only the latest one's answer is applied. */
  private checkSeq = 0;
  private lastCheckAt = 0;
  private disposers: (() => void)[] = [];
  private monitoringTimer: ReturnType<typeof setInterval> | null = null;
  /** The monitoring refresh under way; a refresh asked for meanwhile runs once it ends. */
  private monitoringRun: Promise<void> | null = null;
  private monitoringAgain = false;

  constructor(
    readonly store: FlowStore,
    readonly backend: Backend,
    readonly platform: Platform,
  ) {
    this.app = createStore<AppData>()(() => ({
      settings: DEFAULT_SETTINGS,
      examples: [],
      catalogError: null,
      historyLoading: false,
      viewedId: null,
      dialog: null,
      monitoring: {
        open: false,
        window: '1h',
        system: null,
        health: null,
        dashboard: null,
        flows: null,
        nodes: null,
        alerts: null,
        alertRules: null,
        error: null,
        updatedAt: null,
      },
    }));
  }

  private fail(e: unknown, prefix?: string): void {
    const msg = errorMessage(e);
    this.store.getState().notify('error', prefix ? `${prefix}: ${msg}` : msg);
  }

  async init(): Promise<void> {
    this.disposers.push(
      this.store.subscribe((s, prev) => {
        if (s.version !== prev.version) this.scheduleValidation();
        if (s.docId !== prev.docId) void this.checkNow();
        const was = prev.live;
        const now = s.live;
        if (now && isTerminalExecution(now.state) && (!was || was.id !== now.id || !isTerminalExecution(was.state))) {
          void this.onExecutionEnded(now.id);
        }
      }),
    );
    const tasks: Promise<unknown>[] = [
      this.platform
        .loadSettings()
        .then((settings) => this.app.setState({ settings }))
        .catch((e: unknown) => this.fail(e, 'Settings')),
      this.backend
        .catalog()
        .then((catalog) => {
          this.store.getState().setCatalog(catalog);
          this.app.setState({ catalogError: null });
        })
        .catch((e: unknown) => {
          this.app.setState({ catalogError: errorMessage(e) });
          this.fail(e, 'Node catalog');
        }),
      this.backend
        .subscribeEvents((events) => this.store.getState().applyEventBatch(events))
        .catch((e: unknown) => this.fail(e, 'Live events')),
      this.backend
        .subscribeAlerts((event) => this.onAlert(event))
        .catch((e: unknown) => this.fail(e, 'Live alerts')),
      this.backend
        .exampleFlows()
        .then((examples) => this.app.setState({ examples }))
        .catch((e: unknown) => this.fail(e, 'Examples')),
      this.backend
        .setupNotes()
        .then((notes) => {
          for (const note of notes) this.store.getState().notify('info', note);
        })
        .catch((e: unknown) => this.fail(e, 'Setup')),
      this.refreshHistory(),
    ];
    await Promise.all(tasks);
  }

  dispose(): void {
    for (const d of this.disposers) d();
    this.disposers = [];
    if (this.validateTimer) clearTimeout(this.validateTimer);
    this.stopWatchdog();
    this.stopMonitoringTimer();
  }

  // ---- validation ----

  scheduleValidation(): void {
    if (this.validateTimer) clearTimeout(this.validateTimer);
    this.validateTimer = setTimeout(() => {
      this.validateTimer = null;
      void this.validateNow();
    }, VALIDATE_DEBOUNCE_MS);
  }

  /** Validates the current document; true when it has no problems. */
  async validateNow(): Promise<boolean> {
    if (this.validateTimer) {
      clearTimeout(this.validateTimer);
      this.validateTimer = null;
    }
    const s = this.store.getState();
    if (s.catalog.length === 0) return false;
    const version = s.version;
    try {
      const report = await this.backend.validateFlow(s.toFlow());
      this.store.getState().applyValidation(report.problems, version);
      return report.problems.length === 0;
    } catch (e) {
      this.store.getState().validationFailed(errorMessage(e));
      return false;
    }
  }

  /**
   * The full pre-run check: do the flow's connections answer, what do its databases return. It
   * takes seconds, so it runs when a flow is opened, after the Connections dialog and on window
   * focus, never per edit; what it finds stays shown until the next check.
   */
  async checkNow(): Promise<void> {
    const s = this.store.getState();
    if (s.nodes.length === 0) return;
    const seq = ++this.checkSeq;
    this.lastCheckAt = Date.now();
    const docId = s.docId;
    const flow = s.toFlow();
    try {
      // Live validation of the same flow tells what only the check can find.
      const [check, live] = await Promise.all([this.backend.checkFlow(flow, s.sourcePath), this.backend.validateFlow(flow)]);
      if (seq === this.checkSeq) this.store.getState().applyCheck(check.problems, live.problems, docId);
    } catch (e) {
      if (seq === this.checkSeq) this.fail(e, 'Pre-run check');
    }
  }

  /** The window is back in front: databases may have come up or gone away meanwhile. */
  windowFocused(): void {
    if (Date.now() - this.lastCheckAt >= FOCUS_CHECK_INTERVAL_MS) void this.checkNow();
  }

  // ---- runs ----

  async run(): Promise<void> {
    const s = this.store.getState();
    if (isRunActive(s)) return;
    if (s.nodes.length === 0) {
      s.notify('info', 'Add nodes to the flow before running it.');
      return;
    }
    const valid = await this.validateNow();
    if (!valid) {
      const n = this.store.getState().validation.live.length;
      this.store
        .getState()
        .notify('error', n > 0 ? `The flow has ${n} problem${n === 1 ? '' : 's'}; fix them before running.` : 'The flow could not be validated.');
      return;
    }
    const st = this.store.getState();
    st.beginRun();
    this.app.setState({ viewedId: null });
    try {
      const id = await this.backend.startExecution(st.toFlow(), {}, st.sourcePath);
      this.store.getState().runStarted(id);
      this.startWatchdog(id);
      void this.refreshHistory();
    } catch (e) {
      this.store.getState().runFailed();
      this.fail(e, 'Run');
    }
  }

  /**
   * Events can be dropped when the UI falls far behind; the history still knows how the run
   * ended. While a run is active, its history row is checked now and then.
   */
  private startWatchdog(id: string): void {
    this.stopWatchdog();
    this.watchdog = setInterval(() => {
      const live = this.store.getState().live;
      if (!live || live.id !== id || isTerminalExecution(live.state)) {
        this.stopWatchdog();
        return;
      }
      this.backend
        .getExecution(id)
        .then((detail) => {
          if (detail && isTerminalExecution(detail.state) && detail.nodes.length > 0) this.store.getState().mergeLiveDetail(detail);
        })
        .catch(() => {
          // The next tick tries again.
        });
    }, WATCHDOG_MS);
  }

  private stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
  }

  private async control(kind: 'pause' | 'resume' | 'cancel'): Promise<void> {
    const live = this.store.getState().live;
    if (!live) return;
    try {
      if (kind === 'pause') await this.backend.pauseExecution(live.id);
      else if (kind === 'resume') await this.backend.resumeExecution(live.id);
      else await this.backend.cancelExecution(live.id);
    } catch (e) {
      this.fail(e, kind[0].toUpperCase() + kind.slice(1));
    }
  }

  pause(): Promise<void> {
    return this.control('pause');
  }
  resume(): Promise<void> {
    return this.control('resume');
  }
  cancel(): Promise<void> {
    return this.control('cancel');
  }

  private async onExecutionEnded(id: string): Promise<void> {
    // The history row is written as the execution ends: poll briefly until it shows the end, then
    // add what only the history has (timings, samples) to the canvas.
    for (let attempt = 0; attempt < 8; attempt++) {
      const list = await this.refreshHistory();
      const row = list.find((r) => r.id === id);
      if (row && isTerminalExecution(row.state)) {
        // The execution's rollups are written with its history row: the figures include it now.
        void this.refreshMonitoring();
        try {
          const detail = await this.backend.getExecution(id);
          if (detail) this.store.getState().mergeLiveDetail(detail);
        } catch (e) {
          this.fail(e, 'History');
        }
        return;
      }
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
  }

  // ---- history ----

  async refreshHistory(): Promise<ExecutionSummary[]> {
    this.app.setState({ historyLoading: true });
    try {
      const list = await this.backend.listExecutions({ limit: 100, offset: null, flow: null, state: null });
      this.store.getState().setExecutions(list);
      return list;
    } catch (e) {
      this.fail(e, 'History');
      return [];
    } finally {
      this.app.setState({ historyLoading: false });
    }
  }

  async viewExecution(id: string | null): Promise<void> {
    if (id === null) {
      this.store.getState().viewExecution(null);
      this.app.setState({ viewedId: null });
      return;
    }
    try {
      const detail = await this.backend.getExecution(id);
      if (!detail) {
        this.store.getState().notify('error', `Execution ${id} is not in the history.`);
        return;
      }
      this.store.getState().viewExecution(detail);
      this.app.setState({ viewedId: id });
    } catch (e) {
      this.fail(e, 'History');
    }
  }

  // ---- monitoring ----

  private setMonitoring(patch: Partial<MonitoringData>): void {
    this.app.setState({ monitoring: { ...this.app.getState().monitoring, ...patch } });
  }

  /** Opens the panel, loads it and refreshes it every 5 s until it closes. */
  openMonitoring(): void {
    if (this.app.getState().monitoring.open) return;
    this.setMonitoring({ open: true });
    this.monitoringTimer = setInterval(() => void this.refreshMonitoring(), MONITORING_REFRESH_MS);
    void this.refreshMonitoring();
  }

  closeMonitoring(): void {
    this.stopMonitoringTimer();
    this.setMonitoring({ open: false });
  }

  toggleMonitoring(): void {
    if (this.app.getState().monitoring.open) this.closeMonitoring();
    else this.openMonitoring();
  }

  setMonitoringWindow(window: MonitoringWindow): void {
    if (this.app.getState().monitoring.window === window) return;
    // Nothing of the previous window stays on screen under the new window's name.
    this.setMonitoring({ window, dashboard: null, flows: null, nodes: null });
    void this.refreshMonitoring();
  }

  private stopMonitoringTimer(): void {
    if (this.monitoringTimer) clearInterval(this.monitoringTimer);
    this.monitoringTimer = null;
  }

  /**
   * Loads the panel's figures while it is open. One refresh at a time: the health tests every
   * connection and may take seconds, so ticks and execution ends meanwhile make one more refresh
   * once it is done, never a pile of them.
   */
  refreshMonitoring(): Promise<void> {
    if (!this.app.getState().monitoring.open) return Promise.resolve();
    if (this.monitoringRun) {
      this.monitoringAgain = true;
      return this.monitoringRun;
    }
    this.monitoringRun = (async () => {
      try {
        do {
          this.monitoringAgain = false;
          await this.loadMonitoring();
        } while (this.monitoringAgain && this.app.getState().monitoring.open);
      } finally {
        this.monitoringRun = null;
      }
    })();
    return this.monitoringRun;
  }

  private async loadMonitoring(): Promise<void> {
    const window = this.app.getState().monitoring.window;
    const errors: string[] = [];
    // Each part shows as soon as it comes (the health may take seconds); one that fails keeps its
    // previous figures, and the error line says which.
    const part = async <T>(name: string, load: Promise<T>, show: (value: T) => Partial<MonitoringData>, ofWindow: boolean) => {
      try {
        const value = await load;
        // An answer for a window no longer chosen is dropped: the refresh that follows asks for the new one.
        if (!ofWindow || this.app.getState().monitoring.window === window) this.setMonitoring(show(value));
      } catch (e) {
        errors.push(`${name}: ${errorMessage(e)}`);
      }
    };
    await Promise.all([
      part('System', this.backend.monitoringSystem(), (system) => ({ system }), false),
      part('Health', this.backend.monitoringHealth(), (health) => ({ health }), false),
      part('Dashboard', this.backend.monitoringDashboard(window, stepMinutes(window)), (dashboard) => ({ dashboard }), true),
      part('Flows', this.backend.monitoringFlows(window), (flows) => ({ flows }), true),
      part('Nodes', this.backend.monitoringNodes(window, null), (nodes) => ({ nodes }), true),
      part('Alerts', this.backend.listAlerts(false), (alerts) => ({ alerts }), false),
      part('Alert rules', this.backend.alertRules(), (alertRules) => ({ alertRules }), false),
    ]);
    this.setMonitoring({ error: errors.length > 0 ? errors.join('\n') : null, updatedAt: Date.now() });
  }

  // ---- alerts ----

  /** Fired or resolved, wherever the user is: a notice, and the panel's list once it has one. */
  private onAlert(event: AlertEvent): void {
    const alerts = this.app.getState().monitoring.alerts;
    if (alerts) this.setMonitoring({ alerts: withAlert(alerts, event.alert) });
    const notice = alertNotice(event);
    this.store.getState().notify(notice.kind, notice.message, 'alert');
  }

  /**
   * Stores a rule and shows it at once; rejects with the engine's message, which names the field
   * that is wrong. The refresh after it also replaces a list that one under way read before.
   */
  async createAlertRule(rule: NewAlertRule): Promise<void> {
    const created = await this.backend.createAlertRule(rule);
    this.setMonitoring({ alertRules: withRule(this.app.getState().monitoring.alertRules ?? [], created) });
    void this.refreshMonitoring();
  }

  /** Deletes a rule; the refresh after it shows its firing alert resolved. */
  async deleteAlertRule(id: string): Promise<void> {
    await this.backend.deleteAlertRule(id);
    this.setMonitoring({ alertRules: (this.app.getState().monitoring.alertRules ?? []).filter((r) => r.id !== id) });
    void this.refreshMonitoring();
  }

  // ---- files ----

  /** Asks before dropping unsaved changes; true when it is fine to go on. */
  async confirmDiscard(): Promise<boolean> {
    if (!this.store.getState().dirty) return true;
    try {
      return await this.platform.confirm('The flow has unsaved changes. Discard them?');
    } catch (e) {
      this.fail(e);
      return false;
    }
  }

  async newFlow(): Promise<void> {
    if (!(await this.confirmDiscard())) return;
    this.store.getState().newFlow();
    this.app.setState({ viewedId: null });
  }

  async open(): Promise<void> {
    if (!(await this.confirmDiscard())) return;
    try {
      const path = await this.platform.openFlowDialog(this.app.getState().settings.flowsFolder);
      if (path) await this.openPath(path, false);
    } catch (e) {
      this.fail(e, 'Open');
    }
  }

  async openPath(path: string, confirmFirst = true): Promise<void> {
    if (confirmFirst && !(await this.confirmDiscard())) return;
    try {
      const flow = await this.backend.loadFlowFile(path);
      this.store.getState().loadFlow(flow, path);
      this.app.setState({ viewedId: null });
      await this.remember(path);
    } catch (e) {
      this.fail(e, 'Open');
    }
  }

  async openExample(example: ExampleFlow): Promise<void> {
    if (!(await this.confirmDiscard())) return;
    try {
      const flow = await this.backend.loadFlowFile(example.path);
      // An example opens as a new document: saving asks where, so the example stays as it is.
      // Its sub-flows are next to it, though.
      this.store.getState().loadFlow(flow, null, example.path);
      this.app.setState({ viewedId: null });
    } catch (e) {
      this.fail(e, 'Example');
    }
  }

  loadFlow(flow: Flow, path: string | null = null): void {
    this.store.getState().loadFlow(flow, path);
  }

  async save(): Promise<boolean> {
    const path = this.store.getState().filePath;
    if (!path) return this.saveAs();
    return this.saveTo(path);
  }

  async saveAs(): Promise<boolean> {
    try {
      const s = this.store.getState();
      const folder = this.app.getState().settings.flowsFolder;
      const suggested = s.filePath ?? `${folder ? `${folder}/` : ''}${fileNameFor(s.meta.name)}`;
      const path = await this.platform.saveFlowDialog(suggested);
      if (!path) return false;
      return await this.saveTo(path.endsWith('.json') ? path : `${path}.json`);
    } catch (e) {
      this.fail(e, 'Save');
      return false;
    }
  }

  private async saveTo(path: string): Promise<boolean> {
    try {
      const s = this.store.getState();
      const revision = s.revision;
      await this.backend.saveFlowFile(path, s.toFlow());
      // Changes made while saving keep the document dirty.
      this.store.getState().markSaved(path, revision);
      this.store.getState().notify('success', `Saved ${path}`);
      await this.remember(path);
      return true;
    } catch (e) {
      this.fail(e, 'Save');
      return false;
    }
  }

  private async remember(path: string): Promise<void> {
    const settings = this.app.getState().settings;
    const recentFiles = [path, ...settings.recentFiles.filter((p) => p !== path)].slice(0, RECENT_LIMIT);
    await this.updateSettings({ recentFiles, flowsFolder: dirname(path) });
  }

  async updateSettings(patch: Partial<Settings>): Promise<void> {
    const settings = { ...this.app.getState().settings, ...patch };
    this.app.setState({ settings });
    try {
      await this.platform.saveSettings(settings);
    } catch (e) {
      this.fail(e, 'Settings');
    }
  }

  setTheme(theme: Theme): Promise<void> {
    return this.updateSettings({ theme });
  }

  // ---- dialogs and suggestions ----

  openDialog(dialog: Dialog): void {
    this.app.setState({ dialog });
  }

  closeDialog(): void {
    const was = this.app.getState().dialog;
    this.app.setState({ dialog: null });
    // Connections may have been made or fixed: see whether the flow's databases answer now.
    if (was?.kind === 'connections') void this.checkNow();
  }

  /** Applies a one-click fix: an edit of the flow, or the Connections dialog on the connection. */
  applySuggestion(s: Suggestion): void {
    const focus = connectionFocus(s);
    if (focus) this.openDialog({ kind: 'connections', focus });
    else this.store.getState().applySuggestion(s);
  }

  // ---- connections ----

  listConnections(): Promise<Connection[]> {
    return this.backend.listConnections();
  }
  // Live validation knows which connections exist: it runs again after every change to them.
  async saveConnection(c: Connection): Promise<void> {
    await this.backend.saveConnection(c);
    void this.validateNow();
  }
  async deleteConnection(name: string): Promise<void> {
    await this.backend.deleteConnection(name);
    void this.validateNow();
  }
  testConnection(c: Connection): Promise<ConnectionTest> {
    return this.backend.testConnection(c);
  }

  // ---- secrets ----

  listSecrets(): Promise<SecretInfo[]> {
    return this.backend.listSecrets();
  }
  setSecret(name: string, value: string): Promise<void> {
    return this.backend.setSecret(name, value);
  }
  deleteSecret(name: string): Promise<void> {
    return this.backend.deleteSecret(name);
  }
  secretProviders(): Promise<ProviderInfo[]> {
    return this.backend.secretProviders();
  }
  saveSecretProvider(settings: ProviderSettings): Promise<void> {
    return this.backend.saveSecretProvider(settings);
  }
  removeSecretProvider(provider: SecretProviderName): Promise<boolean> {
    return this.backend.removeSecretProvider(provider);
  }
}

export function fileNameFor(name: string): string {
  const base = name
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return `${base || 'flow'}.json`;
}
