import { useCallback, useEffect, useState } from 'react';
import { errorMessage } from '../api';
import type { Connection, ConnectionKind, ConnectionTest } from '../api/types';
import type { ConnectionFocus } from '../model/connections';
import { useController } from '../store/context';
import { Modal } from './Modal';

const KINDS: { kind: ConnectionKind; label: string; example: string }[] = [
  { kind: 'postgres', label: 'PostgreSQL', example: 'postgres://user:{{ env.PG_PASSWORD }}@localhost:5432/db' },
  { kind: 'mongodb', label: 'MongoDB', example: 'mongodb://localhost:27017/db' },
];

interface Draft {
  original: string | null;
  name: string;
  kind: ConnectionKind;
  url: string;
  options: string;
}

/** A form for `c`; `original` is the name it is saved under, null for a new connection. */
function draftOf(c: Connection | null, original = c?.name ?? null): Draft {
  return c
    ? { original, name: c.name, kind: c.kind, url: c.url, options: Object.keys(c.options).length ? JSON.stringify(c.options, null, 2) : '' }
    : { original: null, name: '', kind: 'postgres', url: '', options: '' };
}

function toConnection(d: Draft): Connection | string {
  if (!d.name.trim()) return 'A connection needs a name.';
  if (!d.url.trim()) return 'A connection needs a URL.';
  let options: Record<string, unknown> = {};
  if (d.options.trim()) {
    try {
      const parsed = JSON.parse(d.options) as unknown;
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return 'Options must be a JSON object.';
      options = parsed as Record<string, unknown>;
    } catch (e) {
      return `Options: invalid JSON (${errorMessage(e)})`;
    }
  }
  return { name: d.name.trim(), kind: d.kind, url: d.url.trim(), options };
}

function Flag({ ok, label }: { ok: boolean; label: string }) {
  return (
    <span className={`flag ${ok ? 'ok' : 'bad'}`}>
      {ok ? '✓' : '✕'} {label}
    </span>
  );
}

