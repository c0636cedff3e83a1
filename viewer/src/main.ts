/**
 * Hosted viewer page glue (rover.html): a grid of every camera of the rover, or one camera large (the single
 * view), with the connection state and any problem in words over the video, a stats overlay and keyboard
 * shortcuts. One RoverViewerClient per camera (camera-feed.ts); only the cameras on screen are watched.
 */
import { DEFAULT_CAMERA_ID, isValidRoverId, type CameraInfo, type RoverStatus } from '../../protocol/index.js';
import { CameraPool, type CameraFeed } from './camera-feed.js';
import { ControlPanel } from './control-panel.js';
import { element, isTypingTarget } from './dom.js';
import { CameraGrid } from './grid-view.js';
import { rememberedToken, rememberLink } from './links.js';
import { describeCondition, presenceUnknown, STATE_LABELS, type FeedCondition, type Situation } from './messages.js';
import { readRoute, routeUrl, type ViewMode } from './route.js';
import { SingleView, StageMessage } from './single-view.js';
import { missingBrowserFeatures, unsupportedBrowserMessage } from './support.js';

const STATS_PREFERENCE_KEY = 'rover-live:stats-overlay';

const roverId = decodeURIComponent(location.pathname.split('/')[2] ?? '');
element<HTMLElement>('rover-name').textContent = roverId;
document.title = `${roverId} · Rover Live`;

const missingFeatures = missingBrowserFeatures();
if (!isValidRoverId(roverId)) {
  showPageFailure('Failed', { tone: 'error', title: 'Not a rover address', body: 'This address does not name a valid rover.' });
} else if (missingFeatures.length > 0) {
  showPageFailure('Unsupported browser', { tone: 'error', ...unsupportedBrowserMessage(missingFeatures) });
} else {
  startViewer(roverId);
}

/** Nothing can be watched on this page: say why where the video would be, and leave the controls inert. */
function showPageFailure(badgeText: string, situation: Situation): void {
  const badge = element<HTMLElement>('state');
  badge.dataset['state'] = 'failed';
  badge.textContent = badgeText;
  const detail = element<HTMLElement>('state-detail');
  detail.textContent = situation.body;
  detail.hidden = true; // the message over the video says it
  new StageMessage().show(situation);
  for (const id of ['connect', 'snapshot', 'fullscreen', 'stats-toggle']) element<HTMLButtonElement>(id).disabled = true;
  document.querySelector<HTMLElement>('.shortcuts')?.setAttribute('hidden', ''); // no keys to offer
  document.body.dataset['view'] = 'single';
}

