export interface Env {
  ROVER_ROOMS: DurableObjectNamespace<import('./room.js').RoverRoom>;
  ASSETS: Fetcher;
}
