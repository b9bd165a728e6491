import { describe, expect, it } from 'vitest';
import type { Problem } from '../api/types';
import { applyCheck, applyReport, checkOnly, emptyValidation, mergeProblems } from './validation';

const typo: Problem = { kind: 'missing_field', message: 'node `f`: field `nmae` is missing', node: 'f', field: 'nmae' };
const unknown: Problem = { kind: 'unknown_connection', message: 'node `q`: no connection `pg`', node: 'q' };
const unreachable: Problem = {
  kind: 'connection_unreachable',
  message: 'node `q`: connection `pg` does not answer; start the database or edit the connection',
  node: 'q',
  suggestions: [{ kind: 'edit_connection', name: 'pg' }],
};
const described: Problem = { kind: 'missing_field', message: 'node `f`: field `total` is missing', node: 'f', field: 'total' };
const NODES = new Set(['f', 'q']);

describe('live validation and the pre-run check', () => {
  it('keeps what only the check found', () => {
    expect(checkOnly([typo, unreachable, described], [{ ...typo, suggestions: [] }])).toEqual([unreachable, described]);
  });

  it('shows live problems first, then checked ones without duplicates', () => {
    expect(mergeProblems([typo], [unreachable, typo], NODES)).toEqual([typo, unreachable]);
    const live = [typo];
    expect(mergeProblems(live, [], NODES)).toBe(live);
  });

  it('drops checked problems of nodes that are gone', () => {
    expect(mergeProblems([], [unreachable, { ...unreachable, node: null }], new Set(['f']))).toEqual([{ ...unreachable, node: null }]);
  });

  it('keeps a check answer across edits until the next check', () => {
    let v = applyReport(emptyValidation(), [typo, unknown], 1, NODES);
    // The check saw the same static problems, and a connection that does not answer.
    v = applyCheck(v, [typo, unknown, unreachable], [typo, unknown], NODES);
    expect(v.problems).toEqual([typo, unknown, unreachable]);
    expect(v.byNode.q).toEqual([unknown, unreachable]);
    // The typo is fixed and the connection created: live validation is clean, the unreachable
    // connection stays until the next check says otherwise.
    v = applyReport(v, [], 2, NODES);
    expect(v.problems).toEqual([unreachable]);
    expect(v.version).toBe(2);
    v = applyCheck(v, [], [], NODES);
    expect(v.problems).toEqual([]);
    expect(v.byNode).toEqual({});
  });
});
