/**
 * The signaling protocol: the one contract between the Worker (Durable Object),
 * the rover's sender and the browser viewer.
 *
 * Transport: JSON text frames on a WebSocket at `/rovers/<roverId>/ws?role=rover|viewer&v=<PROTOCOL_VERSION>`.
 *
 * Negotiation model (race-free by construction):
 *  - Viewers say `watch` (idempotent: "start or restart a call to me for this camera").
 *    The Durable Object remembers who is watching, so a rover that connects later still learns of them.
 *  - The rover always makes the offer. Every call it starts has a fresh `callId`; answers and candidates
 *    carry it, so messages belonging to an older call are recognised and dropped on both sides.
 *  - The Durable Object addresses every signaling message to exactly one peer: the rover, or one viewer
 *    by the `viewerId` it assigned. Viewers never learn each other's ids.
 */
import * as z from 'zod/mini';

export const PROTOCOL_VERSION = 1;

/** Largest accepted WebSocket message, in bytes (UTF-8). */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/**
 * Clients send PING_FRAME at least this often. The server drops a socket that has sent no ping for its
 * heartbeat timeout (default 75 s, several missed beats: background tabs throttle timers), because a
 * peer that vanished without a close frame can otherwise look connected forever.
 */
export const HEARTBEAT_INTERVAL_MS = 15_000;

/** Heartbeat frames. The Durable Object answers these without waking from hibernation. */
export const PING_FRAME = '{"type":"ping"}';
export const PONG_FRAME = '{"type":"pong"}';

/**
 * WebSocket subprotocols. Browsers cannot set headers on a WebSocket, so a viewer offers
 * [SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + token] and the server answers SUBPROTOCOL. (Tokens: protocol/auth.ts.)
 */
export const SUBPROTOCOL = 'rover-live.v1';
export const TOKEN_SUBPROTOCOL_PREFIX = 'token.';

/** Rover ids: 1–64 of [a-z0-9-_], starting with a letter or digit. Case-sensitive, so `Demo` is refused. */
export const ROVER_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const CAMERA_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/;

export const DEFAULT_CAMERA_ID = 'main';

export function isValidRoverId(id: string): boolean {
  return ROVER_ID_PATTERN.test(id);
}

export const Role = z.enum(['rover', 'viewer']);
export type Role = z.infer<typeof Role>;

const CameraId = z.string().check(z.regex(CAMERA_ID_PATTERN, 'camera id must be 1-32 of a-z 0-9 - _'));
/** Ids minted by the Durable Object (viewers) or the sender (calls). Opaque, short. */
const OpaqueId = z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, 'id must be 1-64 of A-Z a-z 0-9 - _'));
const Sdp = z.string().check(z.minLength(1), z.maxLength(48 * 1024));
const IceCandidate = z.object({
  /** The a=candidate line body, e.g. "candidate:1 1 UDP 2122 192.0.2.1 5000 typ host". Empty = end of candidates. */
  candidate: z.string().check(z.maxLength(1024)),
  mid: z.string().check(z.maxLength(32)),
});
export type IceCandidate = z.infer<typeof IceCandidate>;

export const CameraInfo = z.object({
  id: CameraId,
  label: z.string().check(z.maxLength(64)),
  width: z.int().check(z.positive(), z.maximum(8192)),
  height: z.int().check(z.positive(), z.maximum(8192)),
  fps: z.number().check(z.positive(), z.maximum(240)),
  /** Frames carry their capture time (the `meter` source, protocol/timecode.ts): viewers can show latency. */
  timecode: z.optional(z.boolean()),
});
export type CameraInfo = z.infer<typeof CameraInfo>;

// ---------------------------------------------------------------- ICE (STUN/TURN)

/**
 * A STUN/TURN URL as RFC 7064/7065 write them: `stun:host[:port]`, `turn:host[:port][?transport=udp|tcp]`,
 * `turns:host[:port][?transport=tcp]`. Hosts may be names, IPv4 or [IPv6].
 */
