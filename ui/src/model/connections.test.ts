import { describe, expect, it } from 'vitest';
import { connectionProblem, findPath } from './connections';
import { BY_TYPE, edge, node } from '../test/fixtures';

const nodes = [
  node('src', 'generate_rows'),
  node('f', 'filter'),
  node('m', 'merge'),
  node('out', 'collect'),
  node('src2', 'static_data'),
];

const c = (source: string, sourceHandle: string, target: string, targetHandle: string) => ({ source, sourceHandle, target, targetHandle });

describe('connection rules', () => {
  it('accepts a free input', () => {
    expect(connectionProblem(nodes, [], BY_TYPE, c('src', 'out', 'f', 'in'))).toBeNull();
  });

  it('refuses an occupied single-edge input', () => {
    const edges = [edge('src', 'f')];
    const p = connectionProblem(nodes, edges, BY_TYPE, c('src2', 'out', 'f', 'in'));
    expect(p).toMatch(/takes one edge/);
    expect(p).toMatch(/Merge/);
  });

  it('accepts several edges into a multiple input', () => {
    const edges = [edge('src', 'm')];
    expect(connectionProblem(nodes, edges, BY_TYPE, c('src2', 'out', 'm', 'in'))).toBeNull();
  });

  it('refuses a self-loop', () => {
    expect(connectionProblem(nodes, [], BY_TYPE, c('f', 'out', 'f', 'in'))).toMatch(/itself/);
  });

  it('refuses a cycle and names it', () => {
    const edges = [edge('f', 'm'), edge('m', 'out')];
    const nodes2 = [...nodes, node('f2', 'filter')];
    const edges2 = [...edges, edge('m', 'f2')];
    const p = connectionProblem(nodes2, edges2, BY_TYPE, c('f2', 'out', 'f', 'in'));
    expect(p).toMatch(/cycle/);
    expect(p).toContain('f → m → f2 → f');
  });

  it('refuses missing ports', () => {
    expect(connectionProblem(nodes, [], BY_TYPE, c('src', 'nope', 'f', 'in'))).toMatch(/no output port “nope”/);
    expect(connectionProblem(nodes, [], BY_TYPE, c('src', 'out', 'f', 'other'))).toMatch(/no input port “other”/);
    // A sink has no outputs at all.
    expect(connectionProblem(nodes, [], BY_TYPE, c('out', 'out', 'f', 'in'))).toMatch(/it has: none/);
  });

  it('refuses missing nodes and duplicates', () => {
    expect(connectionProblem(nodes, [], BY_TYPE, c('ghost', 'out', 'f', 'in'))).toMatch(/does not exist/);
    expect(connectionProblem(nodes, [edge('src', 'm')], BY_TYPE, c('src', 'out', 'm', 'in'))).toMatch(/already connected/);
  });

  it('finds paths', () => {
    const edges = [edge('a', 'b'), edge('b', 'c'), edge('a', 'd')];
    expect(findPath(edges, 'a', 'c')).toEqual(['a', 'b', 'c']);
    expect(findPath(edges, 'c', 'a')).toBeNull();
  });
});
