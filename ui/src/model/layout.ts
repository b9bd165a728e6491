// Layered left-to-right layout for flows without positions (and the Layout button).
import dagre from '@dagrejs/dagre';
import type { CanvasEdge, CanvasNode } from './document';

export const DEFAULT_NODE_WIDTH = 200;
export const DEFAULT_NODE_HEIGHT = 96;

export function layoutNodes(nodes: readonly CanvasNode[], edges: readonly CanvasEdge[]): CanvasNode[] {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 40, ranksep: 90, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) {
    g.setNode(n.id, {
      width: n.measured?.width ?? DEFAULT_NODE_WIDTH,
      height: n.measured?.height ?? DEFAULT_NODE_HEIGHT,
    });
  }
  for (const e of edges) if (g.hasNode(e.source) && g.hasNode(e.target)) g.setEdge(e.source, e.target);
  dagre.layout(g);
  return nodes.map((n) => {
    const p = g.node(n.id) as { x: number; y: number; width: number; height: number } | undefined;
    if (!p) return n;
    return { ...n, position: { x: Math.round(p.x - p.width / 2), y: Math.round(p.y - p.height / 2) } };
  });
}
