// The monitoring panel's pure side: the windows it offers, a dashboard as uPlot's data arrays, the
// tables' sort, what a click on a node row leads to, and the units of the system figures.
import type uPlot from 'uplot';
import type { Dashboard, DurationStats, FlowMetrics, NodeMetrics } from '../api/types';

export type MonitoringWindow = '1h' | '24h' | '7d';

/**
 * The windows on offer and the step each asks for: one point a minute up to a day (1,440 points
 * over 24 h), quarter hours over a week (672 points); the engine refuses more than 1,500.
 */
export const MONITORING_WINDOWS: readonly { id: MonitoringWindow; label: string; stepMinutes: number }[] = [
  { id: '1h', label: 'Last hour', stepMinutes: 1 },
  { id: '24h', label: 'Last 24 hours', stepMinutes: 1 },
  { id: '7d', label: 'Last 7 days', stepMinutes: 15 },
];

export function stepMinutes(window: MonitoringWindow): number {
  return MONITORING_WINDOWS.find((w) => w.id === window)?.stepMinutes ?? 1;
}

export function isMonitoringWindow(text: string): text is MonitoringWindow {
  return MONITORING_WINDOWS.some((w) => w.id === text);
}

export interface DashboardCharts {
  /**
   * Step starts (Unix seconds, uPlot's time scale), then the stacked bars, tallest first so that
   * each shorter one is drawn over it: all executions, succeeded + failed, succeeded.
   */
  executions: uPlot.AlignedData;
  /** Succeeded over executions, in percent; null for a step without any. */
  successRate: uPlot.AlignedData;
  /** p50, p95 and p99 in ms; null for a step without any. */
  durations: uPlot.AlignedData;
}

export function dashboardCharts(dashboard: Dashboard): DashboardCharts {
  const points = dashboard.points;
  const x = points.map((p) => Date.parse(p.at) / 1000);
  return {
    executions: [x, points.map((p) => p.succeeded + p.failed + p.cancelled), points.map((p) => p.succeeded + p.failed), points.map((p) => p.succeeded)],
    successRate: [x, points.map((p) => (p.executions > 0 ? (100 * p.succeeded) / p.executions : null))],
    durations: [x, points.map((p) => p.duration.p50_ms), points.map((p) => p.duration.p95_ms), points.map((p) => p.duration.p99_ms)],
  };
}

/** A stacked bar's own count at `idx`: its running sum less that of the series below it (the next one). */
export function stackedCount(data: uPlot.AlignedData, seriesIdx: number, idx: number): number {
  const sum = (i: number) => (i < data.length ? Number(data[i][idx] ?? 0) : 0);
  return sum(seriesIdx) - sum(seriesIdx + 1);
}

// ---- tables ----

/** What a table can be sorted by: the error rate, or one of the durations. */
export type SortKey = 'error_rate' | keyof DurationStats;

export interface TableSort {
  key: SortKey;
  descending: boolean;
}

/** A click on a column header: the same column turns the order round; another sorts by it, worst first. */
export function nextSort(current: TableSort | null, key: SortKey): TableSort {
  return current?.key === key ? { key, descending: !current.descending } : { key, descending: true };
}

function sortValue(row: FlowMetrics | NodeMetrics, key: SortKey): number | null {
  return key === 'error_rate' ? row.error_rate : row.duration[key];
}

/** The rows in `sort` order (the engine's order without one); rows without a value go last either way. */
export function sortRows<T extends FlowMetrics | NodeMetrics>(rows: readonly T[], sort: TableSort | null): T[] {
  if (!sort) return [...rows];
  const sign = sort.descending ? -1 : 1;
  // Array.prototype.sort is stable: ties keep the engine's order (by flow, then node).
  return [...rows].sort((a, b) => {
    const va = sortValue(a, sort.key);
    const vb = sortValue(b, sort.key);
    if (va === null || vb === null) return va === vb ? 0 : va === null ? 1 : -1;
    return sign * (va - vb);
  });
}

/**
 * What a click on a node row does: the engine keeps flow names, not their files, so it can show
 * the node only when its flow is the one open and the node is still in it.
 */
export function nodeRowTarget(row: Pick<NodeMetrics, 'flow' | 'node_id'>, openFlow: string, nodeIds: readonly string[]): { select: string } | { hint: string } {
  if (row.flow !== openFlow) return { hint: `“${row.flow}” is not the open flow: open its file to see node “${row.node_id}”.` };
  if (!nodeIds.includes(row.node_id)) return { hint: `The open flow has no node “${row.node_id}” any more.` };
  return { select: row.node_id };
}

// ---- units ----

/** A share (0 to 1) in percent: 97.5%, 100%; a dash without one. */
export function formatShare(share: number | null): string {
  if (share === null || !Number.isFinite(share)) return '—';
  return `${Number((share * 100).toFixed(1))}%`;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** Bytes in binary units: 512 B, 1.5 GiB, 312 MiB. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 || value >= 100 ? Math.round(value) : Number(value.toFixed(1))} ${BYTE_UNITS[unit]}`;
}

/** An uptime in its two largest units: 45 s, 3 min 5 s, 2 h 10 min, 4 d 3 h. */
export function formatUptime(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${s % 60} s`;
  return `${s} s`;
}
