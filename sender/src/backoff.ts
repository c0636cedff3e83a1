/**
 * Capped exponential backoff with jitter: attempt n waits a random time in [cap/2, cap], where
 * cap = min(maxMs, minMs * 2^n). The jitter keeps a fleet of rovers from reconnecting in lockstep
 * after a Worker deploy.
 */
export interface BackoffOptions {
  minMs: number;
  maxMs: number;
}

export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const cap = Math.min(options.maxMs, options.minMs * 2 ** Math.max(0, attempt));
  return Math.round(cap / 2 + random() * (cap / 2));
}
