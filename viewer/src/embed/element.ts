/**
 * <rover-stream server rover camera token autoconnect>: one rover camera, live, in any page or webview.
 * A thin DOM shell around RoverViewerClient: a muted inline <video>, a status line in words while not
 * live, and the client's events re-dispatched as DOM CustomEvents (events.ts).
 *
 * Attributes: `rover` (required), `server` (default: the origin this script came from), `camera` (switches
 * without reconnecting), `token` (or the `token` property, which also takes a function and stays out of the
 * DOM), `autoconnect="false"` (only watch presence until connect() is called), `detections="off"` (do not
 * draw the rover's ML detections over the video; drawn by default, in step with the frames, overlay.ts).
 */
import { DEFAULT_CAMERA_ID, isValidRoverId, type RoverStatus } from '../../../protocol/index.js';
import { RoverViewerClient, type ControlStatus, type ViewerClientOptions, type ViewerState, type ViewerStats } from '../client.js';
import { DetectionOverlay } from '../overlay.js';
import type { RoverStreamEventDetail, RoverStreamEventName } from './events.js';

/** A viewer token, or a function asked for one before every connection (e.g. fetched from the app's backend). */
export type TokenSource = NonNullable<ViewerClientOptions['accessToken']>;

const STATE_LABELS: Record<ViewerState, string> = {
  offline: 'Rover offline',
  waiting: 'Rover online',
  connecting: 'Connecting…',
  live: 'Live',
  failed: 'Failed',
};

const NO_CONTROL: ControlStatus = { holder: 'none', canControl: false, detail: '' };

/** Where this script was loaded from: the natural default server when a page includes it from the Worker. */
const SCRIPT_ORIGIN = ((): string | null => {
  try {
    const origin = new URL(import.meta.url).origin;
    return /^https?:/.test(origin) ? origin : null;
  } catch {
    return null;
  }
})();

const STYLES = `
:host { display: block; position: relative; overflow: hidden; background: #000; aspect-ratio: 16 / 9; contain: content; }
:host([hidden]) { display: none; }
video { display: block; width: 100%; height: 100%; object-fit: contain; background: #000; }
canvas { position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none; }
:host([detections='off']) canvas { display: none; }
.status { position: absolute; inset: auto 0 0 0; margin: 0; padding: 0.4em 0.7em; color: #fff; background: rgb(0 0 0 / 0.65);
  font: 13px/1.35 system-ui, sans-serif; }
.status[data-state='live'] { display: none; }
.status[data-state='failed'] { background: rgb(140 20 20 / 0.9); }
.label { font-weight: 600; }
`;

/** Constructed stylesheets are not inline styles: they pass a page's `style-src 'self'` CSP. */
function adoptStyles(root: ShadowRoot): void {
  if ('adoptedStyleSheets' in root && typeof CSSStyleSheet.prototype.replaceSync === 'function') {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLES);
    root.adoptedStyleSheets = [sheet];
  } else {
    const style = document.createElement('style');
    style.textContent = STYLES;
    root.append(style);
  }
}

export class RoverStreamElement extends HTMLElement {
  static readonly observedAttributes = ['server', 'rover', 'camera', 'token'];

  /** The <video> inside the shadow root (for snapshots, requestVideoFrameCallback, picture-in-picture…). */
  readonly video: HTMLVideoElement;
  #state: ViewerState = 'offline';
  #stateDetail = '';
  #client: RoverViewerClient | null = null;
  #unsubscribe: (() => void)[] = [];
  #token: TokenSource | undefined;
  /** Whether video is wanted: null until first attached (then from `autoconnect`), then connect()/disconnect(). */
  #wantVideo: boolean | null = null;
  #rebuildQueued = false;
  readonly #status: HTMLElement;
  readonly #statusLabel: HTMLElement;
  readonly #statusDetail: HTMLElement;
  readonly #detections: HTMLCanvasElement;
  #overlay: DetectionOverlay | null = null;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    adoptStyles(root);
    this.video = document.createElement('video');
    this.video.part.add('video');
    // Autoplay without a click needs muted + playsinline (iOS, Tauri's WebKit); rover video has no audio.
    this.video.muted = true;
    this.video.autoplay = true;
    this.video.playsInline = true;
    this.video.setAttribute('muted', '');
    this.video.setAttribute('playsinline', '');
    this.#status = document.createElement('p');
    this.#status.className = 'status';
    this.#status.part.add('status');
    this.#status.setAttribute('role', 'status');
    this.#status.setAttribute('aria-live', 'polite');
    this.#statusLabel = document.createElement('span');
    this.#statusLabel.className = 'label';
    this.#statusDetail = document.createElement('span');
    this.#status.append(this.#statusLabel, this.#statusDetail);
    this.#detections = document.createElement('canvas');
    this.#detections.part.add('detections');
    root.append(this.video, this.#detections, this.#status);
    this.#render();
  }

  // ---------------------------------------------------------------- public API

  /** offline · waiting (rover online, not watching) · connecting · live · failed. */
  get state(): ViewerState {
    return this.#state;
  }

  /** Why, in words (the same text the status line shows). */
  get stateDetail(): string {
    return this.#stateDetail;
  }

  /** The connection in use (null while detached, without a rover, or after a refusal). */
  get client(): RoverViewerClient | null {
    return this.#client;
  }

  /** The detection overlay of the current connection (its `lastDraw` says what is on screen). */
  get overlay(): DetectionOverlay | null {
    return this.#overlay;
  }

  /** Who holds the control lease, as this viewer sees it. */
  get control(): ControlStatus {
    return this.#client?.control ?? NO_CONTROL;
  }

  get rover(): string {
    return this.getAttribute('rover') ?? '';
  }
  set rover(value: string) {
    this.setAttribute('rover', value);
  }

