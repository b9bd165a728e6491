// Copy and paste of canvas selections: pasted nodes get new ids and the edges between them
// follow.
import { canvasEdge, edgeEndpoints, type CanvasEdge, type CanvasNode } from './document';
import { uniqueId } from './ids';

export interface Clipboard {
  nodes: CanvasNode[];
  edges: CanvasEdge[];
}

/** The selected nodes and the edges among them; null when nothing is selected. */
export function copySelection(nodes: readonly CanvasNode[], edges: readonly CanvasEdge[]): Clipboard | null {
  const picked = nodes.filter((n) => n.selected);
  if (picked.length === 0) return null;
  const ids = new Set(picked.map((n) => n.id));
  return {
    nodes: picked.map((n) => ({ id: n.id, type: 'flow', position: { ...n.position }, data: structuredCloneJson(n.data) })),
    edges: edges.filter((e) => ids.has(e.source) && ids.has(e.target)).map((e) => ({ ...e, selected: false })),
  };
}

function structuredCloneJson<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** New nodes and edges for a paste: fresh ids, shifted by `offset`, selected. */
export function pasteClipboard(
  clip: Clipboard,
  takenIds: ReadonlySet<string>,
  offset: { x: number; y: number },
): { nodes: CanvasNode[]; edges: CanvasEdge[]; idMap: Record<string, string> } {
  const taken = new Set(takenIds);
  const idMap: Record<string, string> = {};
  const nodes = clip.nodes.map((n): CanvasNode => {
    const id = uniqueId(n.data.type, taken);
    taken.add(id);
    idMap[n.id] = id;
    return {
      id,
      type: 'flow',
      position: { x: n.position.x + offset.x, y: n.position.y + offset.y },
      data: structuredCloneJson(n.data),
      selected: true,
    };
  });
  const edges = clip.edges.map((e) => {
    const { from, to } = edgeEndpoints(e);
    return canvasEdge({ node: idMap[from.node], port: from.port }, { node: idMap[to.node], port: to.port });
  });
  return { nodes, edges, idMap };
}
