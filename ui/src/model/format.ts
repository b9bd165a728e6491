// Numbers and durations as people read them. Thousands are always separated by a comma, whatever
// the locale, so the screen and the tests that read it agree everywhere.

/** A count with thousands separators: 40,000,000. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '—';
  const digits = String(Math.round(Math.abs(n))).replace(/\B(?=(\d{3})+$)/g, ',');
  return n < 0 ? `-${digits}` : digits;
}

/** Records per second: 12,345/s; empty when nothing moves. */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return '';
  return perSecond < 1 ? '<1/s' : `${formatCount(perSecond)}/s`;
}

/** A duration: 450 ms, 2.50 s, 12.3 s, 3 min 5 s. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return `${m} min ${s} s`;
}
