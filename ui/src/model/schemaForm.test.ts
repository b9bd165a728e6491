import { describe, expect, it } from 'vitest';
import { discriminator, fieldInfo, initialValue, inlineRefs, parseJsonInput, parseNumberInput, validateValue } from './schemaForm';
import { BY_TYPE } from '../test/fixtures';

const schemaOf = (type: string) => BY_TYPE[type].params_schema;

describe('schema-driven form helpers', () => {
  it('picks an editor per schema', () => {
    const filter = schemaOf('filter') as { properties: Record<string, unknown> };
    expect(fieldInfo(filter.properties.match).kind).toBe('enum');
    expect(fieldInfo(filter.properties.conditions).kind).toBe('array');
    expect(fieldInfo(filter.properties.expression).kind).toBe('string');
    expect(fieldInfo(filter.properties.max_operations).kind).toBe('integer');
    const fm = schemaOf('field_mapper') as { properties: Record<string, { items?: unknown }> };
    expect(fieldInfo(fm.properties.operations.items).kind).toBe('variant');
    expect(discriminator(fieldInfo(fm.properties.operations.items).schema)?.key).toBe('op');
    expect(fieldInfo(fm.properties.keep_only)).toMatchObject({ kind: 'array', nullable: true });
    const gen = schemaOf('generate_rows') as { properties: Record<string, unknown> };
    // A map of generators has no better editor than JSON.
    expect(fieldInfo(gen.properties.fields).kind).toBe('json');
    expect(fieldInfo(true).kind).toBe('json');
    expect(fieldInfo({ type: 'boolean' }).kind).toBe('boolean');
  });

  it('gives new nodes their required params, with defaults', () => {
    expect(initialValue(schemaOf('limit'))).toEqual({ count: 0 });
    expect(initialValue(schemaOf('generate_rows'))).toEqual({ count: 0, fields: {} });
    expect(initialValue(schemaOf('collect'))).toEqual({});
    // minItems: 1 gets one item, with its required fields.
    expect(initialValue(schemaOf('sort'))).toEqual({ by: [{ field: '' }] });
    expect(initialValue(schemaOf('code'))).toEqual({ script: '' });
  });

  it('uses defaults and const tags', () => {
    expect(initialValue({ type: 'integer', default: 1000 })).toBe(1000);
    expect(initialValue({ type: 'integer', minimum: 1 })).toBe(1);
    expect(initialValue({ enum: ['asc', 'desc'], type: 'string' })).toBe('asc');
    const fm = schemaOf('field_mapper') as { properties: { operations: { items: unknown } } };
    expect(initialValue(fm.properties.operations.items)).toEqual({ op: 'rename', from: '', to: '' });
  });

  it('reports required, type and minimum problems by path', () => {
    expect(validateValue(schemaOf('limit'), {})).toEqual({ count: 'required' });
    expect(validateValue(schemaOf('limit'), { count: 'ten' })).toEqual({ count: 'must be a whole number' });
    expect(validateValue(schemaOf('limit'), { count: 1.5 })).toEqual({ count: 'must be a whole number' });
    expect(validateValue(schemaOf('limit'), { count: -1 })).toEqual({ count: 'must be ≥ 0' });
    expect(validateValue(schemaOf('limit'), { count: 5 })).toEqual({});
    expect(validateValue(schemaOf('code'), { script: '' })).toEqual({ script: 'must not be empty' });
    expect(validateValue(schemaOf('sort'), { by: [] })).toEqual({ by: 'needs at least one item' });
  });

  it('validates nested items and variants', () => {
    const errs = validateValue(schemaOf('filter'), { conditions: [{ field: 'a', op: 'eq' }, { op: 'nope' }] });
    expect(errs).toEqual({ 'conditions.1.field': 'required', 'conditions.1.op': expect.stringMatching(/must be one of/) });
    const fm = validateValue(schemaOf('field_mapper'), { operations: [{ op: 'rename', from: 'a' }, { op: 'zap' }] });
    expect(fm['operations.0.to']).toBe('required');
    expect(fm['operations.1']).toMatch(/op must be one of: rename, compute, drop, cast/);
    expect(validateValue(schemaOf('field_mapper'), { keep_only: null })).toEqual({});
  });

  it('parses typed input', () => {
    expect(parseNumberInput('42')).toBe(42);
    expect(parseNumberInput(' ')).toBeUndefined();
    expect(parseNumberInput('4x')).toBe('4x');
    expect(parseJsonInput('{"a":1}')).toEqual({ value: { a: 1 } });
    expect(parseJsonInput('{').error).toMatch(/invalid JSON/);
  });
});

describe('schemas with references and optional values', () => {
  const schema = {
    type: 'object',
    required: ['source', 'mode'],
    properties: {
      source: { $ref: '#/$defs/Source' },
      mode: { $ref: '#/$defs/Mode' },
      limit: { anyOf: [{ $ref: '#/$defs/Limit' }, { type: 'null' }], default: null },
    },
    $defs: {
      Source: { type: 'object', required: ['table'], properties: { table: { type: 'string', minLength: 1 } } },
      Mode: { oneOf: [{ const: 'append', description: 'add rows' }, { const: 'replace', description: 'truncate first' }] },
      Limit: { type: 'integer', minimum: 1 },
    },
  };
  const inlined = inlineRefs(schema) as Record<string, unknown>;

  it('inlines local references', () => {
    expect('$defs' in inlined).toBe(false);
    const props = inlined.properties as Record<string, Record<string, unknown>>;
    expect(props.source.properties).toEqual({ table: { type: 'string', minLength: 1 } });
    expect(fieldInfo(props.source).kind).toBe('object');
  });

  it('treats documented constants as an enum and optional values as nullable', () => {
    const props = inlined.properties as Record<string, unknown>;
    expect(fieldInfo(props.mode).kind).toBe('enum');
    expect(fieldInfo(props.limit)).toMatchObject({ kind: 'integer', nullable: true });
    expect(initialValue(inlined)).toEqual({ source: { table: '' }, mode: 'append' });
    expect(validateValue(inlined, { source: { table: '' }, mode: 'merge', limit: 0 })).toEqual({
      'source.table': 'must not be empty',
      mode: 'must be one of: append, replace',
      limit: 'must be ≥ 1',
    });
    expect(validateValue(inlined, { source: { table: 't' }, mode: 'replace', limit: null })).toEqual({});
  });

  it('stops at recursive definitions', () => {
    const rec = { $ref: '#/$defs/Node', $defs: { Node: { type: 'object', properties: { next: { $ref: '#/$defs/Node' } } } } };
    expect(() => inlineRefs(rec)).not.toThrow();
  });
});
