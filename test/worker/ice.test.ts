/**
 * ICE settings and TURN REST credentials: the pure functions (known answers), and what the Durable Object
 * hands each side of a call (this suite's Worker has TURN configured, see vitest.config.ts).
 */
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it } from 'vitest';
import { hasTurn, type IceConfig } from '../../protocol/index.js';
import { DEFAULT_PUBLIC_STUN, DEFAULT_TTL_SECONDS, iceConfigFor, readIceSettings, turnPassword } from '../../worker/src/ice.js';
import { camera, closeAllPeers, joinedViewer, onlineRover, uniqueRoverId } from './helpers.js';

const SECRET = 'a-long-enough-turn-secret';
const TURN_UDP = 'turn:turn.example.com:3478?transport=udp';
const TURNS = 'turns:turn.example.com:5349?transport=tcp';

/** An independent HMAC-SHA1 (WebCrypto) to check the Worker's synchronous one against. */
async function webCryptoPassword(secret: string, username: string): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-1' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(username)));
  return btoa(String.fromCharCode(...mac));
}

describe('turnPassword', () => {
  it('is base64(HMAC-SHA1(secret, username)): RFC 2202 test case 2', () => {
    expect(turnPassword('Jefe', 'what do ya want for nothing?')).toBe('7/zfauXrL6LSdBbV8YTfnCWafHk=');
  });

  it('agrees with WebCrypto for REST usernames', async () => {
    for (const username of ['1700000000:demo.viewer.1a2b3c4d', '4102444800:x', '1:ünïcødé']) {
      expect(turnPassword(SECRET, username)).toBe(await webCryptoPassword(SECRET, username));
    }
  });
});

describe('readIceSettings', () => {
  it('without any configuration: public STUN, no TURN, direct paths allowed, no complaints', () => {
    expect(readIceSettings({})).toEqual({
      stunUrls: [DEFAULT_PUBLIC_STUN],
      turnUrls: [],
      turnSecret: undefined,
      ttlSeconds: DEFAULT_TTL_SECONDS,
      policy: 'all',
      problems: [],
    });
  });

  it('with TURN: STUN comes from the same host, not a third party', () => {
    const settings = readIceSettings({ TURN_URLS: `${TURN_UDP}, ${TURNS}`, TURN_SECRET: SECRET });
    expect(settings.turnUrls).toEqual([TURN_UDP, TURNS]);
    expect(settings.stunUrls).toEqual(['stun:turn.example.com:3478']);
    expect(settings.problems).toEqual([]);
  });

  it('STUN_URLS overrides, and "none" lists none', () => {
    expect(readIceSettings({ STUN_URLS: 'stun:a.example:3478 stun:[2001:db8::1]:3478' }).stunUrls).toEqual([
      'stun:a.example:3478',
      'stun:[2001:db8::1]:3478',
    ]);
    expect(readIceSettings({ STUN_URLS: 'none', TURN_URLS: TURN_UDP, TURN_SECRET: SECRET }).stunUrls).toEqual([]);
  });

  it('TURN URLs without a secret disable TURN and say why', () => {
    const settings = readIceSettings({ TURN_URLS: TURN_UDP });
    expect(settings.turnUrls).toEqual([]);
    expect(settings.turnSecret).toBeUndefined();
    expect(settings.stunUrls).toEqual([DEFAULT_PUBLIC_STUN]);
    expect(settings.problems.join('\n')).toMatch(/TURN_SECRET is not.*TURN disabled/);
  });

  it('a short secret is refused', () => {
    const settings = readIceSettings({ TURN_URLS: TURN_UDP, TURN_SECRET: 'short' });
    expect(settings.turnSecret).toBeUndefined();
    expect(settings.problems.join('\n')).toMatch(/shorter than 16/);
  });

  it('malformed URLs are dropped one by one, with the reason', () => {
    const settings = readIceSettings({
      TURN_URLS: `http://turn.example.com ${TURN_UDP} stun:turn.example.com turns:x:5349?transport=udp`,
      TURN_SECRET: SECRET,
      STUN_URLS: 'turn:wrong-kind:3478 stun:ok.example',
    });
    expect(settings.turnUrls).toEqual([TURN_UDP]);
    expect(settings.stunUrls).toEqual(['stun:ok.example']);
    expect(settings.problems).toHaveLength(4);
  });

  it('TTL outside 60..86400 falls back to the default', () => {
    for (const ttl of ['0', '59', '86401', '1.5', 'soon']) {
      const settings = readIceSettings({ TURN_TTL_SECONDS: ttl });
      expect(settings.ttlSeconds).toBe(DEFAULT_TTL_SECONDS);
      expect(settings.problems).toHaveLength(1);
    }
    expect(readIceSettings({ TURN_TTL_SECONDS: '120' }).ttlSeconds).toBe(120);
  });

  it('relay-only policy, and a warning when there is no TURN to relay through', () => {
    expect(readIceSettings({ ICE_TRANSPORT_POLICY: 'relay', TURN_URLS: TURN_UDP, TURN_SECRET: SECRET })).toMatchObject({
      policy: 'relay',
      problems: [],
    });
    expect(readIceSettings({ ICE_TRANSPORT_POLICY: 'relay' }).problems.join('\n')).toMatch(/every call will fail/);
    expect(readIceSettings({ ICE_TRANSPORT_POLICY: 'sometimes' })).toMatchObject({ policy: 'all', problems: [expect.stringMatching(/"all" or "relay"/)] });
  });
});

