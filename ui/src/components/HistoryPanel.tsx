import { formatDuration } from '../model/execution';
import { useApp, useController, useFlow } from '../store/context';
import { EXECUTION_STATE_ICON } from './icons';

// Cells end with a no-break space so that the row's text reads as separate words (getText and
// copy-paste join cells with nothing between them).
const SEP = '\u00a0';

function when(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const today = new Date().toDateString() === d.toDateString();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  return today ? time : `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${time}`;
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
          <span role="columnheader" className="num">
            records
          </span>
          <span role="columnheader">duration</span>
          <span role="columnheader">started</span>
          <span role="columnheader">flow</span>
        </div>
        {executions.length === 0 && <div className="muted pad">No executions yet.</div>}
        {executions.map((e) => (
          <div
            key={e.id}
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
            <span role="cell" className="num">
              {e.records_out}
              {SEP}
            </span>
            <span role="cell">
              {formatDuration(e.duration_ms)}
              {SEP}
            </span>
            <span role="cell">
              {when(e.started_at)}
              {SEP}
            </span>
            <span role="cell" className="flow-cell">
              {e.flow}
            </span>
          </div>
        ))}
      </div>
    </section>
  );
}
