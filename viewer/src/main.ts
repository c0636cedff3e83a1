/** Hosted viewer page glue: binds RoverViewerClient to the DOM of rover.html. */
import { isValidRoverId } from '../../protocol/index.js';
import { RoverViewerClient, type ViewerState } from './client.js';
import { LatencyMeter } from './latency.js';
import { rememberedToken, rememberLink } from './links.js';

const STATE_LABELS: Record<ViewerState, string> = {
  offline: 'Rover offline',
  waiting: 'Rover online',
  connecting: 'Connecting…',
  live: 'Live',
  failed: 'Failed',
};

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`viewer page is missing #${id}`);
  return found as T;
}

const roverId = decodeURIComponent(location.pathname.split('/')[2] ?? '');
const params = new URLSearchParams(location.search);
const video = element<HTMLVideoElement>('video');
const stateBadge = element<HTMLElement>('state');
const stateDetail = element<HTMLElement>('state-detail');
const connectButton = element<HTMLButtonElement>('connect');
const statsLine = element<HTMLElement>('stats');
const pathBadge = element<HTMLElement>('path');
const latencyBadge = element<HTMLElement>('latency');
const cameraPicker = element<HTMLSelectElement>('camera');
element<HTMLElement>('rover-name').textContent = roverId;
document.title = `${roverId} · Rover Live`;

if (!isValidRoverId(roverId)) {
  stateBadge.dataset['state'] = 'failed';
  stateBadge.textContent = STATE_LABELS.failed;
  stateDetail.textContent = 'This address does not name a valid rover.';
  connectButton.disabled = true;
} else {
  const client = new RoverViewerClient({
    server: location.origin,
    roverId,
    cameraId: params.get('camera') ?? undefined,
    relayOnly: params.get('relay') === '1',
    accessToken: takeAccessToken(roverId),
  });
  // Test and embedding hook: lets automation read the client's state and peer connection.
  (window as unknown as { roverViewer: RoverViewerClient }).roverViewer = client;
  // Glass-to-glass latency, read from frames when the camera stamps them (the rover's `meter` source).
  const latency = new LatencyMeter(video, client.clock);
  (window as unknown as { roverLatency: LatencyMeter }).roverLatency = latency;

  let watching = false;
  const render = (): void => {
    stateBadge.dataset['state'] = client.state;
    stateBadge.textContent = STATE_LABELS[client.state];
    stateDetail.textContent = client.stateDetail;
    connectButton.textContent = watching ? 'Disconnect' : 'Connect';
  };

  client.on('state', render);
  client.on('stream', ({ stream }) => {
    video.srcObject = stream;
    void video.play().catch(() => {
      // Autoplay needs a muted element; ours is muted, so this only happens in odd embeddings.
    });
  });
  client.on('stats', (s) => {
    const rtt = s.rttMs === null ? '' : ` · RTT ${Math.round(s.rttMs)} ms`;
    statsLine.textContent = `${s.width}×${s.height} · ${s.fps.toFixed(0)} fps · ${s.bitrateKbps} kbit/s${rtt} · ${s.packetsLost} lost`;
    renderPath();
    renderLatency();
  });
  const renderLatency = (): void => {
    const timecoded = client.state === 'live' && client.camera?.timecode === true;
    if (timecoded) latency.start();
    else latency.stop();
    const recent = timecoded ? latency.summary(2_000) : null;
    latencyBadge.hidden = recent === null;
    latencyBadge.textContent = recent === null ? '' : `Glass-to-glass ${Math.round(recent.p50)} ms`;
    latencyBadge.title = recent === null ? '' : `last 2 s: median ${recent.p50.toFixed(0)} ms, p95 ${recent.p95.toFixed(0)} ms, worst ${recent.max.toFixed(0)} ms (${recent.samples} frames)`;
  };
  client.on('state', renderLatency);

  // The rover's cameras, to switch between (one call per camera: switching does not disturb other viewers).
  client.on('rover', ({ rover }) => {
    const signature = JSON.stringify(rover.cameras.map((camera) => [camera.id, camera.label, camera.width, camera.height]));
    if (cameraPicker.dataset['cameras'] !== signature) {
      cameraPicker.dataset['cameras'] = signature;
      cameraPicker.replaceChildren(
        ...rover.cameras.map((camera) => {
          const option = document.createElement('option');
          option.value = camera.id;
          option.textContent = `${camera.label} (${camera.width}×${camera.height})`;
          return option;
        }),
      );
    }
    cameraPicker.value = client.cameraId;
    cameraPicker.hidden = rover.cameras.length < 2;
  });
  cameraPicker.addEventListener('change', () => {
    client.switchCamera(cameraPicker.value);
    const url = new URL(location.href);
    url.searchParams.set('camera', cameraPicker.value);
    history.replaceState(null, '', url.pathname + url.search);
    latency.reset();
    render();
  });
  const renderPath = (): void => {
    const path = client.state === 'live' ? client.path : null;
    pathBadge.hidden = path === null;
    pathBadge.dataset['path'] = path?.kind ?? '';
    pathBadge.textContent = path === null ? '' : path.kind === 'relayed' ? `Relayed via TURN (${path.protocol})` : 'Direct';
    pathBadge.title = path === null ? '' : `ICE pair: ${path.local} → ${path.remote}`;
  };
  client.on('state', renderPath);

  // Snapshot: the current frame at its full resolution, as a PNG download.
  element<HTMLButtonElement>('snapshot').addEventListener('click', () => {
    if (video.videoWidth === 0) return;
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d')?.drawImage(video, 0, 0);
    canvas.toBlob((blob) => {
      if (!blob) return;
      const link = document.createElement('a');
      link.href = URL.createObjectURL(blob);
      link.download = `${roverId}-${client.cameraId}-${new Date().toISOString().replace(/[:.]/g, '-')}.png`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    }, 'image/png');
  });
  // Fullscreen: the video stage (button, or the "f" key when not typing in a field).
  const stage = video.parentElement ?? video;
  const toggleFullscreen = (): void => {
    if (document.fullscreenElement) void document.exitFullscreen();
    else void stage.requestFullscreen?.().catch(() => undefined);
  };
  element<HTMLButtonElement>('fullscreen').addEventListener('click', toggleFullscreen);
  addEventListener('keydown', (event) => {
    if (event.key === 'f' && !(event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement)) toggleFullscreen();
  });

  connectButton.addEventListener('click', () => {
    watching = !watching;
    if (watching) client.connect();
    else {
      client.disconnect();
      video.srcObject = null;
      statsLine.textContent = '';
      renderPath();
      renderLatency();
    }
    render();
  });

  if (params.get('autoconnect') === '1') {
    watching = true;
    client.connect();
  } else {
    client.observe();
  }
  render();
  addEventListener('pagehide', () => client.close());
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
