// Params forms driven by the node types' JSON Schemas: which editor a schema gets, the initial
// value of a new field, and the inline validation messages (required, type, minimum, ...).
import { joinPath } from './paths';

export type Schema = Record<string, unknown>;

export type FieldKind =
  | 'string'
  | 'integer'
  | 'number'
  | 'boolean'
  | 'enum'
  | 'const'
  | 'array'
  | 'object'
  | 'variant'
  | 'json';

export interface FieldInfo {
  kind: FieldKind;
  nullable: boolean;
  schema: Schema;
}

export function asSchema(s: unknown): Schema {
  return s !== null && typeof s === 'object' && !Array.isArray(s) ? (s as Schema) : {};
}

function types(schema: Schema): string[] {
  const t = schema.type;
  if (typeof t === 'string') return [t];
  if (Array.isArray(t)) return t.filter((x): x is string => typeof x === 'string');
  return [];
}

export function properties(schema: Schema): Record<string, Schema> {
  const p = asSchema(schema.properties);
  const out: Record<string, Schema> = {};
  for (const [k, v] of Object.entries(p)) out[k] = asSchema(v);
  return out;
}

export function requiredKeys(schema: Schema): string[] {
  return Array.isArray(schema.required) ? schema.required.filter((x): x is string => typeof x === 'string') : [];
}

export function variants(schema: Schema): Schema[] {
  const v = Array.isArray(schema.oneOf) ? schema.oneOf : Array.isArray(schema.anyOf) ? schema.anyOf : [];
  return v.map(asSchema);
}

/** The property whose `const` tells the variants of a oneOf apart, e.g. `op`. */
export function discriminator(schema: Schema): { key: string; values: string[] } | null {
  const vs = variants(schema);
  if (vs.length === 0) return null;
  const first = properties(vs[0]);
  for (const key of Object.keys(first)) {
    const values: string[] = [];
    for (const v of vs) {
      const c = properties(v)[key]?.const;
      if (typeof c !== 'string') break;
      values.push(c);
    }
    if (values.length === vs.length && new Set(values).size === values.length) return { key, values };
  }
  return null;
}

export function variantFor(schema: Schema, value: unknown): Schema | null {
  const d = discriminator(schema);
  if (!d || value === null || typeof value !== 'object') return null;
  const tag = (value as Record<string, unknown>)[d.key];
  const i = d.values.indexOf(tag as string);
  return i >= 0 ? variants(schema)[i] : null;
}

export function enumOptions(schema: Schema): unknown[] {
  if (Array.isArray(schema.enum)) return schema.enum.filter((v) => v !== null);
  const vs = variants(schema);
  if (vs.length > 0 && vs.every((v) => 'const' in v)) return vs.map((v) => v.const).filter((v) => v !== null);
  return [];
}

/** `oneOf`/`anyOf` of one schema and `{"type": "null"}` (an optional value): that schema. */
function optionalOf(schema: Schema): Schema | null {
  const vs = variants(schema);
  if (vs.length !== 2) return null;
  const isNull = (v: Schema) => v.type === 'null' || v.const === null;
  const [a, b] = vs;
  if (isNull(a) && !isNull(b)) return b;
  if (isNull(b) && !isNull(a)) return a;
  return null;
}

const MAX_REF_DEPTH = 16;

/**
 * The schema with local references (`#/$defs/X`, `#/definitions/X`) replaced by what they point
 * at, so the form sees plain nested schemas. Recursive definitions stop at a depth limit (the
 * deepest level is left as a JSON editor).
 */
export function inlineRefs(schema: unknown, root: unknown = schema, depth = 0): unknown {
  if (Array.isArray(schema)) return schema.map((s) => inlineRefs(s, root, depth));
  if (schema === null || typeof schema !== 'object') return schema;
  const obj = schema as Schema;
  if (typeof obj.$ref === 'string' && obj.$ref.startsWith('#/')) {
    if (depth >= MAX_REF_DEPTH) return {};
    let target: unknown = root;
    for (const part of obj.$ref.slice(2).split('/')) {
      target = target !== null && typeof target === 'object' ? (target as Schema)[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
    }
    const { $ref: _ref, ...rest } = obj;
    return inlineRefs({ ...asSchema(target), ...rest }, root, depth + 1);
  }
  const out: Schema = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k === '$defs' || k === 'definitions') continue;
    out[k] = inlineRefs(v, root, depth);
  }
  return out;
}

