import { useMemo } from 'react';
import type { NodeSettings, Problem } from '../api/types';
import type { NodeData } from '../model/document';

interface NodeRef {
  id: string;
  data: NodeData;
}
import { durationBetween } from '../model/execution';
import { formatCount, formatDuration } from '../model/format';
import { asSchema, inlineRefs, validateValue } from '../model/schemaForm';
import { describeSuggestion } from '../model/suggestions';
import { paramProblems } from '../model/validation';
import { useController, useFlow } from '../store/context';
import { ObjectFields, type Errors } from './ParamForm';

const NO_PROBLEMS: Problem[] = [];

function SuggestionButtons({ problem }: { problem: Problem }) {
  const controller = useController();
  if (!problem.suggestions?.length) return null;
  return (
    <div className="suggestions">
      {problem.suggestions.map((s, i) => (
        <button key={i} className="btn small suggestion" onClick={() => controller.applySuggestion(s)}>
          ✦ {describeSuggestion(s)}
        </button>
      ))}
    </div>
  );
}

function numOrUndef(text: string): number | undefined {
  if (text.trim() === '') return undefined;
  const n = Number(text);
  return Number.isFinite(n) && n >= 0 ? Math.round(n) : undefined;
}

function SettingsEditor({ node }: { node: NodeRef }) {
  const store = useController().store;
  const desc = useFlow((s) => s.catalogByType[node.data.type]);
  const s: NodeSettings = node.data.settings ?? {};
  const canRoute = !!desc?.outputs.some((p) => p.name === 'error');
  const update = (patch: Partial<NodeSettings>) => {
    const next: NodeSettings = { ...s, ...patch };
    if (next.timeout_ms == null) delete next.timeout_ms;
    if (next.retry && next.retry.attempts == null && next.retry.base_delay_ms == null && next.retry.max_delay_ms == null) delete next.retry;
    if (next.on_error == null || next.on_error === 'fail') delete next.on_error;
    store.getState().setSettings(node.id, Object.keys(next).length > 0 ? next : undefined);
  };
  return (
    <details className="settings">
      <summary>Execution settings</summary>
      <div className="field">
        <div className="field-label">
          <span>timeout (ms)</span>
        </div>
        <input
          data-testid="setting-timeout_ms"
          inputMode="numeric"
          placeholder="engine default"
          value={s.timeout_ms ?? ''}
          onChange={(e) => update({ timeout_ms: numOrUndef(e.target.value) })}
        />
      </div>
      <div className="field">
        <div className="field-label">
          <span>retries</span>
        </div>
        <input
          data-testid="setting-retry-attempts"
          inputMode="numeric"
          placeholder="engine default"
          value={s.retry?.attempts ?? ''}
          onChange={(e) => update({ retry: { ...s.retry, attempts: numOrUndef(e.target.value) } })}
        />
      </div>
      <div className="field">
        <div className="field-label">
          <span>retry base delay (ms)</span>
        </div>
        <input
          data-testid="setting-retry-base_delay_ms"
          inputMode="numeric"
          placeholder="engine default"
          value={s.retry?.base_delay_ms ?? ''}
          onChange={(e) => update({ retry: { ...s.retry, base_delay_ms: numOrUndef(e.target.value) } })}
        />
      </div>
      {canRoute && (
        <div className="field">
          <div className="field-label">
            <span>on error</span>
          </div>
          <select
            data-testid="setting-on_error"
            value={s.on_error ?? 'fail'}
            onChange={(e) => update({ on_error: e.target.value === 'route' ? 'route' : 'fail' })}
          >
            <option value="fail">fail the node</option>
            <option value="route">route records to the error output</option>
          </select>
        </div>
      )}
    </details>
  );
}

function RunDetails({ id }: { id: string }) {
  const live = useFlow((s) => (s.viewed ?? s.live)?.nodes[id]);
  if (!live) return null;
  return (
    <section className="inspector-section">
      <h4>Execution</h4>
      <dl className="kv">
        <dt>state</dt>
        <dd>
          <span className={`state-pill state-${live.state}`}>{live.state}</span>
        </dd>
        <dt>attempts</dt>
        <dd>{live.attempt}</dd>
        <dt>records</dt>
        <dd>
          in {formatCount(live.counters.records_in)} · out {formatCount(live.counters.records_out)}
          {live.counters.errors > 0 && ` · errors ${formatCount(live.counters.errors)}`}
        </dd>
        {live.startedAt && (
          <>
            <dt>started</dt>
            <dd>{new Date(live.startedAt).toLocaleTimeString()}</dd>
          </>
        )}
        {live.finishedAt && (
          <>
            <dt>duration</dt>
            <dd>{formatDuration(durationBetween(live.startedAt, live.finishedAt))}</dd>
          </>
        )}
        {live.error && (
          <>
            <dt>error</dt>
            <dd className="error-text">
              {live.errorKind && <span className="kind">{live.errorKind}: </span>}
              {live.error}
            </dd>
          </>
        )}
      </dl>
    </section>
  );
}

