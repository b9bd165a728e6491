import { describe, expect, it } from 'vitest';
import type { Doc } from './document';
import { emptyDoc } from './document';
import { applySuggestion, connectionFocus, describeSuggestion } from './suggestions';
import { BY_TYPE, edge, node } from '../test/fixtures';

function doc(): Doc {
  return {
    ...emptyDoc('t'),
    nodes: [
      node('src', 'static_data', { records: [{ name: 'x' }] }, 0, 0),
      node('f', 'filter', { conditions: [{ field: 'nmae', op: 'eq', value: 'x' }] }, 400, 100),
    ],
    edges: [edge('src', 'f')],
  };
}

describe('applying suggestions', () => {
  it('replace_field sets the param at the JSON pointer', () => {
    const r = applySuggestion(doc(), { kind: 'replace_field', node: 'f', param: '/conditions/0/field', from: 'nmae', to: 'name' }, BY_TYPE);
    expect(r?.doc.nodes[1].data.params).toEqual({ conditions: [{ field: 'name', op: 'eq', value: 'x' }] });
    // The original document is untouched.
    expect(doc().nodes[1].data.params).toEqual({ conditions: [{ field: 'nmae', op: 'eq', value: 'x' }] });
  });

  it('insert_field_mapper puts a renaming Field Mapper on the edge', () => {
    const r = applySuggestion(
      doc(),
      { kind: 'insert_field_mapper', from: { node: 'src', port: 'out' }, to: { node: 'f', port: 'in' }, rename_from: 'name', rename_to: 'nmae' },
      BY_TYPE,
    );
    expect(r).not.toBeNull();
    const mapper = r!.doc.nodes.find((n) => n.data.type === 'field_mapper')!;
    expect(mapper.id).toBe('field_mapper_1');
    expect(mapper.data.params).toEqual({ operations: [{ op: 'rename', from: 'name', to: 'nmae' }] });
    expect(r!.doc.edges.map((e) => e.id).sort()).toEqual(['field_mapper_1.out->f.in', 'src.out->field_mapper_1.in']);
    expect(r!.select).toBe('field_mapper_1');
  });

  it('does nothing when the target is gone', () => {
    expect(applySuggestion(doc(), { kind: 'replace_field', node: 'gone', param: '/x', from: 'a', to: 'b' }, BY_TYPE)).toBeNull();
    expect(
      applySuggestion(doc(), { kind: 'insert_field_mapper', from: { node: 'f', port: 'out' }, to: { node: 'src', port: 'in' }, rename_from: 'a', rename_to: 'b' }, BY_TYPE),
    ).toBeNull();
  });
});

describe('connection suggestions', () => {
  it('create_connection opens the dialog on a new connection with the default URL of its kind', () => {
    const pg = { kind: 'create_connection', name: 'postgres', connection_kind: 'postgres' } as const;
    expect(describeSuggestion(pg)).toBe('Create connection `postgres`…');
    expect(connectionFocus(pg)).toEqual({
      kind: 'create',
      connection: { name: 'postgres', kind: 'postgres', url: 'postgres://postgres@127.0.0.1:5432/test', options: {} },
    });
    expect(connectionFocus({ kind: 'create_connection', name: 'mongo', connection_kind: 'mongodb' })).toEqual({
      kind: 'create',
      connection: { name: 'mongo', kind: 'mongodb', url: 'mongodb://127.0.0.1:27018/sample?directConnection=true', options: {} },
    });
    expect(applySuggestion(doc(), pg, BY_TYPE)).toBeNull();
  });

  it('edit_connection opens the dialog on that connection', () => {
    const s = { kind: 'edit_connection', name: 'pg' } as const;
    expect(describeSuggestion(s)).toBe('Edit connection `pg`…');
    expect(connectionFocus(s)).toEqual({ kind: 'edit', name: 'pg' });
  });

  it('document fixes open no dialog', () => {
    expect(connectionFocus({ kind: 'replace_field', node: 'f', param: '/x', from: 'a', to: 'b' })).toBeNull();
  });
});