/** Which editor a schema gets. */
export function fieldInfo(schemaIn: unknown): FieldInfo {
  const schema = asSchema(schemaIn);
  const ts = types(schema);
  const nullable = ts.includes('null') || (Array.isArray(schema.enum) && schema.enum.includes(null));
  const info = (kind: FieldKind): FieldInfo => ({ kind, nullable, schema });
  if ('const' in schema) return info('const');
  if (Array.isArray(schema.enum)) return info('enum');
  const optional = optionalOf(schema);
  if (optional) {
    const inner = fieldInfo({ ...optional, ...(schema.default !== undefined ? { default: schema.default } : {}), description: schema.description ?? optional.description });
    return { ...inner, nullable: true };
  }
  if (variants(schema).length > 0) {
    if (enumOptions(schema).length === variants(schema).length) return info('enum');
    return info(discriminator(schema) ? 'variant' : 'json');
  }
  const base = ts.filter((t) => t !== 'null');
  if (base.length === 0) return info(schema.properties ? 'object' : 'json');
  if (base.length > 1) return info('json');
  switch (base[0]) {
    case 'string':
      return info('string');
    case 'integer':
      return info('integer');
    case 'number':
      return info('number');
    case 'boolean':
      return info('boolean');
    case 'array': {
      const item = fieldInfo(schema.items);
      return info(item.kind === 'json' || item.kind === 'array' ? 'json' : 'array');
    }
    case 'object': {
      const extra = schema.additionalProperties;
      const hasMap = extra !== undefined && extra !== false;
      return info(schema.properties && !hasMap ? 'object' : 'json');
    }
    default:
      return info('json');
  }
}

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

/**
 * The value a new field starts with: the schema's default when it has one, else an empty value
 * of its type (objects get their required properties, arrays their `minItems` items).
 */
export function initialValue(schemaIn: unknown, required = true): unknown {
  const outer = asSchema(schemaIn);
  if ('default' in outer) return clone(outer.default);
  const { kind, nullable, schema } = fieldInfo(outer);
  if (nullable && !required) return null;
  switch (kind) {
    case 'const':
      return clone(schema.const);
    case 'string':
      return '';
    case 'integer':
    case 'number':
      return typeof schema.minimum === 'number' ? schema.minimum : 0;
    case 'boolean':
      return false;
    case 'enum': {
      const opts = enumOptions(schema);
      return opts.length > 0 ? opts[0] : null;
    }
    case 'array': {
      const n = typeof schema.minItems === 'number' ? schema.minItems : 0;
      return Array.from({ length: n }, () => initialValue(schema.items, true));
    }
    case 'object': {
      const out: Record<string, unknown> = {};
      const props = properties(schema);
      for (const key of requiredKeys(schema)) {
        if (props[key]) out[key] = initialValue(props[key], true);
      }
      return out;
    }
    case 'variant':
      return initialValue(variants(schema)[0], true);
    case 'json': {
      const base = types(schema).filter((t) => t !== 'null');
      if (base.length === 1 && base[0] === 'array') return [];
      if (base.length === 1 && base[0] === 'object') return {};
      if (schema.properties) return initialValue({ ...schema, type: 'object' }, true);
      return null;
    }
  }
}

/** The value shown for a property the params do not set: its default, if any. */
export function shownDefault(schema: Schema): unknown {
  return 'default' in schema ? schema.default : undefined;
}

