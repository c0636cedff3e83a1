/**
 * RoverRoom: the Durable Object for one rover (named by rover id). It relays signaling between the
 * rover's sender and that rover's viewers, addressing every message to exactly one peer.
 *
 * All state lives in WebSocket attachments and tags, so the object can hibernate between messages:
 *  - tag "rover"            the rover's socket (at most one that is not superseded)
 *  - tag "viewer"           every viewer socket
 *  - tag "viewer:<id>"      one viewer, for addressed delivery
 * The control lease is the holder's attachment field `leaseUntil`: it ends with the holder's socket.
 */
import { DurableObject } from 'cloudflare:workers';
import {
  CloseCode,
  CONTROL_LEASE_TTL_MS,
  describeIssues,
  MAX_MESSAGE_BYTES,
  PING_FRAME,
  PONG_FRAME,
  PROTOCOL_VERSION,
  ROVER_MESSAGE_TYPES,
  RoverToServer,
  VIEWER_MESSAGE_TYPES,
  ViewerToServer,
  type CameraInfo,
  type ErrorCode,
  type IceConfig,
  type RoverPresence,
  type RoverStatus,
  type ServerToRover,
  type ServerToViewer,
  type WatchingViewer,
} from '../../protocol/index.js';
import { presentedToken, SUBPROTOCOL } from '../../protocol/auth.js';
import type { Env } from './env.js';
import { iceConfigFor, readIceSettings, type IceSettings } from './ice.js';

interface RoverAttachment {
  role: 'rover';
  roverId: string;
  /** When the socket was accepted (ms): counts as its first sign of life. */
  connectedAt: number;
  /** Client address (CF-Connecting-IP), for per-address limits; '' when unknown. */
  ip: string;
  connectionId: string;
  /** Set when a newer rover connection takes over (or this one is cut off); its late messages are ignored. */
  superseded: boolean;
  cameras: CameraInfo[];
}

interface ViewerAttachment {
  role: 'viewer';
  roverId: string;
  connectedAt: number;
  ip: string;
  viewerId: string;
  /** The camera this viewer wants a call for; null when not watching. */
  cameraId: string | null;
  /** Its token allows control (the Worker says so in PERMISSIONS_HEADER). */
  canControl: boolean;
  /** Holds the control lease until this time (ms); 0 = does not hold it. */
  leaseUntil: number;
}

type Attachment = RoverAttachment | ViewerAttachment;

/** Set by the Worker (never by clients: it drops theirs) when the viewer's token allows control. */
export const PERMISSIONS_HEADER = 'x-rover-live-permissions';

const ROVER_TAG = 'rover';
const VIEWER_TAG = 'viewer';
const viewerTag = (viewerId: string): string => `viewer:${viewerId}`;

/**
 * Message rate limits per connection (token buckets): sustained messages per second and burst.
 * A rover answers every viewer's join with an offer and a burst of candidates, so it gets more room.
 */
export const MESSAGE_LIMITS = {
  rover: { perSecond: 400, burst: 2000 },
  viewer: { perSecond: 20, burst: 100 },
} as const;
/** All viewer sockets of one client address in one room share this budget too (several tabs cannot multiply it). */
export const VIEWER_ADDRESS_LIMIT = { perSecond: 40, burst: 150 } as const;
/** Sockets one client address may hold open in one room (a tab per operator is plenty). */
export const MAX_SOCKETS_PER_ADDRESS = 16;

interface Bucket {
  tokens: number;
  refilledAt: number;
}

/** Configuration problems already logged by this isolate (each is logged once, not per message). */
const reportedProblems = new Set<string>();

export const DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 75;