function NodeInspector({ node }: { node: NodeRef }) {
  const store = useController().store;
  const desc = useFlow((s) => s.catalogByType[node.data.type]);
  const problems = useFlow((s) => s.validation.byNode[node.id] ?? NO_PROBLEMS);
  const schema = useMemo(() => asSchema(inlineRefs(desc?.params_schema)), [desc]);
  const { byPath, other } = useMemo(() => paramProblems(problems), [problems]);
  const errors: Errors = useMemo(() => {
    const local = validateValue(schema, node.data.params);
    const out: Errors = {};
    for (const [p, m] of Object.entries(local)) out[p] = [m];
    for (const [p, ms] of Object.entries(byPath)) {
      const list = (out[p] ??= []);
      for (const m of ms) if (!list.some((x) => m.includes(x) || x.includes(m))) list.push(m);
    }
    return out;
  }, [schema, node.data.params, byPath]);
  const onChange = (path: string, value: unknown) => store.getState().setParam(node.id, path, value);
  const hasProps = Object.keys(asSchema(schema.properties)).length > 0;

  return (
    <div className="inspector-body" data-testid="node-inspector">
      <div className="inspector-head">
        <div className={`type-chip cat-${desc?.category ?? 'unknown'}`}>{desc?.title ?? node.data.type}</div>
        <div className="muted small">{desc?.description ?? `Unknown node type “${node.data.type}”`}</div>
      </div>
      <div className="field">
        <div className="field-label">
          <span>name</span>
        </div>
        <input
          data-testid="node-name-input"
          value={node.data.name}
          placeholder={node.id}
          onChange={(e) => store.getState().renameNode(node.id, e.target.value)}
        />
      </div>
      <div className="muted small">
        id <code>{node.id}</code>
      </div>
      {other.length > 0 && (
        <div className="node-problems" data-testid="node-problems">
          {other.map((p, i) => (
            <div key={i} className="problem">
              <div>⚠ {p.message}</div>
              <SuggestionButtons problem={p} />
            </div>
          ))}
        </div>
      )}
      <RunDetails id={node.id} />
      <section className="inspector-section">
        <h4>Parameters</h4>
        {errors[''] && errors[''].map((m, i) => <div key={i} className="field-error">{m}</div>)}
        {hasProps ? (
          <ObjectFields path="" schema={schema} value={node.data.params} errors={errors} onChange={onChange} />
        ) : (
          <div className="muted small">This node has no parameters.</div>
        )}
      </section>
      <SettingsEditor node={node} />
    </div>
  );
}

function FlowInspector() {
  const controller = useController();
  const store = controller.store;
  const meta = useFlow((s) => s.meta);
  const nodeCount = useFlow((s) => s.nodes.length);
  const edgeCount = useFlow((s) => s.edges.length);
  const selected = useFlow((s) => s.nodes.filter((n) => n.selected).length);
  const vars = Object.keys(meta.variables);
  return (
    <div className="inspector-body">
      {selected > 1 && <div className="muted pad">{selected} nodes selected. Ctrl+C copies them, Delete removes them.</div>}
      <div className="field">
        <div className="field-label">
          <span>flow name</span>
        </div>
        <input value={meta.name} onChange={(e) => store.getState().setMeta({ name: e.target.value })} />
      </div>
      <div className="field">
        <div className="field-label">
          <span>description</span>
        </div>
        <textarea
          data-testid="flow-description"
          rows={3}
          value={meta.description}
          onChange={(e) => store.getState().setMeta({ description: e.target.value })}
        />
      </div>
      <dl className="kv">
        <dt>nodes</dt>
        <dd>{nodeCount}</dd>
        <dt>edges</dt>
        <dd>{edgeCount}</dd>
        <dt>variables</dt>
        <dd>
          {vars.length === 0 ? 'none' : vars.join(', ')}{' '}
          <button className="link" onClick={() => controller.openDialog({ kind: 'variables' })}>
            edit
          </button>
        </dd>
      </dl>
      <p className="muted small">
        Drag nodes from the palette, connect an output (right) to an input (left), select a node to edit its
        parameters. Strings may use <code>{'{{ vars.NAME }}'}</code> templates.
      </p>
    </div>
  );
}

export function Inspector() {
  // Selected by id and data apart so that moving the node does not re-render the form.
  const id = useFlow((s) => {
    const sel = s.nodes.filter((n) => n.selected);
    return sel.length === 1 ? sel[0].id : null;
  });
  const data = useFlow((s) => (id === null ? null : (s.nodes.find((n) => n.id === id)?.data ?? null)));
  const node = useMemo(() => (id !== null && data ? { id, data } : null), [id, data]);
  return (
    <aside className="inspector">
      <div className="panel-title">{node ? 'Node' : 'Flow'}</div>
      {node ? <NodeInspector key={node.id} node={node} /> : <FlowInspector />}
    </aside>
  );
}
