/**
 * Worker entry: routes HTTP requests.
 *   GET /                    → home page (static asset)
 *   GET /rovers/<id>         → hosted viewer for that rover (static asset)
 *   GET /rovers/<id>/ws      → WebSocket into the rover's Durable Object (one per rover id)
 * Static files (/app.js, /style.css …) are served by the asset router before this code runs.
 */
import { isValidRoverId, PROTOCOL_VERSION, Role } from '../../protocol/index.js';
import type { Env } from './env.js';

export { RoverRoom } from './room.js';

const ROVER_PATH = /^\/rovers\/([^/]+)(\/ws)?\/?$/;

/** Headers for HTML we serve: no inline script, only same-origin connections, no referrer leaks. */
const PAGE_SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);

    const isRead = request.method === 'GET' || request.method === 'HEAD';
    if (url.pathname === '/') {
      return isRead ? servePage(env, url, '/index.html') : textResponse(405, 'Method not allowed.', { allow: 'GET, HEAD' });
    }

    const match = ROVER_PATH.exec(url.pathname);
    if (!match) return textResponse(404, 'Not found. Rover pages live at /rovers/<roverId>.');

    let roverId: string;
    try {
      roverId = decodeURIComponent(match[1] ?? '');
    } catch {
      return textResponse(400, 'Invalid rover id: not valid URL encoding.');
    }
    if (!isValidRoverId(roverId)) {
      return textResponse(
        400,
        'Invalid rover id: use 1-64 characters of lowercase a-z, 0-9, "-" and "_", starting with a letter or digit.',
      );
    }

    if (match[2]) return routeWebSocket(request, env, url, roverId);

    if (!isRead) {
      return textResponse(405, 'Method not allowed.', { allow: 'GET, HEAD' });
    }
    return servePage(env, url, '/rover.html');
  },
} satisfies ExportedHandler<Env>;

function routeWebSocket(request: Request, env: Env, url: URL, roverId: string): Promise<Response> | Response {
  if (request.method !== 'GET' || request.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
    return textResponse(426, 'This endpoint only accepts WebSocket upgrades.', { upgrade: 'websocket' });
  }
  const role = Role.safeParse(url.searchParams.get('role'));
  if (!role.success) return textResponse(400, 'Missing or invalid "role" query parameter: use role=rover or role=viewer.');
  const version = url.searchParams.get('v');
  if (version !== String(PROTOCOL_VERSION)) {
    return textResponse(
      400,
      `Unsupported protocol version ${JSON.stringify(version)}: this server speaks v=${PROTOCOL_VERSION}. Update the client.`,
    );
  }
  const room = env.ROVER_ROOMS.get(env.ROVER_ROOMS.idFromName(roverId));
  return room.fetch(request);
}

async function servePage(env: Env, url: URL, assetPath: string): Promise<Response> {
  const asset = await env.ASSETS.fetch(new URL(assetPath, url.origin));
  if (!asset.ok) return textResponse(500, 'Viewer assets are missing from this deployment (build viewer/dist).');
  const response = new Response(asset.body, asset);
  for (const [name, value] of Object.entries(PAGE_SECURITY_HEADERS)) response.headers.set(name, value);
  return response;
}

function textResponse(status: number, message: string, headers: Record<string, string> = {}): Response {
  return new Response(message + '\n', {
    status,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff', ...headers },
  });
}
