import { describe, expect, it } from 'vitest';
import type { Dashboard, DashboardPoint, DurationStats, FlowMetrics, NodeMetrics } from '../api/types';
import {
  dashboardCharts,
  formatBytes,
  formatShare,
  formatUptime,
  isMonitoringWindow,
  MONITORING_WINDOWS,
  nextSort,
  nodeRowTarget,
  sortRows,
  stackedCount,
  stepMinutes,
} from './monitoring';

const NO_DURATION: DurationStats = { avg_ms: null, p50_ms: null, p95_ms: null, p99_ms: null, max_ms: null };

function durations(p50: number | null, p95: number | null = p50): DurationStats {
  return { avg_ms: p50, p50_ms: p50, p95_ms: p95, p99_ms: p95, max_ms: p95 };
}

function point(at: string, succeeded: number, failed: number, cancelled: number, duration = NO_DURATION): DashboardPoint {
  return { at, executions: succeeded + failed + cancelled, succeeded, failed, cancelled, duration };
}

function dashboard(points: DashboardPoint[]): Dashboard {
  return {
    window: { since: '2025-01-01T00:00:00Z', until: '2025-01-01T00:03:00Z' },
    step_minutes: 1,
    executions: 0,
    succeeded: 0,
    failed: 0,
    cancelled: 0,
    success_rate: null,
    duration: NO_DURATION,
    points,
  };
}

function flow(name: string, errorRate: number, p95: number | null): FlowMetrics {
  return { flow: name, executions: 1, succeeded: 1, failed: 0, cancelled: 0, error_rate: errorRate, duration: durations(p95), records_out: 0 };
}

function node(flowName: string, id: string, errorRate: number, p50: number | null): NodeMetrics {
  return {
    flow: flowName,
    node_id: id,
    node_type: 'collect',
    runs: 1,
    failed: 0,
    error_rate: errorRate,
    duration: durations(p50),
    records_in: 0,
    records_out: 0,
    errors: 0,
  };
}

describe('monitoring windows', () => {
  it('asks for one-minute points up to a day, and stays within the engine’s 1,500 points', () => {
    expect(stepMinutes('1h')).toBe(1);
    expect(stepMinutes('24h')).toBe(1);
    const minutes = { '1h': 60, '24h': 1440, '7d': 7 * 1440 };
    for (const w of MONITORING_WINDOWS) expect(minutes[w.id] / w.stepMinutes + 1).toBeLessThanOrEqual(1500);
    expect(isMonitoringWindow('7d')).toBe(true);
    expect(isMonitoringWindow('2h')).toBe(false);
  });
});

describe('dashboard charts', () => {
  const d = dashboard([
    point('2025-01-01T00:00:00Z', 3, 1, 0, durations(40, 90)),
    point('2025-01-01T00:01:00Z', 0, 0, 0),
    point('2025-01-01T00:02:00Z', 1, 0, 1, durations(1000)),
  ]);
  const charts = dashboardCharts(d);

  it('puts the step starts in Unix seconds', () => {
    expect(charts.executions[0]).toEqual([1735689600, 1735689660, 1735689720]);
    expect(charts.successRate[0]).toBe(charts.executions[0]);
  });

  it('stacks the executions, tallest first, and gives back each series’ own count', () => {
    expect(charts.executions.slice(1)).toEqual([
      [4, 0, 2],
      [4, 0, 1],
      [3, 0, 1],
    ]);
    const own = (series: number) => [0, 1, 2].map((idx) => stackedCount(charts.executions, series, idx));
    // Cancelled, failed, succeeded.
    expect([own(1), own(2), own(3)]).toEqual([
      [0, 0, 1],
      [1, 0, 0],
      [3, 0, 1],
    ]);
  });

  it('gives the success rate in percent and no value for steps without executions', () => {
    expect(charts.successRate[1]).toEqual([75, null, 50]);
  });

  it('gives p50, p95 and p99 per step', () => {
    expect(charts.durations.slice(1)).toEqual([
      [40, null, 1000],
      [90, null, 1000],
      [90, null, 1000],
    ]);
  });

  it('gives empty series for a window without points', () => {
    expect(dashboardCharts(dashboard([])).executions).toEqual([[], [], [], []]);
  });
});

