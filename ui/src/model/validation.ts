// The engine's validation reports, arranged for the canvas: problems by node, and a node's params
// problems by form path. Two reports meet here: live validation (static, on every edit) and the
// slower pre-run check (with I/O), of which only what live validation cannot find is kept.
import type { Problem } from '../api/types';
import { pointerToPath } from './paths';

export interface ValidationState {
  /** What the editor shows: `live`, then the `checked` problems it does not report. */
  problems: Problem[];
  byNode: Record<string, Problem[]>;
  /** Live validation's report. */
  live: Problem[];
  /** What only the last pre-run check found (e.g. a connection that does not answer). */
  checked: Problem[];
  /** The document version `live` is about (-1: never validated). */
  version: number;
  /** Validation itself failed (engine unreachable); the message. */
  error: string | null;
}

export function emptyValidation(): ValidationState {
  return { problems: [], byNode: {}, live: [], checked: [], version: -1, error: null };
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

/** The same problem in two reports (suggestions aside). */
function problemKey(p: Problem): string {
  return JSON.stringify([p.kind, p.node ?? null, p.port ?? null, p.field ?? null, p.message]);
}

/** The check's problems that live validation of the same flow did not report. */
export function checkOnly(check: readonly Problem[], live: readonly Problem[]): Problem[] {
  const known = new Set(live.map(problemKey));
  return check.filter((p) => !known.has(problemKey(p)));
}

/**
 * The live problems, then the checked ones live validation does not report. A checked problem
 * about a node that is gone is dropped: the check predates the edit that removed the node.
 */
export function mergeProblems(live: Problem[], checked: readonly Problem[], nodeIds: ReadonlySet<string>): Problem[] {
  const known = new Set(live.map(problemKey));
  const extra = checked.filter((p) => !known.has(problemKey(p)) && (!p.node || nodeIds.has(p.node)));
  return extra.length > 0 ? [...live, ...extra] : live;
}

function withProblems(prev: ValidationState, next: Pick<ValidationState, 'live' | 'checked'>, nodeIds: ReadonlySet<string>): ValidationState {
  const problems = mergeProblems(next.live, next.checked, nodeIds);
  return { ...prev, ...next, problems, byNode: groupByNode(problems, prev.byNode) };
}

/** A live validation report for document `version`. */
export function applyReport(prev: ValidationState, live: Problem[], version: number, nodeIds: ReadonlySet<string>): ValidationState {
  return { ...withProblems(prev, { live, checked: prev.checked }, nodeIds), version, error: null };
}

/** A pre-run check's report, with live validation's report on the same flow to tell them apart. */
export function applyCheck(prev: ValidationState, check: Problem[], live: Problem[], nodeIds: ReadonlySet<string>): ValidationState {
  return withProblems(prev, { live: prev.live, checked: checkOnly(check, live) }, nodeIds);
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
