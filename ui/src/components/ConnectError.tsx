import { useEffect } from 'react';
import { useController, useFlow } from '../store/context';

const SHOW_MS = 5000;

/** Why the last connection attempt was refused; fades after a few seconds. */
export function ConnectError() {
  const err = useFlow((s) => s.connectError);
  const store = useController().store;
  useEffect(() => {
    if (!err) return;
    const t = setTimeout(() => {
      if (store.getState().connectError?.at === err.at) store.getState().clearConnectError();
    }, SHOW_MS);
    return () => clearTimeout(t);
  }, [err, store]);
  if (!err) return null;
  return (
    <div className="connect-error" data-testid="connect-error" role="alert">
      <span className="badge">!</span>
      <span>{err.message}</span>
      <button className="icon-btn" aria-label="Dismiss" onClick={() => store.getState().clearConnectError()}>
        ×
      </button>
    </div>
  );
}
