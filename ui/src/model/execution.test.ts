import { describe, expect, it } from 'vitest';
import type { ExecutionDetail } from '../api/types';
import { applyEvents, fromDetail, mergeDetail, startedExecution } from './execution';
import { ev } from '../test/fixtures';

const ID = 'exec-1';

describe('applying event batches', () => {
  it('folds a batch into node states and counters', () => {
    const live = startedExecution(ID, 'f', ['a', 'b']);
    const next = applyEvents(live, [
      ev.exec(ID, 'running'),
      ev.node(ID, 'a', 'running'),
      ev.progress(ID, 'a', 0, 500, 5000),
      ev.node(ID, 'b', 'running'),
      ev.progress(ID, 'b', 500, 250, 2500),
      ev.progress(ID, 'a', 0, 1000, 5000),
    ]);
    expect(next.state).toBe('running');
    expect(next.nodes.a.state).toBe('running');
    expect(next.nodes.a.counters).toEqual({ records_in: 0, records_out: 1000, errors: 0 });
    expect(next.nodes.a.rate).toBe(5000);
    expect(next.nodes.b.counters.records_in).toBe(500);
  });

  it('ignores progress that arrives after a terminal state', () => {
    let live = startedExecution(ID, 'f', ['a']);
    live = applyEvents(live, [ev.node(ID, 'a', 'running'), ev.node(ID, 'a', 'succeeded', { records_in: 0, records_out: 1000, errors: 0 })]);
    const after = applyEvents(live, [ev.progress(ID, 'a', 0, 900), ev.node(ID, 'a', 'running')]);
    expect(after).toBe(live);
    expect(after.nodes.a.state).toBe('succeeded');
    expect(after.nodes.a.counters.records_out).toBe(1000);
    expect(after.nodes.a.rate).toBe(0);
  });

  it('ignores other executions and keeps unchanged nodes identical', () => {
    const live = applyEvents(startedExecution(ID, 'f', ['a', 'b']), [ev.node(ID, 'a', 'running'), ev.node(ID, 'b', 'running')]);
    expect(applyEvents(live, [ev.progress('other', 'a', 1, 1)])).toBe(live);
    const next = applyEvents(live, [ev.progress(ID, 'a', 0, 10)]);
    expect(next.nodes.b).toBe(live.nodes.b);
    expect(next.nodes.a).not.toBe(live.nodes.a);
  });

  it('keeps errors, attempts and retry delays', () => {
    const live = applyEvents(startedExecution(ID, 'f', ['a']), [
      ev.node(ID, 'a', 'running'),
      ev.node(ID, 'a', 'retrying', undefined, { error: 'connection refused', attempt: 1, retry_in_ms: 400 }),
    ]);
    expect(live.nodes.a).toMatchObject({ state: 'retrying', error: 'connection refused', retryInMs: 400 });
    const failed = applyEvents(live, [ev.node(ID, 'a', 'failed', undefined, { error: 'gave up', attempt: 4 }), ev.exec(ID, 'failed', 'node a failed')]);
    expect(failed.nodes.a).toMatchObject({ state: 'failed', error: 'gave up', attempt: 4 });
    expect(failed.state).toBe('failed');
    expect(failed.error).toBe('node a failed');
    // Nothing changes the execution once it ended.
    expect(applyEvents(failed, [ev.exec(ID, 'running')]).state).toBe('failed');
  });

  it('stops every rate when the execution ends', () => {
    let live = applyEvents(startedExecution(ID, 'f', ['a']), [ev.node(ID, 'a', 'running'), ev.progress(ID, 'a', 0, 10, 99)]);
    live = applyEvents(live, [ev.exec(ID, 'cancelled')]);
    expect(live.nodes.a.rate).toBe(0);
  });

  it('handles a million-record run in few, cheap updates', () => {
    let live = startedExecution(ID, 'f', ['a', 'b', 'c']);
    const batch = [];
    for (let i = 1; i <= 10_000; i++) batch.push(ev.progress(ID, ['a', 'b', 'c'][i % 3], i * 100, i * 100));
    const t = performance.now();
    live = applyEvents(live, batch);
    expect(performance.now() - t).toBeLessThan(500);
    expect(live.nodes.a.counters.records_out).toBe(999_900);
  });
});

