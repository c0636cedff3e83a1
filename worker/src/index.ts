/**
 * Worker entry: routes HTTP requests.
 *   GET /                    → home page (static asset)
 *   GET /rovers/<id>         → hosted viewer for that rover (static asset)
 *   GET /rovers/<id>/ws      → WebSocket into the rover's Durable Object (one per rover id), authenticated
 *   GET /rovers/<id>/access  → 204 if the presented viewer token may watch this rover, else why not (JSON)
 *   GET /rovers/<id>/status  → presence (online, cameras, viewer count) for a viewer allowed to watch it
 *   POST /admin/viewer-links → mint a viewer link (needs ADMIN_TOKEN)
 * Static files (/app.js, /style.css …) are served by the asset router before this code runs.
 */
import { DEFAULT_VIEWER_TTL_SECONDS, MAX_VIEWER_TTL_SECONDS, mintToken } from '../../protocol/auth.js';
import { isValidRoverId, PROTOCOL_VERSION, Role } from '../../protocol/index.js';
import { adminTokenMatches, authError, authorize, secretFor } from './auth.js';
import { PERMISSIONS_HEADER } from './room.js';
import type { Env } from './env.js';

export { RoverRoom } from './room.js';

const ROVER_PATH = /^\/rovers\/([^/]+)(\/ws|\/access|\/status)?\/?$/;

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

    if (url.pathname === '/admin/viewer-links') return mintViewerLink(request, env, url);

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

    if (match[2] === '/ws') return routeWebSocket(request, env, url, roverId);
    if (match[2] === '/access') return checkViewerAccess(request, env, roverId);
    if (match[2] === '/status') return roverPresence(request, env, roverId);

    if (!isRead) {
      return textResponse(405, 'Method not allowed.', { allow: 'GET, HEAD' });
    }
    return servePage(env, url, '/rover.html');
  },
} satisfies ExportedHandler<Env>;

async function routeWebSocket(request: Request, env: Env, url: URL, roverId: string): Promise<Response> {
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
  const limited = await upgradeRateLimited(request, env);
  if (limited) return limited;
  // Refused here, before the Durable Object: an unauthorized socket is never accepted.
  const decision = await authorize(request, env, role.data, roverId);
  if (!decision.ok) {
    log('upgrade refused', { role: role.data, status: decision.response.status });
    return decision.response;
  }
  const room = env.ROVER_ROOMS.get(env.ROVER_ROOMS.idFromName(roverId));
  // What the token allows travels to the Durable Object in a header only this Worker sets: a client's own
  // copy of the header is dropped, and the object is reachable only through here.
  const forwarded = new Request(request);
  forwarded.headers.delete(PERMISSIONS_HEADER);
  if (decision.claims.canControl) forwarded.headers.set(PERMISSIONS_HEADER, 'control');
  return room.fetch(forwarded);
}

/**
 * Lets the viewer tell "access expired" or "origin not allowed" from "network down": a WebSocket failure
 * hides the status. Readable from any origin (CORS), so a player embedded elsewhere can say why it was
 * refused: the answer only judges the token the caller already holds, and no cookies are involved.
 */
async function checkViewerAccess(request: Request, env: Env, roverId: string): Promise<Response> {
  const cors = accessCorsHeaders(request);
  if (request.method === 'OPTIONS') {
    return new Response(null, {
      status: 204,
      headers: { ...cors, 'access-control-allow-methods': 'GET', 'access-control-allow-headers': 'authorization', 'access-control-max-age': '600' },
    });
  }
  if (request.method !== 'GET') return textResponse(405, 'Method not allowed.', { allow: 'GET, OPTIONS', ...cors });
  const decision = await authorize(request, env, 'viewer', roverId);
  const response = decision.ok
    ? new Response(null, { status: 204, headers: { 'cache-control': 'no-store', 'x-token-expires': String(decision.claims.expiresAt) } })
    : decision.response;
  for (const [name, value] of Object.entries(cors)) response.headers.set(name, value);
  return response;
}

