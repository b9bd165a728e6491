// The monitoring panel, over the canvas: the window's totals and charts, the machine and the app,
// the health of the store and of every connection, the alerts and their rules, and the per-flow
// and per-node tables. The controller loads it while it is open (every 5 s, and when a run ends).
import { useReactFlow } from '@xyflow/react';
import { useMemo, useState } from 'react';
import type { Dashboard, FlowMetrics, Health, NodeMetrics, SystemMetrics } from '../api/types';
import { formatCount, formatDuration } from '../model/format';
import {
  formatBytes,
  formatShare,
  formatUptime,
  isMonitoringWindow,
  MONITORING_WINDOWS,
  nextSort,
  nodeRowTarget,
  sortRows,
  type SortKey,
  type TableSort,
} from '../model/monitoring';
import { useApp, useController } from '../store/context';
import { AlertsSection } from './AlertsSection';
import { MonitoringCharts } from './MonitoringCharts';

/** A meter turns to the warning colour from here (the SPEC's memory alert is at 80 %). */
const HIGH_SHARE = 0.8;

function Gauge({ label, value, share, testId }: { label: string; value: string; share?: number; testId: string }) {
  return (
    <div className="gauge">
      <dt>{label}</dt>
      <dd data-testid={testId}>{value}</dd>
      {share !== undefined && (
        <dd className={`meter ${share >= HIGH_SHARE ? 'high' : ''}`} aria-hidden>
          <span style={{ width: `${Math.min(100, Math.max(0, share * 100))}%` }} />
        </dd>
      )}
    </div>
  );
}

function SystemGauges({ system }: { system: SystemMetrics | null }) {
  return (
    <section className="monitoring-card" data-testid="monitoring-system">
      <h3>System</h3>
      {!system && <div className="muted">Loading…</div>}
      {system && (
        <dl className="gauges">
          <Gauge label="CPU" value={`${Math.round(system.cpu_percent)}%`} share={system.cpu_percent / 100} testId="monitoring-cpu" />
          <Gauge
            label="Memory"
            value={`${formatBytes(system.memory_used_bytes)} of ${formatBytes(system.memory_total_bytes)}`}
            share={system.memory_total_bytes > 0 ? system.memory_used_bytes / system.memory_total_bytes : 0}
            testId="monitoring-memory"
          />
          <Gauge label="App memory (RSS)" value={formatBytes(system.process_rss_bytes)} testId="monitoring-rss" />
          <Gauge label="Uptime" value={formatUptime(system.uptime_seconds)} testId="monitoring-uptime" />
          <Gauge label="Active executions" value={formatCount(system.active_executions)} testId="monitoring-active" />
        </dl>
      )}
    </section>
  );
}

function HealthRow({ name, kind, ok, message, testId }: { name: string; kind?: string; ok: boolean; message: string | null; testId: string }) {
  return (
    <li className={ok ? 'up' : 'down'} data-testid={testId} data-ok={ok}>
      <span className={ok ? 'ok' : 'bad'} aria-label={ok ? 'ok' : 'error'}>
        {ok ? '✓' : '✕'}
      </span>
      <strong>{name}</strong>
      {kind && <span className="muted">{kind}</span>}
      {message && <span className="health-msg">{message}</span>}
    </li>
  );
}

function HealthList({ health }: { health: Health | null }) {
  return (
    <section className="monitoring-card" data-testid="monitoring-health">
      <h3>
        Health
        {health && <span className={`flag ${health.ok ? 'ok' : 'bad'}`}>{health.ok ? 'all answer' : 'not all answer'}</span>}
      </h3>
      {!health && <div className="muted">Testing the store and the connections…</div>}
      {health && (
        <ul className="health-list">
          <HealthRow name="History store" ok={health.store.ok} message={health.store.error} testId="monitoring-health-store" />
          {health.connections.map((c) => (
            <HealthRow key={c.name} name={c.name} kind={c.kind} ok={c.ok} message={c.test.message} testId={`monitoring-health-${c.name}`} />
          ))}
        </ul>
      )}
    </section>
  );
}

function Stat({ label, value, tone, testId }: { label: string; value: string; tone?: 'ok' | 'bad'; testId: string }) {
  return (
    <div className={`monitoring-card stat ${tone ?? ''}`}>
      <div className="stat-value" data-testid={testId}>
        {value}
      </div>
      <div className="stat-label">{label}</div>
    </div>
  );
}

