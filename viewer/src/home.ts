/**
 * Home page: the rovers this browser has viewer links for, each with live presence (online or offline,
 * cameras, viewers) from GET /rovers/<id>/status; and a box to open a rover by id.
 */
import { RoverPresence, isValidRoverId } from '../../protocol/index.js';
import { forgetLink, rememberedLinks, tokenMayControl, type RememberedLink } from './links.js';

const REFRESH_MS = 10_000;

const form = document.getElementById('open-rover') as HTMLFormElement | null;
form?.addEventListener('submit', (event) => {
  event.preventDefault();
  const input = form.elements.namedItem('rover') as HTMLInputElement;
  location.assign(`/rovers/${encodeURIComponent(input.value.trim())}?autoconnect=1`);
});

const list = document.getElementById('rovers');
const empty = document.getElementById('no-rovers');

async function presenceOf(link: RememberedLink): Promise<RoverPresence | 'refused' | 'unreachable'> {
  try {
    const response = await fetch(`/rovers/${encodeURIComponent(link.roverId)}/status`, {
      headers: { authorization: `Bearer ${link.token}` },
      cache: 'no-store',
    });
    if (response.status === 401 || response.status === 403) return 'refused';
    if (!response.ok) return 'unreachable';
    const parsed = RoverPresence.safeParse(await response.json());
    return parsed.success ? parsed.data : 'unreachable';
  } catch {
    return 'unreachable';
  }
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

async function render(): Promise<void> {
  if (!list || !empty) return;
  const links = rememberedLinks().filter((link) => isValidRoverId(link.roverId));
  const rows = await Promise.all(
    links.map(async (link) => {
      const presence = await presenceOf(link);
      if (presence === 'refused') {
        forgetLink(link.roverId); // revoked or signed with a retired key: a new link is needed
        return null;
      }
      const item = document.createElement('li');
      item.className = 'rover-card';
      item.dataset['rover'] = link.roverId;
      const anchor = document.createElement('a');
      anchor.href = `/rovers/${encodeURIComponent(link.roverId)}?autoconnect=1`;
      anchor.textContent = link.roverId;
      const state = document.createElement('span');
      state.className = 'state';
      const detail = document.createElement('span');
      detail.className = 'detail';
      if (presence === 'unreachable') {
        state.dataset['state'] = 'failed';
        state.textContent = 'Unknown';
        detail.textContent = 'cannot reach the server';
      } else {
        state.dataset['state'] = presence.rover.online ? 'waiting' : 'offline';
        state.textContent = presence.rover.online ? 'Online' : 'Offline';
        detail.textContent = presence.rover.online
          ? `${plural(presence.rover.cameras.length, 'camera')} · ${plural(presence.viewers, 'viewer')}`
          : `${plural(presence.viewers, 'viewer')} waiting`;
        item.dataset['online'] = String(presence.rover.online);
        item.dataset['cameras'] = String(presence.rover.cameras.length);
        item.dataset['viewers'] = String(presence.viewers);
      }
      const parts: HTMLElement[] = [anchor, state, detail];
      if (tokenMayControl(link.token)) {
        const operator = document.createElement('span');
        operator.className = 'operator';
        operator.textContent = 'can drive';
        operator.title = 'This link may take control of the rover';
        parts.push(operator);
      }
      const forget = document.createElement('button');
      forget.type = 'button';
      forget.className = 'secondary forget';
      forget.textContent = 'Forget';
      forget.setAttribute('aria-label', `Forget ${link.roverId} on this device`);
      forget.addEventListener('click', () => {
        forgetLink(link.roverId);
        item.remove();
        empty.hidden = list.childElementCount > 0;
      });
      parts.push(forget);
      item.append(...parts);
      return item;
    }),
  );
  const items = rows.filter((row): row is HTMLLIElement => row !== null);
  list.replaceChildren(...items);
  empty.hidden = items.length > 0;
}

void render();
setInterval(() => void render(), REFRESH_MS);
