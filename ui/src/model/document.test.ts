import { describe, expect, it } from 'vitest';
import type { Flow } from '../api/types';
import { createNode, fromFlow, toFlow } from './document';
import { layoutNodes } from './layout';
import { getIn, pointerToPath, pointerToSegments, setIn } from './paths';
import { fromRows, toRows } from './variables';
import { ACTIVE_USERS, BY_TYPE } from '../test/fixtures';

describe('flow <-> canvas', () => {
  it('round-trips a flow file', () => {
    const flow: Flow = {
      ...ACTIVE_USERS,
      description: 'd',
      variables: { table: 'users', n: 3 },
      nodes: ACTIVE_USERS.nodes.map((n, i) => (i === 1 ? { ...n, settings: { timeout_ms: 500, on_error: 'route' } } : n)),
    };
    const { doc, needsLayout } = fromFlow(flow);
    expect(needsLayout).toBe(false);
    expect(toFlow(doc)).toEqual(flow);
  });

  it('omits empty optional fields and keeps positions from the canvas', () => {
    const { doc } = fromFlow(ACTIVE_USERS);
    doc.nodes[0] = { ...doc.nodes[0], position: { x: 12.345, y: -7 } };
    const out = toFlow(doc);
    expect(out.nodes[0].position).toEqual({ x: 12.3, y: -7 });
    expect('name' in out.nodes[0]).toBe(false);
    expect(out.nodes[2].name).toBe('Result');
    expect('variables' in out).toBe(false);
    expect('description' in out).toBe(false);
  });

  it('lays out flows without positions', () => {
    const flow: Flow = { ...ACTIVE_USERS, nodes: ACTIVE_USERS.nodes.map(({ position: _p, ...n }) => n) };
    const { doc, needsLayout } = fromFlow(flow);
    expect(needsLayout).toBe(true);
    const laid = layoutNodes(doc.nodes, doc.edges);
    const xs = laid.map((n) => n.position.x);
    expect(xs[0]).toBeLessThan(xs[1]);
    expect(xs[1]).toBeLessThan(xs[2]);
  });

  it('creates nodes with unique ids and initial params', () => {
    const n = createNode(BY_TYPE.limit, { x: 10.4, y: 20.6 }, new Set(['limit_1']));
    expect(n.id).toBe('limit_2');
    expect(n.position).toEqual({ x: 10, y: 21 });
    expect(n.data.params).toEqual({ count: 0 });
  });
});

describe('paths and variables', () => {
  it('converts JSON pointers', () => {
    expect(pointerToSegments('/conditions/0/field')).toEqual(['conditions', 0, 'field']);
    expect(pointerToPath('/a~1b/1')).toBe('a/b.1');
    expect(pointerToPath('')).toBe('');
  });

  it('sets and removes values immutably', () => {
    const src = { a: [{ b: 1 }], c: 2 };
    const out = setIn(src, ['a', 0, 'b'], 5) as typeof src;
    expect(out.a[0].b).toBe(5);
    expect(src.a[0].b).toBe(1);
    expect(out.c).toBe(2);
    expect(setIn(src, ['c'], undefined)).toEqual({ a: [{ b: 1 }] });
    expect(setIn({}, ['x', 0, 'y'], 1)).toEqual({ x: [{ y: 1 }] });
    expect(getIn(out, ['a', 0, 'b'])).toBe(5);
  });

  it('edits variables as text', () => {
    expect(fromRows([{ key: 'n', value: '42' }, { key: 's', value: 'hello' }, { key: '', value: '' }])).toEqual({ vars: { n: 42, s: 'hello' } });
    expect(fromRows([{ key: 'a b', value: '1' }])).toEqual({ error: expect.stringMatching(/not a valid name/) });
    expect(fromRows([{ key: 'a', value: '1' }, { key: 'a', value: '2' }])).toEqual({ error: expect.stringMatching(/twice/) });
    expect(toRows({ s: 'x', n: [1] })).toEqual([{ key: 's', value: 'x' }, { key: 'n', value: '[1]' }]);
  });
});