export class RoverRoom extends DurableObject<Env> {
  private readonly ice: IceSettings;
  /** A socket that has not pinged for this long is treated as gone (see HEARTBEAT_INTERVAL_MS). */
  private readonly heartbeatTimeoutMs: number;
  /** In memory only: a hibernation wake starts every socket with a full bucket, which is harmless. */
  private readonly buckets = new WeakMap<WebSocket, Bucket>();
  private readonly addressBuckets = new Map<string, Bucket>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Heartbeats are answered by the runtime without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    this.ice = readIceSettings(env);
    const timeout = Number(env.HEARTBEAT_TIMEOUT_SECONDS ?? DEFAULT_HEARTBEAT_TIMEOUT_SECONDS);
    this.heartbeatTimeoutMs = (Number.isFinite(timeout) && timeout >= 2 ? timeout : DEFAULT_HEARTBEAT_TIMEOUT_SECONDS) * 1000;
    for (const problem of this.ice.problems) {
      if (reportedProblems.has(problem)) continue;
      reportedProblems.add(problem);
      log('ice configuration problem', { problem });
    }
  }

  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const role = url.searchParams.get('role');
    const roverId = decodeURIComponent(/^\/rovers\/([^/]+)\/ws$/.exec(url.pathname)?.[1] ?? '');
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket' || (role !== 'rover' && role !== 'viewer') || !roverId) {
      return new Response('Expected a WebSocket upgrade on /rovers/<id>/ws with role=rover or role=viewer.\n', { status: 400 });
    }
    const ip = request.headers.get('cf-connecting-ip') ?? '';
    if (ip && this.socketsFrom(ip) >= MAX_SOCKETS_PER_ADDRESS) {
      log('too many sockets from one address', { role });
      return new Response(`Too many connections from this address (max ${MAX_SOCKETS_PER_ADDRESS} per rover).\n`, { status: 429 });
    }
    const { 0: client, 1: server } = new WebSocketPair();
    if (role === 'rover') this.acceptRover(server, roverId, ip);
    else this.acceptViewer(server, roverId, ip, request.headers.get(PERMISSIONS_HEADER) === 'control');
    await this.scheduleAlarm();
    // A browser that offered our subprotocol (it carries its token next to it) must get it back.
    const headers = presentedToken(request.headers).offersProtocol ? { 'sec-websocket-protocol': SUBPROTOCOL } : undefined;
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  /** Presence for GET /rovers/<id>/status (RPC from the Worker, after it has authorized the viewer). */
  presence(roverId: string): RoverPresence {
    let viewers = 0;
    let watching = 0;
    for (const socket of this.ctx.getWebSockets(VIEWER_TAG)) {
      const attachment = readAttachment(socket);
      if (attachment?.role !== 'viewer' || socket.readyState !== WebSocket.OPEN) continue;
      viewers++;
      if (attachment.cameraId !== null) watching++;
    }
    return { roverId, rover: this.roverStatus(), viewers, watching };
  }

  private socketsFrom(ip: string): number {
    return this.ctx.getWebSockets().filter((socket) => readAttachment(socket)?.ip === ip).length;
  }

  private acceptRover(socket: WebSocket, roverId: string, ip: string): void {
    for (const old of this.roverSockets()) {
      const attachment = readAttachment(old);
      if (attachment?.role === 'rover') old.serializeAttachment({ ...attachment, superseded: true });
      safeClose(old, CloseCode.Superseded, 'superseded by a newer connection for this rover');
    }
    this.ctx.acceptWebSocket(socket, [ROVER_TAG]);
    const attachment: RoverAttachment = {
      role: 'rover',
      roverId,
      connectedAt: Date.now(),
      ip,
      connectionId: crypto.randomUUID(),
      superseded: false,
      cameras: [],
    };
    socket.serializeAttachment(attachment);
    log('rover connected', { connection: attachment.connectionId });
    this.send(socket, {
      type: 'welcome',
      role: 'rover',
      protocolVersion: PROTOCOL_VERSION,
      viewers: this.watchingViewers(roverId),
      lease: withoutType(this.leaseMessageForRover(this.leaseHolder(Date.now()), Date.now())),
    } satisfies ServerToRover);
    this.broadcastStatus();
  }

  private acceptViewer(socket: WebSocket, roverId: string, ip: string, canControl: boolean): void {
    const viewerId = crypto.randomUUID();
    this.ctx.acceptWebSocket(socket, [VIEWER_TAG, viewerTag(viewerId)]);
    socket.serializeAttachment({
      role: 'viewer',
      roverId,
      connectedAt: Date.now(),
      ip,
      viewerId,
      cameraId: null,
      canControl,
      leaseUntil: 0,
    } satisfies ViewerAttachment);
    this.send(socket, {
      type: 'welcome',
      role: 'viewer',
      protocolVersion: PROTOCOL_VERSION,
      viewerId,
      rover: this.roverStatus(),
      control: withoutType(this.leaseMessageFor(viewerId, canControl, this.leaseHolder(Date.now()))),
    } satisfies ServerToViewer);
  }

  override async webSocketMessage(socket: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const attachment = readAttachment(socket);
    if (!attachment) {
      safeClose(socket, 1011, 'connection state lost; reconnect');
      return;
    }
    if (attachment.role === 'rover' && attachment.superseded) return;
    if (!this.takeToken(socket, attachment.role) || (attachment.role === 'viewer' && !this.takeAddressToken(attachment.ip))) {
      log('rate limited', { role: attachment.role });
      if (attachment.role === 'rover') {
        // Cut off like a superseded connection: nothing more from it reaches anyone.
        socket.serializeAttachment({ ...attachment, superseded: true } satisfies RoverAttachment);
        this.broadcastStatus(socket);
      } else {
        this.onSocketGone(socket, CloseCode.RateLimited);
      }
      safeClose(socket, CloseCode.RateLimited, 'rate limit exceeded: too many messages');
      return;
    }

    if (typeof message !== 'string') {
      this.sendError(socket, 'binary-not-supported', 'binary frames are not part of the protocol; send JSON text');
      return;
    }
    if (utf8Length(message) > MAX_MESSAGE_BYTES) {
      this.sendError(socket, 'too-large', `message exceeds ${MAX_MESSAGE_BYTES} bytes`);
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(message);
    } catch {
      this.sendError(socket, 'bad-json', 'message is not valid JSON');
      return;
    }
    const type = typeof json === 'object' && json !== null && 'type' in json ? (json as { type: unknown }).type : undefined;
    if (typeof type !== 'string') {
      this.sendError(socket, 'bad-message', 'message must be a JSON object with a string "type"');
      return;
    }

    try {
      if (attachment.role === 'rover') {
        const parsed = RoverToServer.safeParse(json);
        if (!parsed.success) return this.rejectMessage(socket, type, 'rover', describeIssues(parsed.error));
        this.onRoverMessage(socket, attachment, parsed.data);
      } else {
        const parsed = ViewerToServer.safeParse(json);
        if (!parsed.success) return this.rejectMessage(socket, type, 'viewer', describeIssues(parsed.error));
        if (parsed.data.type === 'lease') await this.onLeaseMessage(socket, attachment, parsed.data.action);
        else this.onViewerMessage(socket, attachment, parsed.data);
      }
    } catch (error) {
      log('message handler failed', { type, error: error instanceof Error ? error.message : String(error) });
      this.sendError(socket, 'internal', 'the server could not process this message');
    }
  }

  /** Periodic sweep for peers that vanished without a close frame (hibernated sockets can look open forever). */
  override async alarm(): Promise<void> {
    this.sweep(Date.now());
    this.expireLease(Date.now());
    await this.scheduleAlarm();
  }

  /**
   * Close every socket whose last sign of life (a heartbeat, or its connection) is older than the timeout,
   * telling the rover about vanished viewers and the viewers about a vanished rover. Returns how many.
   */
  sweep(nowMs: number, timeoutMs: number = this.heartbeatTimeoutMs): number {
    let closed = 0;
    // Viewers first: the rover hears of them before it may itself be swept.
    const sockets = [...this.ctx.getWebSockets(VIEWER_TAG), ...this.ctx.getWebSockets(ROVER_TAG)];
    for (const socket of sockets) {
      const attachment = readAttachment(socket);
      // Already closing (e.g. swept before, and the vanished peer never completes the close handshake).
      if (!attachment || socket.readyState !== WebSocket.OPEN) continue;
      const lastPing = this.ctx.getWebSocketAutoResponseTimestamp(socket)?.getTime() ?? 0;
      const lastSign = Math.max(lastPing, attachment.connectedAt ?? 0);
      if (nowMs - lastSign <= timeoutMs) continue;
      log('heartbeat timeout', { role: attachment.role, silentMs: nowMs - lastSign });
      this.onSocketGone(socket, CloseCode.HeartbeatTimeout);
      if (attachment.role === 'rover') socket.serializeAttachment({ ...attachment, superseded: true } satisfies RoverAttachment);
      safeClose(socket, CloseCode.HeartbeatTimeout, 'no heartbeat');
      closed += 1;
    }
    return closed;
  }

  /**
   * Keep one alarm pending while any socket is open (none when the room is empty: it may then be evicted),
   * no later than the control lease's expiry, so a lapse is announced even when nothing else happens.
   */
  private async scheduleAlarm(): Promise<void> {
    if (this.ctx.getWebSockets().length === 0) return;
    const now = Date.now();
    const sweepAt = now + Math.min(30_000, this.heartbeatTimeoutMs / 2);
    const holder = this.leaseHolder(now);
    const wanted = holder ? Math.min(sweepAt, holder.attachment.leaseUntil) : sweepAt;
    const pending = await this.ctx.storage.getAlarm();
    if (pending !== null && pending <= wanted) return;
    await this.ctx.storage.setAlarm(wanted);
  }

  override async webSocketClose(socket: WebSocket, code: number): Promise<void> {
    this.onSocketGone(socket, code);
    safeClose(socket, 1000, 'closing');
  }

  override async webSocketError(socket: WebSocket): Promise<void> {
    this.onSocketGone(socket, 1006);
  }

  // ------------------------------------------------------------------ handlers

  private onRoverMessage(socket: WebSocket, rover: RoverAttachment, message: RoverToServer): void {
    switch (message.type) {
      case 'announce':
        socket.serializeAttachment({ ...rover, cameras: message.cameras } satisfies RoverAttachment);
        log('rover announced cameras', { cameras: message.cameras.map((c) => c.id).join(',') });
        this.broadcastStatus();
        return;
      case 'offer': {
        const viewer = this.viewerSocket(socket, message.viewerId);
        if (!viewer) return;
        // Fresh, short-lived credentials for exactly this call.
        const ice = this.iceFor(rover.roverId, 'viewer', message.viewerId);
        this.send(viewer, { type: 'offer', callId: message.callId, cameraId: message.cameraId, sdp: message.sdp, ice });
        return;
      }
      case 'candidate':
        return this.forwardToViewer(socket, message.viewerId, {
          type: 'candidate',
          callId: message.callId,
          candidate: message.candidate,
        });
      case 'hangup':
        return this.forwardToViewer(socket, message.viewerId, {
          type: 'hangup',
          callId: message.callId,
          reason: message.reason,
        });
      case 'clock':
        return this.send(socket, { type: 'clock', t: message.t, serverTime: Date.now() });
    }
  }

  private onViewerMessage(socket: WebSocket, viewer: ViewerAttachment, message: ViewerToServer): void {
    const rover = this.currentRover();
    switch (message.type) {
      case 'watch': {
        const cameras = rover ? (readAttachment(rover) as RoverAttachment).cameras : [];
        if (cameras.length > 0 && !cameras.some((camera) => camera.id === message.cameraId)) {
          this.sendError(
            socket,
            'unknown-camera',
            `this rover has no camera "${message.cameraId}" (cameras: ${cameras.map((c) => c.id).join(', ')})`,
          );
          return;
        }
        socket.serializeAttachment({ ...viewer, cameraId: message.cameraId } satisfies ViewerAttachment);
        if (rover) {
          const ice = this.iceFor(viewer.roverId, 'rover', viewer.viewerId);
          this.send(rover, { type: 'viewer-join', viewerId: viewer.viewerId, cameraId: message.cameraId, ice });
        }
        return;
      }
      case 'leave':
        socket.serializeAttachment({ ...viewer, cameraId: null } satisfies ViewerAttachment);
        if (rover) this.send(rover, { type: 'viewer-leave', viewerId: viewer.viewerId });
        return;
      case 'answer':
      case 'candidate':
        if (!rover) {
          this.sendError(socket, 'rover-offline', 'the rover is offline; a new offer will come when it reconnects');
          return;
        }
        this.send(rover, { ...message, viewerId: viewer.viewerId } satisfies ServerToRover);
        return;
      case 'clock':
        this.send(socket, { type: 'clock', t: message.t, serverTime: Date.now() });
        return;
    }
  }

  private onSocketGone(socket: WebSocket, code: number): void {
    const attachment = readAttachment(socket);
    if (!attachment) return;
    if (attachment.role === 'rover') {
      if (attachment.superseded) return;
      log('rover disconnected', { connection: attachment.connectionId, code });
      this.broadcastStatus(socket);
    } else {
      const heldLease = attachment.leaseUntil > Date.now();
      if (attachment.cameraId !== null || attachment.leaseUntil !== 0) {
        socket.serializeAttachment({ ...attachment, cameraId: null, leaseUntil: 0 } satisfies ViewerAttachment);
      }
      const rover = this.currentRover();
      if (attachment.cameraId !== null && rover) this.send(rover, { type: 'viewer-leave', viewerId: attachment.viewerId });
      // The controller is gone: the rover stops the robot now rather than at the lease's expiry.
      if (heldLease) this.announceLease('left', socket);
    }
  }

  // ------------------------------------------------------------------ control lease

  private async onLeaseMessage(socket: WebSocket, viewer: ViewerAttachment, action: 'request' | 'renew' | 'release'): Promise<void> {
    const now = Date.now();
    const holder = this.leaseHolder(now);
    const isHolder = holder?.socket === socket;
    switch (action) {
      case 'request':
        if (!viewer.canControl) {
          this.sendError(socket, 'forbidden', 'this viewer link only allows watching; ask the operator for a link with control');
          return;
        }
        if (holder && !isHolder) {
          this.sendError(socket, 'control-busy', 'another operator has control; you can watch until they release it');
          return;
        }
        // A lapsed holder that never renewed loses its claim here, before the new holder gets it.
        this.clearStaleLeases(now, socket);
        socket.serializeAttachment({ ...viewer, leaseUntil: now + CONTROL_LEASE_TTL_MS } satisfies ViewerAttachment);
        log('control lease granted', { viewer: viewer.viewerId.slice(0, 8) });
        this.announceLease('lapsed');
        await this.scheduleAlarm();
        return;
      case 'renew':
        if (!isHolder) {
          if (viewer.leaseUntil !== 0) {
            socket.serializeAttachment({ ...viewer, leaseUntil: 0 } satisfies ViewerAttachment);
            log('control lease lapsed', { viewer: viewer.viewerId.slice(0, 8) });
            this.announceLease('lapsed');
          }
          this.sendError(socket, 'lease-lapsed', 'your control lease lapsed (no renewal in time) and the rover stopped; take control again');
          return;
        }
        socket.serializeAttachment({ ...viewer, leaseUntil: now + CONTROL_LEASE_TTL_MS } satisfies ViewerAttachment);
        // The rover's dead-man timer restarts with every renewal; only the holder hears of it.
        this.sendToRover(this.leaseMessageForRover(this.leaseHolder(now), now));
        this.send(socket, this.leaseMessageFor(viewer.viewerId, true, this.leaseHolder(now)));
        return;
      case 'release':
        if (!isHolder) return;
        socket.serializeAttachment({ ...viewer, leaseUntil: 0 } satisfies ViewerAttachment);
        log('control lease released', { viewer: viewer.viewerId.slice(0, 8) });
        this.announceLease('released');
        return;
    }
  }

  /** Leases past their time end (alarm): the rover hears "nobody", every viewer sees control free. True if one ended. */
  expireLease(now: number): boolean {
    if (!this.clearStaleLeases(now)) return false;
    this.announceLease('lapsed');
    return true;
  }

  /** Forget every lease whose time has passed (all but `keep`'s). True if there was one. */
  private clearStaleLeases(now: number, keep?: WebSocket): boolean {
    let cleared = false;
    for (const socket of this.ctx.getWebSockets(VIEWER_TAG)) {
      const attachment = readAttachment(socket);
      if (socket === keep || attachment?.role !== 'viewer' || attachment.leaseUntil === 0 || attachment.leaseUntil > now) continue;
      socket.serializeAttachment({ ...attachment, leaseUntil: 0 } satisfies ViewerAttachment);
      log('control lease lapsed', { viewer: attachment.viewerId.slice(0, 8) });
      cleared = true;
    }
    return cleared;
  }

  /** The viewer holding a live lease, if any. `excluding`: a socket that is closing. */
  private leaseHolder(now: number, excluding?: WebSocket): { socket: WebSocket; attachment: ViewerAttachment } | null {
    for (const socket of this.ctx.getWebSockets(VIEWER_TAG)) {
      if (socket === excluding || socket.readyState !== WebSocket.OPEN) continue;
      const attachment = readAttachment(socket);
      if (attachment?.role === 'viewer' && attachment.leaseUntil > now) return { socket, attachment };
    }
    return null;
  }

  /** Tell the rover and every viewer who holds control now (`ended`: why, if nobody does). */
  private announceLease(ended: 'released' | 'lapsed' | 'left', excluding?: WebSocket): void {
    const now = Date.now();
    const holder = this.leaseHolder(now, excluding);
    this.sendToRover(holder === null ? { type: 'lease', viewerId: null, ttlMs: 0, ended } : this.leaseMessageForRover(holder, now));
    for (const socket of this.ctx.getWebSockets(VIEWER_TAG)) {
      const attachment = readAttachment(socket);
      if (socket === excluding || attachment?.role !== 'viewer') continue;
      this.send(socket, this.leaseMessageFor(attachment.viewerId, attachment.canControl, holder));
    }
  }

  private leaseMessageFor(
    viewerId: string,
    canControl: boolean,
    holder: { attachment: ViewerAttachment } | null,
  ): Extract<ServerToViewer, { type: 'lease' }> {
    const mine = holder?.attachment.viewerId === viewerId;
    return {
      type: 'lease',
      holder: holder === null ? 'none' : mine ? 'you' : 'other',
      canControl,
      ttlMs: mine ? Math.max(0, holder.attachment.leaseUntil - Date.now()) : 0,
    };
  }

  private leaseMessageForRover(holder: { attachment: ViewerAttachment } | null, now: number): Extract<ServerToRover, { type: 'lease' }> {
    return holder === null
      ? { type: 'lease', viewerId: null, ttlMs: 0 }
      : { type: 'lease', viewerId: holder.attachment.viewerId, ttlMs: Math.max(0, holder.attachment.leaseUntil - now) };
  }

  private sendToRover(message: ServerToRover): void {
    const rover = this.currentRover();
    if (rover) this.send(rover, message);
  }

  // ------------------------------------------------------------------ helpers

  /** Token bucket per client address (viewers): false once that address has used up its share. */
  private takeAddressToken(ip: string): boolean {
    if (!ip) return true;
    const bucket = spend(this.addressBuckets.get(ip), VIEWER_ADDRESS_LIMIT);
    this.addressBuckets.set(ip, bucket);
    if (this.addressBuckets.size > 10_000) this.addressBuckets.clear(); // bounded memory under address churn
    return bucket.tokens >= 0;
  }

  /** Token bucket per socket: false once the client has used up its burst and its refill. */
  private takeToken(socket: WebSocket, role: 'rover' | 'viewer'): boolean {
    const bucket = spend(this.buckets.get(socket), MESSAGE_LIMITS[role]);
    this.buckets.set(socket, bucket);
    return bucket.tokens >= 0;
  }

  private rejectMessage(socket: WebSocket, type: string, role: 'rover' | 'viewer', details: string): void {
    const isOwnType = (role === 'rover' ? ROVER_MESSAGE_TYPES : VIEWER_MESSAGE_TYPES).has(type);
    const isOtherRolesType = (role === 'rover' ? VIEWER_MESSAGE_TYPES : ROVER_MESSAGE_TYPES).has(type);
    if (!isOwnType && isOtherRolesType) {
      this.sendError(socket, 'wrong-role', `a ${role} may not send "${type}" messages`);
    } else if (!isOwnType) {
      this.sendError(socket, 'bad-message', `unknown message type "${type.slice(0, 32)}"`);
    } else {
      this.sendError(socket, 'bad-message', `invalid "${type}" message: ${details}`);
    }
  }

  private forwardToViewer(roverSocket: WebSocket, viewerId: string, message: ServerToViewer): void {
    const viewer = this.viewerSocket(roverSocket, viewerId);
    if (viewer) this.send(viewer, message);
  }

  /** The addressed viewer's socket; tells the rover when there is none. */
  private viewerSocket(roverSocket: WebSocket, viewerId: string): WebSocket | undefined {
    const viewer = this.ctx.getWebSockets(viewerTag(viewerId))[0];
    if (!viewer) this.sendError(roverSocket, 'unknown-viewer', `no viewer "${viewerId}" is connected`);
    return viewer;
  }

  /** ICE settings for one side of the call between this rover and one viewer (TURN username names both). */
  private iceFor(roverId: string, side: 'rover' | 'viewer', viewerId: string): IceConfig {
    return iceConfigFor(this.ice, `${roverId}.${side}.${viewerId.slice(0, 8)}`);
  }

  /** The rover's socket, if connected. `excluding` leaves out a socket that is closing. */
  private currentRover(excluding?: WebSocket): WebSocket | undefined {
    return this.roverSockets().find((socket) => {
      const attachment = readAttachment(socket);
      return socket !== excluding && attachment?.role === 'rover' && !attachment.superseded;
    });
  }

  private roverSockets(): WebSocket[] {
    return this.ctx.getWebSockets(ROVER_TAG);
  }

  private roverStatus(excluding?: WebSocket): RoverStatus {
    const rover = this.currentRover(excluding);
    if (!rover) return { online: false, cameras: [] };
    return { online: true, cameras: (readAttachment(rover) as RoverAttachment).cameras };
  }

  private watchingViewers(roverId: string): WatchingViewer[] {
    const watching: WatchingViewer[] = [];
    for (const socket of this.ctx.getWebSockets(VIEWER_TAG)) {
      const attachment = readAttachment(socket);
      if (attachment?.role === 'viewer' && attachment.cameraId !== null) {
        const ice = this.iceFor(roverId, 'rover', attachment.viewerId);
        watching.push({ viewerId: attachment.viewerId, cameraId: attachment.cameraId, ice });
      }
    }
    return watching;
  }

  /** Rover presence is the one thing every viewer is told: it carries no signaling. */
  private broadcastStatus(closingRover?: WebSocket): void {
    const message: ServerToViewer = { type: 'rover-status', rover: this.roverStatus(closingRover) };
    for (const viewer of this.ctx.getWebSockets(VIEWER_TAG)) this.send(viewer, message);
  }

  private sendError(socket: WebSocket, code: ErrorCode, message: string): void {
    this.send(socket, { type: 'error', code, message });
  }

  private send(socket: WebSocket, message: ServerToRover | ServerToViewer): void {
    try {
      socket.send(JSON.stringify(message));
    } catch {
      // The peer is gone; its close event will clean up.
    }
  }
}