function typeMessage(kind: FieldKind, schema: Schema): string | null {
  switch (kind) {
    case 'string':
      return 'must be text';
    case 'integer':
      return 'must be a whole number';
    case 'number':
      return 'must be a number';
    case 'boolean':
      return 'must be true or false';
    case 'array':
      return 'must be a list';
    case 'object':
    case 'variant':
      return 'must be an object';
    case 'enum':
      return `must be one of: ${enumOptions(schema).map(String).join(', ')}`;
    default:
      return null;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function jsonTypeOk(schema: Schema, value: unknown): boolean {
  const base = types(schema);
  if (base.length === 0) return true;
  return base.some((t) => {
    switch (t) {
      case 'null':
        return value === null;
      case 'string':
        return typeof value === 'string';
      case 'integer':
        return typeof value === 'number' && Number.isInteger(value);
      case 'number':
        return typeof value === 'number';
      case 'boolean':
        return typeof value === 'boolean';
      case 'array':
        return Array.isArray(value);
      case 'object':
        return isPlainObject(value);
      default:
        return true;
    }
  });
}

/**
 * Inline validation messages by dotted path (`''` is the value itself). Checks required
 * properties, types, enum values, minimum/maximum, minLength and minItems: the messages a person
 * needs while typing; the engine's validation covers the rest.
 */
export function validateValue(
  schemaIn: unknown,
  value: unknown,
  path = '',
  required = true,
  out: Record<string, string> = {},
): Record<string, string> {
  const outer = asSchema(schemaIn);
  const { kind, nullable, schema } = fieldInfo(outer);
  if (value === undefined) {
    if (required && !('default' in outer)) out[path] = 'required';
    return out;
  }
  if (value === null) {
    if (nullable || kind === 'json') return out;
    out[path] = required ? 'required' : (typeMessage(kind, schema) ?? 'invalid value');
    return out;
  }
  const fail = (msg: string | null) => {
    if (msg) out[path] = msg;
    return out;
  };
  switch (kind) {
    case 'const':
      return JSON.stringify(value) === JSON.stringify(schema.const) ? out : fail(`must be ${JSON.stringify(schema.const)}`);
    case 'enum':
      return enumOptions(schema).some((o) => o === value) ? out : fail(typeMessage(kind, schema));
    case 'string': {
      if (typeof value !== 'string') return fail(typeMessage(kind, schema));
      const min = typeof schema.minLength === 'number' ? schema.minLength : 0;
      if (value.length < min) return fail(min === 1 ? 'must not be empty' : `must be at least ${min} characters`);
      return out;
    }
    case 'integer':
    case 'number': {
      const ok = typeof value === 'number' && Number.isFinite(value) && (kind === 'number' || Number.isInteger(value));
      if (!ok) return fail(typeMessage(kind, schema));
      if (typeof schema.minimum === 'number' && value < schema.minimum) return fail(`must be ≥ ${schema.minimum}`);
      if (typeof schema.maximum === 'number' && value > schema.maximum) return fail(`must be ≤ ${schema.maximum}`);
      return out;
    }
    case 'boolean':
      return typeof value === 'boolean' ? out : fail(typeMessage(kind, schema));
    case 'array': {
      if (!Array.isArray(value)) return fail(typeMessage(kind, schema));
      const min = typeof schema.minItems === 'number' ? schema.minItems : 0;
      if (value.length < min) fail(min === 1 ? 'needs at least one item' : `needs at least ${min} items`);
      value.forEach((item, i) => validateValue(schema.items, item, joinPath(path, i), true, out));
      return out;
    }
    case 'object': {
      if (!isPlainObject(value)) return fail(typeMessage(kind, schema));
      const req = new Set(requiredKeys(schema));
      for (const [key, sub] of Object.entries(properties(schema))) {
        validateValue(sub, value[key], joinPath(path, key), req.has(key), out);
      }
      return out;
    }
    case 'variant': {
      if (!isPlainObject(value)) return fail(typeMessage(kind, schema));
      const v = variantFor(schema, value);
      const d = discriminator(schema);
      if (!v) return fail(`${d?.key ?? 'kind'} must be one of: ${d?.values.join(', ') ?? ''}`);
      return validateValue(v, value, path, required, out);
    }
    case 'json':
      return jsonTypeOk(schema, value) ? out : fail(`must be ${types(schema).filter((t) => t !== 'null').join(' or ')}`);
  }
}

/**
 * Parses what was typed into a number field: a number when it is one, else the raw text (kept so
 * that validation can say what is wrong with it).
 */
export function parseNumberInput(text: string): number | string | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : text;
}

/** Parses a JSON field; `error` is set when the text is not JSON. */
export function parseJsonInput(text: string): { value?: unknown; error?: string } {
  if (text.trim() === '') return { value: undefined };
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (e) {
    return { error: `invalid JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
}
