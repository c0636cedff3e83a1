/**
 * Authentication and authorization at the Worker: every unauthorized upgrade is refused with an HTTP
 * status before a socket exists, and nothing reaches the rover. Plus the admin link endpoint, the access
 * check the viewer page uses, Origin checks and rate limits.
 */
import { SELF } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { mintToken, SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX, verifyToken } from '../../protocol/auth.js';
import { authorize } from '../../worker/src/auth.js';
import { CloseCode, PROTOCOL_VERSION } from '../../protocol/index.js';
import { MAX_SOCKETS_PER_ADDRESS, MESSAGE_LIMITS, VIEWER_ADDRESS_LIMIT } from '../../worker/src/room.js';
import { camera, closeAllPeers, connectViewer, joinedViewer, ORIGIN, onlineRover, Peer, sleep, tokenFor, uniqueRoverId, upgrade } from './helpers.js';

type ViewerPeerLike = Peer<import('../../protocol/index.js').ServerToViewer>;
import { ServerToViewer } from '../../protocol/index.js';

const OTHER_SECRET = 'an-attacker-guess-at-the-secret-0123456789abcdef';
const query = (role: string): string => `?role=${role}&v=${PROTOCOL_VERSION}`;
const bearer = (token: string): Record<string, string> => ({ Upgrade: 'websocket', Authorization: `Bearer ${token}` });

/** Flip one character in the signature part: same header and claims, wrong MAC. */
function tamperSignature(token: string): string {
  const last = token.at(-2) === 'A' ? 'B' : 'A';
  return token.slice(0, -2) + last + token.at(-1);
}

/** Swap the claims for another rover's while keeping the original signature. */
function swapSubject(token: string, roverId: string): string {
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(atob(payload!.replaceAll('-', '+').replaceAll('_', '/'))) as Record<string, unknown>;
  const forged = btoa(JSON.stringify({ ...claims, sub: roverId })).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
  return `${header}.${forged}.${signature}`;
}