describe('sorting the tables', () => {
  const rows = [flow('a', 0, 200), flow('b', 0.5, null), flow('c', 0.5, 50), flow('d', 0.1, 900)];
  const names = (list: FlowMetrics[]) => list.map((r) => r.flow);

  it('keeps the engine’s order without a sort', () => {
    expect(names(sortRows(rows, null))).toEqual(['a', 'b', 'c', 'd']);
  });

  it('sorts by error rate, ties in the engine’s order', () => {
    expect(names(sortRows(rows, { key: 'error_rate', descending: true }))).toEqual(['b', 'c', 'd', 'a']);
    expect(names(sortRows(rows, { key: 'error_rate', descending: false }))).toEqual(['a', 'd', 'b', 'c']);
  });

  it('sorts by a duration, rows without one last either way', () => {
    expect(names(sortRows(rows, { key: 'p95_ms', descending: true }))).toEqual(['d', 'a', 'c', 'b']);
    expect(names(sortRows(rows, { key: 'p95_ms', descending: false }))).toEqual(['c', 'a', 'd', 'b']);
  });

  it('sorts node rows the same way', () => {
    const nodes = [node('f', 'x', 0, 10), node('f', 'y', 0, 30)];
    expect(sortRows(nodes, { key: 'p50_ms', descending: true }).map((n) => n.node_id)).toEqual(['y', 'x']);
  });

  it('does not reorder the rows it was given', () => {
    sortRows(rows, { key: 'error_rate', descending: true });
    expect(names(rows)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('sorts a new column worst first, and turns the order round on a second click', () => {
    const first = nextSort(null, 'error_rate');
    expect(first).toEqual({ key: 'error_rate', descending: true });
    expect(nextSort(first, 'error_rate')).toEqual({ key: 'error_rate', descending: false });
    expect(nextSort(first, 'p95_ms')).toEqual({ key: 'p95_ms', descending: true });
  });
});

describe('a click on a node row', () => {
  it('selects the node when its flow is the open one', () => {
    expect(nodeRowTarget({ flow: 'Sales', node_id: 'load' }, 'Sales', ['read', 'load'])).toEqual({ select: 'load' });
  });

  it('says why not otherwise', () => {
    expect(nodeRowTarget({ flow: 'Other', node_id: 'load' }, 'Sales', ['load'])).toEqual({
      hint: '“Other” is not the open flow: open its file to see node “load”.',
    });
    expect(nodeRowTarget({ flow: 'Sales', node_id: 'gone' }, 'Sales', ['load'])).toEqual({ hint: 'The open flow has no node “gone” any more.' });
  });
});

describe('units', () => {
  it('shows shares in percent', () => {
    expect(formatShare(1)).toBe('100%');
    expect(formatShare(2 / 3)).toBe('66.7%');
    expect(formatShare(0)).toBe('0%');
    expect(formatShare(null)).toBe('—');
  });

  it('shows bytes in binary units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(312 * 1024 ** 2)).toBe('312 MiB');
    expect(formatBytes(16 * 1024 ** 3)).toBe('16 GiB');
    expect(formatBytes(Number.NaN)).toBe('—');
  });

  it('shows an uptime in its two largest units', () => {
    expect(formatUptime(45.8)).toBe('45 s');
    expect(formatUptime(185)).toBe('3 min 5 s');
    expect(formatUptime(2 * 3600 + 600)).toBe('2 h 10 min');
    expect(formatUptime(4 * 86_400 + 3 * 3600 + 59)).toBe('4 d 3 h');
  });
});
