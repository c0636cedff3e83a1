/**
 * Why a player on another origin cannot connect. A refused WebSocket upgrade looks like a network error to
 * a page, and the client's follow-up question (GET /rovers/<id>/access) is itself blocked by CORS when the
 * page is on another origin, so the client can only say "cannot reach the server". This module tells the
 * two apart: if the server answers plain HTTP, it is reachable, so it refused this page's socket.
 */

/** The server's HTTP address (a ws:// or wss:// server is the same host over http:// or https://). */
function httpUrl(server: string): URL {
  const url = new URL(server);
  if (url.protocol === 'ws:') url.protocol = 'http:';
  else if (url.protocol === 'wss:') url.protocol = 'https:';
  return url;
}

/** True when `server` is on another origin than this page (only then is the client's own diagnosis blind). */
export function isCrossOrigin(server: string): boolean {
  try {
    return httpUrl(server).origin !== location.origin;
  } catch {
    return false;
  }
}

/**
 * Whether the server answers HTTP at all. An opaque ("no-cors") request needs no CORS headers: it resolves
 * on any response and rejects only when nothing answered.
 */
export async function serverAnswers(server: string, roverId: string): Promise<boolean> {
  const url = httpUrl(server);
  url.pathname = url.pathname.replace(/\/+$/, '') + `/rovers/${encodeURIComponent(roverId)}/access`;
  url.search = '';
  url.hash = '';
  try {
    await fetch(url, { mode: 'no-cors', cache: 'no-store', credentials: 'omit' });
    return true;
  } catch {
    return false;
  }
}

/** The words for a refused cross-origin player: what the operator must check. */
export function explainCrossOriginRefusal(server: string): string {
  const serverOrigin = httpUrl(server).origin;
  return (
    `The server ${serverOrigin} refused this page (${location.origin}). It must list this origin in ALLOWED_ORIGINS, ` +
    `and the viewer token must be valid for this rover.`
  );
}