/** Refill a token bucket for the time since its last use, then take one token (may go negative). */
function spend(bucket: Bucket | undefined, limit: { perSecond: number; burst: number }): Bucket {
  const now = Date.now();
  const current = bucket ?? { tokens: limit.burst, refilledAt: now };
  current.tokens = Math.min(limit.burst, current.tokens + ((now - current.refilledAt) / 1000) * limit.perSecond) - 1;
  current.refilledAt = now;
  return current;
}

function withoutType<T extends { type: string }>({ type: _type, ...rest }: T): Omit<T, 'type'> {
  return rest;
}

function readAttachment(socket: WebSocket): Attachment | null {
  try {
    return socket.deserializeAttachment() as Attachment | null;
  } catch {
    return null;
  }
}

function safeClose(socket: WebSocket, code: number, reason: string): void {
  try {
    socket.close(code, reason);
  } catch {
    // Already closed.
  }
}

function utf8Length(text: string): number {
  // Cheap bounds first: a UTF-16 code unit is 1 to 3 UTF-8 bytes. Never encode a huge frame just to measure it.
  if (text.length * 3 <= MAX_MESSAGE_BYTES) return text.length;
  if (text.length > MAX_MESSAGE_BYTES) return text.length;
  return new TextEncoder().encode(text).byteLength;
}

/** Structured, secret-free log line: only event names and ids, never SDP or candidates. */
function log(event: string, fields: Record<string, string | number>): void {
  console.log(JSON.stringify({ event, ...fields }));
}