function Totals({ dashboard: d }: { dashboard: Dashboard }) {
  const { p50_ms, p95_ms, p99_ms } = d.duration;
  return (
    <div className="monitoring-totals" data-testid="monitoring-totals">
      <Stat label="Executions" value={formatCount(d.executions)} testId="monitoring-total-executions" />
      <Stat label="Succeeded" value={formatCount(d.succeeded)} tone="ok" testId="monitoring-total-succeeded" />
      <Stat label="Failed" value={formatCount(d.failed)} tone={d.failed > 0 ? 'bad' : undefined} testId="monitoring-total-failed" />
      <Stat label="Cancelled" value={formatCount(d.cancelled)} testId="monitoring-total-cancelled" />
      <Stat label="Success rate" value={formatShare(d.success_rate)} testId="monitoring-success-rate" />
      <Stat label="Duration p50" value={formatDuration(p50_ms)} testId="monitoring-p50" />
      <Stat label="p95" value={formatDuration(p95_ms)} testId="monitoring-p95" />
      <Stat label="p99" value={formatDuration(p99_ms)} testId="monitoring-p99" />
    </div>
  );
}

/** A column header that sorts its table: worst first, again for the other way round. */
function SortHeader({ label, sortKey, sort, onSort, table }: { label: string; sortKey: SortKey; sort: TableSort | null; onSort: (key: SortKey) => void; table: string }) {
  const active = sort?.key === sortKey;
  return (
    <th className="num" aria-sort={active ? (sort.descending ? 'descending' : 'ascending') : 'none'}>
      <button className="sort-btn" data-testid={`${table}-sort-${sortKey}`} onClick={() => onSort(sortKey)} title={`Sort by ${label}`}>
        {label}
        <span className="sort-mark" aria-hidden>
          {active ? (sort.descending ? '▾' : '▴') : '↕'}
        </span>
      </button>
    </th>
  );
}

/** The sortable columns both tables share: error rate and durations. */
function SortHeaders({ sort, onSort, table }: { sort: TableSort | null; onSort: (key: SortKey) => void; table: string }) {
  const props = { sort, onSort, table };
  return (
    <>
      <SortHeader label="error rate" sortKey="error_rate" {...props} />
      <SortHeader label="p50" sortKey="p50_ms" {...props} />
      <SortHeader label="p95" sortKey="p95_ms" {...props} />
      <SortHeader label="max" sortKey="max_ms" {...props} />
    </>
  );
}

function SortCells({ row }: { row: FlowMetrics | NodeMetrics }) {
  return (
    <>
      <td className={`num ${row.error_rate > 0 ? 'bad' : ''}`}>{formatShare(row.error_rate)}</td>
      <td className="num">{formatDuration(row.duration.p50_ms)}</td>
      <td className="num">{formatDuration(row.duration.p95_ms)}</td>
      <td className="num">{formatDuration(row.duration.max_ms)}</td>
    </>
  );
}

function useSort() {
  const [sort, setSort] = useState<TableSort | null>(null);
  return { sort, onSort: (key: SortKey) => setSort((s) => nextSort(s, key)) };
}

