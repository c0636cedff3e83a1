/**
 * The DOM events of <rover-stream>: CustomEvents dispatched on the element (they bubble, so a container
 * can listen for all its players). Declared globally so `addEventListener('rover-state', …)` is typed.
 */
import type { RoverStatus, TelemetryMessage } from '../../../protocol/index.js';
import type { ControlStatus, ViewerState, ViewerStats } from '../client.js';

export interface RoverStateDetail {
  state: ViewerState;
  /** What is happening, in words for a person (e.g. "rover is offline; video starts when it connects"). */
  detail: string;
}

export interface RoverStreamEventMap {
  /** The connection state changed (offline, waiting, connecting, live, failed) and why. */
  'rover-state': CustomEvent<RoverStateDetail>;
  /** About once a second while live: size, frame rate, bitrate, path, round trip. */
  'rover-stats': CustomEvent<ViewerStats>;
  /** The rover came online or went away, or its cameras changed. */
  'rover-status': CustomEvent<RoverStatus>;
  /** A telemetry sample from the rover (detections, status values); newest only. */
  'rover-telemetry': CustomEvent<TelemetryMessage>;
  /** The control lease changed, or a control request or command was refused. */
  'rover-control': CustomEvent<ControlStatus>;
}

export type RoverStreamEventName = keyof RoverStreamEventMap;
export type RoverStreamEventDetail<K extends RoverStreamEventName> = RoverStreamEventMap[K] extends CustomEvent<infer D> ? D : never;

declare global {
  // Merged into the DOM's own map: typed addEventListener on the element and on any ancestor (events bubble).
  interface HTMLElementEventMap extends RoverStreamEventMap {}
}
