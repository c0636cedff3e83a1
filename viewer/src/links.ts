/**
 * Viewer links this browser has opened, remembered so the home page can list "your rovers" with their
 * presence. Only viewer tokens (short-lived, one rover each) are kept, in localStorage; each is dropped once
 * expired or refused, and the home page has a Forget button (a link that may drive deserves one on a shared
 * machine). Nothing here is trusted: the server checks every token.
 */
const STORAGE_KEY = 'rover-live:links';

export interface RememberedLink {
  roverId: string;
  token: string;
  /** Unix seconds, from the token's payload (unverified: only used to forget stale links). */
  expiresAt: number;
}

/** A JWT's payload, without verifying it (the server does): for display and housekeeping only. */
function unverifiedClaims(token: string): { exp?: unknown; scope?: unknown } | null {
  try {
    const payload = token.split('.')[1] ?? '';
    return JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: unknown; scope?: unknown };
  } catch {
    return null;
  }
}

/** The `exp` claim of a JWT (unverified); null when unreadable. */
export function tokenExpiry(token: string): number | null {
  const exp = unverifiedClaims(token)?.exp;
  return typeof exp === 'number' ? exp : null;
}

/** Whether the token says it may drive (unverified: only to label the link; the server decides). */
export function tokenMayControl(token: string): boolean {
  const scope = unverifiedClaims(token)?.scope;
  return typeof scope === 'string' && scope.split(' ').includes('control');
}

function load(): Record<string, string> {
  try {
    const parsed = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '{}') as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, string>) : {};
  } catch {
    return {};
  }
}

function save(links: Record<string, string>): void {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(links));
  } catch {
    // Storage disabled or full: the home page just lists fewer rovers.
  }
}

export function rememberLink(roverId: string, token: string): void {
  const links = load();
  links[roverId] = token;
  save(links);
}

/** Forget a rover on this device: the remembered link, and this tab's copy of its token. */
export function forgetLink(roverId: string): void {
  const links = load();
  delete links[roverId];
  save(links);
  try {
    sessionStorage.removeItem(`rover-live:access:${roverId}`);
  } catch {
    // Storage disabled: nothing was kept there.
  }
}

/** Remembered, unexpired links, by rover id; expired ones are forgotten on the way. */
export function rememberedLinks(nowSeconds = Date.now() / 1000): RememberedLink[] {
  const links = load();
  const result: RememberedLink[] = [];
  let changed = false;
  for (const [roverId, token] of Object.entries(links)) {
    const expiresAt = typeof token === 'string' ? tokenExpiry(token) : null;
    if (expiresAt === null || expiresAt <= nowSeconds) {
      delete links[roverId];
      changed = true;
    } else {
      result.push({ roverId, token, expiresAt });
    }
  }
  if (changed) save(links);
  return result.sort((a, b) => a.roverId.localeCompare(b.roverId));
}

export function rememberedToken(roverId: string): string | undefined {
  return rememberedLinks().find((link) => link.roverId === roverId)?.token;
}
