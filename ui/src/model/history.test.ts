import { describe, expect, it } from 'vitest';
import { canRedo, canUndo, emptyHistory, record, redo, undo, type Snapshot } from './history';
import { node } from '../test/fixtures';

const snap = (...ids: string[]): Snapshot => ({ nodes: ids.map((id) => node(id, 'filter')), edges: [] });

describe('undo/redo history', () => {
  it('undoes and redoes in order', () => {
    let h = emptyHistory();
    const s0 = snap();
    const s1 = snap('a');
    const s2 = snap('a', 'b');
    h = record(h, s0, { now: 0 });
    h = record(h, s1, { now: 10_000 });
    expect(canUndo(h)).toBe(true);
    expect(canRedo(h)).toBe(false);
    const u1 = undo(h, s2);
    expect(u1?.restore).toBe(s1);
    const u2 = undo(u1!.history, s1);
    expect(u2?.restore).toBe(s0);
    expect(undo(u2!.history, s0)).toBeNull();
    const r1 = redo(u2!.history, s0);
    expect(r1?.restore).toBe(s1);
    const r2 = redo(r1!.history, s1);
    expect(r2?.restore).toBe(s2);
    expect(canRedo(r2!.history)).toBe(false);
  });

  it('clears redo after a new change', () => {
    let h = record(emptyHistory(), snap(), { now: 0 });
    const u = undo(h, snap('a'));
    expect(canRedo(u!.history)).toBe(true);
    h = record(u!.history, snap(), { now: 5000 });
    expect(canRedo(h)).toBe(false);
  });

  it('is bounded: the oldest steps are dropped', () => {
    let h = emptyHistory();
    for (let i = 0; i < 30; i++) h = record(h, snap(`n${i}`), { now: i * 10_000, limit: 10 });
    expect(h.past).toHaveLength(10);
    expect(h.past[0].nodes[0].id).toBe('n20');
    expect(h.past[9].nodes[0].id).toBe('n29');
  });

  it('coalesces changes with the same key in quick succession', () => {
    let h = emptyHistory();
    h = record(h, snap('typing-0'), { key: 'param:a:x', now: 0 });
    h = record(h, snap('typing-1'), { key: 'param:a:x', now: 300 });
    h = record(h, snap('typing-2'), { key: 'param:a:x', now: 600 });
    expect(h.past).toHaveLength(1);
    expect(h.past[0].nodes[0].id).toBe('typing-0');
    h = record(h, snap('other'), { key: 'param:a:y', now: 700 });
    expect(h.past).toHaveLength(2);
    h = record(h, snap('later'), { key: 'param:a:y', now: 5000 });
    expect(h.past).toHaveLength(3);
  });
});
