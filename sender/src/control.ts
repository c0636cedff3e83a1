/**
 * ControlGate: which viewer may drive, and the dead-man timer that stops the robot.
 *
 * The Durable Object grants the lease (one controller at a time) and repeats it with every renewal
 * (`lease` messages with a ttl). The gate trusts only that: a command counts only when it comes over
 * the data channel of the call whose viewer holds the lease, within the lease's time, within the rate
 * limit, and well formed. When the lease ends — released, its holder gone, or no renewal in time (which is
 * also what happens when the server becomes unreachable) — the gate emits exactly one stop.
 */
import { CONTROL_RATE_LIMIT, ControlMessage, MAX_CONTROL_BYTES, parseMessage, type ApiOutbound, type ControlRefusedMessage } from '../../protocol/index.js';

export type StopReason = Extract<ApiOutbound, { type: 'stop' }>['reason'];

export interface ControlGateEvents {
  /** A command from the lease holder, for the rover's program. False: no program is listening. */
  command: (viewerId: string, seq: number, command: Record<string, unknown>) => boolean;
  /** The controller changed (null: nobody drives). */
  lease: (viewerId: string | null) => void;
  /** The robot must stop now. */
  stop: (reason: StopReason) => void;
}

export interface ControlGateOptions extends ControlGateEvents {
  now?: () => number;
  /** Timers are injectable so the dead-man timer is unit-tested without waiting. */
  setTimer?: (callback: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

interface Bucket {
  tokens: number;
  at: number;
}

export type GateVerdict = { accepted: true } | { accepted: false; reason: ControlRefusedMessage['reason'] };

export class ControlGate {
  private holder: string | null = null;
  private deadline = 0;
  private timer: unknown;
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private readonly setTimer: (callback: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;

  constructor(private readonly options: ControlGateOptions) {
    this.now = options.now ?? (() => performance.now());
    this.setTimer = options.setTimer ?? ((callback, ms) => setTimeout(callback, ms));
    this.clearTimer = options.clearTimer ?? ((handle) => clearTimeout(handle as NodeJS.Timeout));
  }

  /** The viewer that may drive now, or null. */
  get controller(): string | null {
    return this.holder;
  }

  /**
   * A `lease` from the server (also in its welcome): `viewerId` drives for `ttlMs` from now, or nobody does
   * (`ended` says why).
   */
  setLease(viewerId: string | null, ttlMs: number, ended?: 'released' | 'lapsed' | 'left'): void {
    if (viewerId === null || ttlMs <= 0) {
      this.end(this.holder === null ? null : ended === 'lapsed' ? 'lease-lapsed' : ended === 'left' ? 'controller-left' : 'released');
      return;
    }
    if (this.holder !== null && this.holder !== viewerId) this.end('controller-left');
    const isNew = this.holder !== viewerId;
    this.holder = viewerId;
    this.deadline = this.now() + ttlMs;
    this.clearTimer(this.timer);
    this.timer = this.setTimer(() => this.onDeadline(), ttlMs);
    if (isNew) this.options.lease(viewerId);
  }

  /** The holder's viewer left (its call and socket are gone): stop now rather than at the deadline. */
  viewerGone(viewerId: string): void {
    this.buckets.delete(viewerId);
    if (this.holder === viewerId) this.end('controller-left');
  }

  /** The sender is shutting down: a robot must not keep the last command. */
  shutdown(): void {
    this.end(this.holder === null ? null : 'shutdown');
  }

  /**
   * One data-channel message from a viewer's control channel. Returns what happened; the command event
   * fires only for an accepted one.
   */
  receive(viewerId: string, raw: string): GateVerdict & { seq: number } {
    if (raw.length > MAX_CONTROL_BYTES * 3 || Buffer.byteLength(raw) > MAX_CONTROL_BYTES) return { accepted: false, reason: 'invalid', seq: 0 };
    const parsed = parseMessage(ControlMessage, raw);
    if (!parsed.ok) return { accepted: false, reason: 'invalid', seq: 0 };
    const { seq, command } = parsed.message;
    if (this.holder !== viewerId || this.now() > this.deadline) return { accepted: false, reason: 'no-lease', seq };
    if (!this.takeToken(viewerId)) return { accepted: false, reason: 'rate-limited', seq };
    if (!this.options.command(viewerId, seq, command)) return { accepted: false, reason: 'no-program', seq };
    return { accepted: true, seq };
  }

  private onDeadline(): void {
    // A renewal may have raced the timer; the deadline decides.
    if (this.holder !== null && this.now() >= this.deadline - 1) this.end('lease-lapsed');
  }

  private end(reason: StopReason | null): void {
    this.clearTimer(this.timer);
    this.timer = undefined;
    if (this.holder === null || reason === null) return;
    this.holder = null;
    this.deadline = 0;
    this.options.stop(reason);
    this.options.lease(null);
  }

  private takeToken(viewerId: string): boolean {
    const now = this.now();
    const bucket = this.buckets.get(viewerId) ?? { tokens: CONTROL_RATE_LIMIT.burst, at: now };
    bucket.tokens = Math.min(CONTROL_RATE_LIMIT.burst, bucket.tokens + ((now - bucket.at) / 1000) * CONTROL_RATE_LIMIT.perSecond);
    bucket.at = now;
    this.buckets.set(viewerId, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}
