import { useReactFlow } from '@xyflow/react';
import { useMemo, useState, type DragEvent } from 'react';
import type { NodeDescriptor } from '../api/types';
import { DEFAULT_NODE_WIDTH } from '../model/layout';
import { useApp, useController, useFlow } from '../store/context';
import { CATEGORY_LABEL, CATEGORY_ORDER } from './icons';

export const NODE_TYPE_MIME = 'application/flow-node-type';

function matches(d: NodeDescriptor, q: string): boolean {
  if (!q) return true;
  const hay = `${d.type} ${d.title} ${d.description} ${d.category}`.toLowerCase();
  return q
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every((w) => hay.includes(w));
}

export function Palette() {
  const catalog = useFlow((s) => s.catalog);
  const catalogError = useApp((s) => s.catalogError);
  const controller = useController();
  const { screenToFlowPosition } = useReactFlow();
  const [query, setQuery] = useState('');

  const groups = useMemo(() => {
    const byCat = new Map<string, NodeDescriptor[]>();
    for (const d of catalog) {
      if (!matches(d, query)) continue;
      const list = byCat.get(d.category);
      if (list) list.push(d);
      else byCat.set(d.category, [d]);
    }
    const cats = [...byCat.keys()].sort(
      (a, b) => (CATEGORY_ORDER.indexOf(a) + 1 || 99) - (CATEGORY_ORDER.indexOf(b) + 1 || 99),
    );
    return cats.map((c) => ({ category: c, items: (byCat.get(c) ?? []).sort((a, b) => a.title.localeCompare(b.title)) }));
  }, [catalog, query]);

  const onDragStart = (e: DragEvent<HTMLElement>, type: string) => {
    e.dataTransfer.setData(NODE_TYPE_MIME, type);
    e.dataTransfer.setData('text/plain', type);
    e.dataTransfer.effectAllowed = 'move';
  };

  /** Double-click or Enter: add the node in the middle of the visible canvas. */
  const addAtCenter = (type: string) => {
    const el = document.querySelector('[data-testid="canvas"]');
    const r = el?.getBoundingClientRect();
    const p = r
      ? screenToFlowPosition({ x: r.left + r.width / 2, y: r.top + r.height / 2 })
      : { x: 0, y: 0 };
    controller.store.getState().addNode(type, { x: p.x - DEFAULT_NODE_WIDTH / 2, y: p.y - 40 });
  };

  return (
    <aside className="palette">
      <div className="panel-title">Nodes</div>
      <input
        className="search"
        data-testid="palette-search"
        type="search"
        placeholder="Search nodes…"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
      />
      {catalogError && <div className="panel-error">Catalog unavailable: {catalogError}</div>}
      <div className="palette-groups">
        {groups.map((g) => (
          <section key={g.category} className="palette-group">
            <h3>{CATEGORY_LABEL[g.category] ?? g.category}</h3>
            {g.items.map((d) => (
              <div
                key={d.type}
                className={`palette-item cat-${d.category}`}
                data-testid={`palette-item-${d.type}`}
                draggable
                tabIndex={0}
                role="button"
                title={`${d.description}\n\nDrag onto the canvas (or double-click) to add.`}
                onDragStart={(e) => onDragStart(e, d.type)}
                onDoubleClick={() => addAtCenter(d.type)}
                onKeyDown={(e) => {
                  if (e.key === 'Enter') addAtCenter(d.type);
                }}
              >
                <span className="palette-dot" />
                <span className="palette-name">{d.title}</span>
              </div>
            ))}
          </section>
        ))}
        {groups.length === 0 && catalog.length > 0 && <div className="muted pad">No node matches “{query}”.</div>}
      </div>
    </aside>
  );
}
