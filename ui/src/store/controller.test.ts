import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Backend, Platform } from '../api/backend';
import { DEFAULT_SETTINGS } from '../api/backend';
import type { Alert, AlertEvent, AlertRule, Dashboard, EngineEvent, Flow, NewAlertRule, Problem, ValidationReport } from '../api/types';
import { Controller, FOCUS_CHECK_INTERVAL_MS, MONITORING_REFRESH_MS, fileNameFor } from './controller';
import { createFlowStore } from './flowStore';
import { ACTIVE_USERS, CATALOG, ev } from '../test/fixtures';

const NO_DURATION = { avg_ms: null, p50_ms: null, p95_ms: null, p99_ms: null, max_ms: null };

function emptyDashboard(executions = 0): Dashboard {
  return {
    window: { since: '2025-01-01T00:00:00Z', until: '2025-01-01T01:00:00Z' },
    step_minutes: 1,
    executions,
    succeeded: executions,
    failed: 0,
    cancelled: 0,
    success_rate: executions > 0 ? 1 : null,
    duration: NO_DURATION,
    points: [],
  };
}

function fakeBackend(report: ValidationReport = { problems: [] }) {
  let push: (events: EngineEvent[]) => void = () => {};
  let pushAlert: (event: AlertEvent) => void = () => {};
  const backend = {
    catalog: vi.fn(async () => CATALOG),
    validateFlow: vi.fn(async (_f: Flow) => report),
    checkFlow: vi.fn(async (_f: Flow): Promise<ValidationReport> => report),
    startExecution: vi.fn(async () => 'exec-1'),
    pauseExecution: vi.fn(async () => {}),
    resumeExecution: vi.fn(async () => {}),
    cancelExecution: vi.fn(async () => {}),
    listExecutions: vi.fn(async () => []),
    getExecution: vi.fn(async () => null),
    loadFlowFile: vi.fn(async () => ACTIVE_USERS),
    saveFlowFile: vi.fn(async () => {}),
    exampleFlows: vi.fn(async () => [{ path: '/ex/a.json', name: 'A' }]),
    listConnections: vi.fn(async () => []),
    saveConnection: vi.fn(async () => {}),
    deleteConnection: vi.fn(async () => {}),
    testConnection: vi.fn(async () => ({ reachable: true, authenticated: true, server_version: '16', message: 'ok' })),
    listSecrets: vi.fn(async () => []),
    setSecret: vi.fn(async () => {}),
    deleteSecret: vi.fn(async () => {}),
    secretProviders: vi.fn(async () => []),
    saveSecretProvider: vi.fn(async () => {}),
    removeSecretProvider: vi.fn(async () => true),
    monitoringSystem: vi.fn(async () => ({
      cpu_percent: 12,
      memory_used_bytes: 4e9,
      memory_total_bytes: 16e9,
      process_rss_bytes: 3e8,
      uptime_seconds: 60,
      active_executions: 0,
    })),
    monitoringHealth: vi.fn(async () => ({ ok: true, store: { ok: true, error: null }, connections: [] })),
    monitoringDashboard: vi.fn(async (_window: string, _step: number | null) => emptyDashboard()),
    monitoringFlows: vi.fn(async (_window: string) => []),
    monitoringNodes: vi.fn(async (_window: string, _flow: string | null) => []),
    listAlerts: vi.fn(async (_firing: boolean): Promise<Alert[]> => []),
    alertRules: vi.fn(async (): Promise<AlertRule[]> => []),
    createAlertRule: vi.fn(async (rule: NewAlertRule): Promise<AlertRule> => ({
      id: `rule-${rule.name}`,
      name: rule.name,
      condition: rule.condition,
      webhook_url: rule.webhook_url ?? null,
      created_at: '2025-01-01T00:00:00Z',
    })),
    deleteAlertRule: vi.fn(async (_id: string) => {}),
    setupNotes: vi.fn(async (): Promise<string[]> => []),
    subscribeEvents: vi.fn(async (cb: (e: EngineEvent[]) => void) => {
      push = cb;
    }),
    subscribeAlerts: vi.fn(async (cb: (e: AlertEvent) => void) => {
      pushAlert = cb;
    }),
  } satisfies Backend;
  return { backend, push: (e: EngineEvent[]) => push(e), pushAlert: (e: AlertEvent) => pushAlert(e) };
}

