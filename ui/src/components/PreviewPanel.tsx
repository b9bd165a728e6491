import { useMemo } from 'react';
import { useFlow } from '../store/context';

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** The first output records of the selected node, from the shown execution. */
export function PreviewPanel() {
  const id = useFlow((s) => {
    const sel = s.nodes.filter((n) => n.selected);
    return sel.length === 1 ? sel[0].id : null;
  });
  const sample = useFlow((s) => (id ? ((s.viewed ?? s.live)?.nodes[id]?.sample ?? null) : null));
  const columns = useMemo(() => {
    const cols: string[] = [];
    const seen = new Set<string>();
    for (const r of sample ?? []) {
      for (const k of Object.keys(r)) {
        if (!seen.has(k)) {
          seen.add(k);
          cols.push(k);
        }
      }
    }
    return cols;
  }, [sample]);

  return (
    <section className="bottom-panel preview">
      <div className="panel-title">
        Data preview {id && <span className="muted">· {id}</span>}
        {sample && <span className="count">{sample.length}</span>}
      </div>
      {!id && <div className="muted pad">Select a node to see its first output records.</div>}
      {id && !sample && (
        <div className="muted pad">No data yet: run the flow, or pick an execution in History.</div>
      )}
      {id && sample && (
        <div className="table-scroll">
          <table className="preview-table" data-testid="preview-table">
            <thead>
              <tr>
                <th className="num">#</th>
                {columns.map((c) => (
                  <th key={c}>{c}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {sample.length === 0 && (
                <tr>
                  <td colSpan={columns.length + 1} className="muted">
                    The node produced no records.
                  </td>
                </tr>
              )}
              {sample.map((r, i) => (
                <tr key={i}>
                  <td className="num muted">{i + 1}</td>
                  {columns.map((c) => (
                    <td key={c} className={typeof r[c] === 'number' ? 'num' : ''}>
                      {cell(r[c])}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
