// The engine's validation report, arranged for the canvas: problems by node, and a node's params
// problems by form path.
import type { Problem } from '../api/types';
import { pointerToPath } from './paths';

export interface ValidationState {
  problems: Problem[];
  byNode: Record<string, Problem[]>;
  /** The document version the report is about (-1: never validated). */
  version: number;
  /** Validation itself failed (engine unreachable); the message. */
  error: string | null;
}

export function emptyValidation(): ValidationState {
  return { problems: [], byNode: {}, version: -1, error: null };
}

function sameProblems(a: readonly Problem[], b: readonly Problem[]): boolean {
  return a.length === b.length && a.every((p, i) => JSON.stringify(p) === JSON.stringify(b[i]));
}

/**
 * Problems by node id. A node whose problems did not change keeps the same array, so its
 * component does not re-render.
 */
export function groupByNode(problems: readonly Problem[], prev: Record<string, Problem[]> = {}): Record<string, Problem[]> {
  const out: Record<string, Problem[]> = {};
  for (const p of problems) {
    if (!p.node) continue;
    (out[p.node] ??= []).push(p);
  }
  for (const [id, list] of Object.entries(out)) {
    const old = prev[id];
    if (old && sameProblems(old, list)) out[id] = old;
  }
  return out;
}

export function applyReport(prev: ValidationState, problems: Problem[], version: number): ValidationState {
  return { problems, byNode: groupByNode(problems, prev.byNode), version, error: null };
}

/** The engine's message without its `node `x`: params/...: ` prefix, for showing under a field. */
export function shortMessage(p: Problem): string {
  return p.message.replace(/^node `[^`]*`: /, '');
}

/** The message for a field of the form: without the node and the param path. */
export function fieldMessage(p: Problem): string {
  return shortMessage(p).replace(/^params[^:]*: /, '');
}

/** A node's params problems by dotted form path (`''`: the params as a whole), and the others. */
export function paramProblems(problems: readonly Problem[]): { byPath: Record<string, string[]>; other: Problem[] } {
  const byPath: Record<string, string[]> = {};
  const other: Problem[] = [];
  for (const p of problems) {
    if (p.kind === 'invalid_params' && p.field != null && p.field !== '') {
      (byPath[pointerToPath(p.field)] ??= []).push(fieldMessage(p));
    } else {
      other.push(p);
    }
  }
  return { byPath, other };
}

export function hasErrors(v: ValidationState): boolean {
  return v.problems.length > 0;
}
