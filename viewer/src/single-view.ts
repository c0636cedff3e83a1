/**
 * The single view: one camera large, with its state and any problem in words over the video, the stats
 * overlay, glass-to-glass latency when the camera stamps its frames, the camera picker and snapshots.
 */
import type { CameraInfo } from '../../protocol/index.js';
import type { CameraFeed } from './camera-feed.js';
import type { RoverViewerClient } from './client.js';
import { element } from './dom.js';
import { LatencyMeter } from './latency.js';
import { describeCondition, type Situation } from './messages.js';
import { formatPath, formatStatsLine } from './stats-format.js';
import { DetectionOverlay } from './overlay.js';
import { showStream } from './video.js';

export interface SingleViewContext {
  watching: boolean;
  showStats: boolean;
}

/** Test and embedding hooks: automation reads the single view's client and latency meter. */
interface ViewerHooks {
  roverViewer?: RoverViewerClient;
  roverLatency?: LatencyMeter;
  roverOverlay?: DetectionOverlay;
}

/** The message over a video area (single view stage): title and a sentence or two, coloured by tone. */
export class StageMessage {
  private readonly box = element<HTMLElement>('message');
  private readonly title = element<HTMLElement>('message-title');
  private readonly body = element<HTMLElement>('message-body');

  show(situation: Situation | null): void {
    this.box.hidden = situation === null;
    this.box.dataset['tone'] = situation?.tone ?? '';
    this.title.textContent = situation?.title ?? '';
    this.body.textContent = situation?.body ?? '';
  }
}

export class SingleView {
  readonly video = element<HTMLVideoElement>('video');
  readonly stage = element<HTMLElement>('stage');
  readonly message = new StageMessage();
  private readonly stateDetail = element<HTMLElement>('state-detail');
  private readonly overlay = element<HTMLElement>('stats-overlay');
  private readonly statsLine = element<HTMLElement>('stats');
  private readonly pathBadge = element<HTMLElement>('path');
  private readonly latencyBadge = element<HTMLElement>('latency');
  private readonly picker = element<HTMLSelectElement>('camera');
  private readonly detections = element<HTMLCanvasElement>('detections');
  private readonly roverStatus = element<HTMLElement>('rover-status');
  private feed: CameraFeed | null = null;
  private latency: LatencyMeter | null = null;
  private detectionOverlay: DetectionOverlay | null = null;
  private unsubscribeStatus: (() => void) | null = null;
  private cameras: readonly CameraInfo[] = [];

  constructor(
    private readonly roverId: string,
    onPick: (cameraId: string) => void,
  ) {
    this.picker.addEventListener('change', () => onPick(this.picker.value));
  }

  /**
   * Show this camera's feed; the page hooks follow it (window.roverViewer is the single view's client). Each
   * feed gets a fresh latency meter: its clock and its figures belong to that camera's call.
   */
  attach(feed: CameraFeed): void {
    if (this.feed === feed) return;
    this.latency?.stop();
    this.feed = feed;
    this.latency = new LatencyMeter(this.video, feed.client.clock);
    this.detectionOverlay?.close();
    this.detectionOverlay = new DetectionOverlay(this.video, this.detections, feed.client);
    this.unsubscribeStatus?.();
    this.roverStatus.hidden = true;
    this.unsubscribeStatus = feed.client.on('telemetry', (message) => {
      if (message.status) this.showRoverStatus(message.status);
    });
    const hooks = window as unknown as ViewerHooks;
    hooks.roverViewer = feed.client;
    hooks.roverLatency = this.latency;
    hooks.roverOverlay = this.detectionOverlay;
    this.updatePicker();
  }

  /** The rover's own status values (battery, speed…), as the latest telemetry says. */
  private showRoverStatus(status: Record<string, string | number | boolean | null>): void {
    const entries = Object.entries(status).slice(0, 8);
    this.roverStatus.replaceChildren(
      ...entries.map(([key, value]) => {
        const chip = document.createElement('span');
        chip.dataset['key'] = key;
        chip.textContent = `${key} ${formatStatusValue(key, value)}`;
        return chip;
      }),
    );
    this.roverStatus.hidden = entries.length === 0;
  }