const platform: Platform = {
  confirm: vi.fn(async () => true),
  openFlowDialog: vi.fn(async () => '/flows/picked.json'),
  saveFlowDialog: vi.fn(async () => '/flows/saved'),
  loadSettings: vi.fn(async () => DEFAULT_SETTINGS),
  saveSettings: vi.fn(async () => {}),
};

describe('controller', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('validates live, debounced', async () => {
    const { backend } = fakeBackend({ problems: [{ kind: 'cycle', message: 'cycle', node: 'users' }] });
    const store = createFlowStore();
    const c = new Controller(store, backend, platform);
    await c.init();
    store.getState().loadFlow(ACTIVE_USERS, null);
    // The pre-run check of the opened flow validates it alongside.
    backend.validateFlow.mockClear();
    store.getState().renameNode('users', 'a');
    store.getState().renameNode('users', 'ab');
    expect(backend.validateFlow).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(350);
    expect(backend.validateFlow).toHaveBeenCalledTimes(1);
    expect(store.getState().validation.byNode.users).toHaveLength(1);
    c.dispose();
  });

  it('does not start an invalid flow', async () => {
    const { backend } = fakeBackend({ problems: [{ kind: 'cycle', message: 'cycle', node: 'users' }] });
    const store = createFlowStore();
    const c = new Controller(store, backend, platform);
    await c.init();
    store.getState().loadFlow(ACTIVE_USERS, null);
    await c.run();
    expect(backend.startExecution).not.toHaveBeenCalled();
    expect(store.getState().notices.at(-1)?.message).toMatch(/1 problem/);
    c.dispose();
  });

  it('runs a valid flow and follows its events', async () => {
    const { backend, push } = fakeBackend();
    const store = createFlowStore();
    const c = new Controller(store, backend, platform);
    await c.init();
    store.getState().loadFlow(ACTIVE_USERS, null);
    await c.run();
    expect(backend.startExecution).toHaveBeenCalledWith(expect.objectContaining({ name: 'Active users' }), {}, null);
    push([ev.exec('exec-1', 'running'), ev.node('exec-1', 'users', 'running'), ev.progress('exec-1', 'users', 0, 42)]);
    expect(store.getState().live?.nodes.users.counters.records_out).toBe(42);
    await c.pause();
    expect(backend.pauseExecution).toHaveBeenCalledWith('exec-1');
    backend.listExecutions.mockClear();
    push([ev.exec('exec-1', 'succeeded')]);
    await vi.advanceTimersByTimeAsync(0);
    expect(backend.listExecutions).toHaveBeenCalled();
    c.dispose();
  });

  it('shows engine errors to the user', async () => {
    const { backend } = fakeBackend();
    backend.startExecution.mockRejectedValueOnce('engine is busy');
    const store = createFlowStore();
    const c = new Controller(store, backend, platform);
    await c.init();
    store.getState().loadFlow(ACTIVE_USERS, null);
    await c.run();
    expect(store.getState().notices.at(-1)?.message).toBe('Run: engine is busy');
    expect(store.getState().starting).toBe(false);
    c.dispose();
  });

  it('asks before discarding unsaved work', async () => {
    const { backend } = fakeBackend();
    const store = createFlowStore();
    const answers = [false, true];
    const confirm = vi.fn(async () => answers.shift() ?? true);
    const c = new Controller(store, backend, { ...platform, confirm });
    await c.init();
    store.getState().loadFlow(ACTIVE_USERS, '/a.json');
    store.getState().renameNode('users', 'changed');
    await c.newFlow();
    expect(confirm).toHaveBeenCalledTimes(1);
    expect(store.getState().nodes).toHaveLength(3);
    await c.newFlow();
    expect(store.getState().nodes).toHaveLength(0);
    expect(store.getState().dirty).toBe(false);
    c.dispose();
  });

  it('saves to the file, or asks where first', async () => {
    const { backend } = fakeBackend();
    const store = createFlowStore();
    const c = new Controller(store, backend, platform);
    await c.init();
    store.getState().loadFlow(ACTIVE_USERS, null);
    store.getState().renameNode('users', 'x');
    expect(await c.save()).toBe(true);
    expect(backend.saveFlowFile).toHaveBeenCalledWith('/flows/saved.json', expect.objectContaining({ name: 'Active users' }));
    expect(store.getState().dirty).toBe(false);
    expect(store.getState().filePath).toBe('/flows/saved.json');
    expect(fileNameFor('Sales by Region!')).toBe('sales-by-region.json');
    c.dispose();
  });

  it("passes the flow's file to the check and the run, an example's too, for its sub-flow paths", async () => {
    const { backend } = fakeBackend();
    const store = createFlowStore();
    const c = new Controller(store, backend, platform);
    await c.init();
    await c.openPath('/flows/parent.json');
    await c.run();
    expect(backend.checkFlow).toHaveBeenLastCalledWith(expect.anything(), '/flows/parent.json');
    expect(backend.startExecution).toHaveBeenLastCalledWith(expect.anything(), {}, '/flows/parent.json');
    await c.openExample({ path: '/ex/a.json', name: 'A' });
    expect(store.getState().filePath).toBeNull();
    expect(backend.checkFlow).toHaveBeenLastCalledWith(expect.anything(), '/ex/a.json');
    // Saved elsewhere, its sub-flow paths are relative to the new file.
    store.getState().renameNode('users', 'x');
    await c.save();
    expect(store.getState().sourcePath).toBe('/flows/saved.json');
    await c.newFlow();
    expect(store.getState().sourcePath).toBeNull();
    c.dispose();
  });
});

