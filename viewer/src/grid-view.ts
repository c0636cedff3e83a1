/**
 * The grid: every camera of the rover at once, one tile each with its label, its own state and (with the
 * stats overlay on) its size, rate and bitrate. A tile is a button: click, Enter or Space opens that
 * camera's single view.
 */
import type { CameraInfo } from '../../protocol/index.js';
import type { CameraFeed } from './camera-feed.js';
import { describeCondition, presenceUnknown, STATE_LABELS } from './messages.js';
import { formatTileStats } from './stats-format.js';
import { showStream } from './video.js';

export interface TileContext {
  watching: boolean;
  showStats: boolean;
}

class CameraTile {
  readonly element = document.createElement('div');
  readonly video = document.createElement('video');
  private readonly label = document.createElement('span');
  private readonly size = document.createElement('span');
  private readonly badge = document.createElement('span');
  private readonly stats = document.createElement('div');
  private readonly message = document.createElement('div');
  private readonly messageTitle = document.createElement('strong');
  private readonly messageBody = document.createElement('span');
  private camera: CameraInfo;

  constructor(camera: CameraInfo, onOpen: (cameraId: string) => void) {
    this.camera = camera;
    this.element.className = 'tile';
    this.element.tabIndex = 0;
    this.element.setAttribute('role', 'button');
    this.element.dataset['camera'] = camera.id;
    this.video.muted = true;
    this.video.autoplay = true;
    this.video.playsInline = true;
    this.video.setAttribute('aria-hidden', 'true'); // the tile's label says what it shows
    this.stats.className = 'tile-stats';
    this.message.className = 'tile-message';
    this.message.append(this.messageTitle, this.messageBody);
    this.label.className = 'tile-label';
    this.size.className = 'tile-size';
    this.badge.className = 'state';
    const bar = document.createElement('div');
    bar.className = 'tile-bar';
    bar.append(this.label, this.size, this.badge);
    this.element.append(this.video, this.message, this.stats, bar);

    this.element.addEventListener('click', () => onOpen(this.camera.id));
    this.element.addEventListener('keydown', (event) => {
      if (event.key !== 'Enter' && event.key !== ' ') return;
      event.preventDefault(); // Space would scroll the page
      onOpen(this.camera.id);
    });
    this.describeCamera(camera);
  }

  describeCamera(camera: CameraInfo): void {
    this.camera = camera;
    this.label.textContent = camera.label || camera.id;
    this.size.textContent = `${camera.width}×${camera.height}`;
  }

  render(feed: CameraFeed | undefined, context: TileContext): void {
    const condition = feed
      ? { state: feed.client.state, detail: feed.client.stateDetail, watching: context.watching }
      : { state: 'offline' as const, detail: '', watching: context.watching };
    const unknown = presenceUnknown(condition);
    const stateLabel = unknown ? STATE_LABELS.connecting : STATE_LABELS[condition.state];
    this.element.dataset['state'] = condition.state;
    this.badge.dataset['state'] = unknown ? 'connecting' : condition.state;
    this.badge.textContent = stateLabel;
    const situation = describeCondition(condition);
    this.message.hidden = situation === null;
    this.message.dataset['tone'] = situation?.tone ?? '';
    this.messageTitle.textContent = situation?.title ?? '';
    this.messageBody.textContent = situation?.body ?? '';
    const stats = feed?.stats ?? null;
    this.stats.hidden = !context.showStats || stats === null;
    this.stats.textContent = stats === null ? '' : formatTileStats(stats);
    this.element.setAttribute('aria-label', `${this.camera.label || this.camera.id} camera: ${situation?.title ?? stateLabel}. Open single view.`);
    showStream(this.video, feed?.stream ?? null);
  }
}

export class CameraGrid {
  private readonly tiles = new Map<string, CameraTile>();

  constructor(
    private readonly container: HTMLElement,
    private readonly onOpen: (cameraId: string) => void,
  ) {}

  /** Tiles follow the rover's announced cameras, in its order; existing tiles (and their videos) are kept. */
  setCameras(cameras: readonly CameraInfo[]): void {
    const wanted = new Set(cameras.map((camera) => camera.id));
    for (const [id, tile] of this.tiles) {
      if (wanted.has(id)) continue;
      tile.video.srcObject = null;
      this.tiles.delete(id);
    }
    const ordered = cameras.map((camera) => {
      let tile = this.tiles.get(camera.id);
      if (!tile) this.tiles.set(camera.id, (tile = new CameraTile(camera, this.onOpen)));
      else tile.describeCamera(camera);
      return tile.element;
    });
    // Only when the set or order changed: moving a <video> in the document pauses it.
    const current = [...this.container.children];
    if (current.length !== ordered.length || current.some((child, i) => child !== ordered[i])) this.container.replaceChildren(...ordered);
  }

  render(cameraId: string, feed: CameraFeed | undefined, context: TileContext): void {
    this.tiles.get(cameraId)?.render(feed, context);
  }

  cameraIds(): string[] {
    return [...this.tiles.keys()];
  }

  focus(cameraId: string): void {
    this.tiles.get(cameraId)?.element.focus();
  }

  /** The camera whose tile has keyboard focus, if any. */
  focusedCamera(): string | null {
    for (const [id, tile] of this.tiles) if (tile.element === document.activeElement) return id;
    return null;
  }
}
