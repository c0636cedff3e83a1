/**
 * The page's clients, one per camera (the design: one peer connection per camera per viewer), each
 * remembering its latest stream and stats so a view can show them the moment it opens. Only the cameras
 * on screen are watched; the others keep a presence-only socket, so the rover sends no video nobody sees.
 */
import type { CameraInfo, RoverStatus } from '../../protocol/index.js';
import { RoverViewerClient, type ViewerClientOptions, type ViewerStats } from './client.js';

export type FeedOptions = Omit<ViewerClientOptions, 'cameraId'>;

export class CameraFeed {
  readonly client: RoverViewerClient;
  /** The current call's video, null when not watching or between calls. */
  stream: MediaStream | null = null;
  /** The latest stats sample of the current call. */
  stats: ViewerStats | null = null;
  private watched = false;

  constructor(
    options: FeedOptions,
    cameraId: string,
    watch: boolean,
    onChange: (feed: CameraFeed) => void,
    onRover: (rover: RoverStatus) => void,
  ) {
    this.client = new RoverViewerClient({ ...options, cameraId });
    this.client.on('state', ({ state }) => {
      if (state !== 'live') this.stats = null; // a frozen sample would read as a live figure
      onChange(this);
    });
    this.client.on('stream', ({ stream }) => {
      this.stream = stream;
      onChange(this);
    });
    this.client.on('stats', (stats) => {
      this.stats = stats;
      onChange(this);
    });
    this.client.on('rover', ({ rover }) => onRover(rover));
    // Watching from the start lets the client ask for video in its first exchange with the server.
    this.watched = watch;
    if (watch) this.client.connect();
    else this.client.observe();
  }

  get cameraId(): string {
    return this.client.cameraId;
  }

  get watching(): boolean {
    return this.watched;
  }

  watch(): void {
    if (this.watched) return;
    this.watched = true;
    this.client.connect();
  }

  unwatch(): void {
    if (!this.watched) return;
    this.watched = false;
    this.stream = null;
    this.stats = null;
    this.client.disconnect(); // emits a state change: the views must already see no stream

  }

  close(): void {
    this.client.close();
  }
}

/** Feeds by camera id, created on first use. */
export class CameraPool {
  private readonly feeds = new Map<string, CameraFeed>();

  constructor(
    private readonly options: FeedOptions,
    private readonly onChange: (feed: CameraFeed) => void,
    private readonly onRover: (rover: RoverStatus) => void,
  ) {}

  /** The feed of this camera; a new one starts watching or with presence only, as asked. */
  feed(cameraId: string, watch = false): CameraFeed {
    let feed = this.feeds.get(cameraId);
    if (!feed) {
      feed = new CameraFeed(this.options, cameraId, watch, this.onChange, this.onRover);
      this.feeds.set(cameraId, feed);
    }
    return feed;
  }

  /** The feed of this camera if there is one (never makes a client). */
  existing(cameraId: string): CameraFeed | undefined {
    return this.feeds.get(cameraId);
  }

  /**
   * Point a feed that is not watching yet at another camera (the first client is made before the rover has
   * said which cameras it has). Keeps the client object, so page hooks that hold it stay valid.
   */
  retarget(from: string, to: string): CameraFeed {
    const feed = this.feeds.get(from);
    if (!feed || from === to || this.feeds.has(to)) return this.feed(to);
    feed.client.switchCamera(to);
    this.feeds.delete(from);
    this.feeds.set(to, feed);
    return feed;
  }

  /**
   * Feeds for all of `shown` (made as needed), watching exactly `watched`; the rest keep presence only.
   * Calls that leave the screen end first, so the rover never streams more cameras than this page shows.
   */
  sync(shown: readonly string[], watched: ReadonlySet<string>): void {
    for (const [id, feed] of this.feeds) if (!watched.has(id)) feed.unwatch();
    for (const id of new Set([...shown, ...watched])) {
      const feed = this.feed(id, watched.has(id));
      if (watched.has(id)) feed.watch();
    }
  }

  /** Drop feeds of cameras the rover no longer announces (except `keep`, the one on screen). */
  prune(cameras: readonly CameraInfo[], keep: string): void {
    const announced = new Set(cameras.map((camera) => camera.id));
    for (const [id, feed] of this.feeds) {
      if (announced.has(id) || id === keep) continue;
      feed.close();
      this.feeds.delete(id);
    }
  }

  closeAll(): void {
    for (const feed of this.feeds.values()) feed.close();
  }
}