/** `focus`: open on that connection, or on a new one filled in (a problem's suggested fix). */
export function ConnectionsDialog({ focus, onClose }: { focus: ConnectionFocus | null; onClose: () => void }) {
  const controller = useController();
  const [list, setList] = useState<Connection[]>([]);
  const [draft, setDraft] = useState<Draft>(() => (focus?.kind === 'create' ? draftOf(focus.connection, null) : draftOf(null)));
  const [busy, setBusy] = useState<'save' | 'test' | 'delete' | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [result, setResult] = useState<ConnectionTest | null>(null);

  const reload = useCallback(async () => {
    try {
      const l = await controller.listConnections();
      setList(l.slice().sort((a, b) => a.name.localeCompare(b.name)));
    } catch (e) {
      setError(errorMessage(e));
    }
  }, [controller]);

  useEffect(() => {
    let live = true;
    controller
      .listConnections()
      .then((l) => {
        if (!live) return;
        setList(l.slice().sort((a, b) => a.name.localeCompare(b.name)));
        // Open on the connection when it exists; for a create, one made meanwhile is not overwritten.
        const name = focus?.kind === 'create' ? focus.connection.name : focus?.name;
        const existing = l.find((c) => c.name === name);
        if (existing) setDraft(draftOf(existing));
      })
      .catch((e: unknown) => {
        if (live) setError(errorMessage(e));
      });
    return () => {
      live = false;
    };
  }, [controller, focus]);

  const pick = (c: Connection | null) => {
    setDraft(draftOf(c));
    setResult(null);
    setError(null);
  };

  const act = async (kind: 'save' | 'test' | 'delete') => {
    setError(null);
    if (kind !== 'delete') setResult(null);
    const c = toConnection(draft);
    if (kind !== 'delete' && typeof c === 'string') {
      setError(c);
      return;
    }
    setBusy(kind);
    try {
      if (kind === 'test') {
        setResult(await controller.testConnection(c as Connection));
      } else if (kind === 'save') {
        const conn = c as Connection;
        await controller.saveConnection(conn);
        if (draft.original && draft.original !== conn.name) await controller.deleteConnection(draft.original);
        setDraft({ ...draft, original: conn.name, name: conn.name });
        await reload();
      } else if (draft.original) {
        if (!window.confirm(`Delete connection “${draft.original}”?`)) return;
        await controller.deleteConnection(draft.original);
        pick(null);
        await reload();
      }
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(null);
    }
  };

  const example = KINDS.find((k) => k.kind === draft.kind)?.example ?? '';

  return (
    <Modal title="Connections" onClose={onClose} testId="connections-dialog" wide>
      <div className="connections">
        <div className="conn-list">
          <button className="btn small" data-testid="connection-new" onClick={() => pick(null)}>
            + New connection
          </button>
          <ul>
            {list.length === 0 && <li className="muted small">No connections yet.</li>}
            {list.map((c) => (
              <li key={c.name}>
                <button
                  className={`conn-item ${draft.original === c.name ? 'selected' : ''}`}
                  data-testid={`connection-item-${c.name}`}
                  onClick={() => pick(c)}
                >
                  <span className={`kind-dot ${c.kind}`} />
                  <span>{c.name}</span>
                  <span className="muted small">{c.kind}</span>
                </button>
              </li>
            ))}
          </ul>
        </div>
        <div className="conn-form">
          <div className="field">
            <div className="field-label">
              <span>name</span>
              <span className="req">*</span>
            </div>
            <input data-testid="connection-name" value={draft.name} onChange={(e) => setDraft({ ...draft, name: e.target.value })} />
          </div>
          <div className="field">
            <div className="field-label">
              <span>kind</span>
            </div>
            <select
              data-testid="connection-kind"
              value={draft.kind}
              onChange={(e) => setDraft({ ...draft, kind: e.target.value as ConnectionKind })}
            >
              {KINDS.map((k) => (
                <option key={k.kind} value={k.kind}>
                  {k.label}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <div className="field-label">
              <span>URL</span>
              <span className="req">*</span>
              <span className="field-hint">secrets as templates, e.g. {'{{ env.PG_PASSWORD }}'}</span>
            </div>
            <input
              data-testid="connection-url"
              value={draft.url}
              placeholder={example}
              spellCheck={false}
              onChange={(e) => setDraft({ ...draft, url: e.target.value })}
            />
          </div>
          <div className="field">
            <div className="field-label">
              <span>options (JSON)</span>
            </div>
            <textarea
              data-testid="connection-options"
              className="json"
              rows={3}
              value={draft.options}
              placeholder='{"max_connections": 10}'
              onChange={(e) => setDraft({ ...draft, options: e.target.value })}
            />
          </div>
          {error && (
            <div className="field-error" data-testid="connection-error">
              {error}
            </div>
          )}
          <div className="row-buttons">
            <button className="btn" data-testid="connection-test" disabled={busy !== null} onClick={() => void act('test')}>
              {busy === 'test' ? 'Testing…' : 'Test'}
            </button>
            <button className="btn primary" data-testid="connection-save" disabled={busy !== null} onClick={() => void act('save')}>
              Save
            </button>
            {draft.original && (
              <button className="btn danger" data-testid="connection-delete" disabled={busy !== null} onClick={() => void act('delete')}>
                Delete
              </button>
            )}
          </div>
          {result && (
            <div className={`test-result ${result.reachable && result.authenticated ? 'ok' : 'bad'}`} data-testid="connection-test-result">
              <div className="flags">
                <Flag ok={result.reachable} label="reachable" />
                <Flag ok={result.authenticated} label="authenticated" />
                {result.server_version && <span className="flag">server {result.server_version}</span>}
              </div>
              <div className="msg">{result.message}</div>
            </div>
          )}
        </div>
      </div>
    </Modal>
  );
}
