// The engine's catalog as `flow catalog` prints it (regenerate: cargo run -p flow-cli -- catalog > ui/src/test/catalog.json).
import catalogJson from './catalog.json';
import type { EngineEvent, Flow, NodeDescriptor } from '../api/types';
import { catalogByType, type CanvasEdge, type CanvasNode } from '../model/document';
import type { Counters, ExecutionState, NodeState } from '../api/types';

/** A snapshot of the engine's catalog (`flow catalog`). */
export const CATALOG = catalogJson as unknown as NodeDescriptor[];
export const BY_TYPE = catalogByType(CATALOG);

export function node(id: string, type: string, params: Record<string, unknown> = {}, x = 0, y = 0): CanvasNode {
  return { id, type: 'flow', position: { x, y }, data: { type, name: '', params } };
}

export function edge(from: string, to: string, fromPort = 'out', toPort = 'in'): CanvasEdge {
  return {
    id: `${from}.${fromPort}->${to}.${toPort}`,
    type: 'flow',
    source: from,
    sourceHandle: fromPort,
    target: to,
    targetHandle: toPort,
  };
}

export const ACTIVE_USERS: Flow = {
  version: 1,
  name: 'Active users',
  nodes: [
    { id: 'users', type: 'generate_rows', params: { count: 10, fields: { name: { pattern: 'u{n}' } } }, position: { x: 0, y: 0 } },
    { id: 'active', type: 'filter', params: { conditions: [{ field: 'status', op: 'eq', value: 'active' }] }, position: { x: 260, y: 0 } },
    { id: 'out', type: 'collect', name: 'Result', params: {}, position: { x: 520, y: 0 } },
  ],
  edges: [
    { from: { node: 'users', port: 'out' }, to: { node: 'active', port: 'in' } },
    { from: { node: 'active', port: 'out' }, to: { node: 'out', port: 'in' } },
  ],
};

const base = (id: string) => ({ execution_id: id, correlation_id: 'c', at: '2025-01-01T00:00:00Z' });
const zero: Counters = { records_in: 0, records_out: 0, errors: 0 };

export const ev = {
  exec(id: string, state: ExecutionState, error?: string): EngineEvent {
    return { ...base(id), event: 'execution_state', flow: 'f', state, error: error ?? null };
  },
  node(id: string, n: string, state: NodeState, counters: Counters = zero, extra: { error?: string; attempt?: number; retry_in_ms?: number } = {}): EngineEvent {
    return { ...base(id), event: 'node_state', node: n, state, attempt: extra.attempt ?? 1, counters, error: extra.error ?? null, retry_in_ms: extra.retry_in_ms ?? null };
  },
  progress(id: string, n: string, records_in: number, records_out: number, rate = 100): EngineEvent {
    return { ...base(id), event: 'node_progress', node: n, counters: { records_in, records_out, errors: 0 }, rate };
  },
};