describe('controller: ends of runs', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('adds the history detail (samples) once the run ended, and notices an end it missed', async () => {
    const { backend } = fakeBackend();
    const detail = {
      id: 'exec-1',
      correlation_id: 'c',
      flow: 'Active users',
      state: 'succeeded' as const,
      error: null,
      started_at: '2025-01-01T00:00:00Z',
      finished_at: '2025-01-01T00:00:01Z',
      duration_ms: 1000,
      records_out: 10,
      records_read: 10,
      nodes: [
        {
          node_id: 'users',
          node_type: 'generate_rows',
          state: 'succeeded' as const,
          attempts: 1,
          started_at: null,
          finished_at: null,
          counters: { records_in: 0, records_out: 10, errors: 0 },
          error: null,
          error_kind: null,
          sample: [{ name: 'u0' }],
          sink: null,
        },
      ],
    };
    backend.getExecution.mockResolvedValue(detail as never);
    const store = createFlowStore();
    const c = new Controller(store, backend, platform);
    await c.init();
    store.getState().loadFlow(ACTIVE_USERS, null);
    await c.run();
    // No terminal event ever arrives: the watchdog finds the end in the history.
    await vi.advanceTimersByTimeAsync(3100);
    expect(store.getState().live?.state).toBe('succeeded');
    expect(store.getState().live?.nodes.users.sample).toEqual([{ name: 'u0' }]);
    c.dispose();
  });
});