/** An unsigned token ("alg": "none"), the classic JWT downgrade. */
function unsignedToken(roverId: string, aud: string): string {
  const encode = (value: unknown): string => btoa(JSON.stringify(value)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
  const now = Math.floor(Date.now() / 1000);
  return `${encode({ alg: 'none', typ: 'JWT' })}.${encode({ iss: 'rover-live', aud, sub: roverId, iat: now, exp: now + 600, jti: 'x' })}.`;
}

const tally = { attempted: 0, accepted: 0 };

describe('unauthorized upgrades are refused before a socket exists, and nothing reaches the rover', () => {
  afterEach(closeAllPeers);
  afterAll(() => {
    console.log(`auth: ${tally.accepted} of ${tally.attempted} unauthorized attempts accepted`);
  });

  type Case = [label: string, role: 'rover' | 'viewer', headers: (roverId: string) => Promise<Record<string, string>>, status: number];
  const cases: Case[] = [];
  for (const role of ['rover', 'viewer'] as const) {
    const other = role === 'rover' ? 'viewer' : 'rover';
    cases.push(
      [`${role}: no token`, role, async () => ({ Upgrade: 'websocket' }), 401],
      [`${role}: empty bearer`, role, async () => ({ Upgrade: 'websocket', Authorization: 'Bearer ' }), 401],
      [`${role}: garbage token`, role, async () => bearer('not-a-token'), 401],
      [`${role}: token signed with another secret`, role, async (id) => bearer((await mintToken(role, id, OTHER_SECRET, 600)).token), 401],
      [`${role}: tampered signature`, role, async (id) => bearer(tamperSignature(await tokenFor(role, id))), 401],
      [`${role}: expired token`, role, async (id) => {
        const secret = role === 'rover' ? env.ROVER_TOKEN_SECRET! : env.VIEWER_TOKEN_SECRET!;
        const long = Math.floor(Date.now() / 1000) - 7200;
        return bearer((await mintToken(role, id, secret, 600, long)).token);
      }, 401],
      [`${role}: token for another rover`, role, async () => bearer(await tokenFor(role, 'some-other-rover')), 403],
      [`${role}: another rover's token with the subject edited`, role, async (id) => bearer(swapSubject(await tokenFor(role, 'some-other-rover'), id)), 401],
      [`${role}: unsigned (alg none) token`, role, async (id) => bearer(unsignedToken(id, role)), 401],
      [`${role}: a ${other} token`, role, async (id) => bearer(await tokenFor(other, id)), 401],
      [`${role}: a ${other} token in the subprotocol`, role, async (id) => ({
        Upgrade: 'websocket',
        'Sec-WebSocket-Protocol': `${SUBPROTOCOL}, ${TOKEN_SUBPROTOCOL_PREFIX}${await tokenFor(other, id)}`,
      }), 401],
    );
  }
  cases.push([
    'viewer: valid token from a foreign web page (Origin)',
    'viewer',
    async (id) => ({ ...bearer(await tokenFor('viewer', id)), Origin: 'https://evil.example' }),
    403,
  ]);

  it.each(cases.map(([label, ...rest]) => [`${label} → ${rest[2]}`, ...rest] as Case))('%s', async (_label, role, headers, status) => {
    const roverId = uniqueRoverId('auth');
    const { rover } = await onlineRover(roverId, [camera('main')]);
    const watcher = await joinedViewer(roverId, 'legit viewer');

    tally.attempted += 1;
    const response = await upgrade(roverId, query(role), await headers(roverId));
    if (response.status === 101) tally.accepted += 1;
    expect(response.status).toBe(status);
    expect(response.webSocket).toBeNull();
    const body = (await response.json()) as { error: string; message: string };
    expect(body.error).toBe(status === 401 ? 'unauthorized' : 'forbidden');
    expect(body.message.length).toBeGreaterThan(5);
    if (status === 401) expect(response.headers.get('www-authenticate')).toMatch(/^Bearer /);

    // Nothing reached the room: the rover hears nothing, the legit viewer sees no status change.
    await rover.expectNothing();
    await watcher.viewer.expectNothing();
    await rover.ping();
  });

  it('a superseded rover connection replaying messages reaches no one', async () => {
    const roverId = uniqueRoverId('auth-replay');
    const old = await onlineRover(roverId, [camera('main')], 'old rover');
    const { viewer, viewerId } = await joinedViewer(roverId);
    viewer.send({ type: 'watch', cameraId: 'main' });
    await old.rover.next('viewer-join');
    const fresh = await onlineRover(roverId, [camera('main')], 'new rover');
    await fresh.rover.next('viewer-join').catch(() => undefined);
    expect((await old.rover.closed).code).toBe(CloseCode.Superseded);

    tally.attempted += 1;
    // The old socket is closed by the server; whatever it still had in flight is ignored.
    try {
      old.rover.send({ type: 'offer', viewerId, callId: 'replayed', cameraId: 'main', sdp: 'v=0 replay' });
    } catch {
      // closed: nothing could be sent at all
    }
    const seen = [];
    for (;;) {
      const message = await viewer.next(300).catch(() => null);
      if (!message) break;
      seen.push(message);
    }
    const replayed = seen.some((message) => message.type === 'offer' && message.callId === 'replayed');
    if (replayed) tally.accepted += 1;
    expect(replayed).toBe(false);
  });
});

describe('authorized clients', () => {
  afterEach(closeAllPeers);

  it('a viewer token in the WebSocket subprotocol is accepted, and the subprotocol echoed (browsers need it)', async () => {
    const roverId = uniqueRoverId('auth-subprotocol');
    const token = await tokenFor('viewer', roverId);
    const response = await upgrade(roverId, query('viewer'), {
      Upgrade: 'websocket',
      'Sec-WebSocket-Protocol': `${SUBPROTOCOL}, ${TOKEN_SUBPROTOCOL_PREFIX}${token}`,
      Origin: ORIGIN,
    });
    expect(response.status).toBe(101);
    expect(response.headers.get('sec-websocket-protocol')).toBe(SUBPROTOCOL);
    const viewer = new Peer(response.webSocket!, ServerToViewer, 'subprotocol viewer');
    expect(await viewer.next('welcome')).toMatchObject({ role: 'viewer' });
  });

  it('an embedding origin listed in ALLOWED_ORIGINS may connect', async () => {
    const roverId = uniqueRoverId('auth-origin');
    const response = await upgrade(roverId, query('viewer'), { ...bearer(await tokenFor('viewer', roverId)), Origin: 'tauri://localhost' });
    expect(response.status).toBe(101);
    new Peer(response.webSocket!, ServerToViewer, 'tauri viewer');
  });
});

describe('GET /rovers/<id>/access (lets the viewer page say why it cannot connect)', () => {
  const access = (roverId: string, headers: Record<string, string>): Promise<Response> =>
    SELF.fetch(`${ORIGIN}/rovers/${roverId}/access`, { headers });

  it('204 with a valid viewer token, 401 expired, 403 another rover, 401 a rover token', async () => {
    const roverId = uniqueRoverId('access');
    const ok = await access(roverId, { Authorization: `Bearer ${await tokenFor('viewer', roverId)}` });
    expect(ok.status).toBe(204);
    expect(Number(ok.headers.get('x-token-expires'))).toBeGreaterThan(Date.now() / 1000);

    const expired = await mintToken('viewer', roverId, env.VIEWER_TOKEN_SECRET!, 600, Math.floor(Date.now() / 1000) - 7200);
    const late = await access(roverId, { Authorization: `Bearer ${expired.token}` });
    expect(late.status).toBe(401);
    expect(await late.json()).toEqual({ error: 'unauthorized', message: 'viewer token expired' });

    const elsewhere = await access(roverId, { Authorization: `Bearer ${await tokenFor('viewer', 'other-rover')}` });
    expect(elsewhere.status).toBe(403);
    expect(await elsewhere.json()).toEqual({ error: 'forbidden', message: 'this viewer token is for another rover' });

    expect((await access(roverId, { Authorization: `Bearer ${await tokenFor('rover', roverId)}` })).status).toBe(401);
    expect((await access(roverId, {})).status).toBe(401);
  });

  it('answers pages on other origins too (CORS), so an embedded player can say why it was refused', async () => {
    const roverId = uniqueRoverId('access-cors');
    const embedder = 'https://dashboard.example';
    const preflight = await SELF.fetch(`${ORIGIN}/rovers/${roverId}/access`, {
      method: 'OPTIONS',
      headers: { Origin: embedder, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'authorization' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(embedder);
    expect(preflight.headers.get('access-control-allow-headers')).toBe('authorization');
    // That origin is not in ALLOWED_ORIGINS: the answer says so, readable by the page.
    const refused = await access(roverId, { Origin: embedder, Authorization: `Bearer ${await tokenFor('viewer', roverId)}` });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBe(embedder);
    expect(refused.headers.get('vary')).toBe('Origin');
    expect(((await refused.json()) as { message: string }).message).toMatch(/ALLOWED_ORIGINS/);
    // No Origin (tools, same-origin fetches without one): no CORS headers.
    const plain = await access(roverId, { Authorization: `Bearer ${await tokenFor('viewer', roverId)}` });
    expect(plain.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('POST /admin/viewer-links', () => {
  afterEach(closeAllPeers);
  const admin = (body: unknown, token: string | null = env.ADMIN_TOKEN ?? null, method = 'POST'): Promise<Response> =>
    SELF.fetch(`${ORIGIN}/admin/viewer-links`, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: method === 'POST' ? JSON.stringify(body) : undefined,
    });

  it('mints a link whose token opens that rover, carried in the fragment (never sent to servers)', async () => {
    const roverId = uniqueRoverId('admin');
    const response = await admin({ roverId, ttlSeconds: 900 });
    expect(response.status).toBe(201);
    const { url, token, expiresAt } = (await response.json()) as { url: string; token: string; expiresAt: number };
    expect(url).toBe(`${ORIGIN}/rovers/${roverId}#access=${token}`);
    expect(expiresAt - Date.now() / 1000).toBeGreaterThan(890);
    expect(expiresAt - Date.now() / 1000).toBeLessThan(910);
    const verified = await verifyToken('viewer', token, roverId, env.VIEWER_TOKEN_SECRET!);
    expect(verified.ok).toBe(true);
    const upgraded = await upgrade(roverId, query('viewer'), bearer(token));
    expect(upgraded.status).toBe(101);
    new Peer(upgraded.webSocket!, ServerToViewer, 'linked viewer');
    // …and it is a viewer token only.
    expect((await upgrade(roverId, query('rover'), bearer(token))).status).toBe(401);
    // Watching only, unless control is asked for.
    expect(verified.ok && verified.claims.canControl).toBe(false);
  });

  it('mints a link that may drive only when asked to ("control": true), and refuses a non-boolean', async () => {
    const roverId = uniqueRoverId('admin-control');
    const response = await admin({ roverId, control: true });
    expect(response.status).toBe(201);
    const { token } = (await response.json()) as { token: string };
    const verified = await verifyToken('viewer', token, roverId, env.VIEWER_TOKEN_SECRET!);
    expect(verified.ok && verified.claims.canControl).toBe(true);
    expect((await admin({ roverId, control: 'yes' })).status).toBe(400);
  });

  it.each([
    ['no admin token', null, 401],
    ['a wrong admin token', 'x'.repeat(48), 401],
    ['a viewer token instead of the admin token', 'viewer', 401],
  ])('refuses %s with 401', async (_label, token, status) => {
    const presented = token === 'viewer' ? await tokenFor('viewer', 'x') : token;
    const response = await admin({ roverId: 'demo' }, presented);
    expect(response.status).toBe(status);
  });

  it.each([
    [{ roverId: 'Bad Id' }, /roverId/],
    [{ roverId: 'demo', ttlSeconds: 10 }, /ttlSeconds/],
    [{ roverId: 'demo', ttlSeconds: 10 ** 9 }, /ttlSeconds/],
    [{ roverId: 'demo', ttlSeconds: '3600' }, /ttlSeconds/],
    ['not json', /JSON/],
  ])('refuses a bad request %j with 400 and says what is wrong', async (body, message) => {
    const response =
      body === 'not json'
        ? await SELF.fetch(`${ORIGIN}/admin/viewer-links`, { method: 'POST', headers: { Authorization: `Bearer ${env.ADMIN_TOKEN}` }, body: '{' })
        : await admin(body);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { message: string }).message).toMatch(message);
  });

  it('answers 405 to GET', async () => {
    expect((await admin(undefined, env.ADMIN_TOKEN ?? null, 'GET')).status).toBe(405);
  });
});

describe('rate limits', () => {
  afterEach(closeAllPeers);

  it('a flooding viewer is cut off with 4429; the rover and the other viewers carry on', async () => {
    const roverId = uniqueRoverId('flood');
    const { rover } = await onlineRover(roverId, [camera('main')]);
    const calm = await joinedViewer(roverId, 'calm viewer');
    const flooder = await joinedViewer(roverId, 'flooder');
    flooder.viewer.send({ type: 'watch', cameraId: 'main' });
    expect(await rover.next('viewer-join')).toMatchObject({ viewerId: flooder.viewerId });

    for (let i = 0; i < MESSAGE_LIMITS.viewer.burst + 50; i++) {
      try {
        flooder.viewer.send({ type: 'watch', cameraId: 'main' });
      } catch {
        break; // closed under us
      }
    }
    expect((await flooder.viewer.closed).code).toBe(CloseCode.RateLimited);

    // The rover got the flooder's joins up to the limit, then its leave; nothing after.
    let leaves = 0;
    for (;;) {
      const message = await rover.next(500).catch(() => null);
      if (!message) break;
      expect(['viewer-join', 'viewer-leave']).toContain(message.type);
      if (message.type === 'viewer-leave') {
        expect(message.viewerId).toBe(flooder.viewerId);
        leaves += 1;
      }
    }
    expect(leaves).toBe(1);

    // Everyone else is unaffected.
    calm.viewer.send({ type: 'watch', cameraId: 'main' });
    expect(await rover.next('viewer-join')).toMatchObject({ viewerId: calm.viewerId });
    rover.send({ type: 'offer', viewerId: calm.viewerId, callId: 'calm-1', cameraId: 'main', sdp: 'v=0' });
    expect(await calm.viewer.next('offer')).toMatchObject({ callId: 'calm-1' });
  });

  it(`one address may hold at most ${MAX_SOCKETS_PER_ADDRESS} sockets in a room; other addresses are unaffected`, async () => {
    const roverId = uniqueRoverId('per-ip');
    const token = await tokenFor('viewer', roverId);
    const from = (ip: string): Promise<Response> => upgrade(roverId, query('viewer'), { ...bearer(token), 'CF-Connecting-IP': ip });
    for (let i = 0; i < MAX_SOCKETS_PER_ADDRESS; i++) {
      const response = await from('203.0.113.9');
      expect(response.status).toBe(101);
      new Peer(response.webSocket!, ServerToViewer, `viewer ${i}`);
    }
    const refused = await from('203.0.113.9');
    expect(refused.status).toBe(429);
    const other = await from('203.0.113.10');
    expect(other.status).toBe(101);
    new Peer(other.webSocket!, ServerToViewer, 'other address');
    // A plain viewer without an address header still connects (local tools).
    await connectViewer(roverId);
  });

  it('several sockets from one address share one message budget: spreading a flood over tabs does not help', async () => {
    const roverId = uniqueRoverId('per-ip-messages');
    const token = await tokenFor('viewer', roverId);
    const open = async (ip: string, name: string): Promise<ViewerPeerLike> => {
      const response = await upgrade(roverId, query('viewer'), { ...bearer(token), 'CF-Connecting-IP': ip });
      expect(response.status).toBe(101);
      const peer = new Peer(response.webSocket!, ServerToViewer, name);
      await peer.next('welcome');
      return peer;
    };
    const tabs = [await open('203.0.113.77', 'tab 1'), await open('203.0.113.77', 'tab 2'), await open('203.0.113.77', 'tab 3')];
    const neighbour = await open('203.0.113.78', 'other address');
    // Each tab stays under its own burst, together they exceed the address's.
    const perTab = Math.ceil((VIEWER_ADDRESS_LIMIT.burst + 30) / tabs.length);
    expect(perTab).toBeLessThan(MESSAGE_LIMITS.viewer.burst);
    for (const tab of tabs) {
      for (let i = 0; i < perTab; i++) {
        try {
          tab.send({ type: 'leave' });
        } catch {
          break;
        }
      }
    }
    const codes = await Promise.all(tabs.map((tab) => Promise.race([tab.closed.then((c) => c.code), sleep(2_000).then(() => 0)])));
    expect(codes).toContain(CloseCode.RateLimited);
    // Another address in the same room is unaffected.
    await neighbour.ping();
  });

  it('upgrades per address are limited across all rovers (429 before any token check)', async () => {
    const ip = `198.51.100.${Math.floor(Math.random() * 250) + 1}`;
    const statuses: number[] = [];
    for (let i = 0; i < 70; i++) {
      const response = await upgrade(uniqueRoverId('limit'), query('viewer'), { Upgrade: 'websocket', 'CF-Connecting-IP': ip });
      statuses.push(response.status);
    }
    expect(statuses.slice(0, 60).every((status) => status === 401)).toBe(true);
    expect(statuses.slice(60).every((status) => status === 429)).toBe(true);
    // Another address is not affected.
    const other = await upgrade(uniqueRoverId('limit'), query('viewer'), { Upgrade: 'websocket', 'CF-Connecting-IP': '198.51.100.254' });
    expect(other.status).toBe(401);
  });
});

describe('Cloudflare Access identity (where a deployment puts the viewer behind Access)', () => {
  const TEAM = 'rovers-team.cloudflareaccess.com';
  const AUD = 'a1b2c3d4e5f6-application-aud-tag';

  async function accessFixture() {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'access-key-1', alg: 'RS256' };
    const stranger = await generateKeyPair('RS256', { extractable: true });
    const sign = (claims: { aud?: string; iss?: string; exp?: string | number }, key: CryptoKey = privateKey): Promise<string> =>
      new SignJWT({ email: 'operator@example.com' })
        .setProtectedHeader({ alg: 'RS256', kid: 'access-key-1' })
        .setIssuer(claims.iss ?? `https://${TEAM}`)
        .setAudience(claims.aud ?? AUD)
        .setIssuedAt()
        .setExpirationTime(claims.exp ?? '5m')
        .sign(key);
    return { keys: createLocalJWKSet({ keys: [jwk] }), sign, strangerKey: stranger.privateKey };
  }

  const accessEnv = { ...env, ACCESS_TEAM_DOMAIN: TEAM, ACCESS_AUD: AUD };
  const request = (headers: Record<string, string>): Request =>
    new Request(`${ORIGIN}/rovers/demo/ws?role=viewer&v=${PROTOCOL_VERSION}`, { headers: { Upgrade: 'websocket', ...headers } });

  it('admits a viewer on a valid Access assertion for this application, and names the identity', async () => {
    const { keys, sign } = await accessFixture();
    const decision = await authorize(request({ 'Cf-Access-Jwt-Assertion': await sign({}) }), accessEnv, 'viewer', 'demo', { accessKeys: () => keys });
    expect(decision.ok).toBe(true);
    if (decision.ok) {
      expect(decision.claims.tokenId).toBe('access:operator@example.com');
      expect(decision.claims.expiresAt).toBeGreaterThan(Date.now() / 1000);
    }
  });

  it.each([
    ['another application', { aud: 'some-other-app' }],
    ['another team', { iss: 'https://evil.cloudflareaccess.com' }],
    ['an expired assertion', { exp: Math.floor(Date.now() / 1000) - 600 }],
  ])('refuses %s with 401', async (_label, claims) => {
    const { keys, sign } = await accessFixture();
    const decision = await authorize(request({ 'Cf-Access-Jwt-Assertion': await sign(claims) }), accessEnv, 'viewer', 'demo', { accessKeys: () => keys });
    expect(decision.ok).toBe(false);
    if (!decision.ok) expect(decision.response.status).toBe(401);
  });

  it('refuses an assertion signed by a key that is not the team’s', async () => {
    const { keys, sign, strangerKey } = await accessFixture();
    const decision = await authorize(request({ 'Cf-Access-Jwt-Assertion': await sign({}, strangerKey) }), accessEnv, 'viewer', 'demo', { accessKeys: () => keys });
    expect(decision.ok).toBe(false);
  });

  it('never makes a rover, and is ignored where Access is not configured', async () => {
    const { keys, sign } = await accessFixture();
    const assertion = await sign({});
    const asRover = await authorize(request({ 'Cf-Access-Jwt-Assertion': assertion }), accessEnv, 'rover', 'demo', { accessKeys: () => keys });
    expect(asRover.ok).toBe(false);
    const notConfigured = await authorize(request({ 'Cf-Access-Jwt-Assertion': assertion }), env, 'viewer', 'demo', { accessKeys: () => keys });
    expect(notConfigured.ok).toBe(false);
    if (!notConfigured.ok) expect(notConfigured.response.status).toBe(401);
  });
});
