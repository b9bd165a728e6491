import { describe, expect, it } from 'vitest';
import { createFlowStore } from './flowStore';
import { ACTIVE_USERS, CATALOG, ev } from '../test/fixtures';

function store() {
  const s = createFlowStore(CATALOG);
  s.getState().loadFlow(ACTIVE_USERS, '/flows/a.json');
  return s;
}

describe('flow store: editing', () => {
  it('loads a flow clean, and marks changes dirty', () => {
    const s = store();
    expect(s.getState().dirty).toBe(false);
    expect(s.getState().nodes.map((n) => n.id)).toEqual(['users', 'active', 'out']);
    expect(s.getState().toFlow()).toEqual(ACTIVE_USERS);
    s.getState().renameNode('out', 'Sink');
    expect(s.getState().dirty).toBe(true);
    const rev = s.getState().revision;
    s.getState().renameNode('out', 'Sink 2');
    // Saved while a newer change came in: still dirty.
    s.getState().markSaved('/flows/b.json', rev);
    expect(s.getState().dirty).toBe(true);
    expect(s.getState().filePath).toBe('/flows/b.json');
    s.getState().markSaved('/flows/b.json', s.getState().revision);
    expect(s.getState().dirty).toBe(false);
    // Selecting is not an edit.
    s.getState().select(['out']);
    expect(s.getState().dirty).toBe(false);
  });

  it('undoes and redoes additions, and a new change clears redo', () => {
    const s = store();
    const id = s.getState().addNode('limit', { x: 0, y: 300 });
    expect(id).toBe('limit_1');
    s.getState().setParam('limit_1', 'count', 5);
    expect(s.getState().nodes.find((n) => n.id === 'limit_1')?.data.params).toEqual({ count: 5 });
    s.getState().undo();
    expect(s.getState().nodes.find((n) => n.id === 'limit_1')?.data.params).toEqual({ count: 0 });
    s.getState().undo();
    expect(s.getState().nodes.some((n) => n.id === 'limit_1')).toBe(false);
    s.getState().redo();
    expect(s.getState().nodes.some((n) => n.id === 'limit_1')).toBe(true);
    expect(s.getState().history.future).toHaveLength(1);
    s.getState().renameNode('users', 'People');
    expect(s.getState().history.future).toHaveLength(0);
    s.getState().redo();
    expect(s.getState().nodes.find((n) => n.id === 'limit_1')?.data.params).toEqual({ count: 0 });
  });

  it('treats a drag as one undo step', () => {
    const s = store();
    const move = (x: number, dragging: boolean) =>
      s.getState().onNodesChange([{ type: 'position', id: 'users', position: { x, y: 0 }, dragging }]);
    move(10, true);
    move(20, true);
    move(30, true);
    move(30, false);
    expect(s.getState().history.past).toHaveLength(1);
    expect(s.getState().dirty).toBe(true);
    expect(s.getState().toFlow().nodes[0].position).toEqual({ x: 30, y: 0 });
    s.getState().undo();
    expect(s.getState().nodes[0].position).toEqual({ x: 0, y: 0 });
  });

  it('refuses invalid connections and says why', () => {
    const s = store();
    s.getState().addNode('static_data', { x: 0, y: 200 });
    const refused = s.getState().connect({ source: 'static_data_1', sourceHandle: 'out', target: 'active', targetHandle: 'in' });
    expect(refused).toMatch(/already connected/);
    expect(s.getState().connectError?.message).toBe(refused);
    expect(s.getState().connect({ source: 'out', sourceHandle: 'out', target: 'users', targetHandle: 'in' })).toMatch(/no output port/);
    expect(s.getState().connect({ source: 'out', sourceHandle: 'out', target: 'out', targetHandle: 'in' })).toMatch(/itself/);
    expect(s.getState().connect({ source: 'active', sourceHandle: 'out', target: 'active', targetHandle: 'in' })).toMatch(/itself/);
    // Collect's input takes any number of edges.
    expect(s.getState().connect({ source: 'static_data_1', sourceHandle: 'out', target: 'out', targetHandle: 'in' })).toBeNull();
    expect(s.getState().connectError).toBeNull();
    expect(s.getState().edges.some((e) => e.id === 'static_data_1.out->out.in')).toBe(true);
    s.getState().undo();
    expect(s.getState().edges.some((e) => e.id === 'static_data_1.out->out.in')).toBe(false);
  });

  it('deletes the selection with its edges, copies and pastes with new ids', () => {
    const s = store();
    s.getState().select(['active', 'out']);
    expect(s.getState().copy()).toBe(true);
    const pasted = s.getState().paste();
    expect(pasted).toEqual(['filter_1', 'collect_1']);
    const st = s.getState();
    expect(st.edges.some((e) => e.source === 'filter_1' && e.target === 'collect_1')).toBe(true);
    expect(st.nodes.filter((n) => n.selected).map((n) => n.id)).toEqual(['filter_1', 'collect_1']);
    s.getState().select(['active']);
    s.getState().deleteSelection();
    expect(s.getState().nodes.some((n) => n.id === 'active')).toBe(false);
    expect(s.getState().edges.some((e) => e.source === 'active' || e.target === 'active')).toBe(false);
    s.getState().undo();
    expect(s.getState().nodes.some((n) => n.id === 'active')).toBe(true);
    expect(s.getState().edges).toHaveLength(3);
  });

  it('applies validation reports for the current version only', () => {
    const s = store();
    const v = s.getState().version;
    const problem = { kind: 'missing_field' as const, message: 'node `active`: field `status` is missing', node: 'active', field: 'status' };
    s.getState().applyValidation([problem], v - 1);
    expect(s.getState().validation.problems).toHaveLength(0);
    s.getState().applyValidation([problem], v);
    expect(s.getState().validation.byNode.active).toEqual([problem]);
    const before = s.getState().validation.byNode.active;
    s.getState().applyValidation([{ ...problem }], v);
    expect(s.getState().validation.byNode.active).toBe(before);
  });

  it('shows what only the pre-run check found, and ignores a check of another flow', () => {
    const s = store();
    const unreachable = { kind: 'connection_unreachable' as const, message: 'connection `pg` does not answer', node: 'users' };
    const docId = s.getState().docId;
    s.getState().loadFlow(ACTIVE_USERS, null);
    s.getState().applyCheck([unreachable], [], docId);
    expect(s.getState().validation.problems).toHaveLength(0);
    s.getState().applyCheck([unreachable], [], s.getState().docId);
    expect(s.getState().validation.byNode.users).toEqual([unreachable]);
    s.getState().applyValidation([], s.getState().version);
    expect(s.getState().validation.problems).toEqual([unreachable]);
  });

  it('applies suggestions as undoable edits', () => {
    const s = store();
    expect(s.getState().applySuggestion({ kind: 'replace_field', node: 'active', param: '/conditions/0/field', from: 'status', to: 'state' })).toBe(true);
    expect(s.getState().toFlow().nodes[1].params).toEqual({ conditions: [{ field: 'state', op: 'eq', value: 'active' }] });
    s.getState().undo();
    expect(s.getState().toFlow().nodes[1].params).toEqual(ACTIVE_USERS.nodes[1].params);
  });
});

