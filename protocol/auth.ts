/**
 * Access tokens: the contract between the Worker (verifies), the token CLI / admin endpoint (mint), the
 * sender (carries a rover token) and the viewer (carries a viewer token). Not imported by the viewer bundle:
 * to the browser a token is an opaque string.
 *
 * Tokens are JWTs (HS256, via jose) with claims { iss, aud, sub = rover id, iat, exp, jti [, scope] }.
 *  - rover tokens:  aud "rover",  signed with ROVER_TOKEN_SECRET  — "I am rover <sub>"
 *  - viewer tokens: aud "viewer", signed with VIEWER_TOKEN_SECRET — "may watch rover <sub>"; with
 *    scope "watch control" also "may drive it" (take the control lease). Watching is the default: control
 *    is granted explicitly, per link.
 * Two secrets, not one with two audiences: a leaked viewer secret can never mint a rover identity, and a
 * token of one kind fails the other kind's signature check before its claims are even read.
 */
import { errors, jwtVerify, SignJWT } from 'jose';
import { isValidRoverId, SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX } from './index.js';

export { SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX };

export type TokenKind = 'rover' | 'viewer';

export const TOKEN_ISSUER = 'rover-live';
/** Secrets shorter than this are refused: HS256 keys should carry ≥ 256 bits of entropy. */
export const MIN_SECRET_LENGTH = 32;
/** Viewer links: default and longest lifetime. */
export const DEFAULT_VIEWER_TTL_SECONDS = 8 * 3600;
export const MAX_VIEWER_TTL_SECONDS = 30 * 24 * 3600;
/** Rover tokens live on provisioned devices: default a year, at most five. */
export const DEFAULT_ROVER_TTL_SECONDS = 365 * 24 * 3600;
export const MAX_ROVER_TTL_SECONDS = 5 * 365 * 24 * 3600;
/** Clock skew tolerated between the minting machine and the Worker. */
const CLOCK_TOLERANCE_SECONDS = 60;

export interface TokenClaims {
  kind: TokenKind;
  roverId: string;
  /** Unix seconds. */
  expiresAt: number;
  tokenId: string;
  /** Viewer tokens: may take the control lease and send commands (scope "watch control"). */
  canControl: boolean;
}

/** The `scope` claim of a viewer token that may drive the rover. */
export const CONTROL_SCOPE = 'watch control';

export type VerifyResult =
  | { ok: true; claims: TokenClaims }
  /** 401: not a valid token of this kind (missing, malformed, forged, expired). 403: valid, wrong rover. */
  | { ok: false; status: 401 | 403; reason: string };

function keyOf(secret: string): Uint8Array {
  if (secret.length < MIN_SECRET_LENGTH) throw new Error(`token secret must be at least ${MIN_SECRET_LENGTH} characters`);
  return new TextEncoder().encode(secret);
}

export function maxTtlSeconds(kind: TokenKind): number {
  return kind === 'rover' ? MAX_ROVER_TTL_SECONDS : MAX_VIEWER_TTL_SECONDS;
}

/** Mint a token. Throws on a bad rover id, TTL or secret (callers validate user input first). */
export async function mintToken(
  kind: TokenKind,
  roverId: string,
  secret: string,
  ttlSeconds: number,
  nowSeconds: number = Math.floor(Date.now() / 1000),
  options: { control?: boolean } = {},
): Promise<{ token: string; expiresAt: number }> {
  if (!isValidRoverId(roverId)) throw new Error(`invalid rover id "${roverId.slice(0, 80)}"`);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 60 || ttlSeconds > maxTtlSeconds(kind)) {
    throw new Error(`token lifetime must be 60 s to ${maxTtlSeconds(kind)} s`);
  }
  if (options.control && kind !== 'viewer') throw new Error('only viewer tokens carry the control permission');
  const expiresAt = nowSeconds + ttlSeconds;
  const token = await new SignJWT(options.control ? { scope: CONTROL_SCOPE } : {})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(TOKEN_ISSUER)
    .setAudience(kind)
    .setSubject(roverId)
    .setIssuedAt(nowSeconds)
    .setExpirationTime(expiresAt)
    .setJti(crypto.randomUUID())
    .sign(keyOf(secret));
  return { token, expiresAt };
}

/** Verify a token of `kind` for `roverId`. Never throws; reasons never echo the token. */
export async function verifyToken(
  kind: TokenKind,
  token: string | null | undefined,
  roverId: string,
  secret: string,
  nowSeconds?: number,
): Promise<VerifyResult> {
  if (!token) return { ok: false, status: 401, reason: `no ${kind} token` };
  if (token.length > 4096) return { ok: false, status: 401, reason: 'token too long' };
  try {
    const { payload } = await jwtVerify(token, keyOf(secret), {
      algorithms: ['HS256'],
      issuer: TOKEN_ISSUER,
      audience: kind,
      requiredClaims: ['sub', 'exp', 'iat', 'jti'],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      ...(nowSeconds === undefined ? {} : { currentDate: new Date(nowSeconds * 1000) }),
    });
    if (payload.sub !== roverId) return { ok: false, status: 403, reason: `this ${kind} token is for another rover` };
    const tokenId = payload.jti!;
    const scopes = typeof payload['scope'] === 'string' ? payload['scope'].split(' ') : [];
    return { ok: true, claims: { kind, roverId, expiresAt: payload.exp!, tokenId, canControl: kind === 'viewer' && scopes.includes('control') } };
  } catch (error) {
    if (error instanceof errors.JWTExpired) return { ok: false, status: 401, reason: `${kind} token expired` };
    return { ok: false, status: 401, reason: `invalid ${kind} token` };
  }
}

/** The token a client presented: `Authorization: Bearer …`, or the `token.…` WebSocket subprotocol. */
export function presentedToken(headers: Headers): { token: string | null; viaSubprotocol: boolean; offersProtocol: boolean } {
  const authorization = headers.get('authorization');
  const protocols = (headers.get('sec-websocket-protocol') ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  const offersProtocol = protocols.includes(SUBPROTOCOL);
  const match = authorization ? /^Bearer\s+(\S+)$/i.exec(authorization) : null;
  if (match) return { token: match[1]!, viaSubprotocol: false, offersProtocol };
  const fromProtocol = protocols.find((p) => p.startsWith(TOKEN_SUBPROTOCOL_PREFIX));
  return { token: fromProtocol ? fromProtocol.slice(TOKEN_SUBPROTOCOL_PREFIX.length) : null, viaSubprotocol: Boolean(fromProtocol), offersProtocol };
}

/** Parse "90s", "15m", "8h", "30d" or plain seconds. Returns null when malformed. */
export function parseDuration(text: string): number | null {
  const match = /^(\d{1,9})\s*([smhd]?)$/.exec(text.trim());
  if (!match) return null;
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
