/**
 * Server-clock estimate from `clock` request/reply pairs (NTP's idea, one hop): the reply's server time
 * was read somewhere between our send and receive, so offset ≈ serverTime − midpoint, with an error of
 * at most half the round trip. The sample with the shortest round trip of the recent ones wins (queueing
 * only ever adds delay). Rover and viewer both use it, so the rover's capture times and the viewer's
 * display times meet on one clock even when the two machines' clocks disagree.
 */

const KEEP_SAMPLES = 8;

export interface ClockSample {
  offsetMs: number;
  roundTripMs: number;
}

export class ServerClock {
  private samples: ClockSample[] = [];

  /** `local` reads this machine's clock in ms since the Unix epoch (sub-ms precision where available). */
  constructor(private readonly local: () => number = () => performance.timeOrigin + performance.now()) {}

  /** The value to send as a clock request's `t`. */
  localNow(): number {
    return this.local();
  }

  /** Record a reply: `sentAt` is the request's `t`, `serverTime` the server's reading. */
  addReply(sentAt: number, serverTime: number, receivedAt: number = this.local()): void {
    const roundTripMs = receivedAt - sentAt;
    if (!Number.isFinite(roundTripMs) || roundTripMs < 0 || roundTripMs > 10_000 || !Number.isFinite(serverTime)) return;
    this.samples.push({ offsetMs: serverTime - (sentAt + receivedAt) / 2, roundTripMs });
    if (this.samples.length > KEEP_SAMPLES) this.samples.shift();
  }

  get synced(): boolean {
    return this.samples.length > 0;
  }

  /** The best current estimate (shortest round trip), or null before the first reply. */
  best(): ClockSample | null {
    let best: ClockSample | null = null;
    for (const sample of this.samples) if (best === null || sample.roundTripMs < best.roundTripMs) best = sample;
    return best;
  }

  /** Server time now, in ms since the Unix epoch (this machine's clock until the first reply). */
  now(): number {
    return this.local() + (this.best()?.offsetMs ?? 0);
  }

  /** Convert a reading of this machine's clock to server time. */
  toServerTime(localMs: number): number {
    return localMs + (this.best()?.offsetMs ?? 0);
  }
}
