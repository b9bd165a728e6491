import { durationBetween } from '../model/execution';
import { formatDuration } from '../model/format';
import { useController, useFlow } from '../store/context';

/** Shown while a past execution is displayed on the canvas. */
export function ViewingBanner() {
  const viewed = useFlow((s) => s.viewed);
  const controller = useController();
  if (!viewed) return null;
  return (
    <div className="viewing-banner" data-testid="viewing-banner">
      <span className={`state-pill state-${viewed.state}`}>{viewed.state}</span>
      <span>
        Execution <code>{viewed.id.slice(0, 8)}</code> of “{viewed.flow}” · {formatDuration(durationBetween(viewed.startedAt, viewed.finishedAt))}
      </span>
      {viewed.error && <span className="viewing-error" title={viewed.error}>{viewed.error}</span>}
      <button className="btn small" data-testid="back-to-live" onClick={() => void controller.viewExecution(null)}>
        Back to editing
      </button>
    </div>
  );
}
