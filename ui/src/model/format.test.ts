import { describe, expect, it } from 'vitest';
import { formatCount, formatDuration, formatRate } from './format';

describe('formatting', () => {
  it('separates thousands with commas', () => {
    expect(formatCount(0)).toBe('0');
    expect(formatCount(999)).toBe('999');
    expect(formatCount(1000)).toBe('1,000');
    expect(formatCount(40_000_000)).toBe('40,000,000');
    expect(formatCount(1_234_567.6)).toBe('1,234,568');
    expect(formatCount(-12_345)).toBe('-12,345');
    expect(formatCount(Number.NaN)).toBe('—');
  });

  it('shows rates in records per second', () => {
    expect(formatRate(12_345.4)).toBe('12,345/s');
    expect(formatRate(950)).toBe('950/s');
    expect(formatRate(0.2)).toBe('<1/s');
    expect(formatRate(0)).toBe('');
    expect(formatRate(Number.POSITIVE_INFINITY)).toBe('');
  });

  it('shows durations', () => {
    expect(formatDuration(450)).toBe('450 ms');
    expect(formatDuration(2500)).toBe('2.50 s');
    expect(formatDuration(12_345)).toBe('12.3 s');
    expect(formatDuration(185_000)).toBe('3 min 5 s');
    expect(formatDuration(null)).toBe('—');
  });
});
