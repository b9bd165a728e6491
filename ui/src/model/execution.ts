// Live execution state on the canvas, folded from the engine's event batches, and the same shape
// built from a finished execution in the history.
import type { Counters, EngineEvent, ErrorKind, ExecutionDetail, ExecutionState, NodeState } from '../api/types';

export interface NodeLive {
  state: NodeState;
  attempt: number;
  counters: Counters;
  /** Records out per second (0 once the node stopped). */
  rate: number;
  error: string | null;
  errorKind: ErrorKind | null;
  retryInMs: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** The first output records; known once the execution is in the history. */
  sample: Record<string, unknown>[] | null;
}

export interface LiveExecution {
  id: string;
  flow: string;
  state: ExecutionState;
  error: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  nodes: Record<string, NodeLive>;
  /**
   * The nodes of sub-flows, which are not on the canvas: by the top-level `subflow` node's id,
   * then by the rest of the node's path (`filter` for event node `enrich/filter`, `inner/filter`
   * for `enrich/inner/filter`), in the order they were first heard of.
   */
  subflows: Record<string, Record<string, NodeLive>>;
}

export const ZERO: Counters = { records_in: 0, records_out: 0, errors: 0 };

export function isTerminalNode(s: NodeState): boolean {
  return s === 'succeeded' || s === 'failed' || s === 'skipped' || s === 'cancelled';
}

export function isTerminalExecution(s: ExecutionState): boolean {
  return s === 'succeeded' || s === 'failed' || s === 'cancelled';
}

function nodeLive(state: NodeState = 'pending'): NodeLive {
  return {
    state,
    attempt: 0,
    counters: ZERO,
    rate: 0,
    error: null,
    errorKind: null,
    retryInMs: null,
    startedAt: null,
    finishedAt: null,
    sample: null,
  };
}

/** A just-started execution: every node pending. */
export function startedExecution(id: string, flow: string, nodeIds: readonly string[]): LiveExecution {
  const nodes: Record<string, NodeLive> = {};
  for (const n of nodeIds) nodes[n] = nodeLive();
  return { id, flow, state: 'queued', error: null, startedAt: null, finishedAt: null, nodes, subflows: {} };
}

/**
 * Splits a node id from the events into the top-level node and the path inside its sub-flow: the
 * engine publishes a sub-flow's node events on the parent execution, prefixed with the path of
 * `subflow` node ids (`enrich/filter`). The path is null for a node of the flow itself.
 */
function splitNodeId(id: string): { top: string; path: string | null } {
  const i = id.indexOf('/');
  return i < 0 ? { top: id, path: null } : { top: id.slice(0, i), path: id.slice(i + 1) };
}

function sameCounters(a: Counters, b: Counters): boolean {
  return a.records_in === b.records_in && a.records_out === b.records_out && a.errors === b.errors;
}

/**
 * Folds a batch of events into the execution in one pass. Returns the same object when nothing
 * changed; node entries that did not change keep their identity, so only their nodes re-render.
 * Events of other executions are ignored, and so is anything that arrives for a node after it
 * reached a terminal state (late progress) or for the execution after it ended.
 */