describe('controller: pre-run check and connections', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const unreachable: Problem = {
    kind: 'connection_unreachable',
    message: 'node `users`: connection `pg` does not answer',
    node: 'users',
    suggestions: [{ kind: 'edit_connection', name: 'pg' }],
  };

  it('shows the setup notes', async () => {
    const { backend } = fakeBackend();
    backend.setupNotes.mockResolvedValue(['Created connection `postgres`']);
    const store = createFlowStore();
    const c = new Controller(store, backend, platform);
    await c.init();
    expect(store.getState().notices).toEqual([expect.objectContaining({ kind: 'info', message: 'Created connection `postgres`' })]);
    c.dispose();
  });

  it('checks an opened flow and shows what only the check found', async () => {
    const { backend } = fakeBackend();
    backend.checkFlow.mockResolvedValue({ problems: [unreachable] });
    const store = createFlowStore();
    const c = new Controller(store, backend, platform);
    await c.init();
    await c.openExample({ path: '/ex/a.json', name: 'A' });
    await vi.advanceTimersByTimeAsync(0);
    expect(backend.checkFlow).toHaveBeenCalledTimes(1);
    expect(store.getState().validation.byNode.users).toEqual([unreachable]);
    // Live validation does not clear it: it stays until the next check.
    await vi.advanceTimersByTimeAsync(350);
    expect(store.getState().validation.problems).toEqual([unreachable]);
    c.dispose();
  });

  it('ignores the check of a flow that is no longer open', async () => {
    const { backend } = fakeBackend();
    let answer: (r: ValidationReport) => void = () => {};
    backend.checkFlow.mockImplementationOnce(() => new Promise((resolve) => (answer = resolve)));
    const store = createFlowStore();
    const c = new Controller(store, backend, platform);
    await c.init();
    store.getState().loadFlow(ACTIVE_USERS, null);
    store.getState().newFlow();
    answer({ problems: [unreachable] });
    await vi.advanceTimersByTimeAsync(0);
    expect(store.getState().validation.problems).toEqual([]);
    c.dispose();
  });

  it('checks again on window focus at most every 30 s, and after the Connections dialog', async () => {
    const { backend } = fakeBackend();
    const store = createFlowStore();
    const c = new Controller(store, backend, platform);
    await c.init();
    store.getState().loadFlow(ACTIVE_USERS, null);
    expect(backend.checkFlow).toHaveBeenCalledTimes(1);
    c.windowFocused();
    expect(backend.checkFlow).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(FOCUS_CHECK_INTERVAL_MS);
    c.windowFocused();
    expect(backend.checkFlow).toHaveBeenCalledTimes(2);
    c.openDialog({ kind: 'variables' });
    c.closeDialog();
    expect(backend.checkFlow).toHaveBeenCalledTimes(2);
    c.openDialog({ kind: 'connections', focus: null });
    c.closeDialog();
    expect(backend.checkFlow).toHaveBeenCalledTimes(3);
    c.dispose();
  });

  it('opens the Connections dialog for a connection suggestion, and validates again after a save', async () => {
    const { backend } = fakeBackend();
    const store = createFlowStore();
    const c = new Controller(store, backend, platform);
    await c.init();
    store.getState().loadFlow(ACTIVE_USERS, null);
    await vi.advanceTimersByTimeAsync(350);
    c.applySuggestion({ kind: 'create_connection', name: 'postgres', connection_kind: 'postgres' });
    expect(c.app.getState().dialog).toEqual({
      kind: 'connections',
      focus: { kind: 'create', connection: expect.objectContaining({ name: 'postgres', url: 'postgres://postgres@127.0.0.1:5432/test' }) },
    });
    backend.validateFlow.mockClear();
    await c.saveConnection({ name: 'postgres', kind: 'postgres', url: 'postgres://postgres@127.0.0.1:5432/test', options: {} });
    expect(backend.validateFlow).toHaveBeenCalledTimes(1);
    c.dispose();
  });
});

