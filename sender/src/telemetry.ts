/**
 * TelemetryRelay: telemetry from the rover's program → one message for every viewer.
 *
 * At most TELEMETRY_MAX_HZ per camera (and for rover-wide status): a program publishing faster has its
 * samples coalesced, newest wins, so viewers get fresh data at a steady rate and a chatty program cannot
 * flood the viewers' links. Each message gets a sequence number and a capture time on the server clock
 * (the rover's own clock reading, if the program gave one, converted), so viewers can order samples and
 * line detections up with video frames.
 */
import { MAX_TELEMETRY_BYTES, TELEMETRY_MAX_HZ, type ApiTelemetry, type TelemetryMessage } from '../../protocol/index.js';

export interface TelemetryRelayOptions {
  /** Local clock (Unix ms) → server clock (Unix ms). */
  toServerTime: (localMs: number) => number;
  /** This machine's clock, Unix ms. */
  localNow?: () => number;
  /** A message ready for every viewer (already serialized). */
  publish: (message: TelemetryMessage, serialized: string) => void;
  setTimer?: (callback: () => void, ms: number) => unknown;
}

const MIN_INTERVAL_MS = 1000 / TELEMETRY_MAX_HZ;

export class TelemetryRelay {
  private seq = 0;
  /** Per stream (camera id, or '' for rover-wide): when it last went out, and a sample waiting for its slot. */
  private readonly streams = new Map<string, { sentAt: number; waiting: ApiTelemetry | null; timer: unknown }>();
  private readonly localNow: () => number;
  private readonly setTimer: (callback: () => void, ms: number) => unknown;
  /** Samples dropped because a newer one replaced them before their slot (for logs and tests). */
  coalesced = 0;

  constructor(private readonly options: TelemetryRelayOptions) {
    this.localNow = options.localNow ?? (() => Date.now());
    this.setTimer = options.setTimer ?? ((callback, ms) => setTimeout(callback, ms).unref());
  }

  /** Returns false when the sample is too large to send (the program is told; nothing else happens). */
  submit(sample: ApiTelemetry): boolean {
    if (Buffer.byteLength(this.build(sample, this.seq).text) > MAX_TELEMETRY_BYTES) return false;
    const key = sample.camera ?? '';
    const stream = this.streams.get(key) ?? { sentAt: -Infinity, waiting: null, timer: undefined };
    this.streams.set(key, stream);
    const now = this.localNow();
    const wait = stream.sentAt + MIN_INTERVAL_MS - now;
    if (wait <= 0 && stream.waiting === null) {
      this.send(stream, sample, now);
      return true;
    }
    if (stream.waiting !== null) this.coalesced++;
    stream.waiting = sample;
    stream.timer ??= this.setTimer(() => {
      stream.timer = undefined;
      const waiting = stream.waiting;
      stream.waiting = null;
      if (waiting) this.send(stream, waiting, this.localNow());
    }, Math.max(0, wait));
    return true;
  }

  private send(stream: { sentAt: number }, sample: ApiTelemetry, now: number): void {
    stream.sentAt = now;
    const { message, text } = this.build(sample, this.seq++);
    this.options.publish(message, text);
  }

  private build(sample: ApiTelemetry, seq: number): { message: TelemetryMessage; text: string } {
    const message: TelemetryMessage = {
      type: 'telemetry',
      seq,
      ts: Math.round(this.options.toServerTime(sample.ts ?? this.localNow())),
      ...(sample.camera === undefined ? {} : { camera: sample.camera }),
      ...(sample.detections === undefined ? {} : { detections: sample.detections }),
      ...(sample.status === undefined ? {} : { status: sample.status }),
    };
    return { message, text: JSON.stringify(message) };
  }
}