const ICE_URL_PATTERN = /^(stuns?|turns?):(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?(?:\?transport=(udp|tcp))?$/;

export interface ParsedIceUrl {
  scheme: 'stun' | 'stuns' | 'turn' | 'turns';
  /** Host without IPv6 brackets. */
  host: string;
  port: number;
  transport: 'udp' | 'tcp';
}

/** Parse one ICE server URL; null when it is not a well-formed stun:/stuns:/turn:/turns: URL. */
export function parseIceUrl(url: string): ParsedIceUrl | null {
  const match = ICE_URL_PATTERN.exec(url);
  if (!match) return null;
  const scheme = match[1] as ParsedIceUrl['scheme'];
  const secure = scheme === 'stuns' || scheme === 'turns';
  const port = match[3] === undefined ? (secure ? 5349 : 3478) : Number(match[3]);
  if (port < 1 || port > 65535) return null;
  const transport = (match[4] as 'udp' | 'tcp' | undefined) ?? (secure ? 'tcp' : 'udp');
  // TLS runs over TCP; "stun" carries no transport parameter.
  if (secure && transport === 'udp') return null;
  if (scheme.startsWith('stun') && match[4] !== undefined) return null;
  return { scheme, host: match[2]!.replace(/^\[|\]$/g, ''), port, transport };
}

const IceUrl = z.string().check(
  z.maxLength(256),
  z.refine((url) => parseIceUrl(url) !== null, 'must be a stun:, stuns:, turn: or turns: URL'),
);

/** One ICE server, in the browser's RTCIceServer shape (credentials only for TURN). */
export const IceServer = z.object({
  urls: z.array(IceUrl).check(z.minLength(1), z.maxLength(8)),
  username: z.optional(z.string().check(z.maxLength(256))),
  credential: z.optional(z.string().check(z.maxLength(256))),
});
export type IceServer = z.infer<typeof IceServer>;

/**
 * The ICE settings for one side of one call, minted by the Worker right before the call starts:
 * TURN credentials are per call and short-lived, so they are never reused or kept.
 */
export const IceConfig = z.object({
  iceServers: z.array(IceServer).check(z.maxLength(8)),
  /** "relay": use TURN relays only (locked-down deployments); "all": direct paths first. */
  iceTransportPolicy: z.enum(['all', 'relay']),
  /** When the TURN credentials stop working (Unix ms), or null without TURN. */
  expiresAt: z.nullable(z.int()),
});
export type IceConfig = z.infer<typeof IceConfig>;

/** ICE settings for networks that need nothing from the server (e.g. loopback, one LAN). */
export const NO_ICE_SERVERS: IceConfig = { iceServers: [], iceTransportPolicy: 'all', expiresAt: null };

export function hasTurn(config: IceConfig): boolean {
  return config.iceServers.some((server) => server.urls.some((url) => url.startsWith('turn')));
}

export const RoverStatus = z.object({
  online: z.boolean(),
  /** Empty until the rover has announced its cameras. */
  cameras: z.array(CameraInfo).check(z.maxLength(16)),
});
export type RoverStatus = z.infer<typeof RoverStatus>;

/**
 * `GET /rovers/<id>/status` (viewer token as Authorization: Bearer): presence for lists and dashboards,
 * without opening a signaling socket. `viewers` counts open viewer connections, `watching` those asking
 * for video now.
 */
export const RoverPresence = z.object({
  roverId: z.string(),
  rover: RoverStatus,
  viewers: z.int().check(z.nonnegative()),
  watching: z.int().check(z.nonnegative()),
});
export type RoverPresence = z.infer<typeof RoverPresence>;

/** Close codes the Durable Object uses (4000–4999 are application codes). */
export const CloseCode = {
  /** A newer rover connection took over this rover id. Do not fight it. */
  Superseded: 4001,
  /** The upgrade request was malformed (bad role, bad version). Reconnecting will not help. */
  BadRequest: 4400,
  /** Protocol version not supported by this server. */
  UnsupportedVersion: 4426,
  /** No heartbeat for too long: the server assumes the peer is gone. */
  HeartbeatTimeout: 4408,
  /** The client sent messages faster than its limit allows; reconnect after a pause. */
  RateLimited: 4429,
} as const;

export const ErrorCode = z.enum([
  'bad-json',
  'bad-message',
  'too-large',
  'binary-not-supported',
  'wrong-role',
  'unknown-viewer',
  'unknown-camera',
  'rover-offline',
  /** This viewer's token does not allow control (mint one with `--control`). */
  'forbidden',
  /** Another viewer holds the control lease; this one watches until it is released or lapses. */
  'control-busy',
  /** A renewal came after the lease had lapsed (the rover has stopped): request control again. */
  'lease-lapsed',
  'internal',
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

/**
 * Clock sync: "what time is it on the server?" `t` is the asker's own clock (echoed back). Rover and
 * viewer both estimate their offset to the server clock, so a capture time painted by the rover
 * (timecode.ts) can be compared with a display time in the viewer on one clock.
 */
const ClockRequest = z.object({ type: z.literal('clock'), t: z.number().check(z.minimum(0)) });
const ClockReply = z.object({ type: z.literal('clock'), t: z.number(), serverTime: z.number() });
export type ClockReply = z.infer<typeof ClockReply>;

// ---------------------------------------------------------------- rover → server

export const RoverToServer = z.discriminatedUnion('type', [
  /** The rover's cameras. Sent after every `welcome`; may be re-sent when cameras change. */
  z.object({ type: z.literal('announce'), cameras: z.array(CameraInfo).check(z.minLength(1), z.maxLength(16)) }),
  z.object({
    type: z.literal('offer'),
    viewerId: OpaqueId,
    callId: OpaqueId,
    cameraId: CameraId,
    sdp: Sdp,
  }),
  z.object({ type: z.literal('candidate'), viewerId: OpaqueId, callId: OpaqueId, candidate: IceCandidate }),
  /** The rover ends a call (camera failed, shutting down). The viewer may `watch` again later. */
  z.object({
    type: z.literal('hangup'),
    viewerId: OpaqueId,
    callId: OpaqueId,
    reason: z.string().check(z.maxLength(200)),
  }),
  ClockRequest,
]);
export type RoverToServer = z.infer<typeof RoverToServer>;

// ---------------------------------------------------------------- viewer → server

export const ViewerToServer = z.discriminatedUnion('type', [
  /** Start (or restart) a call to this viewer. Idempotent; remembered while the rover is away. */
  z.object({ type: z.literal('watch'), cameraId: CameraId }),
  /** Stop watching: the rover tears down this viewer's call. */
  z.object({ type: z.literal('leave') }),
  z.object({ type: z.literal('answer'), callId: OpaqueId, sdp: Sdp }),
  z.object({ type: z.literal('candidate'), callId: OpaqueId, candidate: IceCandidate }),
  /**
   * The control lease (one controller at a time): `request` it, `renew` it every CONTROL_LEASE_RENEW_MS
   * while holding it, `release` it. Needs a token with the `control` permission.
   */
  z.object({ type: z.literal('lease'), action: z.enum(['request', 'renew', 'release']) }),
  ClockRequest,
]);
export type ViewerToServer = z.infer<typeof ViewerToServer>;

export const ROVER_MESSAGE_TYPES: ReadonlySet<string> = new Set<RoverToServer['type']>(['announce', 'offer', 'candidate', 'hangup', 'clock']);
export const VIEWER_MESSAGE_TYPES: ReadonlySet<string> = new Set<ViewerToServer['type']>(['watch', 'leave', 'answer', 'candidate', 'lease', 'clock']);

// ---------------------------------------------------------------- server → rover

/** A viewer waiting for a call, with the ICE settings the rover uses for that call. */
export const WatchingViewer = z.object({ viewerId: OpaqueId, cameraId: CameraId, ice: IceConfig });
export type WatchingViewer = z.infer<typeof WatchingViewer>;

/**
 * Who may drive: the viewer holding the control lease, for `ttlMs` from now (renewals repeat this), or
 * nobody. The rover accepts control only from that viewer's data channel and stops the robot when
 * `ttlMs` passes without a renewal — also when the server itself becomes unreachable.
 */
const RoverLease = z.object({
  type: z.literal('lease'),
  viewerId: z.nullable(OpaqueId),
  ttlMs: z.int().check(z.nonnegative(), z.maximum(60_000)),
  /** Why nobody holds it now (with viewerId null after a holder): released, lapsed, or the holder left. */
  ended: z.optional(z.enum(['released', 'lapsed', 'left'])),
});

export const ServerToRover = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('welcome'),
    role: z.literal('rover'),
    protocolVersion: z.int(),
    /** Viewers already waiting for a call: start one for each. */
    viewers: z.array(WatchingViewer),
    /** Who holds the control lease now. */
    lease: z.omit(RoverLease, { type: true }),
  }),
  z.object({ type: z.literal('viewer-join'), viewerId: OpaqueId, cameraId: CameraId, ice: IceConfig }),
  z.object({ type: z.literal('viewer-leave'), viewerId: OpaqueId }),
  RoverLease,
  z.object({ type: z.literal('answer'), viewerId: OpaqueId, callId: OpaqueId, sdp: Sdp }),
  z.object({ type: z.literal('candidate'), viewerId: OpaqueId, callId: OpaqueId, candidate: IceCandidate }),
  z.object({ type: z.literal('error'), code: ErrorCode, message: z.string() }),
  z.object({ type: z.literal('pong') }),
  ClockReply,
]);
export type ServerToRover = z.infer<typeof ServerToRover>;

