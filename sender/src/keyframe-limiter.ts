/**
 * Coalesces keyframe requests. Viewers joining and PLIs (Chrome repeats one about every 200 ms until a
 * keyframe arrives) must not make the encoder emit a keyframe per request: each costs many times a
 * normal frame. The first request fires at once; requests within `minIntervalMs` of the last keyframe
 * collapse into one trailing keyframe at the end of the interval, so no request is ever lost.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export class KeyframeLimiter {
  private lastFiredAt = Number.NEGATIVE_INFINITY;
  private trailing: unknown = null;
  fired = 0;
  coalesced = 0;

  constructor(
    private readonly fire: () => void,
    private readonly minIntervalMs = 300,
    private readonly clock: Clock = systemClock,
  ) {}

  request(): void {
    const now = this.clock.now();
    const wait = this.lastFiredAt + this.minIntervalMs - now;
    if (wait <= 0 && this.trailing === null) {
      this.emit(now);
      return;
    }
    this.coalesced++;
    if (this.trailing === null) {
      this.trailing = this.clock.setTimeout(() => {
        this.trailing = null;
        this.emit(this.clock.now());
      }, Math.max(0, wait));
    }
  }

  dispose(): void {
    if (this.trailing !== null) this.clock.clearTimeout(this.trailing);
    this.trailing = null;
  }

  private emit(now: number): void {
    this.lastFiredAt = now;
    this.fired++;
    this.fire();
  }
}
