/** The smallest `${base}_${n}` (n >= 1) not in `taken`. */
export function uniqueId(base: string, taken: ReadonlySet<string>): string {
  const stem = base.replace(/[^A-Za-z0-9_-]+/g, '_') || 'node';
  for (let n = 1; ; n++) {
    const id = `${stem}_${n}`;
    if (!taken.has(id)) return id;
  }
}
