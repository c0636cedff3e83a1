/**
 * Who may open a rover's signaling socket. Checked in the Worker, before the request reaches the
 * Durable Object, so an unauthorized upgrade is refused with an HTTP status and never accepted.
 */
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { MIN_SECRET_LENGTH, presentedToken, verifyToken, type TokenClaims, type TokenKind } from '../../protocol/auth.js';

export interface AuthEnv {
  /** Signs rover tokens ("I am rover X"). A secret: `wrangler secret put ROVER_TOKEN_SECRET`. */
  ROVER_TOKEN_SECRET?: string;
  /** Signs viewer tokens ("may watch rover X"). A secret: `wrangler secret put VIEWER_TOKEN_SECRET`. */
  VIEWER_TOKEN_SECRET?: string;
  /** Bearer token for POST /admin/viewer-links; unset = the admin path does not exist. */
  ADMIN_TOKEN?: string;
  /** Extra origins (space/comma separated) allowed to open viewer sockets, e.g. "tauri://localhost". */
  ALLOWED_ORIGINS?: string;
  /**
   * Cloudflare Access, where a deployment puts the viewer pages behind it: the team domain
   * (e.g. "myteam.cloudflareaccess.com") and the application's AUD tag. With both set, a viewer without a
   * viewer token is admitted on a valid Access assertion (Cf-Access-Jwt-Assertion); Access policies decide
   * who that is (scope them to /rovers/<id>* paths to limit rovers).
   */
  ACCESS_TEAM_DOMAIN?: string;
  ACCESS_AUD?: string;
}

/** Where Access keys come from; tests pass a local key set. */
export interface AuthDeps {
  accessKeys?: (teamDomain: string) => JWTVerifyGetKey;
}

const remoteKeySets = new Map<string, JWTVerifyGetKey>();
function remoteAccessKeys(teamDomain: string): JWTVerifyGetKey {
  let keys = remoteKeySets.get(teamDomain);
  if (!keys) {
    keys = createRemoteJWKSet(new URL(`https://${teamDomain}/cdn-cgi/access/certs`));
    remoteKeySets.set(teamDomain, keys);
  }
  return keys;
}

/** Verify a Cloudflare Access assertion for this application. Never throws. */
export async function verifyAccessAssertion(
  assertion: string,
  teamDomain: string,
  audience: string,
  keys: JWTVerifyGetKey,
): Promise<{ ok: true; identity: string; expiresAt: number } | { ok: false; reason: string }> {
  try {
    const { payload } = await jwtVerify(assertion, keys, {
      algorithms: ['RS256'],
      issuer: `https://${teamDomain}`,
      audience,
    });
    const identity = typeof payload['email'] === 'string' ? payload['email'] : (payload.sub ?? 'unknown');
    return { ok: true, identity, expiresAt: payload.exp ?? 0 };
  } catch {
    return { ok: false, reason: 'invalid Cloudflare Access assertion' };
  }
}

export type AuthDecision = { ok: true; claims: TokenClaims } | { ok: false; response: Response };

export function secretFor(kind: TokenKind, env: AuthEnv): string | undefined {
  const secret = kind === 'rover' ? env.ROVER_TOKEN_SECRET : env.VIEWER_TOKEN_SECRET;
  return secret && secret.length >= MIN_SECRET_LENGTH ? secret : undefined;
}

/**
 * Browsers send Origin on WebSocket upgrades and cannot forge it: only our own pages (and configured
 * embedders) may use a viewer token from a browser. Clients without Origin (the sender, tools) pass.
 */
export function originAllowed(request: Request, env: AuthEnv): boolean {
  const origin = request.headers.get('origin');
  if (origin === null) return true;
  if (origin === new URL(request.url).origin) return true;
  const allowed = (env.ALLOWED_ORIGINS ?? '').split(/[\s,]+/).filter(Boolean);
  return allowed.includes(origin);
}

export function authError(status: 401 | 403 | 503, message: string): Response {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  if (status === 401) headers['www-authenticate'] = 'Bearer realm="rover-live", error="invalid_token"';
  const code = status === 401 ? 'unauthorized' : status === 403 ? 'forbidden' : 'not-configured';
  return new Response(JSON.stringify({ error: code, message }), { status, headers });
}

/** Authorize a request for `kind` access to `roverId`. Fails closed when the secret is not configured. */
export async function authorize(
  request: Request,
  env: AuthEnv,
  kind: TokenKind,
  roverId: string,
  deps: AuthDeps = {},
): Promise<AuthDecision> {
  if (!originAllowed(request, env)) {
    return { ok: false, response: authError(403, 'this origin may not connect; add it to ALLOWED_ORIGINS') };
  }
  const secret = secretFor(kind, env);
  if (!secret) {
    const name = kind === 'rover' ? 'ROVER_TOKEN_SECRET' : 'VIEWER_TOKEN_SECRET';
    return { ok: false, response: authError(503, `authentication is not configured: set the ${name} secret (≥ ${MIN_SECRET_LENGTH} characters)`) };
  }
  const { token } = presentedToken(request.headers);
  const assertion = request.headers.get('cf-access-jwt-assertion');
  if (kind === 'viewer' && !token && assertion && env.ACCESS_TEAM_DOMAIN && env.ACCESS_AUD) {
    const keys = (deps.accessKeys ?? remoteAccessKeys)(env.ACCESS_TEAM_DOMAIN);
    const access = await verifyAccessAssertion(assertion, env.ACCESS_TEAM_DOMAIN, env.ACCESS_AUD, keys);
    if (!access.ok) return { ok: false, response: authError(401, access.reason) };
    // Access decides who may watch; driving needs an explicit viewer token with the control scope.
    return { ok: true, claims: { kind, roverId, expiresAt: access.expiresAt, tokenId: `access:${access.identity}`, canControl: false } };
  }
  const result = await verifyToken(kind, token, roverId, secret);
  if (!result.ok) return { ok: false, response: authError(result.status, result.reason) };
  return { ok: true, claims: result.claims };
}

/** Constant-time comparison of a presented admin token with the configured one. */
export function adminTokenMatches(presented: string | null, expected: string | undefined): boolean {
  if (!presented || !expected || expected.length < MIN_SECRET_LENGTH) return false;
  const encoder = new TextEncoder();
  const a = encoder.encode(presented);
  const b = encoder.encode(expected);
  // timingSafeEqual needs equal lengths; comparing b with itself keeps the time independent of the input.
  if (a.byteLength !== b.byteLength) {
    crypto.subtle.timingSafeEqual(b, b);
    return false;
  }
  return crypto.subtle.timingSafeEqual(a, b);
}
