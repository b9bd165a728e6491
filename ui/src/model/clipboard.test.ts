import { describe, expect, it } from 'vitest';
import { copySelection, pasteClipboard } from './clipboard';
import { edge, node } from '../test/fixtures';

describe('copy/paste', () => {
  const a = { ...node('filter_1', 'filter', { conditions: [] }, 10, 20), selected: true };
  const b = { ...node('collect_1', 'collect', {}, 300, 20), selected: true };
  const c = node('other', 'limit', { count: 1 });
  const edges = [edge('filter_1', 'collect_1'), edge('other', 'filter_1')];

  it('copies the selected nodes and only the edges among them', () => {
    const clip = copySelection([a, b, c], edges);
    expect(clip?.nodes.map((n) => n.id)).toEqual(['filter_1', 'collect_1']);
    expect(clip?.edges.map((e) => e.id)).toEqual(['filter_1.out->collect_1.in']);
    expect(copySelection([c], edges)).toBeNull();
  });

  it('pastes with new ids, remapped edges and an offset', () => {
    const clip = copySelection([a, b, c], edges)!;
    const taken = new Set(['filter_1', 'collect_1', 'other', 'filter_2']);
    const pasted = pasteClipboard(clip, taken, { x: 40, y: 40 });
    expect(pasted.idMap).toEqual({ filter_1: 'filter_3', collect_1: 'collect_2' });
    expect(pasted.nodes.map((n) => n.id)).toEqual(['filter_3', 'collect_2']);
    expect(pasted.nodes[0].position).toEqual({ x: 50, y: 60 });
    expect(pasted.nodes.every((n) => n.selected)).toBe(true);
    expect(pasted.edges).toHaveLength(1);
    expect(pasted.edges[0]).toMatchObject({ source: 'filter_3', target: 'collect_2', sourceHandle: 'out', targetHandle: 'in' });
    expect(pasted.edges[0].id).toBe('filter_3.out->collect_2.in');
  });

  it('deep-copies params so pasted nodes are independent', () => {
    const clip = copySelection([a], [])!;
    const pasted = pasteClipboard(clip, new Set(['filter_1']), { x: 0, y: 0 });
    expect(pasted.nodes[0].data.params).toEqual(a.data.params);
    expect(pasted.nodes[0].data.params).not.toBe(a.data.params);
  });
});
