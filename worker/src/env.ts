import type { AuthEnv } from './auth.js';
import type { IceEnv } from './ice.js';

export interface Env extends IceEnv, AuthEnv {
  ROVER_ROOMS: DurableObjectNamespace<import('./room.js').RoverRoom>;
  ASSETS: Fetcher;
  /** Seconds without a heartbeat before a socket is dropped (default 75). */
  HEARTBEAT_TIMEOUT_SECONDS?: string;
  /** Upgrades per client IP (Workers Rate Limiting binding); absent in tests that do not need it. */
  UPGRADE_LIMITER?: RateLimit;
}