describe('controller: monitoring', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('loads the panel when it opens, every 5 s while it is open, and never while it is closed', async () => {
    const { backend } = fakeBackend();
    const c = new Controller(createFlowStore(), backend, platform);
    await c.init();
    await vi.advanceTimersByTimeAsync(MONITORING_REFRESH_MS * 2);
    expect(backend.monitoringDashboard).not.toHaveBeenCalled();

    c.openMonitoring();
    await vi.advanceTimersByTimeAsync(0);
    expect(backend.monitoringDashboard).toHaveBeenLastCalledWith('1h', 1);
    expect(backend.monitoringNodes).toHaveBeenLastCalledWith('1h', null);
    expect(c.app.getState().monitoring).toMatchObject({ open: true, dashboard: emptyDashboard(), flows: [], nodes: [], error: null });
    expect(c.app.getState().monitoring.system?.cpu_percent).toBe(12);

    await vi.advanceTimersByTimeAsync(MONITORING_REFRESH_MS);
    expect(backend.monitoringDashboard).toHaveBeenCalledTimes(2);
    c.closeMonitoring();
    await vi.advanceTimersByTimeAsync(MONITORING_REFRESH_MS * 3);
    expect(backend.monitoringDashboard).toHaveBeenCalledTimes(2);
    c.dispose();
  });

  it('refreshes right after a run ends', async () => {
    const { backend, push } = fakeBackend();
    backend.listExecutions.mockResolvedValue([{ id: 'exec-1', state: 'succeeded' }] as never);
    const store = createFlowStore();
    const c = new Controller(store, backend, platform);
    await c.init();
    store.getState().loadFlow(ACTIVE_USERS, null);
    c.openMonitoring();
    await vi.advanceTimersByTimeAsync(0);
    await c.run();
    backend.monitoringDashboard.mockResolvedValue(emptyDashboard(1));
    push([ev.exec('exec-1', 'succeeded')]);
    await vi.advanceTimersByTimeAsync(0);
    expect(backend.monitoringDashboard).toHaveBeenCalledTimes(2);
    expect(c.app.getState().monitoring.dashboard?.executions).toBe(1);
    c.dispose();
  });

  it('asks for the chosen window at one point a minute up to a day, and keeps no figures of the previous one', async () => {
    const { backend } = fakeBackend();
    const c = new Controller(createFlowStore(), backend, platform);
    await c.init();
    c.openMonitoring();
    await vi.advanceTimersByTimeAsync(0);
    let answer: (d: Dashboard) => void = () => {};
    backend.monitoringDashboard.mockImplementationOnce(() => new Promise((resolve) => (answer = resolve)));
    c.setMonitoringWindow('24h');
    expect(c.app.getState().monitoring).toMatchObject({ window: '24h', dashboard: null, flows: null, nodes: null });
    expect(backend.monitoringDashboard).toHaveBeenLastCalledWith('24h', 1);
    // A choice made while a refresh is under way is loaded once that refresh ends.
    c.setMonitoringWindow('7d');
    answer(emptyDashboard(5));
    await vi.advanceTimersByTimeAsync(0);
    expect(backend.monitoringDashboard).toHaveBeenLastCalledWith('7d', 15);
    expect(backend.monitoringDashboard).toHaveBeenCalledTimes(3);
    expect(c.app.getState().monitoring.dashboard).toEqual(emptyDashboard());
    c.dispose();
  });

  it('keeps the figures it has when a part fails, and says which', async () => {
    const { backend } = fakeBackend();
    const c = new Controller(createFlowStore(), backend, platform);
    await c.init();
    c.openMonitoring();
    await vi.advanceTimersByTimeAsync(0);
    backend.monitoringFlows.mockRejectedValueOnce('the history store is locked');
    await c.refreshMonitoring();
    expect(c.app.getState().monitoring.error).toBe('Flows: the history store is locked');
    expect(c.app.getState().monitoring.flows).toEqual([]);
    await c.refreshMonitoring();
    expect(c.app.getState().monitoring.error).toBeNull();
    c.dispose();
  });
});

function alert(id: string, resolved: boolean): Alert {
  return {
    id,
    rule_id: 'rule-orders',
    rule_name: 'orders failing',
    subject: '',
    message: 'flow `orders` failed 2 times in the last 5 minutes; the latest: boom',
    value: 2,
    fired_at: '2025-01-01T00:00:00Z',
    resolved_at: resolved ? '2025-01-01T00:02:00Z' : null,
    resolution: resolved ? 'flow `orders` succeeded (execution e-9)' : null,
  };
}

function rule(name: string): AlertRule {
  return { id: `rule-${name}`, name, condition: { kind: 'memory_above', percent: 90 }, webhook_url: null, created_at: '2025-01-01T00:00:00Z' };
}

