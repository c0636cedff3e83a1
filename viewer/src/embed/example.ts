/**
 * Script of /embed-example.html: how a page uses <rover-stream>. It imports only types; the element itself
 * comes from <script type="module" src="/rover-stream.js">, exactly as on any other site.
 *
 * Open /embed-example.html?rover=<id>[&camera=<id>]#access=<viewer token>. The token rides in the fragment
 * (never sent to a server) and is handed to the element as a property, so it is not in the DOM either.
 */
import type { RoverStreamElement } from './element.js';
import type { RoverStreamEventMap } from './events.js';

const LOG_LIMIT = 100;

function byId<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`example page is missing #${id}`);
  return found as T;
}

const log = byId<HTMLOListElement>('log');
const cameraPicker = byId<HTMLSelectElement>('camera');

/** Newest first. Repeats of one kind (stats every second, telemetry up to 30 Hz) update one line instead of flooding. */
function logEvent(name: keyof RoverStreamEventMap, text: string): void {
  const time = new Date().toLocaleTimeString();
  const latest = log.firstElementChild as HTMLLIElement | null;
  if (latest && latest.dataset['event'] === name && (name === 'rover-stats' || name === 'rover-telemetry')) {
    const count = Number(latest.dataset['count'] ?? '1') + 1;
    latest.dataset['count'] = String(count);
    latest.textContent = `${time} ${name} ${text} (×${count})`;
    return;
  }
  const entry = document.createElement('li');
  entry.dataset['event'] = name;
  entry.textContent = `${time} ${name} ${text}`;
  log.prepend(entry);
  while (log.children.length > LOG_LIMIT) log.lastElementChild?.remove();
}

/** Take the token out of the address bar, so it is not copied along with the URL or kept in history. */
function takeTokenFromFragment(): string | undefined {
  const token = new URLSearchParams(location.hash.slice(1)).get('access') ?? undefined;
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  return token;
}

await customElements.whenDefined('rover-stream');
const player = document.querySelector('rover-stream') as RoverStreamElement;
const params = new URLSearchParams(location.search);
const rover = params.get('rover');
const camera = params.get('camera');

player.addEventListener('rover-state', ({ detail }) => logEvent('rover-state', `${detail.state} · ${detail.detail}`));
player.addEventListener('rover-status', ({ detail }) => {
  const cameras = detail.cameras.map((c) => `${c.id} ${c.width}×${c.height}`).join(', ');
  logEvent('rover-status', `${detail.online ? 'online' : 'offline'} · cameras: ${cameras || 'none'}`);
  cameraPicker.replaceChildren(
    ...detail.cameras.map((c) => new Option(`${c.label} (${c.width}×${c.height})`, c.id, false, c.id === player.camera)),
  );
  cameraPicker.hidden = detail.cameras.length < 2;
});
player.addEventListener('rover-stats', ({ detail }) =>
  logEvent('rover-stats', `${detail.width}×${detail.height} · ${detail.fps.toFixed(0)} fps · ${detail.bitrateKbps} kbit/s · ${detail.path?.kind ?? 'no path'}`),
);
player.addEventListener('rover-telemetry', ({ detail }) =>
  logEvent('rover-telemetry', `seq ${detail.seq} · ${detail.detections?.length ?? 0} detections${detail.status ? ` · ${JSON.stringify(detail.status)}` : ''}`),
);
player.addEventListener('rover-control', ({ detail }) => logEvent('rover-control', `${detail.holder}${detail.detail ? ` · ${detail.detail}` : ''}`));

byId<HTMLButtonElement>('connect').addEventListener('click', () => player.connect());
byId<HTMLButtonElement>('disconnect').addEventListener('click', () => player.disconnect());
cameraPicker.addEventListener('change', () => (player.camera = cameraPicker.value));

if (rover === null) {
  logEvent('rover-state', 'open this page as /embed-example.html?rover=<id>#access=<viewer token>');
} else {
  // Token first: the element connects once it has a rover, and all settings made now are taken together.
  player.token = takeTokenFromFragment();
  if (camera) player.camera = camera;
  player.rover = rover;
}
