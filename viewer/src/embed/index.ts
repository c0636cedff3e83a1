/**
 * The embeddable player, built into viewer/dist/rover-stream.js (served by the Worker at /rover-stream.js):
 *   <script type="module" src="https://<worker>/rover-stream.js"></script>
 *   <rover-stream rover="rover-1"></rover-stream>
 * Importing it registers <rover-stream>; the UI-free client is exported too, for apps that draw their own UI.
 */
import { RoverStreamElement } from './element.js';

export { RoverStreamElement, type TokenSource } from './element.js';
export type { RoverStateDetail, RoverStreamEventMap, RoverStreamEventName } from './events.js';
export {
  explainRefusal,
  RoverViewerClient,
  type ControlStatus,
  type MediaPath,
  type ViewerClientEvents,
  type ViewerClientOptions,
  type ViewerState,
  type ViewerStats,
} from '../client.js';
export type { CameraInfo, Detection, RoverStatus, TelemetryMessage } from '../../../protocol/index.js';

export const ROVER_STREAM_TAG = 'rover-stream';

// The script may be included twice (two widgets, two bundles): defining a tag twice throws.
if (!customElements.get(ROVER_STREAM_TAG)) customElements.define(ROVER_STREAM_TAG, RoverStreamElement);
