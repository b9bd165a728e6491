// Undo/redo as bounded stacks of snapshots of the canvas (nodes and edges). Snapshots share
// structure with the live document: nothing is copied, objects are never mutated.
import type { CanvasEdge, CanvasNode } from './document';

export interface Snapshot {
  nodes: CanvasNode[];
  edges: CanvasEdge[];
}

export interface History {
  past: Snapshot[];
  future: Snapshot[];
  /** Consecutive changes with the same key within COALESCE_MS make one undo step. */
  lastKey: string | null;
  lastAt: number;
}

export const HISTORY_LIMIT = 100;
export const COALESCE_MS = 1000;

export function emptyHistory(): History {
  return { past: [], future: [], lastKey: null, lastAt: 0 };
}

/**
 * Records `before` (the state before a change) as an undo step and clears redo. A change with
 * the same `key` as the previous one within COALESCE_MS joins that step instead.
 */
export function record(
  h: History,
  before: Snapshot,
  opts: { key?: string; now?: number; limit?: number } = {},
): History {
  const now = opts.now ?? Date.now();
  const limit = opts.limit ?? HISTORY_LIMIT;
  if (opts.key && opts.key === h.lastKey && now - h.lastAt < COALESCE_MS && h.past.length > 0) {
    return { ...h, future: [], lastAt: now };
  }
  const past = h.past.length >= limit ? h.past.slice(h.past.length - limit + 1) : h.past.slice();
  past.push(before);
  return { past, future: [], lastKey: opts.key ?? null, lastAt: now };
}

export function canUndo(h: History): boolean {
  return h.past.length > 0;
}

export function canRedo(h: History): boolean {
  return h.future.length > 0;
}

/** The snapshot to restore and the new history, or null when there is nothing to undo. */
export function undo(h: History, current: Snapshot): { history: History; restore: Snapshot } | null {
  if (h.past.length === 0) return null;
  const restore = h.past[h.past.length - 1];
  return {
    restore,
    history: { past: h.past.slice(0, -1), future: [...h.future, current], lastKey: null, lastAt: 0 },
  };
}

export function redo(h: History, current: Snapshot): { history: History; restore: Snapshot } | null {
  if (h.future.length === 0) return null;
  const restore = h.future[h.future.length - 1];
  return {
    restore,
    history: { past: [...h.past, current], future: h.future.slice(0, -1), lastKey: null, lastAt: 0 },
  };
}
