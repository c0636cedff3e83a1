import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../sender/src/backoff.js';
import { mulberry32 } from './helpers.js';

const options = { minMs: 500, maxMs: 30_000 };
const caps = [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000];

describe('backoffDelay', () => {
  it('attempt 0 uses minMs as the cap', () => {
    expect(backoffDelay(0, options, () => 0)).toBe(250);
    expect(backoffDelay(0, options, () => 0.5)).toBe(375);
    expect(backoffDelay(0, options, () => 0.999)).toBe(500);
  });

  it('grows exponentially and is capped at maxMs', () => {
    expect(caps.map((_, n) => backoffDelay(n, options, () => 0.5))).toEqual(caps.map((cap) => 0.75 * cap));
    expect(backoffDelay(50, options, () => 0.5)).toBe(22_500);
    expect(backoffDelay(5000, options, () => 0.5)).toBe(22_500); // 2^5000 overflows to Infinity; still capped
  });

  it('stays within [cap/2, cap] at both ends of random()', () => {
    caps.forEach((cap, n) => {
      expect(backoffDelay(n, options, () => 0)).toBe(cap / 2);
      const high = backoffDelay(n, options, () => 0.999);
      expect(high).toBeGreaterThan(cap * 0.99);
      expect(high).toBeLessThanOrEqual(cap);
    });
  });

  it('treats a negative attempt as attempt 0', () => {
    expect(backoffDelay(-3, options, () => 0)).toBe(250);
  });

  it('random delays stay within bounds and are spread out', () => {
    const random = mulberry32(42);
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const n = i % 10;
      const cap = Math.min(30_000, 500 * 2 ** n);
      const delay = backoffDelay(n, options, random);
      expect(delay).toBeGreaterThanOrEqual(cap / 2);
      expect(delay).toBeLessThanOrEqual(cap);
      if (n === 9) seen.add(delay);
    }
    expect(seen.size).toBeGreaterThan(50);
  });

  it('defaults to Math.random', () => {
    for (let i = 0; i < 100; i++) {
      const delay = backoffDelay(3, options);
      expect(delay).toBeGreaterThanOrEqual(2000);
      expect(delay).toBeLessThanOrEqual(4000);
    }
  });
});
