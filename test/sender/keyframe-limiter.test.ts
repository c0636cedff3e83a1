import { beforeEach, describe, expect, it } from 'vitest';
import { KeyframeLimiter, type Clock } from '../../sender/src/keyframe-limiter.js';

/** Manual clock: time moves only when told; timers run in due order as time passes. */
class FakeClock implements Clock {
  time = 0;
  private nextId = 1;
  private timers: { id: number; at: number; fn: () => void }[] = [];

  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ id, at: this.time + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }
  get pending(): number[] {
    return this.timers.map((t) => t.at).sort((a, b) => a - b);
  }
  /** Advance to `to`, running due timers in order (each sees now() = its due time). */
  runUntil(to: number): void {
    for (;;) {
      const due = this.timers.filter((t) => t.at <= to).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = Math.max(this.time, due.at);
      due.fn();
    }
    this.time = Math.max(this.time, to);
  }
}

describe('KeyframeLimiter', () => {
  let clock: FakeClock;
  let fires: number[];
  let limiter: KeyframeLimiter;

  beforeEach(() => {
    clock = new FakeClock();
    fires = [];
    limiter = new KeyframeLimiter(() => fires.push(clock.now()), 300, clock);
  });

  it('fires the first request immediately', () => {
    clock.runUntil(1000);
    limiter.request();
    expect(fires).toEqual([1000]);
    expect(limiter.fired).toBe(1);
    expect(limiter.coalesced).toBe(0);
    expect(clock.pending).toEqual([]);
  });

  it('coalesces requests within the interval into exactly one trailing fire at lastFire + interval', () => {
    limiter.request(); // t=0: fires
    for (const t of [50, 100, 250, 299]) {
      clock.runUntil(t);
      limiter.request();
    }
    expect(fires).toEqual([0]);
    expect(clock.pending).toEqual([300]); // one timer, not four
    expect(limiter.coalesced).toBe(4);

    clock.runUntil(299.9);
    expect(fires).toEqual([0]);
    clock.runUntil(300);
    expect(fires).toEqual([0, 300]);
    clock.runUntil(5000);
    expect(fires).toEqual([0, 300]);
    expect(limiter.fired).toBe(2);
    expect(limiter.coalesced).toBe(4);
  });

  it('never loses a request: one arriving right after a trailing fire gets its own keyframe', () => {
    limiter.request(); // 0
    clock.runUntil(100);
    limiter.request(); // trailing at 300
    clock.runUntil(310);
    expect(fires).toEqual([0, 300]);
    limiter.request(); // within 300 of the trailing fire → trailing at 600
    expect(clock.pending).toEqual([600]);
    clock.runUntil(1000);
    expect(fires).toEqual([0, 300, 600]);
    expect(limiter.fired).toBe(3);
    expect(limiter.coalesced).toBe(2);
  });

  it('fires immediately once the interval has passed', () => {
    limiter.request(); // 0
    clock.runUntil(300);
    limiter.request(); // exactly at the boundary
    clock.runUntil(1234);
    limiter.request();
    expect(fires).toEqual([0, 300, 1234]);
    expect(limiter.coalesced).toBe(0);
    expect(clock.pending).toEqual([]);
  });

  it('a request while a late trailing timer is still pending does not fire twice', () => {
    limiter.request(); // 0
    clock.runUntil(10);
    limiter.request(); // trailing due at 300
    clock.time = 450; // the event loop was busy: timer overdue but not yet run
    limiter.request();
    expect(fires).toEqual([0]);
    expect(clock.pending).toEqual([300]);
    clock.runUntil(450);
    expect(fires).toEqual([0, 450]);
    expect(limiter.fired).toBe(2);
    expect(limiter.coalesced).toBe(2);
  });

  it('dispose cancels the trailing fire', () => {
    limiter.request();
    clock.runUntil(100);
    limiter.request();
    expect(clock.pending).toEqual([300]);
    limiter.dispose();
    expect(clock.pending).toEqual([]);
    clock.runUntil(10_000);
    expect(fires).toEqual([0]);
    expect(limiter.fired).toBe(1);
    limiter.dispose(); // idempotent
  });

  it('honours a custom interval', () => {
    const times: number[] = [];
    const slow = new KeyframeLimiter(() => times.push(clock.now()), 1000, clock);
    slow.request();
    clock.runUntil(400);
    slow.request();
    expect(clock.pending).toEqual([1000]);
    clock.runUntil(2000);
    expect(times).toEqual([0, 1000]);
  });
});