  get server(): string {
    return this.getAttribute('server') ?? '';
  }
  set server(value: string) {
    this.setAttribute('server', value);
  }

  get camera(): string {
    return this.getAttribute('camera') ?? this.#client?.cameraId ?? DEFAULT_CAMERA_ID;
  }
  set camera(value: string) {
    this.setAttribute('camera', value);
  }

  /**
   * The viewer token. Setting it here keeps it out of the DOM (attributes are visible to every script and
   * to devtools); a function is asked again before every connection. Changing it reconnects.
   */
  get token(): TokenSource | undefined {
    return this.#token;
  }
  set token(value: TokenSource | null | undefined) {
    if (value === this.#token || (value === null && this.#token === undefined)) return;
    this.#token = value ?? undefined;
    this.#queueRebuild();
  }

  /** Ask the rover for video (and keep asking across reconnects). */
  connect(): void {
    this.#wantVideo = true;
    if (this.#client) this.#client.connect();
    else this.#queueRebuild();
  }

  /** Stop the video call; presence stays known (state "waiting" or "offline"). */
  disconnect(): void {
    this.#wantVideo = false;
    this.#client?.disconnect();
    this.video.srcObject = null;
  }

  /** Ask for the control lease; the answer comes as a `rover-control` event. Needs a token allowing control. */
  requestControl(): void {
    this.#client?.requestControl();
  }

  releaseControl(): void {
    this.#client?.releaseControl();
  }

  /** Send a command to the rover's program; false (nothing sent) unless this viewer holds the lease and is live. */
  sendControl(command: Record<string, unknown>): boolean {
    return this.#client?.sendControl(command) ?? false;
  }

  // ---------------------------------------------------------------- lifecycle

  connectedCallback(): void {
    this.#wantVideo ??= this.getAttribute('autoconnect') !== 'false';
    this.#queueRebuild();
  }

  disconnectedCallback(): void {
    this.#closeClient();
    this.#setState('offline', 'removed from the page');
  }

  attributeChangedCallback(name: string, oldValue: string | null, newValue: string | null): void {
    if (oldValue === newValue) return;
    if (name === 'token') {
      this.token = newValue;
    } else if (name === 'camera') {
      // Another camera of the same rover: a new call on the same signaling connection.
      this.#client?.switchCamera(newValue ?? DEFAULT_CAMERA_ID);
      this.#overlay?.clear();
    } else {
      this.#queueRebuild();
    }
  }

  // ---------------------------------------------------------------- internals

  /** Several attributes are often set in one go (or parsed before attach): build one client for all of them. */
  #queueRebuild(): void {
    if (this.#rebuildQueued) return;
    this.#rebuildQueued = true;
    queueMicrotask(() => {
      this.#rebuildQueued = false;
      this.#rebuild();
    });
  }

  #rebuild(): void {
    this.#closeClient();
    if (!this.isConnected) return;
    const roverId = this.rover;
    if (roverId === '') return this.#setState('offline', 'no rover chosen (set the rover attribute)');
    if (!isValidRoverId(roverId)) return this.#setState('failed', `"${roverId}" is not a valid rover id`);
    const server = this.#resolveServer();
    if (server === null) return this.#setState('failed', 'set the server attribute to the rover server\'s address (https://…)');

    const client = new RoverViewerClient({ server, roverId, cameraId: this.getAttribute('camera') ?? undefined, accessToken: this.#token });
    this.#client = client;
    this.#unsubscribe = [
      // A refused page (origin not in ALLOWED_ORIGINS, a bad token) ends in "failed" with the reason: the
      // client asks the server's /access, which answers other origins too.
      client.on('state', ({ state, detail }) => this.#setState(state, detail)),
      client.on('stream', ({ stream }) => {
        this.video.srcObject = stream;
        // Muted video may autoplay; a refusal only happens in unusual embeddings and the next frame retries.
        void this.video.play().catch(() => undefined);
      }),
      client.on('rover', ({ rover }) => this.#emit('rover-status', rover satisfies RoverStatus)),
      client.on('stats', (stats) => this.#emit('rover-stats', stats satisfies ViewerStats)),
      client.on('telemetry', (telemetry) => this.#emit('rover-telemetry', telemetry)),
      client.on('control', (control) => this.#emit('rover-control', control)),
    ];
    if (this.getAttribute('detections') !== 'off') this.#overlay = new DetectionOverlay(this.video, this.#detections, client);
    this.#setState('connecting', 'connecting to the server…');
    if (this.#wantVideo) client.connect();
    else client.observe();
  }

  #closeClient(): void {
    this.#overlay?.close();
    this.#overlay = null;
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    this.#client?.close();
    this.#client = null;
    this.video.srcObject = null;
  }

  #resolveServer(): string | null {
    const attribute = this.getAttribute('server');
    if (attribute === null || attribute === '') return SCRIPT_ORIGIN ?? (/^https?:/.test(location.origin) ? location.origin : null);
    try {
      return new URL(attribute, location.href).toString();
    } catch {
      return null;
    }
  }

  #setState(state: ViewerState, detail: string): void {
    if (state === this.#state && detail === this.#stateDetail) return;
    this.#state = state;
    this.#stateDetail = detail;
    this.#render();
    this.#emit('rover-state', { state, detail });
  }

  #render(): void {
    this.#status.dataset['state'] = this.#state;
    this.#statusLabel.textContent = STATE_LABELS[this.#state];
    this.#statusDetail.textContent = this.#stateDetail ? ` · ${this.#stateDetail}` : '';
  }

  #emit<K extends RoverStreamEventName>(name: K, detail: RoverStreamEventDetail<K>): void {
    this.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, composed: true }));
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'rover-stream': RoverStreamElement;
  }
}
