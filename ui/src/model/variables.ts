// Flow variables as the editor shows them: one text per value, read like `--var k=v` (JSON when
// the text is JSON, text otherwise).

export interface VarRow {
  key: string;
  value: string;
}

export function toRows(vars: Record<string, unknown>): VarRow[] {
  return Object.entries(vars).map(([key, v]) => ({ key, value: typeof v === 'string' ? v : JSON.stringify(v) }));
}

export function parseVarValue(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** The variables, or the first problem with the rows. */
export function fromRows(rows: readonly VarRow[]): { vars: Record<string, unknown> } | { error: string } {
  const vars: Record<string, unknown> = {};
  for (const r of rows) {
    const key = r.key.trim();
    if (key === '' && r.value.trim() === '') continue;
    if (key === '') return { error: 'every variable needs a name' };
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return { error: `“${key}” is not a valid name (letters, digits, _)` };
    if (key in vars) return { error: `“${key}” is defined twice` };
    vars[key] = parseVarValue(r.value);
  }
  return { vars };
}