  get cameraId(): string | null {
    return this.feed?.cameraId ?? null;
  }

  /** The picker lists the rover's cameras; hidden when there is nothing else to pick. */
  setCameras(cameras: readonly CameraInfo[]): void {
    this.cameras = cameras;
    const signature = JSON.stringify(cameras.map((camera) => [camera.id, camera.label, camera.width, camera.height]));
    if (this.picker.dataset['cameras'] !== signature) {
      this.picker.dataset['cameras'] = signature;
      this.picker.replaceChildren(
        ...cameras.map((camera) => {
          const option = document.createElement('option');
          option.value = camera.id;
          option.textContent = `${camera.label} (${camera.width}×${camera.height})`;
          return option;
        }),
      );
    }
    this.updatePicker();
  }

  private updatePicker(): void {
    const current = this.feed?.cameraId ?? '';
    this.picker.value = current;
    // Shown with one camera too when the address asked for one the rover does not have: the way out.
    this.picker.hidden = this.cameras.length === 0 || (this.cameras.length < 2 && this.cameras.some((camera) => camera.id === current));
  }

  render(context: SingleViewContext): void {
    const feed = this.feed;
    if (!feed || !this.latency) return;
    const client = feed.client;
    showStream(this.video, feed.stream);
    const situation = describeCondition({ state: client.state, detail: client.stateDetail, watching: context.watching });
    this.message.show(situation);
    // The raw line stays readable for scripts; on screen the message over the video says it in better words.
    this.stateDetail.textContent = client.stateDetail;
    this.stateDetail.hidden = situation !== null;

    const live = client.state === 'live';
    this.statsLine.textContent = live && feed.stats ? formatStatsLine(feed.stats) : '';
    const path = live ? client.path : null;
    this.pathBadge.hidden = path === null;
    this.pathBadge.dataset['path'] = path?.kind ?? '';
    this.pathBadge.textContent = path === null ? '' : formatPath(path);
    this.pathBadge.title = path === null ? '' : `ICE pair: ${path.local} → ${path.remote}`;

    // Glass-to-glass latency, read from frames when the camera stamps them (the rover's `meter` source).
    const timecoded = live && client.camera?.timecode === true;
    if (timecoded) this.latency.start();
    else this.latency.stop();
    const recent = timecoded ? this.latency.summary(2_000) : null;
    this.latencyBadge.hidden = recent === null;
    this.latencyBadge.textContent = recent === null ? '' : `Glass-to-glass ${Math.round(recent.p50)} ms`;
    this.latencyBadge.title =
      recent === null ? '' : `last 2 s: median ${recent.p50.toFixed(0)} ms, p95 ${recent.p95.toFixed(0)} ms, worst ${recent.max.toFixed(0)} ms (${recent.samples} frames)`;

    this.overlay.hidden = !context.showStats || this.statsLine.textContent === '';
  }

  /** The current frame at its full resolution, as a PNG download. */
  snapshot(): void {
    const video = this.video;
    if (video.videoWidth === 0 || !this.feed) return;
    const cameraId = this.feed.cameraId;
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d')?.drawImage(video, 0, 0);
    canvas.toBlob((blob) => {
      if (!blob) return;
      const link = document.createElement('a');
      link.href = URL.createObjectURL(blob);
      link.download = `${this.roverId}-${cameraId}-${new Date().toISOString().replace(/[:.]/g, '-')}.png`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    }, 'image/png');
  }
}

/** Status values as a person reads them: a battery fraction as a percentage, numbers briefly. */
function formatStatusValue(key: string, value: string | number | boolean | null): string {
  if (typeof value === 'number') {
    if (/battery|charge/i.test(key) && value >= 0 && value <= 1) return `${Math.round(value * 100)}%`;
    return Number.isInteger(value) ? String(value) : value.toFixed(2);
  }
  if (value === null) return '–';
  return String(value);
}