function startViewer(roverId: string): void {
  const route = readRoute(location.search);
  const badge = element<HTMLElement>('state');
  const connectButton = element<HTMLButtonElement>('connect');
  const gridButton = element<HTMLButtonElement>('grid-button');
  const statsToggle = element<HTMLButtonElement>('stats-toggle');
  const snapshotButton = element<HTMLButtonElement>('snapshot');
  const singleSection = element<HTMLElement>('single-view');
  const gridSection = element<HTMLElement>('grid-view');
  const gridEmpty = element<HTMLElement>('grid-empty');

  /** Whether this page asked for video (Connect, or ?autoconnect=1). */
  let watching = route.autoconnect;
  let view: ViewMode = route.view ?? 'single';
  /** The rover's cameras as last announced (kept while it is offline, so the grid keeps its tiles). */
  let cameras: CameraInfo[] = [];
  /** The camera of the single view: the one asked for, else "main" until the rover lists its cameras. */
  let singleCamera = route.camera ?? DEFAULT_CAMERA_ID;
  /** Whether singleCamera is known to be right: asked for in the address, or chosen from the rover's list. */
  let cameraSettled = route.camera !== null;
  let showStats = readStatsPreference();

  const pool = new CameraPool(
    { server: location.origin, roverId, relayOnly: route.relayOnly, accessToken: takeAccessToken(roverId) },
    () => render(),
    (rover) => onRover(rover),
  );
  const single = new SingleView(roverId, (cameraId) => pickCamera(cameraId));
  const grid = new CameraGrid(element<HTMLElement>('grid'), (cameraId) => openSingle(cameraId));
  // The first client: it learns the rover's cameras, and asks for video at once when the camera is known.
  single.attach(pool.feed(singleCamera, watching && cameraSettled));
  // Take control and drive (links with the control permission): follows the camera on screen.
  const controlPanel = new ControlPanel(pool.feed(singleCamera).client);
  element<HTMLElement>('control-slot').replaceWith(controlPanel.element);

  function onRover(rover: RoverStatus): void {
    const signature = JSON.stringify(rover.cameras);
    if (rover.cameras.length > 0 && signature !== JSON.stringify(cameras)) {
      cameras = rover.cameras;
      if (!cameraSettled) {
        const chosen = cameras.some((camera) => camera.id === DEFAULT_CAMERA_ID) ? DEFAULT_CAMERA_ID : cameras[0]!.id;
        single.attach(pool.retarget(singleCamera, chosen));
        singleCamera = chosen;
        cameraSettled = true;
        // Single view is the default for one camera; several are shown side by side unless asked otherwise.
        if (route.view === null) view = cameras.length > 1 ? 'grid' : 'single';
      }
      single.setCameras(cameras);
      grid.setCameras(cameras);
      pool.prune(cameras, singleCamera);
    }
    // Deferred: a client already watching asks for video itself right after this event; watching from
    // inside the event would ask twice.
    queueMicrotask(apply);
  }

  /** Make the feeds (which cameras are watched) and the visible view agree with the page's state. */
  function apply(): void {
    const gridCameras = view === 'grid' ? cameras.map((camera) => camera.id) : [];
    const watched = new Set<string>();
    if (watching && cameraSettled) {
      if (view === 'single') watched.add(singleCamera);
      else for (const id of gridCameras) watched.add(id);
    }
    pool.sync(gridCameras, watched);
    single.attach(pool.feed(singleCamera));
    document.body.dataset['view'] = view;
    singleSection.hidden = view !== 'single';
    gridSection.hidden = view !== 'grid';
    render();
  }

  function render(): void {
    const singleFeed = pool.feed(singleCamera);
    controlPanel.bind(singleFeed.client);
    single.render({ watching, showStats });
    for (const id of grid.cameraIds()) grid.render(id, pool.existing(id), { watching, showStats });
    const gridSituation = describeCondition(conditionOf(singleFeed));
    gridEmpty.hidden = view !== 'grid' || cameras.length > 0;
    gridEmpty.textContent = gridSituation ? `${gridSituation.title}. ${gridSituation.body}` : 'Waiting for the rover to list its cameras…';
    const gridFeeds = cameras.flatMap((camera) => pool.existing(camera.id) ?? []);
    renderBadge(view === 'grid' && gridFeeds.length > 0 ? gridFeeds : [singleFeed]);
    connectButton.textContent = watching ? 'Disconnect' : 'Connect';
    snapshotButton.disabled = singleFeed.client.state !== 'live';
    gridButton.hidden = view === 'grid' || !gridAvailable();
    document.body.dataset['grid'] = String(gridAvailable()); // shows the grid's keys in the hint line
    statsToggle.setAttribute('aria-pressed', String(showStats));
  }

  function conditionOf(feed: CameraFeed): FeedCondition {
    return { state: feed.client.state, detail: feed.client.stateDetail, watching };
  }

  /** The header badge: the single view's state, or in the grid how many cameras play. */
  function renderBadge(feeds: CameraFeed[]): void {
    const first = feeds[0]!;
    const live = feeds.filter((feed) => feed.client.state === 'live').length;
    if (feeds.length > 1 && live > 0) {
      badge.dataset['state'] = 'live';
      badge.textContent = live === feeds.length ? `Live · ${live} cameras` : `Live · ${live} of ${feeds.length} cameras`;
      return;
    }
    const unknown = presenceUnknown(conditionOf(first));
    badge.dataset['state'] = unknown ? 'connecting' : first.client.state;
    badge.textContent = unknown ? STATE_LABELS.connecting : STATE_LABELS[first.client.state];
  }

  function gridAvailable(): boolean {
    return cameras.length > 1 || route.view === 'grid';
  }

  function openSingle(cameraId: string): void {
    view = 'single';
    singleCamera = cameraId;
    cameraSettled = true;
    history.pushState(null, '', routeUrl(location.href, 'single', cameraId));
    apply();
    // The tile that had focus is gone from view: keep keyboard users next to the way back.
    if (!gridButton.hidden) gridButton.focus();
  }

  function openGrid(): void {
    if (!gridAvailable()) return;
    const from = singleCamera;
    view = 'grid';
    history.pushState(null, '', routeUrl(location.href, 'grid', null));
    apply();
    grid.focus(from);
  }

  function pickCamera(cameraId: string): void {
    singleCamera = cameraId;
    cameraSettled = true;
    history.replaceState(null, '', routeUrl(location.href, 'single', cameraId));
    apply();
  }

  // Back and forward move between the views the person opened.
  addEventListener('popstate', () => {
    const next = readRoute(location.search);
    if (next.camera !== null) {
      singleCamera = next.camera;
      cameraSettled = true;
    }
    view = next.view ?? (next.camera !== null || cameras.length < 2 ? 'single' : 'grid');
    apply();
  });

  connectButton.addEventListener('click', () => {
    watching = !watching;
    apply();
  });
  gridButton.addEventListener('click', openGrid);
  snapshotButton.addEventListener('click', () => single.snapshot());

  const toggleStats = (): void => {
    showStats = !showStats;
    saveStatsPreference(showStats);
    render();
  };
  statsToggle.addEventListener('click', toggleStats);

  // Fullscreen: the video stage in the single view (its overlays come along), the whole grid otherwise.
  const toggleFullscreen = (): void => {
    if (document.fullscreenElement) {
      void document.exitFullscreen();
      return;
    }
    const target = view === 'single' ? single.stage : gridSection;
    if (typeof target.requestFullscreen === 'function') {
      void target.requestFullscreen().catch(() => undefined);
      return;
    }
    // iPhone Safari: only a <video> itself can go fullscreen (without our overlays).
    const video = single.video as HTMLVideoElement & { webkitEnterFullscreen?: () => void };
    if (view === 'single') video.webkitEnterFullscreen?.();
  };
  element<HTMLButtonElement>('fullscreen').addEventListener('click', toggleFullscreen);

  addEventListener('keydown', (event) => {
    // Leave the browser's own shortcuts (Ctrl+F …) and anything typed into a field alone.
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || isTypingTarget(event.target)) return;
    switch (event.key) {
      case 'f':
      case 'F':
        toggleFullscreen();
        break;
      case 'i':
      case 'I':
        toggleStats();
        break;
      case 'g':
      case 'G':
        if (view === 'grid') openSingle(grid.focusedCamera() ?? singleCamera);
        else openGrid();
        break;
      case 'Escape':
        // In fullscreen, Escape belongs to the browser (it leaves fullscreen).
        if (view === 'single' && !document.fullscreenElement) openGrid();
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  addEventListener('pagehide', () => pool.closeAll());
  apply();
}

function readStatsPreference(): boolean {
  try {
    return localStorage.getItem(STATS_PREFERENCE_KEY) !== 'off';
  } catch {
    return true;
  }
}

function saveStatsPreference(show: boolean): void {
  try {
    localStorage.setItem(STATS_PREFERENCE_KEY, show ? 'on' : 'off');
  } catch {
    // Storage disabled: the choice lasts for this page view.
  }
}

/**
 * The viewer token arrives in the link's fragment (#access=…), which browsers never send to servers.
 * Take it out of the address bar (so it is not shared by copying the URL or kept in history), keep it for
 * this tab (sessionStorage survives a reload) and remember it on this device until it expires, so the home
 * page can list this rover with its presence and reopen it (links.ts).
 */
function takeAccessToken(forRover: string): string | undefined {
  const key = `rover-live:access:${forRover}`;
  const fragment = new URLSearchParams(location.hash.slice(1)).get('access');
  if (fragment) {
    rememberLink(forRover, fragment); // listed on the home page, with presence
    try {
      sessionStorage.setItem(key, fragment);
    } catch {
      // Storage disabled: the token still works for this page view.
    }
    history.replaceState(null, '', location.pathname + location.search);
    return fragment;
  }
  try {
    return sessionStorage.getItem(key) ?? rememberedToken(forRover);
  } catch {
    return rememberedToken(forRover);
  }
}
