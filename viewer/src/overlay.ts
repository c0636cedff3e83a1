/**
 * DetectionOverlay: draws the rover's ML detections (telemetry boxes) over the video, in step with it.
 *
 * Detections are computed on a frame and published later; the data channel is faster than the video's
 * jitter buffer, so a box often arrives before its frame is on screen. Each telemetry sample carries the
 * capture time of the frame it belongs to, and the rover's frame clock maps the RTP timestamp of the frame
 * on screen (requestVideoFrameCallback) to its capture time: the overlay shows the newest sample that is
 * not newer than the frame being shown. Without a frame clock (or RTP timestamps) it shows the newest.
 */
import type { Detection, TelemetryMessage } from '../../protocol/index.js';
import type { RoverViewerClient } from './client.js';

/** A sample older than this relative to the frame on screen is no longer drawn (the model stopped). */
const STALE_AFTER_MS = 1_000;
/** Samples kept waiting for their frame. */
const MAX_PENDING = 90;
/** Capture times within this of the frame's count as that frame (rounding, encoder timing). */
const SAME_FRAME_MS = 20;

interface FrameMetadata {
  rtpTimestamp?: number;
}
type VideoWithFrameCallback = HTMLVideoElement & {
  requestVideoFrameCallback?: (callback: (now: number, metadata: FrameMetadata) => void) => number;
  cancelVideoFrameCallback?: (handle: number) => void;
};

export interface OverlayDraw {
  seq: number;
  /** Capture time of the frame on screen when drawn (null: no frame clock, newest shown). */
  frameCaptureTs: number | null;
  sampleTs: number;
  boxes: number;
}

export class DetectionOverlay {
  /** The latest draw, for tests and diagnostics. */
  lastDraw: OverlayDraw | null = null;
  private pending: TelemetryMessage[] = [];
  private shown: TelemetryMessage | null = null;
  private frameHandle: number | undefined;
  /** What the canvas shows now (sample and size), so an unchanged picture costs nothing per frame. */
  private painted: { sample: TelemetryMessage | null; width: number; height: number; videoWidth: number } | null = null;
  private readonly unsubscribe: () => void;
  private readonly context: CanvasRenderingContext2D | null;

  constructor(
    private readonly video: VideoWithFrameCallback,
    private readonly canvas: HTMLCanvasElement,
    private readonly client: RoverViewerClient,
  ) {
    this.context = canvas.getContext('2d');
    this.unsubscribe = client.on('telemetry', (message) => this.onTelemetry(message));
    this.scheduleFrame();
  }

  /** Forget what was drawn (camera switched, disconnected). */
  clear(): void {
    this.pending = [];
    this.shown = null;
    this.draw(null, null);
  }

  close(): void {
    this.unsubscribe();
    if (this.frameHandle !== undefined) this.video.cancelVideoFrameCallback?.(this.frameHandle);
    this.clear();
  }

  private onTelemetry(message: TelemetryMessage): void {
    if (message.detections === undefined || (message.camera !== undefined && message.camera !== this.client.cameraId)) return;
    this.pending.push(message);
    if (this.pending.length > MAX_PENDING) this.pending.shift();
    // Without frame callbacks there is no frame to wait for.
    if (!this.video.requestVideoFrameCallback) this.onFrame(undefined);
  }

  private scheduleFrame(): void {
    if (!this.video.requestVideoFrameCallback) return;
    this.frameHandle = this.video.requestVideoFrameCallback((_now, metadata) => {
      this.onFrame(metadata.rtpTimestamp);
      this.scheduleFrame();
    });
  }

  private onFrame(rtpTimestamp: number | undefined): void {
    const frameTs = rtpTimestamp === undefined ? null : this.client.captureTimeOfRtp(rtpTimestamp);
    // The newest sample not newer than the frame on screen (all of them without a frame clock).
    let next: TelemetryMessage | null = null;
    const waiting: TelemetryMessage[] = [];
    for (const sample of this.pending) {
      if (frameTs === null || sample.ts <= frameTs + SAME_FRAME_MS) {
        if (next === null || sample.seq > next.seq) next = sample;
      } else {
        waiting.push(sample);
      }
    }
    this.pending = waiting;
    if (next) this.shown = next;
    if (this.shown && frameTs !== null && frameTs - this.shown.ts > STALE_AFTER_MS) this.shown = null;
    this.draw(this.shown, frameTs);
  }

  private draw(sample: TelemetryMessage | null, frameTs: number | null): void {
    const context = this.context;
    if (!context) return;
    const { clientWidth, clientHeight } = this.canvas;
    const painted = this.painted;
    if (painted && painted.sample === sample && painted.width === clientWidth && painted.height === clientHeight && painted.videoWidth === this.video.videoWidth) return;
    this.painted = { sample, width: clientWidth, height: clientHeight, videoWidth: this.video.videoWidth };
    const scale = globalThis.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(clientWidth * scale) || this.canvas.height !== Math.round(clientHeight * scale)) {
      this.canvas.width = Math.round(clientWidth * scale);
      this.canvas.height = Math.round(clientHeight * scale);
    }
    context.setTransform(scale, 0, 0, scale, 0, 0);
    context.clearRect(0, 0, clientWidth, clientHeight);
    const detections = sample?.detections ?? [];
    if (sample) this.lastDraw = { seq: sample.seq, frameCaptureTs: frameTs, sampleTs: sample.ts, boxes: detections.length };
    if (detections.length === 0) return;
    const picture = contentRect(this.video, clientWidth, clientHeight);
    context.lineWidth = 2;
    context.font = '600 13px system-ui, sans-serif';
    context.textBaseline = 'bottom';
    for (const detection of detections) drawDetection(context, detection, picture);
  }
}

/** Where the picture is inside the element (object-fit: contain letterboxes it). */
function contentRect(video: HTMLVideoElement, width: number, height: number): { x: number; y: number; width: number; height: number } {
  const videoWidth = video.videoWidth || width;
  const videoHeight = video.videoHeight || height;
  const scale = Math.min(width / videoWidth, height / videoHeight);
  const w = videoWidth * scale;
  const h = videoHeight * scale;
  return { x: (width - w) / 2, y: (height - h) / 2, width: w, height: h };
}

function drawDetection(context: CanvasRenderingContext2D, detection: Detection, picture: { x: number; y: number; width: number; height: number }): void {
  const [bx, by, bw, bh] = detection.box;
  const x = picture.x + bx * picture.width;
  const y = picture.y + by * picture.height;
  const w = Math.min(bw, 1 - bx) * picture.width;
  const h = Math.min(bh, 1 - by) * picture.height;
  const color = colorFor(detection.label);
  context.strokeStyle = color;
  context.strokeRect(x, y, w, h);
  const text = `${detection.label} ${Math.round(detection.score * 100)}%`;
  const textWidth = context.measureText(text).width + 8;
  const labelY = y >= 18 ? y : y + 18;
  context.fillStyle = color;
  context.fillRect(x - 1, labelY - 18, textWidth, 18);
  context.fillStyle = '#000';
  context.fillText(text, x + 3, labelY - 2);
}

/** A stable, readable color per label. */
function colorFor(label: string): string {
  let hash = 0;
  for (const char of label) hash = (hash * 31 + char.charCodeAt(0)) | 0;
  return `hsl(${Math.abs(hash) % 360} 90% 55%)`;
}
