import { useEffect, useRef, useState } from 'react';
import { canRedo, canUndo } from '../model/history';
import { isTerminalExecution } from '../model/execution';
import { useApp, useController, useFlow } from '../store/context';
import { EXECUTION_STATE_ICON } from './icons';

function basename(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

function Menu({ label, testId, children }: { label: string; testId: string; children: (close: () => void) => React.ReactNode }) {
  const [open, setOpen] = useState(false);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const onDown = (e: MouseEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) setOpen(false);
    };
    window.addEventListener('mousedown', onDown);
    return () => window.removeEventListener('mousedown', onDown);
  }, [open]);
  return (
    <div className="menu" ref={ref}>
      <button className="btn" data-testid={testId} aria-expanded={open} onClick={() => setOpen((o) => !o)}>
        {label} <span className="caret">▾</span>
      </button>
      {open && <div className="menu-list">{children(() => setOpen(false))}</div>}
    </div>
  );
}

export function Toolbar() {
  const controller = useController();
  const store = controller.store;
  const name = useFlow((s) => s.meta.name);
  const dirty = useFlow((s) => s.dirty);
  const filePath = useFlow((s) => s.filePath);
  const undoable = useFlow((s) => canUndo(s.history));
  const redoable = useFlow((s) => canRedo(s.history));
  const liveState = useFlow((s) => (s.starting ? 'starting' : (s.live?.state ?? 'idle')));
  const liveError = useFlow((s) => s.live?.error ?? null);
  const hasNodes = useFlow((s) => s.nodes.length > 0);
  const examples = useApp((s) => s.examples);
  const recent = useApp((s) => s.settings.recentFiles);
  const theme = useApp((s) => s.settings.theme);
  const monitoring = useApp((s) => s.monitoring.open);

  const active = liveState === 'starting' || (liveState !== 'idle' && !isTerminalExecution(liveState));
  const canPause = liveState === 'running' || liveState === 'queued';
  const canResume = liveState === 'paused';

  return (
    <header className="toolbar">
      <div className="brand" title="Flow Platform">
        <span className="logo" aria-hidden>
          ◈
        </span>
      </div>

      <div className="group">
        <button className="btn" data-testid="new-button" onClick={() => void controller.newFlow()} title="New flow">
          New
        </button>
        <button className="btn" data-testid="open-button" onClick={() => void controller.open()} title="Open a flow file">
          Open…
        </button>
        <Menu label="Examples" testId="examples-button">
          {(close) => (
            <>
              {examples.length === 0 && <div className="menu-empty">No examples</div>}
              {examples.map((ex) => (
                <button
                  key={ex.path}
                  className="menu-item"
                  data-testid={`example-${basename(ex.path).replace(/\.json$/, '')}`}
                  title={ex.path}
                  onClick={() => {
                    close();
                    void controller.openExample(ex);
                  }}
                >
                  {ex.name}
                </button>
              ))}
              {recent.length > 0 && <div className="menu-sep">Recent files</div>}
              {recent.map((p) => (
                <button
                  key={p}
                  className="menu-item"
                  title={p}
                  onClick={() => {
                    close();
                    void controller.openPath(p);
                  }}
                >
                  {basename(p)}
                </button>
              ))}
            </>
          )}
        </Menu>
        <button className="btn" data-testid="save-button" onClick={() => void controller.save()} title="Save (Ctrl+S)">
          Save
        </button>
        <button className="btn" data-testid="save-as-button" onClick={() => void controller.saveAs()} title="Save as (Ctrl+Shift+S)">
          Save as
        </button>
      </div>

      <div className="doc-title">
        <input
          className="flow-name"
          data-testid="flow-name-input"
          value={name}
          aria-label="Flow name"
          onChange={(e) => store.getState().setMeta({ name: e.target.value })}
        />
        {dirty && (
          <span className="dirty" data-testid="dirty-marker" title="Unsaved changes">
            •
          </span>
        )}
        <span className="file-path" title={filePath ?? 'Not saved yet'}>
          {filePath ? basename(filePath) : 'unsaved'}
        </span>
      </div>

      <div className="group">
        <button className="btn icon" data-testid="undo-button" disabled={!undoable} onClick={() => store.getState().undo()} title="Undo (Ctrl+Z)">
          ↶
        </button>
        <button className="btn icon" data-testid="redo-button" disabled={!redoable} onClick={() => store.getState().redo()} title="Redo (Ctrl+Shift+Z)">
          ↷
        </button>
        <button className="btn icon" data-testid="layout-button" disabled={!hasNodes} onClick={() => store.getState().autoLayout()} title="Auto-layout">
          ⇶
        </button>
        <button className="btn icon" data-testid="fit-view-button" onClick={() => store.getState().requestFit()} title="Fit view">
          ⤢
        </button>
      </div>

      <div className="group run-group">
        <button className="btn primary" data-testid="run-button" disabled={active} onClick={() => void controller.run()} title="Validate and run">
          ▶ Run
        </button>
        <button className="btn icon" data-testid="pause-button" disabled={!canPause} onClick={() => void controller.pause()} title="Pause">
          ❚❚
        </button>
        <button className="btn icon" data-testid="resume-button" disabled={!canResume} onClick={() => void controller.resume()} title="Resume">
          ▶
        </button>
        <button className="btn icon danger" data-testid="cancel-button" disabled={!active} onClick={() => void controller.cancel()} title="Cancel">
          ■
        </button>
        <span className={`state-pill state-${liveState}`} title={liveError ?? liveState}>
          <span className={liveState === 'running' || liveState === 'starting' ? 'spin' : ''} aria-hidden>
            {EXECUTION_STATE_ICON[liveState]}
          </span>
          <span data-testid="execution-state">{liveState}</span>
        </span>
      </div>

      <div className="group end">
        <button
          className="btn"
          data-testid="monitoring-button"
          aria-pressed={monitoring}
          onClick={() => controller.toggleMonitoring()}
          title="Executions, durations, system and health"
        >
          Monitoring
        </button>
        <button className="btn" data-testid="variables-button" onClick={() => controller.openDialog({ kind: 'variables' })}>
          Variables
        </button>
        <button className="btn" data-testid="connections-button" onClick={() => controller.openDialog({ kind: 'connections', focus: null })}>
          Connections
        </button>
        <button className="btn" data-testid="secrets-button" onClick={() => controller.openDialog({ kind: 'secrets' })}>
          Secrets
        </button>
        <button
          className="btn icon"
          data-testid="theme-button"
          onClick={() => void controller.setTheme(theme === 'dark' ? 'light' : 'dark')}
          title={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}
        >
          {theme === 'dark' ? '☀' : '☾'}
        </button>
      </div>
    </header>
  );
}
