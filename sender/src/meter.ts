/**
 * The `meter` camera source: synthetic frames painted with their capture time (protocol/timecode.ts),
 * pushed into the pipeline's appsrc at the configured rate. A viewer that reads the code back knows the
 * glass-to-glass latency of every frame: encode + network + jitter buffer + decode + display.
 *
 * Frames carry motion (a moving bar, so the encoder works as it would on a real scene) and the time on
 * the clock the viewer also uses (the server's, see clock.ts), so the figure is right across machines.
 */
import { paintTimecodeI420, timecodeStripHeight } from '../../protocol/timecode.js';

export interface FrameSink {
  push(frame: Buffer): void;
}

export interface MeterOptions {
  width: number;
  height: number;
  fps: number;
  /** Capture clock in ms (Unix epoch, server-corrected). */
  now: () => number;
}

export class MeterSource {
  private readonly frame: Buffer;
  private readonly background: Buffer;
  private timer: NodeJS.Timeout | undefined;
  private nextDue = 0;
  private frameIndex = 0;
  framesPushed = 0;

  constructor(
    private readonly sink: FrameSink,
    private readonly options: MeterOptions,
  ) {
    const { width, height } = options;
    if (width % 2 !== 0 || height % 2 !== 0) throw new RangeError('meter source needs an even width and height');
    if (height <= timecodeStripHeight(width)) throw new RangeError('meter source picture is too small for its timecode');
    this.background = makeBackground(width, height);
    this.frame = Buffer.alloc(this.background.length);
  }

  start(): void {
    if (this.timer) return;
    this.nextDue = performance.now();
    this.tick();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const interval = 1000 / this.options.fps;
    this.pushFrame();
    this.nextDue += interval;
    const now = performance.now();
    // Fell behind (a busy event loop): skip the missed frames rather than send a burst of stale ones.
    if (this.nextDue < now) this.nextDue = now + interval - ((now - this.nextDue) % interval);
    this.timer = setTimeout(() => this.tick(), this.nextDue - now);
  }

  private pushFrame(): void {
    const { width, height } = this.options;
    this.background.copy(this.frame);
    drawMovingBar(this.frame, width, height, this.frameIndex++);
    // Painted last, immediately before the push: the code is the moment the frame enters the pipeline.
    paintTimecodeI420(this.frame, width, height, this.options.now());
    this.sink.push(this.frame);
    this.framesPushed++;
  }
}

/** Grey ramps in luma and soft colour in chroma: some texture for the encoder, cheap to build once. */
function makeBackground(width: number, height: number): Buffer {
  const frame = Buffer.alloc((width * height * 3) / 2);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) frame[y * width + x] = 40 + Math.round((150 * (x + y)) / (width + height));
  }
  const chroma = (width / 2) * (height / 2);
  for (let i = 0; i < chroma; i++) {
    frame[width * height + i] = 110 + ((i >> 4) & 31);
    frame[width * height + chroma + i] = 140 - ((i >> 6) & 31);
  }
  return frame;
}

/** A white bar sweeping across the picture below the code strip, one step per frame. */
function drawMovingBar(frame: Buffer, width: number, height: number, index: number): void {
  const barWidth = Math.max(8, Math.round(width / 40));
  const x0 = (index * Math.max(2, Math.round(width / 120))) % (width - barWidth);
  const top = timecodeStripHeight(width) + 8;
  for (let y = top; y < height; y++) frame.fill(220, y * width + x0, y * width + x0 + barWidth);
}