describe('sub-flow events', () => {
  it('keeps prefixed node ids out of the canvas nodes, by sub-flow node and path', () => {
    const live = applyEvents(startedExecution(ID, 'f', ['src', 'enrich']), [
      ev.node(ID, 'enrich', 'running'),
      ev.node(ID, 'enrich/filter', 'running'),
      ev.progress(ID, 'enrich/filter', 10, 4),
      ev.node(ID, 'enrich/inner/sort', 'succeeded', { records_in: 4, records_out: 4, errors: 0 }),
    ]);
    expect(Object.keys(live.nodes)).toEqual(['src', 'enrich']);
    expect(live.nodes.enrich.state).toBe('running');
    expect(Object.keys(live.subflows)).toEqual(['enrich']);
    expect(Object.keys(live.subflows.enrich)).toEqual(['filter', 'inner/sort']);
    expect(live.subflows.enrich.filter).toMatchObject({ state: 'running', counters: { records_in: 10, records_out: 4, errors: 0 }, rate: 100 });
    expect(live.subflows.enrich['inner/sort'].state).toBe('succeeded');
  });

  it('ignores what arrives for a sub-flow node after its terminal state', () => {
    const live = applyEvents(startedExecution(ID, 'f', ['enrich']), [
      ev.node(ID, 'enrich/filter', 'running'),
      ev.node(ID, 'enrich/filter', 'failed', undefined, { error: 'bad field' }),
    ]);
    expect(live.subflows.enrich.filter).toMatchObject({ state: 'failed', error: 'bad field' });
    expect(applyEvents(live, [ev.progress(ID, 'enrich/filter', 1, 1), ev.node(ID, 'enrich/filter', 'running')])).toBe(live);
  });

  it('keeps untouched sub-flows and canvas nodes identical', () => {
    const live = applyEvents(startedExecution(ID, 'f', ['a', 'b']), [ev.node(ID, 'a/x', 'running'), ev.node(ID, 'b/y', 'running')]);
    const next = applyEvents(live, [ev.progress(ID, 'a/x', 0, 5)]);
    expect(next.nodes).toBe(live.nodes);
    expect(next.subflows.b).toBe(live.subflows.b);
    expect(next.subflows.a.x.counters.records_out).toBe(5);
    expect(live.subflows.a.x.counters.records_out).toBe(0);
  });

  it('stops sub-flow rates when the execution ends', () => {
    let live = applyEvents(startedExecution(ID, 'f', ['a']), [ev.node(ID, 'a/x', 'running'), ev.progress(ID, 'a/x', 0, 10, 99)]);
    live = applyEvents(live, [ev.exec(ID, 'succeeded')]);
    expect(live.subflows.a.x.rate).toBe(0);
  });
});

describe('history details', () => {
  const detail: ExecutionDetail = {
    id: ID,
    correlation_id: 'c',
    flow: 'f',
    state: 'succeeded',
    error: null,
    started_at: '2025-01-01T00:00:00Z',
    finished_at: '2025-01-01T00:00:02Z',
    duration_ms: 2000,
    records_out: 3,
    records_read: 3,
    nodes: [
      {
        node_id: 'a',
        node_type: 'static_data',
        state: 'succeeded',
        attempts: 2,
        started_at: '2025-01-01T00:00:00Z',
        finished_at: '2025-01-01T00:00:01Z',
        counters: { records_in: 0, records_out: 3, errors: 0 },
        error: null,
        error_kind: null,
        sample: [{ x: 1 }],
        sink: null,
      },
    ],
  };

  it('builds canvas state from a detail', () => {
    const v = fromDetail(detail);
    expect(v.nodes.a).toMatchObject({ state: 'succeeded', attempt: 2, sample: [{ x: 1 }] });
    expect(v.state).toBe('succeeded');
  });

  it('merges samples into the live execution', () => {
    const live = applyEvents(startedExecution(ID, 'f', ['a']), [ev.node(ID, 'a', 'succeeded'), ev.exec(ID, 'succeeded')]);
    const merged = mergeDetail(live, detail);
    expect(merged.nodes.a.sample).toEqual([{ x: 1 }]);
    expect(mergeDetail(live, { ...detail, id: 'other' })).toBe(live);
  });

  it('keeps the sub-flow nodes the events gave', () => {
    const live = applyEvents(startedExecution(ID, 'f', ['a']), [ev.node(ID, 'a/x', 'succeeded'), ev.exec(ID, 'succeeded')]);
    expect(mergeDetail(live, detail).subflows).toBe(live.subflows);
  });
});
