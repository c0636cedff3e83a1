/**
 * Live glass-to-glass latency for cameras whose frames carry a timecode (the rover's `meter` source):
 * for every presented frame (requestVideoFrameCallback), read the capture time painted into its top strip
 * and subtract it from the frame's display time, both on the server's clock (ServerClock).
 *
 * Also splits each figure at the moment the frame's last packet arrived (metadata.receiveTime):
 * capture → received is encoder + network; received → displayed is jitter buffer + decode + render.
 */
import type { ServerClock } from '../../protocol/clock.js';
import { readTimecode, timecodeStripHeight } from '../../protocol/timecode.js';

export interface LatencySample {
  /** Capture → display, ms. */
  glassToGlassMs: number;
  /** Capture → last packet received, ms (null when the browser gives no receive time). */
  networkMs: number | null;
  /** Capture time read from the frame (server clock, ms since the epoch). */
  capturedAt: number;
  /** When the frame was shown (server clock, ms since the epoch). */
  displayedAt: number;
}

export interface LatencySummary {
  samples: number;
  p50: number;
  p95: number;
  max: number;
  unreadable: number;
}

const KEEP_SAMPLES = 3_600; // two minutes at 30 fps

type FrameMetadata = { expectedDisplayTime: number; receiveTime?: number; width: number; height: number };
type FrameCallbackVideo = HTMLVideoElement & {
  requestVideoFrameCallback(callback: (now: number, metadata: FrameMetadata) => void): number;
  cancelVideoFrameCallback(handle: number): void;
};

export class LatencyMeter {
  readonly samples: LatencySample[] = [];
  unreadable = 0;
  private readonly canvas = document.createElement('canvas');
  private readonly context = this.canvas.getContext('2d', { willReadFrequently: true });
  private handle: number | null = null;

  constructor(
    private readonly video: HTMLVideoElement,
    private readonly clock: ServerClock,
  ) {}

  /** Whether this browser can measure (requestVideoFrameCallback and a 2D canvas). */
  static supported(video: HTMLVideoElement): boolean {
    return 'requestVideoFrameCallback' in video;
  }

  start(): void {
    if (this.handle !== null || !LatencyMeter.supported(this.video) || !this.context) return;
    const video = this.video as FrameCallbackVideo;
    const onFrame = (_now: number, metadata: FrameMetadata): void => {
      this.measure(metadata);
      this.handle = video.requestVideoFrameCallback(onFrame);
    };
    this.handle = video.requestVideoFrameCallback(onFrame);
  }

  stop(): void {
    if (this.handle !== null) (this.video as FrameCallbackVideo).cancelVideoFrameCallback(this.handle);
    this.handle = null;
  }

  reset(): void {
    this.samples.length = 0;
    this.unreadable = 0;
  }

  /** Order statistics of the samples taken in the last `windowMs` (all kept samples by default). */
  summary(windowMs = Infinity): LatencySummary | null {
    const since = this.clock.now() - windowMs;
    const values = this.samples.filter((s) => s.capturedAt >= since).map((s) => s.glassToGlassMs);
    if (values.length === 0) return null;
    values.sort((a, b) => a - b);
    const pick = (q: number): number => values[Math.min(values.length - 1, Math.floor(q * values.length))]!;
    return { samples: values.length, p50: pick(0.5), p95: pick(0.95), max: values[values.length - 1]!, unreadable: this.unreadable };
  }

  private measure(metadata: FrameMetadata): void {
    const width = metadata.width || this.video.videoWidth;
    const strip = timecodeStripHeight(width);
    if (!this.context || width === 0 || strip === 0) return;
    if (this.canvas.width !== width || this.canvas.height !== strip) {
      this.canvas.width = width;
      this.canvas.height = strip;
    }
    // The strip in the frame's own pixels: the video element's display size does not matter.
    this.context.drawImage(this.video, 0, 0, width, strip, 0, 0, width, strip);
    const capturedAt = readTimecode(this.context.getImageData(0, 0, width, strip).data, width);
    if (capturedAt === null) {
      this.unreadable++;
      return;
    }
    const displayedAt = this.clock.toServerTime(performance.timeOrigin + metadata.expectedDisplayTime);
    const receivedAt = metadata.receiveTime === undefined ? null : this.clock.toServerTime(performance.timeOrigin + metadata.receiveTime);
    this.samples.push({ glassToGlassMs: displayedAt - capturedAt, networkMs: receivedAt === null ? null : receivedAt - capturedAt, capturedAt, displayedAt });
    if (this.samples.length > KEEP_SAMPLES) this.samples.splice(0, this.samples.length - KEEP_SAMPLES);
  }
}