describe('controller: alerts', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('loads the alerts and the rules with the panel', async () => {
    const { backend } = fakeBackend();
    backend.listAlerts.mockResolvedValue([alert('a-1', true)]);
    backend.alertRules.mockResolvedValue([rule('memory')]);
    const c = new Controller(createFlowStore(), backend, platform);
    await c.init();
    c.openMonitoring();
    await vi.advanceTimersByTimeAsync(0);
    expect(backend.listAlerts).toHaveBeenLastCalledWith(false);
    expect(c.app.getState().monitoring).toMatchObject({ alerts: [alert('a-1', true)], alertRules: [rule('memory')], error: null });
    c.dispose();
  });

  it('tells of an alert that fires or resolves, and keeps the panel’s list up to date between refreshes', async () => {
    const { backend, pushAlert } = fakeBackend();
    const store = createFlowStore();
    const c = new Controller(store, backend, platform);
    await c.init();
    // Closed, the panel has no list to update: the notice still comes.
    pushAlert({ change: 'fired', alert: alert('a-0', false) });
    expect(c.app.getState().monitoring.alerts).toBeNull();
    expect(store.getState().notices.at(-1)).toMatchObject({ kind: 'error', topic: 'alert', message: expect.stringMatching(/^Alert “orders failing”: flow `orders` failed/) });

    c.openMonitoring();
    await vi.advanceTimersByTimeAsync(0);
    pushAlert({ change: 'fired', alert: alert('a-1', false) });
    expect(c.app.getState().monitoring.alerts).toEqual([alert('a-1', false)]);
    pushAlert({ change: 'resolved', alert: alert('a-1', true) });
    expect(c.app.getState().monitoring.alerts).toEqual([alert('a-1', true)]);
    expect(store.getState().notices.at(-1)).toMatchObject({ kind: 'success', topic: 'alert', message: 'Resolved “orders failing”: flow `orders` succeeded (execution e-9)' });
    c.dispose();
  });

  it('shows a rule it adds at once, in name order, and refreshes', async () => {
    const { backend } = fakeBackend();
    backend.alertRules.mockResolvedValue([rule('memory')]);
    const c = new Controller(createFlowStore(), backend, platform);
    await c.init();
    c.openMonitoring();
    await vi.advanceTimersByTimeAsync(0);
    let answer: (rules: AlertRule[]) => void = () => {};
    backend.alertRules.mockImplementationOnce(() => new Promise((resolve) => (answer = resolve)));
    await c.createAlertRule({ name: 'cpu', condition: { kind: 'memory_above', percent: 90 } });
    const names = () => c.app.getState().monitoring.alertRules?.map((r) => r.name);
    expect(names()).toEqual(['cpu', 'memory']);
    expect(backend.alertRules).toHaveBeenCalledTimes(2);
    answer([rule('cpu'), rule('memory')]);
    await vi.advanceTimersByTimeAsync(0);
    expect(names()).toEqual(['cpu', 'memory']);
    c.dispose();
  });

  it('rejects with the engine’s message and keeps the rules as they were', async () => {
    const { backend } = fakeBackend();
    backend.alertRules.mockResolvedValue([rule('memory')]);
    const c = new Controller(createFlowStore(), backend, platform);
    await c.init();
    c.openMonitoring();
    await vi.advanceTimersByTimeAsync(0);
    backend.createAlertRule.mockRejectedValueOnce('alert rule `x`: window_minutes: 0 is not from 1 to 43200');
    await expect(c.createAlertRule({ name: 'x', condition: { kind: 'flow_failing', flow: 'f', failures: 1, window_minutes: 0 } })).rejects.toBe(
      'alert rule `x`: window_minutes: 0 is not from 1 to 43200',
    );
    expect(c.app.getState().monitoring.alertRules).toEqual([rule('memory')]);
    c.dispose();
  });

  it('drops a rule it deletes at once, and refreshes for its alert resolved', async () => {
    const { backend } = fakeBackend();
    backend.alertRules.mockResolvedValue([rule('cpu'), rule('memory')]);
    const c = new Controller(createFlowStore(), backend, platform);
    await c.init();
    c.openMonitoring();
    await vi.advanceTimersByTimeAsync(0);
    backend.alertRules.mockResolvedValue([rule('memory')]);
    backend.listAlerts.mockResolvedValue([alert('a-1', true)]);
    await c.deleteAlertRule('rule-cpu');
    expect(backend.deleteAlertRule).toHaveBeenCalledWith('rule-cpu');
    expect(c.app.getState().monitoring.alertRules).toEqual([rule('memory')]);
    await vi.advanceTimersByTimeAsync(0);
    expect(c.app.getState().monitoring.alerts).toEqual([alert('a-1', true)]);
    c.dispose();
  });
});