function accessCorsHeaders(request: Request): Record<string, string> {
  const origin = request.headers.get('origin');
  if (origin === null) return {};
  return { 'access-control-allow-origin': origin, 'access-control-expose-headers': 'x-token-expires', vary: 'Origin' };
}

/** Presence of one rover for someone allowed to watch it (a home page, a dashboard): no socket needed. */
async function roverPresence(request: Request, env: Env, roverId: string): Promise<Response> {
  if (request.method !== 'GET') return textResponse(405, 'Method not allowed.', { allow: 'GET' });
  const decision = await authorize(request, env, 'viewer', roverId);
  if (!decision.ok) return decision.response;
  const room = env.ROVER_ROOMS.get(env.ROVER_ROOMS.idFromName(roverId));
  return jsonResponse(200, await room.presence(roverId));
}

/**
 * POST /admin/viewer-links {"roverId": "...", "ttlSeconds": 28800, "control": false} → {"url", "token", "expiresAt"}.
 * "control": true mints a link that may also take the control lease and drive.
 */
async function mintViewerLink(request: Request, env: Env, url: URL): Promise<Response> {
  if (!env.ADMIN_TOKEN) return textResponse(404, 'Not found. Rover pages live at /rovers/<roverId>.');
  if (request.method !== 'POST') return textResponse(405, 'Method not allowed.', { allow: 'POST' });
  const presented = /^Bearer\s+(\S+)$/i.exec(request.headers.get('authorization') ?? '')?.[1] ?? null;
  if (!adminTokenMatches(presented, env.ADMIN_TOKEN)) {
    log('admin request refused', {});
    return authError(401, 'admin token missing or wrong');
  }
  const secret = secretFor('viewer', env);
  if (!secret) return authError(503, 'authentication is not configured: set the VIEWER_TOKEN_SECRET secret');
  let body: { roverId?: unknown; ttlSeconds?: unknown; control?: unknown };
  try {
    body = (await request.json()) as typeof body;
  } catch {
    return jsonResponse(400, { error: 'bad-request', message: 'body must be JSON: {"roverId": "...", "ttlSeconds": 28800}' });
  }
  const roverId = typeof body?.roverId === 'string' ? body.roverId : '';
  if (!isValidRoverId(roverId)) return jsonResponse(400, { error: 'bad-request', message: 'roverId must be 1-64 of a-z 0-9 - _' });
  const ttlSeconds = body.ttlSeconds === undefined ? DEFAULT_VIEWER_TTL_SECONDS : body.ttlSeconds;
  if (typeof ttlSeconds !== 'number' || !Number.isInteger(ttlSeconds) || ttlSeconds < 60 || ttlSeconds > MAX_VIEWER_TTL_SECONDS) {
    return jsonResponse(400, { error: 'bad-request', message: `ttlSeconds must be an integer from 60 to ${MAX_VIEWER_TTL_SECONDS}` });
  }
  if (body.control !== undefined && typeof body.control !== 'boolean') {
    return jsonResponse(400, { error: 'bad-request', message: 'control must be true or false' });
  }
  const control = body.control === true;
  const { token, expiresAt } = await mintToken('viewer', roverId, secret, ttlSeconds, undefined, { control });
  log('viewer link minted', { expiresAt, control: control ? 1 : 0 });
  // The token rides in the fragment: browsers never send it to a server, so it stays out of access logs.
  return jsonResponse(201, { url: `${url.origin}/rovers/${roverId}#access=${token}`, token, expiresAt });
}

/** Per client IP, across all rovers (Workers Rate Limiting binding, where configured). */
async function upgradeRateLimited(request: Request, env: Env): Promise<Response | null> {
  const ip = request.headers.get('cf-connecting-ip');
  if (!env.UPGRADE_LIMITER || !ip) return null;
  const { success } = await env.UPGRADE_LIMITER.limit({ key: ip });
  if (success) return null;
  log('upgrade rate limited', {});
  return textResponse(429, 'Too many connection attempts from this address; retry in a minute.', { 'retry-after': '60' });
}

function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
}

/** Structured, secret-free log line. */
function log(event: string, fields: Record<string, string | number>): void {
  console.log(JSON.stringify({ event, ...fields }));
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
