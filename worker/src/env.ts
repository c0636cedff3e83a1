import type { IceEnv } from './ice.js';

export interface Env extends IceEnv {
  ROVER_ROOMS: DurableObjectNamespace<import('./room.js').RoverRoom>;
  ASSETS: Fetcher;
}
