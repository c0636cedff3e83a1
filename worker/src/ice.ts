/**
 * ICE servers for rovers and viewers: STUN always (when configured), TURN with short-lived credentials
 * minted per call side with the TURN REST API scheme that coturn's `use-auth-secret` checks:
 *   username = "<unix expiry seconds>:<session label>", password = base64(HMAC-SHA1(secret, username)).
 * The shared secret never leaves the Worker; a leaked credential stops working at its expiry.
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha1 } from '@noble/hashes/legacy.js';
import { parseIceUrl, type IceConfig, type IceServer } from '../../protocol/index.js';

/** The Worker's ICE-related configuration (wrangler.toml [vars] + `wrangler secret put TURN_SECRET`). */
export interface IceEnv {
  /** Space- or comma-separated turn:/turns: URLs of your coturn, e.g. "turn:turn.example.com:3478?transport=udp". */
  TURN_URLS?: string;
  /** Shared with coturn's `static-auth-secret`. A secret, never a var. */
  TURN_SECRET?: string;
  /** Lifetime of minted TURN credentials in seconds (default 3600, 60 … 86400). */
  TURN_TTL_SECONDS?: string;
  /** STUN URLs; default: STUN on the TURN hosts, else Cloudflare's public STUN. "none" lists none. */
  STUN_URLS?: string;
  /** "all" (default) or "relay" (TURN only, for locked-down deployments). */
  ICE_TRANSPORT_POLICY?: string;
}

export interface IceSettings {
  stunUrls: string[];
  turnUrls: string[];
  /** Undefined when TURN is not configured (or misconfigured: see `problems`). */
  turnSecret: string | undefined;
  ttlSeconds: number;
  policy: 'all' | 'relay';
  /** Configuration mistakes, in words an operator can act on (logged; never sent to clients). */
  problems: string[];
}

export const DEFAULT_TTL_SECONDS = 3600;
export const DEFAULT_PUBLIC_STUN = 'stun:stun.cloudflare.com:3478';
const MIN_TTL_SECONDS = 60;
const MAX_TTL_SECONDS = 86_400;
/** coturn compares the username's expiry with its own clock: keep secrets at least this strong. */
const MIN_SECRET_LENGTH = 16;

function splitList(value: string | undefined): string[] {
  return (value ?? '').split(/[\s,]+/).filter((item) => item.length > 0);
}

export function readIceSettings(env: IceEnv): IceSettings {
  const problems: string[] = [];

  const turnUrls: string[] = [];
  for (const url of splitList(env.TURN_URLS)) {
    const parsed = parseIceUrl(url);
    if (!parsed || !parsed.scheme.startsWith('turn')) problems.push(`TURN_URLS: ignoring "${url.slice(0, 80)}": not a turn: or turns: URL`);
    else turnUrls.push(url);
  }

  let turnSecret: string | undefined = env.TURN_SECRET?.trim() || undefined;
  if (turnUrls.length > 0 && !turnSecret) {
    problems.push('TURN_URLS is set but TURN_SECRET is not (wrangler secret put TURN_SECRET): TURN disabled');
  } else if (turnSecret && turnSecret.length < MIN_SECRET_LENGTH) {
    problems.push(`TURN_SECRET is shorter than ${MIN_SECRET_LENGTH} characters: TURN disabled`);
    turnSecret = undefined;
  }
  const turnEnabled = turnUrls.length > 0 && turnSecret !== undefined;

  let ttlSeconds = DEFAULT_TTL_SECONDS;
  if (env.TURN_TTL_SECONDS !== undefined && env.TURN_TTL_SECONDS.trim() !== '') {
    const parsed = Number(env.TURN_TTL_SECONDS);
    if (!Number.isInteger(parsed) || parsed < MIN_TTL_SECONDS || parsed > MAX_TTL_SECONDS) {
      problems.push(`TURN_TTL_SECONDS must be an integer from ${MIN_TTL_SECONDS} to ${MAX_TTL_SECONDS}: using ${DEFAULT_TTL_SECONDS}`);
    } else {
      ttlSeconds = parsed;
    }
  }

  let stunUrls: string[];
  const stunSetting = env.STUN_URLS?.trim();
  if (stunSetting === 'none') {
    stunUrls = [];
  } else if (stunSetting) {
    stunUrls = [];
    for (const url of splitList(stunSetting)) {
      const parsed = parseIceUrl(url);
      if (!parsed || !parsed.scheme.startsWith('stun')) problems.push(`STUN_URLS: ignoring "${url.slice(0, 80)}": not a stun: URL`);
      else stunUrls.push(url);
    }
  } else if (turnEnabled) {
    // coturn answers STUN on its TURN port: the same hosts, no third party.
    const turnHosts = turnUrls.map((url) => parseIceUrl(url)!).filter((u) => u.scheme === 'turn' && u.transport === 'udp');
    stunUrls = [...new Set(turnHosts.map((u) => `stun:${formatHost(u.host)}:${u.port}`))];
  } else {
    stunUrls = [DEFAULT_PUBLIC_STUN];
  }

  let policy: 'all' | 'relay' = 'all';
  const policySetting = env.ICE_TRANSPORT_POLICY?.trim();
  if (policySetting === 'relay') policy = 'relay';
  else if (policySetting && policySetting !== 'all') problems.push(`ICE_TRANSPORT_POLICY must be "all" or "relay" (got "${policySetting.slice(0, 20)}"): using "all"`);
  if (policy === 'relay' && !turnEnabled) problems.push('ICE_TRANSPORT_POLICY is "relay" but TURN is not configured: every call will fail');

  return { stunUrls, turnUrls: turnEnabled ? turnUrls : [], turnSecret: turnEnabled ? turnSecret : undefined, ttlSeconds, policy, problems };
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * TURN REST API password for a username: base64(HMAC-SHA1(secret, username)).
 * Synchronous on purpose (WebCrypto is async): the Durable Object mints while handling a message, and an
 * await there would let other sockets' messages interleave and reorder signaling.
 */
export function turnPassword(secret: string, username: string): string {
  const encoder = new TextEncoder();
  const mac = hmac(sha1, encoder.encode(secret), encoder.encode(username));
  let binary = '';
  for (const byte of mac) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/**
 * ICE settings for one side of one call. `session` names it in coturn's logs and quotas
 * (e.g. "demo.viewer.1a2b3c4d"); it must not contain ':'.
 */
export function iceConfigFor(settings: IceSettings, session: string, nowMs: number = Date.now()): IceConfig {
  const iceServers: IceServer[] = [];
  if (settings.stunUrls.length > 0) iceServers.push({ urls: settings.stunUrls });
  let expiresAt: number | null = null;
  if (settings.turnSecret !== undefined && settings.turnUrls.length > 0) {
    const expirySeconds = Math.floor(nowMs / 1000) + settings.ttlSeconds;
    const username = `${expirySeconds}:${session.replaceAll(':', '_')}`;
    iceServers.push({ urls: settings.turnUrls, username, credential: turnPassword(settings.turnSecret, username) });
    expiresAt = expirySeconds * 1000;
  }
  return { iceServers, iceTransportPolicy: settings.policy, expiresAt };
}
