/**
 * Viewer links this browser has opened, remembered so the home page can list "your rovers" with their
 * presence. Only viewer tokens (short-lived, one rover each, watch-only) are kept, in localStorage, and
 * each is dropped once expired or refused. Nothing here is trusted: the server checks every token.
 */
const STORAGE_KEY = 'rover-live:links';

export interface RememberedLink {
  roverId: string;
  token: string;
  /** Unix seconds, from the token's payload (unverified: only used to forget stale links). */
  expiresAt: number;
}

/** The `exp` claim of a JWT, without verifying it (the server does); null when unreadable. */
export function tokenExpiry(token: string): number | null {
  try {
    const payload = token.split('.')[1] ?? '';
    const json = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: unknown };
    return typeof json.exp === 'number' ? json.exp : null;
  } catch {
    return null;
  }
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

export function forgetLink(roverId: string): void {
  const links = load();
  delete links[roverId];
  save(links);
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