export function applyEvents(live: LiveExecution, events: readonly EngineEvent[]): LiveExecution {
  let nodes: Record<string, NodeLive> | null = null;
  let subflows: Record<string, Record<string, NodeLive>> | null = null;
  let exec: LiveExecution = live;
  const cur = (id: string): NodeLive | undefined => {
    const { top, path } = splitNodeId(id);
    return path === null ? (nodes ?? live.nodes)[id] : (subflows ?? live.subflows)[top]?.[path];
  };
  const put = (id: string, n: NodeLive) => {
    const { top, path } = splitNodeId(id);
    if (path === null) {
      nodes ??= { ...live.nodes };
      nodes[id] = n;
      return;
    }
    subflows ??= { ...live.subflows };
    // Copied once per batch, so that the sub-flows this batch did not touch keep their identity.
    if (subflows[top] === live.subflows[top]) subflows[top] = { ...live.subflows[top] };
    subflows[top][path] = n;
  };
  for (const ev of events) {
    if (ev.execution_id !== live.id) continue;
    switch (ev.event) {
      case 'execution_state': {
        if (isTerminalExecution(exec.state)) break;
        if (exec.state === ev.state && exec.error === (ev.error ?? null)) break;
        exec = {
          ...exec,
          state: ev.state,
          flow: ev.flow || exec.flow,
          error: ev.error ?? null,
          startedAt: exec.startedAt ?? (ev.state === 'running' ? ev.at : null),
          finishedAt: isTerminalExecution(ev.state) ? ev.at : exec.finishedAt,
        };
        break;
      }
      case 'node_state': {
        const prev = cur(ev.node) ?? nodeLive();
        if (isTerminalNode(prev.state)) break;
        const terminal = isTerminalNode(ev.state);
        put(ev.node, {
          ...prev,
          state: ev.state,
          attempt: ev.attempt,
          counters: sameCounters(prev.counters, ev.counters) ? prev.counters : ev.counters,
          rate: terminal ? 0 : prev.rate,
          error: ev.error ?? (ev.state === 'retrying' ? prev.error : null),
          retryInMs: ev.retry_in_ms ?? null,
          startedAt: prev.startedAt ?? (ev.state === 'running' ? ev.at : null),
          finishedAt: terminal ? ev.at : prev.finishedAt,
        });
        break;
      }
      case 'node_progress': {
        const prev = cur(ev.node) ?? nodeLive('running');
        if (isTerminalNode(prev.state)) break;
        if (sameCounters(prev.counters, ev.counters) && prev.rate === ev.rate) break;
        put(ev.node, { ...prev, counters: ev.counters, rate: ev.rate });
        break;
      }
    }
  }
  if (isTerminalExecution(exec.state) && !isTerminalExecution(live.state)) {
    // Nothing moves once the execution is over.
    for (const [id, n] of Object.entries(nodes ?? live.nodes)) if (n.rate !== 0) put(id, { ...n, rate: 0 });
    for (const [top, children] of Object.entries(subflows ?? live.subflows)) {
      for (const [path, n] of Object.entries(children)) if (n.rate !== 0) put(`${top}/${path}`, { ...n, rate: 0 });
    }
  }
  if (nodes === null && subflows === null) return exec;
  return { ...exec, nodes: nodes ?? exec.nodes, subflows: subflows ?? exec.subflows };
}

/** A finished (or running) execution from the history, in the canvas's shape. */
export function fromDetail(detail: ExecutionDetail): LiveExecution {
  const nodes: Record<string, NodeLive> = {};
  for (const r of detail.nodes) {
    nodes[r.node_id] = {
      state: r.state,
      attempt: r.attempts,
      counters: r.counters,
      rate: 0,
      error: r.error,
      errorKind: r.error_kind,
      retryInMs: null,
      startedAt: r.started_at,
      finishedAt: r.finished_at,
      sample: r.sample,
    };
  }
  return {
    id: detail.id,
    flow: detail.flow,
    state: detail.state,
    error: detail.error,
    startedAt: detail.started_at,
    finishedAt: detail.finished_at,
    nodes,
    // A sub-flow's nodes are in the history as a child execution of their own.
    subflows: {},
  };
}

/**
 * Adds what only the history knows (timings, attempts, samples) to a live execution that has
 * ended, keeping the state the events gave.
 */
export function mergeDetail(live: LiveExecution, detail: ExecutionDetail): LiveExecution {
  if (detail.id !== live.id) return live;
  const fromHistory = fromDetail(detail);
  const nodes: Record<string, NodeLive> = { ...live.nodes };
  for (const [id, h] of Object.entries(fromHistory.nodes)) {
    const l = nodes[id];
    nodes[id] = l ? { ...h, state: isTerminalNode(l.state) ? l.state : h.state, error: l.error ?? h.error } : h;
  }
  return {
    ...live,
    state: isTerminalExecution(live.state) ? live.state : fromHistory.state,
    startedAt: fromHistory.startedAt ?? live.startedAt,
    finishedAt: fromHistory.finishedAt ?? live.finishedAt,
    nodes,
  };
}

/** Milliseconds from `a` to `b`, or null when either is unknown. */
export function durationBetween(a: string | null, b: string | null): number | null {
  if (!a || !b) return null;
  const d = Date.parse(b) - Date.parse(a);
  return Number.isFinite(d) ? d : null;
}
