// Layered left-to-right layout for flows without positions (and the Layout button), and the
// estimated geometry of nodes not rendered yet.
import dagre from '@dagrejs/dagre';
import { Position } from '@xyflow/react';
import type { NodeDescriptor } from '../api/types';
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

// A node's geometry as rendered (see .fnode-* in styles.css; measured in WebKitGTK): where its
// first port row starts, the row pitch, the handle size and the handles' left edges.
const PORTS_TOP = 49;
const PORT_ROW = 19;
const PORTS_BOTTOM = 6;
const HANDLE = 10;
const TARGET_X = -1;
const SOURCE_X = DEFAULT_NODE_WIDTH - 6;

export interface HandleEstimate {
  id: string;
  type: 'source' | 'target';
  position: Position;
  /** Top-left corner relative to the node, and size. */
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A node's size and handles as it renders without counters, errors or a wrapped name. */
export function estimatedGeometry(desc: NodeDescriptor): { width: number; height: number; handles: HandleEstimate[] } {
  const rows = Math.max(desc.inputs.length, desc.outputs.length);
  const handle = (type: 'source' | 'target', id: string, i: number): HandleEstimate => ({
    id,
    type,
    position: type === 'source' ? Position.Right : Position.Left,
    x: type === 'source' ? SOURCE_X : TARGET_X,
    y: PORTS_TOP + i * PORT_ROW + PORT_ROW / 2 - HANDLE / 2,
    width: HANDLE,
    height: HANDLE,
  });
  return {
    width: DEFAULT_NODE_WIDTH,
    height: rows > 0 ? PORTS_TOP + rows * PORT_ROW + PORTS_BOTTOM : PORTS_TOP,
    handles: [
      ...desc.inputs.map((p, i) => handle('target', p.name, i)),
      ...desc.outputs.map((p, i) => handle('source', p.name, i)),
    ],
  };
}

/**
 * A loaded node with its size and handle positions estimated from its type's ports, so that React
 * Flow (with `onlyRenderVisibleElements`) need not render every node of a large flow once just to
 * measure it. A node's real size and handles replace these when it is first rendered (the store
 * drops them once the node is measured).
 */
export function withEstimatedHandles(node: CanvasNode, desc: NodeDescriptor | undefined): CanvasNode {
  if (!desc || node.measured || node.handles) return node;
  const g = estimatedGeometry(desc);
  return { ...node, initialWidth: g.width, initialHeight: g.height, handles: g.handles };
}

/** `node` without the estimated handles (once React Flow has measured it). */
export function withoutEstimates(node: CanvasNode): CanvasNode {
  if (!node.handles) return node;
  const { handles: _h, initialWidth: _w, initialHeight: _ht, ...rest } = node;
  return rest;
}