describe('iceConfigFor', () => {
  const now = Date.UTC(2026, 10, 21, 12, 0, 0);

  it('mints REST credentials: "<expiry>:<session>" and its HMAC, expiring after the TTL', () => {
    const settings = readIceSettings({ TURN_URLS: `${TURN_UDP} ${TURNS}`, TURN_SECRET: SECRET, TURN_TTL_SECONDS: '900' });
    const config = iceConfigFor(settings, 'demo.viewer.1a2b3c4d', now);
    const expiry = now / 1000 + 900;
    expect(config).toEqual({
      iceServers: [
        { urls: ['stun:turn.example.com:3478'] },
        { urls: [TURN_UDP, TURNS], username: `${expiry}:demo.viewer.1a2b3c4d`, credential: turnPassword(SECRET, `${expiry}:demo.viewer.1a2b3c4d`) },
      ],
      iceTransportPolicy: 'all',
      expiresAt: expiry * 1000,
    });
    expect(hasTurn(config)).toBe(true);
  });

  it('keeps the username to one ":" (coturn splits expiry from session at the first one)', () => {
    const settings = readIceSettings({ TURN_URLS: TURN_UDP, TURN_SECRET: SECRET });
    const username = iceConfigFor(settings, 'a:b:c', now).iceServers[1]?.username ?? '';
    expect(username.split(':')).toHaveLength(2);
  });

  it('without TURN: STUN only, nothing expires', () => {
    const config = iceConfigFor(readIceSettings({}), 'demo.rover.x', now);
    expect(config).toEqual({ iceServers: [{ urls: [DEFAULT_PUBLIC_STUN] }], iceTransportPolicy: 'all', expiresAt: null });
    expect(hasTurn(config)).toBe(false);
  });
});

describe('the Durable Object hands out per-call credentials', () => {
  afterEach(closeAllPeers);

  function turnOf(ice: IceConfig): { urls: string[]; username: string; credential: string } {
    const turn = ice.iceServers.find((server) => server.username !== undefined);
    expect(turn, 'a TURN server with credentials').toBeDefined();
    return turn as { urls: string[]; username: string; credential: string };
  }

  function expectValidCredential(ice: IceConfig, session: string): void {
    const { username, credential, urls } = turnOf(ice);
    const [expiry, name] = username.split(':');
    expect(name).toBe(session);
    const expirySeconds = Number(expiry);
    const ttl = Number(env.TURN_TTL_SECONDS);
    expect(expirySeconds * 1000).toBe(ice.expiresAt);
    // Minted just now for the configured TTL (clock slack of a few seconds).
    expect(Math.abs(expirySeconds - (Date.now() / 1000 + ttl))).toBeLessThan(5);
    expect(credential).toBe(turnPassword(env.TURN_SECRET ?? '', username));
    expect(urls).toEqual(env.TURN_URLS?.split(' '));
  }

  it('rover side on viewer-join and in welcome, viewer side on the offer, each named for its call', async () => {
    const roverId = uniqueRoverId('ice');
    const early = await joinedViewer(roverId, 'early viewer');
    early.viewer.send({ type: 'watch', cameraId: 'main' });
    await early.viewer.sync();

    const { rover, welcome } = await onlineRover(roverId, [camera('main')]);
    expect(welcome.viewers).toHaveLength(1);
    expectValidCredential(welcome.viewers[0]!.ice, `${roverId}.rover.${early.viewerId.slice(0, 8)}`);

    const late = await joinedViewer(roverId, 'late viewer');
    late.viewer.send({ type: 'watch', cameraId: 'main' });
    const join = await rover.next('viewer-join');
    expectValidCredential(join.ice, `${roverId}.rover.${late.viewerId.slice(0, 8)}`);

    rover.send({ type: 'offer', viewerId: late.viewerId, callId: 'call-1', cameraId: 'main', sdp: 'v=0' });
    const offer = await late.viewer.next('offer');
    expectValidCredential(offer.ice, `${roverId}.viewer.${late.viewerId.slice(0, 8)}`);
    expect(offer.ice.iceServers[0]).toEqual({ urls: ['stun:turn.test.invalid:3478'] });
    expect(offer.ice.iceTransportPolicy).toBe('all');

    // The two viewers never share a credential.
    expect(turnOf(offer.ice).username).not.toBe(turnOf(welcome.viewers[0]!.ice).username.replace('.rover.', '.viewer.'));
  });
});