// ---------------------------------------------------------------- server → viewer

/**
 * The control lease as one viewer sees it (in its welcome, then on every change): held by "you", by
 * someone "other" (viewers never learn each other's ids), or "none". `canControl`: this viewer's token
 * allows control. `ttlMs`: how long "your" lease lasts without a renewal.
 */
const ViewerLease = z.object({
  type: z.literal('lease'),
  holder: z.enum(['you', 'other', 'none']),
  canControl: z.boolean(),
  ttlMs: z.int().check(z.nonnegative()),
});

export const ServerToViewer = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('welcome'),
    role: z.literal('viewer'),
    protocolVersion: z.int(),
    viewerId: OpaqueId,
    rover: RoverStatus,
    /** The control lease as this viewer sees it. */
    control: z.omit(ViewerLease, { type: true }),
  }),
  z.object({ type: z.literal('rover-status'), rover: RoverStatus }),
  ViewerLease,
  /** The rover's offer, with the ICE settings this viewer uses for the call. */
  z.object({ type: z.literal('offer'), callId: OpaqueId, cameraId: CameraId, sdp: Sdp, ice: IceConfig }),
  z.object({ type: z.literal('candidate'), callId: OpaqueId, candidate: IceCandidate }),
  z.object({ type: z.literal('hangup'), callId: OpaqueId, reason: z.string() }),
  z.object({ type: z.literal('error'), code: ErrorCode, message: z.string() }),
  z.object({ type: z.literal('pong') }),
  ClockReply,
]);
export type ServerToViewer = z.infer<typeof ServerToViewer>;

