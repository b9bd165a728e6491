// The rules for drawing an edge, checked while the user drags: each refusal says why. And the named
// database connections' defaults, for the Connections dialog.
import type { Connection, ConnectionKind } from '../api/types';
import type { Catalog, CanvasEdge, CanvasNode } from './document';

/** Where a new connection of each kind points until the user says otherwise: the local test databases. */
export const DEFAULT_CONNECTION_URL: Record<ConnectionKind, string> = {
  postgres: 'postgres://postgres@127.0.0.1:5432/test',
  mongodb: 'mongodb://127.0.0.1:27018/sample?directConnection=true',
};

export function newConnection(name: string, kind: ConnectionKind): Connection {
  return { name, kind, url: DEFAULT_CONNECTION_URL[kind], options: {} };
}

/** What the Connections dialog opens on: a new connection filled in, or an existing one by name. */
export type ConnectionFocus = { kind: 'create'; connection: Connection } | { kind: 'edit'; name: string };

export interface ConnectionAttempt {
  source: string | null;
  sourceHandle?: string | null;
  target: string | null;
  targetHandle?: string | null;
}

function label(n: CanvasNode): string {
  return n.data.name && n.data.name !== n.id ? `“${n.data.name}” (${n.id})` : `“${n.id}”`;
}

/** A path of node ids from `from` to `to` along the edges, or null. */
export function findPath(edges: readonly CanvasEdge[], from: string, to: string): string[] | null {
  const next = new Map<string, string[]>();
  for (const e of edges) {
    const list = next.get(e.source);
    if (list) list.push(e.target);
    else next.set(e.source, [e.target]);
  }
  const prev = new Map<string, string>();
  const queue = [from];
  const seen = new Set([from]);
  while (queue.length > 0) {
    const cur = queue.shift() as string;
    if (cur === to) {
      const path = [to];
      let p = to;
      while (p !== from) {
        p = prev.get(p) as string;
        path.unshift(p);
      }
      return path;
    }
    for (const n of next.get(cur) ?? []) {
      if (!seen.has(n)) {
        seen.add(n);
        prev.set(n, cur);
        queue.push(n);
      }
    }
  }
  return null;
}

/** Why the connection cannot be made, or null when it can. */
export function connectionProblem(
  nodes: readonly CanvasNode[],
  edges: readonly CanvasEdge[],
  catalog: Catalog,
  c: ConnectionAttempt,
): string | null {
  const source = nodes.find((n) => n.id === c.source);
  const target = nodes.find((n) => n.id === c.target);
  if (!source) return `Node “${c.source ?? ''}” does not exist`;
  if (!target) return `Node “${c.target ?? ''}” does not exist`;
  if (source.id === target.id) return `A node cannot be connected to itself (${label(source)})`;
  const sd = catalog[source.data.type];
  const td = catalog[target.data.type];
  if (!sd) return `Unknown node type “${source.data.type}”`;
  if (!td) return `Unknown node type “${target.data.type}”`;
  const outPort = sd.outputs.find((p) => p.name === c.sourceHandle);
  if (!outPort) {
    const has = sd.outputs.map((p) => p.name).join(', ') || 'none';
    return `${label(source)} has no output port “${c.sourceHandle ?? ''}” (it has: ${has})`;
  }
  const inPort = td.inputs.find((p) => p.name === c.targetHandle);
  if (!inPort) {
    const has = td.inputs.map((p) => p.name).join(', ') || 'none';
    return `${label(target)} has no input port “${c.targetHandle ?? ''}” (it has: ${has})`;
  }
  const into = edges.filter((e) => e.target === target.id && e.targetHandle === inPort.name);
  if (into.some((e) => e.source === source.id && e.sourceHandle === outPort.name)) {
    return 'These ports are already connected';
  }
  if (into.length > 0 && !inPort.multiple) {
    return `Input “${inPort.name}” of ${label(target)} takes one edge and is already connected (use a Merge node to combine streams)`;
  }
  const back = findPath(edges, target.id, source.id);
  if (back) {
    return `This connection would create a cycle: ${[...back, target.id].join(' → ')}`;
  }
  return null;
}
