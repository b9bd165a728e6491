// Addressing values inside params: dotted paths (`conditions.0.field`, used by the form and its
// test ids) and JSON pointers (`/conditions/0/field`, used by the engine).

export type Segment = string | number;

export function pointerToSegments(pointer: string): Segment[] {
  if (pointer === '' || pointer === '/') return [];
  return pointer
    .replace(/^\//, '')
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

export function pointerToPath(pointer: string): string {
  return pointerToSegments(pointer).join('.');
}

export function pathToSegments(path: string): Segment[] {
  if (path === '') return [];
  return path.split('.').map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

export function joinPath(parent: string, key: string | number): string {
  return parent === '' ? String(key) : `${parent}.${key}`;
}

export function getIn(value: unknown, segments: readonly Segment[]): unknown {
  let cur = value;
  for (const s of segments) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[s];
  }
  return cur;
}

/**
 * A copy of `root` with the value at `segments` replaced (`undefined` removes an object key or
 * an array element). Missing containers are created: arrays for numeric segments, objects else.
 */
export function setIn(root: unknown, segments: readonly Segment[], value: unknown): unknown {
  if (segments.length === 0) return value;
  const [head, ...rest] = segments;
  const child = getIn(root, [head]);
  const next = rest.length === 0 ? value : setIn(child ?? (typeof rest[0] === 'number' ? [] : {}), rest, value);
  if (Array.isArray(root) && typeof head === 'number') {
    const copy = root.slice();
    if (next === undefined) copy.splice(head, 1);
    else copy[head] = next;
    return copy;
  }
  const obj: Record<string, unknown> =
    root !== null && typeof root === 'object' && !Array.isArray(root) ? { ...(root as Record<string, unknown>) } : {};
  if (next === undefined) delete obj[String(head)];
  else obj[String(head)] = next;
  return obj;
}