// ---------------------------------------------------------------- control lease

/** A lease lasts this long without a renewal; the rover stops the robot when it lapses. */
export const CONTROL_LEASE_TTL_MS = 3_000;
/** The holder renews this often: two renewals may be lost before the lease lapses. */
export const CONTROL_LEASE_RENEW_MS = 1_000;

// ---------------------------------------------------------------- data channels (rover ↔ viewer, peer to peer)

/**
 * Every call carries two data channels next to the video, in the rover's offer:
 *  - TELEMETRY_CHANNEL, rover → viewer, unordered and unreliable: a late sample is worthless, so a lost
 *    one is never retransmitted and never holds up the next.
 *  - CONTROL_CHANNEL, viewer → rover (refusals back), ordered and reliable: commands arrive in order.
 * They run peer to peer with the video (the Durable Object only grants the lease), so a command takes the
 * media path's latency, not a round trip through the edge.
 */
export const TELEMETRY_CHANNEL = 'telemetry';
export const CONTROL_CHANNEL = 'control';
/** Telemetry is published at most this often per camera (and once more for rover-wide status). */
export const TELEMETRY_MAX_HZ = 30;
export const MAX_TELEMETRY_BYTES = 16 * 1024;
export const MAX_CONTROL_BYTES = 1024;
/** Commands one viewer may send per second (sustained) and in a burst; a joystick at 20-30 Hz fits. */
export const CONTROL_RATE_LIMIT = { perSecond: 40, burst: 40 } as const;

/** A detection by the rover's ML model: box in 0..1 of the picture (x, y = top left), label, score 0..1. */
export const Detection = z.object({
  label: z.string().check(z.maxLength(64)),
  score: z.number().check(z.minimum(0), z.maximum(1)),
  box: z.tuple([
    z.number().check(z.minimum(0), z.maximum(1)),
    z.number().check(z.minimum(0), z.maximum(1)),
    z.number().check(z.minimum(0), z.maximum(1)),
    z.number().check(z.minimum(0), z.maximum(1)),
  ]),
});
export type Detection = z.infer<typeof Detection>;

/** Rover status values: a flat map of small numbers, strings or booleans (battery, speed, mode…). */
const StatusValues = z.record(
  z.string().check(z.regex(/^[A-Za-z0-9_.-]{1,32}$/, 'status keys are 1-32 of A-Z a-z 0-9 _ . -')),
  z.union([z.number(), z.string().check(z.maxLength(128)), z.boolean(), z.null()]),
);

/** Rover → viewer, on TELEMETRY_CHANNEL. */
export const TelemetryMessage = z.object({
  type: z.literal('telemetry'),
  /** Per rover, increasing: viewers drop samples that arrive after a newer one. */
  seq: z.int().check(z.nonnegative()),
  /** When the data was true (the frame it was computed on was captured), server clock ms (clock.ts). */
  ts: z.number(),
  /** The camera the detections belong to; absent = the rover as a whole. */
  camera: z.optional(CameraId),
  detections: z.optional(z.array(Detection).check(z.maxLength(100))),
  status: z.optional(StatusValues),
});
export type TelemetryMessage = z.infer<typeof TelemetryMessage>;