function FlowsTable({ rows }: { rows: FlowMetrics[] | null }) {
  const { sort, onSort } = useSort();
  const sorted = useMemo(() => sortRows(rows ?? [], sort), [rows, sort]);
  return (
    <section className="monitoring-card">
      <h3>Flows {rows && <span className="count">{rows.length}</span>}</h3>
      <div className="monitoring-table">
        <table data-testid="monitoring-flows">
          <thead>
            <tr>
              <th>flow</th>
              <th className="num">runs</th>
              <th className="num">succeeded</th>
              <th className="num">failed</th>
              <th className="num">cancelled</th>
              <SortHeaders sort={sort} onSort={onSort} table="monitoring-flows" />
              <th className="num" title="Records out of all its nodes">
                records
              </th>
            </tr>
          </thead>
          <tbody>
            {rows && rows.length === 0 && (
              <tr>
                <td colSpan={10} className="muted">
                  No executions finished in this window.
                </td>
              </tr>
            )}
            {sorted.map((r) => (
              <tr key={r.flow} data-testid={`monitoring-flow-${r.flow}`}>
                <td title={r.flow}>
                  {r.flow}
                </td>
                <td className="num">{formatCount(r.executions)}</td>
                <td className="num">{formatCount(r.succeeded)}</td>
                <td className="num">{formatCount(r.failed)}</td>
                <td className="num">{formatCount(r.cancelled)}</td>
                <SortCells row={r} />
                <td className="num">{formatCount(r.records_out)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function NodesTable({ rows }: { rows: NodeMetrics[] | null }) {
  const controller = useController();
  const { fitView } = useReactFlow();
  const { sort, onSort } = useSort();
  const sorted = useMemo(() => sortRows(rows ?? [], sort), [rows, sort]);
  const [hint, setHint] = useState<string | null>(null);

  // Back to the canvas on the node, when it is in the flow open there.
  const show = (row: NodeMetrics) => {
    const s = controller.store.getState();
    const target = nodeRowTarget(row, s.meta.name, s.nodes.map((n) => n.id));
    if ('hint' in target) {
      setHint(target.hint);
      return;
    }
    s.select([target.select]);
    controller.closeMonitoring();
    void fitView({ nodes: [{ id: target.select }], maxZoom: 1.2, duration: 200, padding: 0.5 });
  };

  return (
    <section className="monitoring-card">
      <h3>Nodes {rows && <span className="count">{rows.length}</span>}</h3>
      {hint && (
        <p className="monitoring-hint" data-testid="monitoring-hint">
          {hint}
          <button className="icon-btn" aria-label="Dismiss" onClick={() => setHint(null)}>
            ×
          </button>
        </p>
      )}
      <div className="monitoring-table">
        <table data-testid="monitoring-nodes">
          <thead>
            <tr>
              <th>flow</th>
              <th>node</th>
              <th>type</th>
              <th className="num">runs</th>
              <th className="num">failed</th>
              <SortHeaders sort={sort} onSort={onSort} table="monitoring-nodes" />
              <th className="num" title="Records in">
                in
              </th>
              <th className="num" title="Records out">
                out
              </th>
              <th className="num" title="Records the node reported as errors">
                errors
              </th>
            </tr>
          </thead>
          <tbody>
            {rows && rows.length === 0 && (
              <tr>
                <td colSpan={12} className="muted">
                  No node ran in this window.
                </td>
              </tr>
            )}
            {sorted.map((r) => (
              <tr
                key={JSON.stringify([r.flow, r.node_id])}
                className="clickable"
                tabIndex={0}
                data-testid={`monitoring-node-${r.flow}-${r.node_id}`}
                title="Show this node on the canvas"
                onClick={() => show(r)}
                onKeyDown={(e) => {
                  if (e.key === 'Enter') show(r);
                }}
              >
                <td title={r.flow}>
                  {r.flow}
                </td>
                <td>{r.node_id}</td>
                <td>
                  <code>{r.node_type}</code>
                </td>
                <td className="num">{formatCount(r.runs)}</td>
                <td className="num">{formatCount(r.failed)}</td>
                <SortCells row={r} />
                <td className="num">{formatCount(r.records_in)}</td>
                <td className="num">{formatCount(r.records_out)}</td>
                <td className={`num ${r.errors > 0 ? 'bad' : ''}`}>{formatCount(r.errors)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

export function MonitoringPanel() {
  const controller = useController();
  const m = useApp((s) => s.monitoring);

  return (
    <section className="monitoring" data-testid="monitoring-panel" aria-label="Monitoring">
      <header className="monitoring-head">
        <h2>Monitoring</h2>
        <select
          data-testid="monitoring-window"
          aria-label="Window"
          value={m.window}
          onChange={(e) => {
            if (isMonitoringWindow(e.target.value)) controller.setMonitoringWindow(e.target.value);
          }}
        >
          {MONITORING_WINDOWS.map((w) => (
            <option key={w.id} value={w.id}>
              {w.label}
            </option>
          ))}
        </select>
        <span className="updated muted small" data-testid="monitoring-updated">
          {m.updatedAt ? `Updated ${new Date(m.updatedAt).toLocaleTimeString([], { hour12: false })} · every 5 s` : 'Loading…'}
        </span>
        <button className="icon-btn" data-testid="monitoring-refresh" title="Refresh now" onClick={() => void controller.refreshMonitoring()}>
          ⟳
        </button>
        <button className="icon-btn" data-testid="monitoring-close" title="Back to the flow (Esc)" aria-label="Close" onClick={() => controller.closeMonitoring()}>
          ×
        </button>
      </header>
      {m.error && (
        <div className="panel-error monitoring-error" data-testid="monitoring-error">
          {m.error}
        </div>
      )}
      <div className="monitoring-body">
        {m.dashboard ? (
          <>
            <Totals dashboard={m.dashboard} />
            <MonitoringCharts dashboard={m.dashboard} />
          </>
        ) : (
          <div className="muted pad">Loading the executions of this window…</div>
        )}
        <div className="monitoring-row">
          <SystemGauges system={m.system} />
          <HealthList health={m.health} />
        </div>
        <AlertsSection />
        <FlowsTable rows={m.flows} />
        <NodesTable rows={m.nodes} />
      </div>
    </section>
  );
}