describe('flow store: executions', () => {
  it('keeps events that arrive before the start returns', () => {
    const s = store();
    s.getState().beginRun();
    s.getState().applyEventBatch([ev.exec('x', 'running'), ev.node('x', 'users', 'running'), ev.node('other', 'users', 'failed')]);
    s.getState().runStarted('x');
    const live = s.getState().live!;
    expect(live.state).toBe('running');
    expect(live.nodes.users.state).toBe('running');
    expect(live.nodes.out.state).toBe('pending');
  });

  it('applies a batch in one update and leaves other nodes alone', () => {
    const s = store();
    s.getState().beginRun();
    s.getState().runStarted('x');
    const before = s.getState().live!;
    let updates = 0;
    const unsub = s.subscribe(() => updates++);
    s.getState().applyEventBatch([ev.node('x', 'users', 'running'), ev.progress('x', 'users', 0, 10), ev.progress('x', 'users', 0, 20)]);
    unsub();
    expect(updates).toBe(1);
    const after = s.getState().live!;
    expect(after.nodes.users.counters.records_out).toBe(20);
    expect(after.nodes.out).toBe(before.nodes.out);
    expect(s.getState().nodes).toBe(s.getState().nodes);
  });

  it('shows a past execution over the live one', () => {
    const s = store();
    s.getState().viewExecution({
      id: 'old',
      correlation_id: 'c',
      flow: 'f',
      state: 'failed',
      error: 'boom',
      started_at: '2025-01-01T00:00:00Z',
      finished_at: '2025-01-01T00:00:01Z',
      duration_ms: 1000,
      records_out: 0,
      records_read: 0,
      nodes: [],
    });
    expect(s.getState().viewed?.state).toBe('failed');
    s.getState().viewExecution(null);
    expect(s.getState().viewed).toBeNull();
  });
});

describe('flow store: large flows on the canvas', () => {
  it('gives loaded nodes estimated handles until React Flow measures them', () => {
    const s = store();
    const active = () => s.getState().nodes.find((n) => n.id === 'active')!;
    // filter: one input, an output and an error output.
    expect(active().handles?.map((h) => `${h.type}:${h.id}`)).toEqual(['target:in', 'source:out', 'source:error']);
    expect(active().initialWidth).toBe(200);
    s.getState().onNodesChange([{ type: 'dimensions', id: 'active', dimensions: { width: 204, height: 90 } }]);
    expect(active().measured).toEqual({ width: 204, height: 90 });
    expect(active().handles).toBeUndefined();
    expect(active().initialWidth).toBeUndefined();
    // Nodes not measured yet keep theirs; saving ignores both.
    expect(s.getState().nodes.find((n) => n.id === 'users')?.handles).toBeDefined();
    expect(s.getState().toFlow()).toEqual(ACTIVE_USERS);
  });

  it('does not bring estimates back on undo once a node is measured', () => {
    const s = store();
    s.getState().renameNode('out', 'Sink');
    s.getState().onNodesChange([{ type: 'dimensions', id: 'out', dimensions: { width: 200, height: 70 } }]);
    s.getState().undo();
    const out = s.getState().nodes.find((n) => n.id === 'out')!;
    expect(out.data.name).toBe('Result');
    expect(out.handles).toBeUndefined();
    expect(out.measured).toEqual({ width: 200, height: 70 });
  });
});
