import { Fragment } from 'react';
import type { ExecutionSummary } from '../api/types';
import { isTerminalExecution } from '../model/execution';
import { formatCount, formatDuration } from '../model/format';
import { useApp, useController, useFlow } from '../store/context';
import { EXECUTION_STATE_ICON } from './icons';

// Cells end with a no-break space so that the row's text reads as separate words (getText and
// copy-paste join cells with nothing between them).
const SEP = '\u00a0';

/** When an execution started: the time today, the day and minute before. */
function when(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  if (new Date().toDateString() === d.toDateString()) {
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  }
  const day = d.toLocaleDateString([], { month: 'short', day: 'numeric' });
  return `${day} ${d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false })}`;
}

// An execution's size is what its sources read (the records out of the nodes that take no input).
const RECORDS_TITLE = 'Records read by the sources of the flow. Known once the execution ended.';

/** Under the viewed execution's row: the sub-flows it ran (child executions of its own). */
function SubflowRuns({ parent, executions }: { parent: string; executions: ExecutionSummary[] }) {
  const runs = executions.filter((e) => e.parent_id === parent);
  if (runs.length === 0) return null;
  return (
    <div role="row" className="history-subflows" data-testid={`history-subflows-${parent}`}>
      <span role="cell">
        {runs.map((r) => (
          <div key={r.id} title={r.error ?? r.id}>
            ↳ sub-flow “{r.flow}”{' '}
            <span className={`state-pill state-${r.state}`}>
              {EXECUTION_STATE_ICON[r.state]} {r.state}
            </span>
          </div>
        ))}
      </span>
    </div>
  );
}

export function HistoryPanel() {
  const controller = useController();
  const executions = useFlow((s) => s.executions);
  const viewedId = useApp((s) => s.viewedId);
  const loading = useApp((s) => s.historyLoading);

  return (
    <section className="bottom-panel history" data-testid="history-panel">
      <div className="panel-title">
        History
        <button
          className="icon-btn"
          data-testid="history-refresh"
          title="Refresh"
          disabled={loading}
          onClick={() => void controller.refreshHistory()}
        >
          ⟳
        </button>
      </div>
      <div className="table-scroll" role="table" aria-label="Executions">
        <div className="history-row head" role="row">
          <span role="columnheader">status</span>
          <span role="columnheader">flow</span>
          <span role="columnheader" className="num" title={RECORDS_TITLE}>
            records read
          </span>
          <span role="columnheader" className="num">
            duration
          </span>
          <span role="columnheader">started</span>
        </div>
        {executions.length === 0 && <div className="muted pad">No executions yet.</div>}
        {executions.map((e) => (
          <Fragment key={e.id}>
            <div
              role="row"
              tabIndex={0}
              data-testid={`history-row-${e.id}`}
              data-state={e.state}
              className={`history-row ${e.id === viewedId ? 'selected' : ''}`}
              title={e.error ?? e.id}
              onClick={() => void controller.viewExecution(e.id === viewedId ? null : e.id)}
              onKeyDown={(ev) => {
                if (ev.key === 'Enter') void controller.viewExecution(e.id === viewedId ? null : e.id);
              }}
            >
              <span role="cell">
                <span className={`state-pill state-${e.state}`}>
                  {EXECUTION_STATE_ICON[e.state]} {e.state}
                </span>
                {SEP}
              </span>
              <span role="cell" className="flow-cell" title={e.parent_id ? `${e.flow}, sub-flow of ${e.parent_id}` : e.flow}>
                {e.flow}
                {e.parent_id && <span className="muted"> · sub-flow of {e.parent_id.slice(0, 8)}</span>}
                {SEP}
              </span>
              <span role="cell" className="num">
                {isTerminalExecution(e.state) ? formatCount(e.records_read) : '—'}
                {SEP}
              </span>
              <span role="cell" className="num">
                {formatDuration(e.duration_ms)}
                {SEP}
              </span>
              <span role="cell" title={new Date(e.started_at).toLocaleString()}>
                {when(e.started_at)}
              </span>
            </div>
            {e.id === viewedId && <SubflowRuns parent={e.id} executions={executions} />}
          </Fragment>
        ))}
      </div>
    </section>
  );
}
