import { useReactFlow } from '@xyflow/react';
import type { Problem } from '../api/types';
import { describeSuggestion } from '../model/suggestions';
import { useController, useFlow } from '../store/context';

export function ProblemsList() {
  const controller = useController();
  const store = controller.store;
  const problems = useFlow((s) => s.validation.problems);
  const checked = useFlow((s) => s.validation.version >= 0);
  const error = useFlow((s) => s.validation.error);
  const empty = useFlow((s) => s.nodes.length === 0);
  const { fitView } = useReactFlow();

  const focus = (p: Problem) => {
    if (!p.node) return;
    const id = p.node;
    if (!store.getState().nodes.some((n) => n.id === id)) return;
    store.getState().select([id]);
    void fitView({ nodes: [{ id }], maxZoom: 1.2, duration: 200, padding: 0.5 });
  };

  return (
    <section className="bottom-panel problems">
      <div className="panel-title">
        Problems {problems.length > 0 && <span className="count bad">{problems.length}</span>}
      </div>
      {error && <div className="problem-note error-text">Validation unavailable: {error}</div>}
      {!error && problems.length === 0 && (
        <div className="problem-note ok">{empty ? 'Empty flow.' : checked ? '✓ No problems: the flow is ready to run.' : 'Checking…'}</div>
      )}
      <ul className="problem-list" data-testid="problems-list">
        {problems.map((p, i) => (
          <li key={i} className={`problem kind-${p.kind}`} data-testid={`problem-${i}`} data-node={p.node ?? ''}>
            <button className="problem-msg" onClick={() => focus(p)} title={p.node ? `Show node ${p.node}` : undefined}>
              <span className="problem-kind">{p.kind.replace(/_/g, ' ')}</span>
              {p.message}
            </button>
            {p.suggestions?.map((s, j) => (
              <button
                key={j}
                className="btn small suggestion"
                data-testid={`suggestion-${i}-${j}`}
                onClick={() => controller.applySuggestion(s)}
              >
                ✦ {describeSuggestion(s)}
              </button>
            ))}
          </li>
        ))}
      </ul>
    </section>
  );
}