/**
 * Rover → viewer, on TELEMETRY_CHANNEL, about once a second: the video's RTP timestamp `rtp` of a frame
 * and its capture time `ts` (server clock ms). A viewer maps the RTP timestamp of the frame on screen
 * (requestVideoFrameCallback) to its capture time and shows the detections made on that frame, in sync.
 */
export const FrameClockMessage = z.object({
  type: z.literal('frame-clock'),
  camera: CameraId,
  rtp: z.int().check(z.nonnegative(), z.maximum(0xffffffff)),
  ts: z.number(),
});
export type FrameClockMessage = z.infer<typeof FrameClockMessage>;

/** A command is any small JSON object; its meaning belongs to the rover's program. */
const ControlCommand = z.record(z.string().check(z.maxLength(64)), z.unknown());

/** Viewer → rover, on CONTROL_CHANNEL. Accepted only from the lease holder. */
export const ControlMessage = z.object({
  type: z.literal('control'),
  seq: z.int().check(z.nonnegative()),
  command: ControlCommand,
});
export type ControlMessage = z.infer<typeof ControlMessage>;

/** Rover → viewer, on CONTROL_CHANNEL: a command that did not reach the rover's program, and why. */
export const ControlRefusedMessage = z.object({
  type: z.literal('control-refused'),
  seq: z.int().check(z.nonnegative()),
  reason: z.enum(['no-lease', 'rate-limited', 'invalid', 'no-program']),
});
export type ControlRefusedMessage = z.infer<typeof ControlRefusedMessage>;

export const RoverToViewerData = z.discriminatedUnion('type', [TelemetryMessage, FrameClockMessage, ControlRefusedMessage]);
export type RoverToViewerData = z.infer<typeof RoverToViewerData>;

// ---------------------------------------------------------------- local API (the sender ↔ the rover's program)

/**
 * The sender's local API: JSON lines on a Unix socket (`--api-socket`), so a robotics program in any
 * language (Python, C++, a ROS node) can publish telemetry and receive commands with a few lines of code.
 *
 * Program → sender: `telemetry` (ts optional: the capture time on the rover's own clock, Unix ms; the
 * sender converts it to the server clock). Sender → program: `control` (from the lease holder only),
 * `lease` (who drives now) and `stop` (the lease ended: stop the robot), and `error` for a refused line.
 */
export const ApiTelemetry = z.object({
  type: z.literal('telemetry'),
  ts: z.optional(z.number().check(z.positive())),
  camera: z.optional(CameraId),
  detections: z.optional(z.array(Detection).check(z.maxLength(100))),
  status: z.optional(StatusValues),
});
export type ApiTelemetry = z.infer<typeof ApiTelemetry>;
export const ApiInbound = z.discriminatedUnion('type', [ApiTelemetry]);
export type ApiInbound = z.infer<typeof ApiInbound>;

export type ApiOutbound =
  | { type: 'hello'; roverId: string; cameras: string[] }
  | { type: 'control'; viewer: string; seq: number; command: Record<string, unknown> }
  | { type: 'lease'; viewer: string | null }
  | { type: 'stop'; reason: 'lease-lapsed' | 'released' | 'controller-left' | 'shutdown' }
  | { type: 'error'; message: string };

/** URL path of a rover's signaling socket. */
export function signalingPath(roverId: string): string {
  return `/rovers/${encodeURIComponent(roverId)}/ws`;
}

/** Full signaling URL from a server base (http(s):// or ws(s)://), rover id and role. */
export function signalingUrl(server: string, roverId: string, role: Role): string {
  const url = new URL(server);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new Error(`server URL must start with ws://, wss://, http:// or https:// (got ${url.protocol}//)`);
  }
  url.pathname = url.pathname.replace(/\/+$/, '') + signalingPath(roverId);
  url.search = '';
  url.hash = ''; // `ws` refuses URLs with a fragment (e.g. a pasted viewer link ending in #…)
  url.searchParams.set('role', role);
  url.searchParams.set('v', String(PROTOCOL_VERSION));
  return url.toString();
}

/** Parse and validate one inbound frame. Never throws. */
export function parseMessage<T extends z.ZodMiniType>(
  schema: T,
  raw: string,
): { ok: true; message: z.infer<T> } | { ok: false; code: ErrorCode; error: string } {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, code: 'bad-json', error: 'message is not valid JSON' };
  }
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, message: result.data };
  return { ok: false, code: 'bad-message', error: describeIssues(result.error) };
}

/** A short human-readable description of schema issues (never echoes the offending values). */
export function describeIssues(error: { issues: readonly z.core.$ZodIssue[] }): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.length ? issue.path.join('.') : 'message'}: ${issue.message}`)
    .join('; ');
}
