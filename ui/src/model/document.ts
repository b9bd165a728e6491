// The open flow as the canvas holds it (React Flow nodes and edges plus the flow's own fields),
// and the conversions to and from the `Flow` file format.
import type { Edge as RFEdge, Node as RFNode } from '@xyflow/react';
import type { Endpoint, Flow, FlowEdge, FlowNode, NodeDescriptor, NodeSettings } from '../api/types';
import { uniqueId } from './ids';
import { initialValue, inlineRefs } from './schemaForm';

export const FLOW_FILE_VERSION = 1;

export type NodeData = {
  type: string;
  name: string;
  params: Record<string, unknown>;
  settings?: NodeSettings;
};

export type CanvasNode = RFNode<NodeData, 'flow'>;
export type CanvasEdge = RFEdge<Record<string, never>, 'flow'>;

export interface FlowMeta {
  version: number;
  name: string;
  description: string;
  variables: Record<string, unknown>;
}

export interface Doc {
  meta: FlowMeta;
  nodes: CanvasNode[];
  edges: CanvasEdge[];
}

export type Catalog = Record<string, NodeDescriptor>;

export function catalogByType(descriptors: readonly NodeDescriptor[]): Catalog {
  const out: Catalog = {};
  for (const d of descriptors) out[d.type] = d;
  return out;
}

export function edgeId(from: Endpoint, to: Endpoint): string {
  return `${from.node}.${from.port}->${to.node}.${to.port}`;
}

export function canvasEdge(from: Endpoint, to: Endpoint): CanvasEdge {
  return {
    id: edgeId(from, to),
    type: 'flow',
    source: from.node,
    sourceHandle: from.port,
    target: to.node,
    targetHandle: to.port,
  };
}

export function edgeEndpoints(e: CanvasEdge): { from: Endpoint; to: Endpoint } {
  return {
    from: { node: e.source, port: e.sourceHandle ?? 'out' },
    to: { node: e.target, port: e.targetHandle ?? 'in' },
  };
}

export function emptyDoc(name = 'Untitled flow'): Doc {
  return {
    meta: { version: FLOW_FILE_VERSION, name, description: '', variables: {} },
    nodes: [],
    edges: [],
  };
}

/** The canvas form of a flow; `needsLayout` when some node has no position. */
export function fromFlow(flow: Flow): { doc: Doc; needsLayout: boolean } {
  let needsLayout = false;
  const nodes = flow.nodes.map((n): CanvasNode => {
    if (!n.position) needsLayout = true;
    const data: NodeData = { type: n.type, name: n.name ?? '', params: n.params ?? {} };
    if (n.settings && !isEmptySettings(n.settings)) data.settings = n.settings;
    return { id: n.id, type: 'flow', position: n.position ? { x: n.position.x, y: n.position.y } : { x: 0, y: 0 }, data };
  });
  const edges = (flow.edges ?? []).map((e) => canvasEdge(e.from, e.to));
  return {
    doc: {
      meta: {
        version: flow.version,
        name: flow.name,
        description: flow.description ?? '',
        variables: { ...(flow.variables ?? {}) },
      },
      nodes,
      edges,
    },
    needsLayout,
  };
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}

export function isEmptySettings(s: NodeSettings): boolean {
  const retryEmpty =
    s.retry == null ||
    (s.retry.attempts == null && s.retry.base_delay_ms == null && s.retry.max_delay_ms == null);
  return s.timeout_ms == null && retryEmpty && (s.on_error == null || s.on_error === 'fail');
}

/** The flow file form of the canvas: positions come from the canvas. */
export function toFlow(doc: Doc): Flow {
  const nodes = doc.nodes.map((n): FlowNode => {
    const out: FlowNode = { id: n.id, type: n.data.type, params: n.data.params };
    if (n.data.name) out.name = n.data.name;
    out.position = { x: round(n.position.x), y: round(n.position.y) };
    if (n.data.settings && !isEmptySettings(n.data.settings)) out.settings = n.data.settings;
    return out;
  });
  const edges = doc.edges.map((e): FlowEdge => edgeEndpoints(e));
  const flow: Flow = { version: doc.meta.version, name: doc.meta.name, nodes, edges };
  if (doc.meta.description) flow.description = doc.meta.description;
  if (Object.keys(doc.meta.variables).length > 0) flow.variables = doc.meta.variables;
  return flow;
}

/** A new node of `descriptor`'s type at `position`, with its params' initial values. */
export function createNode(
  descriptor: NodeDescriptor,
  position: { x: number; y: number },
  takenIds: ReadonlySet<string>,
): CanvasNode {
  const params = initialValue(inlineRefs(descriptor.params_schema), true);
  return {
    id: uniqueId(descriptor.type, takenIds),
    type: 'flow',
    position: { x: Math.round(position.x), y: Math.round(position.y) },
    data: {
      type: descriptor.type,
      name: '',
      params: params && typeof params === 'object' && !Array.isArray(params) ? (params as Record<string, unknown>) : {},
    },
  };
}
