/**
 * RoverViewerClient: everything a browser needs to watch one rover camera.
 * Owns the signaling WebSocket (with reconnects) and one RTCPeerConnection per call.
 * UI-free, so the hosted page, an embedding page or a Tauri webview can all use it.
 */
import { ServerClock } from '../../protocol/clock.js';
import {
  CONTROL_CHANNEL,
  CONTROL_LEASE_RENEW_MS,
  DEFAULT_CAMERA_ID,
  RoverToViewerData,
  TELEMETRY_CHANNEL,
  type FrameClockMessage,
  type TelemetryMessage,
  hasTurn,
  HEARTBEAT_INTERVAL_MS,
  PING_FRAME,
  ServerToViewer,
  SUBPROTOCOL,
  TOKEN_SUBPROTOCOL_PREFIX,
  CloseCode,
  parseMessage,
  signalingUrl,
  type CameraInfo,
  type IceCandidate,
  type IceConfig,
  type RoverStatus,
  type ViewerToServer,
} from '../../protocol/index.js';

export type ViewerState = 'offline' | 'waiting' | 'connecting' | 'live' | 'failed';

/** How the video reaches this browser: straight from the rover, or through a TURN relay. */
export interface MediaPath {
  kind: 'direct' | 'relayed';
  /** ICE candidate types of the selected pair, e.g. "srflx" → "relay". */
  local: string;
  remote: string;
  /** Transport between this browser and its side of the path ("udp", "tcp", or "tls" to the relay). */
  protocol: string;
}

export interface ViewerStats {
  width: number;
  height: number;
  fps: number;
  bitrateKbps: number;
  framesDecoded: number;
  packetsLost: number;
  path: MediaPath | null;
  /** Round trip between this browser and the rover (ICE, selected pair), ms; null until measured. */
  rttMs: number | null;
}

/** The control lease as this viewer sees it (one controller at a time; the Durable Object decides). */
export interface ControlStatus {
  holder: 'you' | 'other' | 'none';
  /** This viewer's token allows control (false until the server says). */
  canControl: boolean;
  /** The latest thing worth telling the person: refused, lapsed, a command not delivered… */
  detail: string;
}

export interface ViewerClientOptions {
  /** Base URL of the Worker, e.g. https://rovers.example.com (defaults to this page's origin). */
  server: string;
  roverId: string;
  cameraId?: string;
  /** Extra STUN/TURN servers of the embedding app, added to those the server hands out for each call. */
  iceServers?: RTCIceServer[];
  /** Only accept video through a TURN relay (never a direct path), e.g. to hide this browser's address. */
  relayOnly?: boolean;
  /**
   * The viewer token ("#access=…" of a viewer link). A function is asked again before every connection,
   * so an embedding app can hand out a fresh one.
   */
  accessToken?: string | (() => string | undefined | Promise<string | undefined>);
}

export interface ViewerClientEvents {
  state: { state: ViewerState; detail: string };
  stream: { stream: MediaStream };
  stats: ViewerStats;
  /** What the rover announced changed (it came online or went away, or its cameras changed). */
  rover: { rover: RoverStatus };
  /** A telemetry sample from the rover (its ML detections, its status), newest only: late ones are dropped. */
  telemetry: TelemetryMessage;
  /** The control lease changed, or a control request or command was refused. */
  control: ControlStatus;
}

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10_000;
const STATS_INTERVAL_MS = 1_000;
const RETRY_MIN_MS = 2_000;
const RETRY_MAX_MS = 30_000;
const CLOCK_BURST = 5;
const CLOCK_BURST_SPACING_MS = 150;
const CLOCK_RESYNC_MS = 30_000;

export class RoverViewerClient {
  readonly roverId: string;
  cameraId: string;
  state: ViewerState = 'offline';
  stateDetail = '';
  rover: RoverStatus = { online: false, cameras: [] };
  control: ControlStatus = { holder: 'none', canControl: false, detail: '' };
  /** Maps the video's RTP timestamps to capture times (from the rover), to sync overlays with frames. */
  frameClock: FrameClockMessage | null = null;

  private readonly server: string;
  private readonly iceServers: RTCIceServer[];
  private readonly relayOnly: boolean;
  private readonly accessToken: ViewerClientOptions['accessToken'];
  /** Calls that failed in a row: the next attempt waits longer. */
  private failedCalls = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** The selected path of the live call, from the latest stats sample. */
  path: MediaPath | null = null;
  /**
   * When each step of the latest call happened (performance.now() ms): watch sent, offer in, answer out,
   * ICE connected, DTLS/peer connected, first track. Shows where time to first frame goes.
   */
  timeline: Partial<Record<'watch' | 'offer' | 'answer' | 'ice' | 'connected' | 'track', number>> = {};
  /** The server's clock, synced while the camera carries a timecode (to read glass-to-glass latency). */
  readonly clock = new ServerClock();
  private clockTimers: ReturnType<typeof setTimeout>[] = [];
  private readonly listeners = new Map<keyof ViewerClientEvents, Set<(event: never) => void>>();
  private socket: WebSocket | null = null;
  private wantWatch = false;
  private stopped = true;
  private reconnectAttempts = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private statsTimer: ReturnType<typeof setInterval> | undefined;
  private call: { id: string; pc: RTCPeerConnection; ice: IceConfig; pendingCandidates: IceCandidate[]; remoteSet: boolean } | null = null;
  /** Signaling is applied strictly in order: a candidate must never overtake its offer. */
  private inbox: Promise<void> = Promise.resolve();
  private lastStatsSample: { bytes: number; at: number } | null = null;
  private leaseTimer: ReturnType<typeof setInterval> | undefined;
  private controlChannel: RTCDataChannel | null = null;
  private controlSeq = 0;
  private lastTelemetrySeq = -1;

  constructor(options: ViewerClientOptions) {
    this.server = options.server;
    this.roverId = options.roverId;
    this.cameraId = options.cameraId ?? DEFAULT_CAMERA_ID;
    this.iceServers = options.iceServers ?? [];
    this.relayOnly = options.relayOnly ?? false;
    this.accessToken = options.accessToken;
  }

  on<K extends keyof ViewerClientEvents>(event: K, listener: (payload: ViewerClientEvents[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (event: never) => void);
    return () => set.delete(listener as (event: never) => void);
  }

  /** Open signaling and ask the rover for video. Safe to call repeatedly. */
  connect(): void {
    this.wantWatch = true;
    if (this.stopped) {
      this.stopped = false;
      this.openSocket();
    } else {
      this.sendWatch();
    }
  }

  /**
   * Watch another camera of this rover. The current call ends and the rover offers a new one for that
   * camera; other clients watching other cameras are not touched (one call per camera and client).
   */
  switchCamera(cameraId: string): void {
    if (cameraId === this.cameraId) return;
    this.cameraId = cameraId;
    this.failedCalls = 0;
    clearTimeout(this.retryTimer);
    this.closeCall();
    this.syncClockIfTimecoded();
    if (this.wantWatch) this.sendWatch();
  }

  /** Presence only: learn whether the rover is online without asking for video. */
  observe(): void {
    if (this.stopped) {
      this.stopped = false;
      this.openSocket();
    }
  }

  disconnect(): void {
    this.wantWatch = false;
    this.failedCalls = 0;
    clearTimeout(this.retryTimer);
    this.send({ type: 'leave' });
    this.closeCall();
    this.setState(this.rover.online ? 'waiting' : 'offline', 'disconnected');
  }

  /** Tear everything down (page unload, component removal). */
  close(): void {
    this.stopped = true;
    this.wantWatch = false;
    this.closeCall();
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeatTimer);
    this.stopClockSync();
    this.stopLeaseRenewal();
    this.socket?.close(1000, 'viewer closed');
    this.socket = null;
  }

  /** What the rover announced about the watched camera (size, rate, timecode), once known. */
  get camera(): CameraInfo | undefined {
    return this.rover.cameras.find((camera) => camera.id === this.cameraId);
  }

  get peerConnection(): RTCPeerConnection | null {
    return this.call?.pc ?? null;
  }

  // ---------------------------------------------------------------- control

  /** Ask for the control lease. The answer comes as a `control` event (granted, busy, or not allowed). */
  requestControl(): void {
    this.send({ type: 'lease', action: 'request' });
  }

  /** Give control back; the rover stops the robot at once. */
  releaseControl(): void {
    if (this.control.holder === 'you') this.send({ type: 'lease', action: 'release' });
    this.stopLeaseRenewal();
  }

  /**
   * Send a command to the rover's program over the peer-to-peer control channel. Returns false (nothing
   * sent) unless this viewer holds the lease and the channel is open.
   */
  sendControl(command: Record<string, unknown>): boolean {
    const channel = this.controlChannel;
    if (this.control.holder !== 'you' || channel?.readyState !== 'open') return false;
    channel.send(JSON.stringify({ type: 'control', seq: this.controlSeq++, command }));
    return true;
  }

  /**
   * Capture time (server clock ms) of the frame with this RTP timestamp (requestVideoFrameCallback's
   * metadata.rtpTimestamp), from the rover's frame clock; null until the rover sent one.
   */
  captureTimeOfRtp(rtpTimestamp: number): number | null {
    const clock = this.frameClock;
    if (!clock || clock.camera !== this.cameraId) return null;
    // RTP timestamps wrap at 2^32: take the signed difference (frames either side of the reference).
    let ticks = (rtpTimestamp - clock.rtp) >>> 0;
    if (ticks >= 0x80000000) ticks -= 0x100000000;
    return clock.ts + ticks / 90;
  }

  private setControl(update: Partial<ControlStatus>): void {
    this.control = { ...this.control, ...update };
    if (this.control.holder === 'you') this.startLeaseRenewal();
    else this.stopLeaseRenewal();
    this.emit('control', this.control);
  }

  private startLeaseRenewal(): void {
    if (this.leaseTimer !== undefined) return;
    this.leaseTimer = setInterval(() => this.send({ type: 'lease', action: 'renew' }), CONTROL_LEASE_RENEW_MS);
  }

  private stopLeaseRenewal(): void {
    clearInterval(this.leaseTimer);
    this.leaseTimer = undefined;
  }

  /** The rover's side of the data channels: telemetry in, refusals of our commands in. */
  private onDataChannel(channel: RTCDataChannel): void {
    if (channel.label === CONTROL_CHANNEL) this.controlChannel = channel;
    else if (channel.label !== TELEMETRY_CHANNEL) return;
    channel.onmessage = (event) => {
      if (typeof event.data !== 'string') return;
      const parsed = parseMessage(RoverToViewerData, event.data);
      if (!parsed.ok) return;
      const message = parsed.message;
      switch (message.type) {
        case 'telemetry':
          if (message.seq <= this.lastTelemetrySeq) return; // unordered channel: a newer sample already came
          this.lastTelemetrySeq = message.seq;
          this.emit('telemetry', message);
          return;
        case 'frame-clock':
          this.frameClock = message;
          return;
        case 'control-refused':
          this.setControl({ detail: CONTROL_REFUSALS[message.reason] });
          return;
      }
    };
  }

  // ---------------------------------------------------------------- signaling socket

  private async currentToken(): Promise<string | undefined> {
    return typeof this.accessToken === 'function' ? await this.accessToken() : this.accessToken;
  }

  private openSocket(): void {
    void this.currentToken().then(
      (token) => !this.stopped && this.openSocketWith(token),
      () => !this.stopped && this.openSocketWith(undefined),
    );
  }

  private openSocketWith(token: string | undefined): void {
    // Browsers cannot set headers on a WebSocket: the token rides in the subprotocol list.
    const protocols = token ? [SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + token] : [SUBPROTOCOL];
    let socket: WebSocket;
    try {
      socket = new WebSocket(signalingUrl(this.server, this.roverId, 'viewer'), protocols);
    } catch {
      // A token with characters a subprotocol may not carry: it is not one of ours.
      this.fail('This viewer link is damaged. Ask the rover\'s operator for a new one.');
      return;
    }
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.reconnectAttempts = 0;
      clearInterval(this.heartbeatTimer);
      this.heartbeatTimer = setInterval(() => socket.readyState === WebSocket.OPEN && socket.send(PING_FRAME), HEARTBEAT_INTERVAL_MS);
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== 'string') return;
      const parsed = parseMessage(ServerToViewer, event.data);
      if (!parsed.ok) {
        console.warn('ignoring invalid message from server:', parsed.error);
        return;
      }
      const message = parsed.message;
      this.inbox = this.inbox.then(() => this.handle(message)).catch((error: unknown) => {
        console.error('signaling step failed', error);
        this.fail(`signaling failed: ${error instanceof Error ? error.message : String(error)}`);
      });
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      clearInterval(this.heartbeatTimer);
      this.stopClockSync();
      // The server ends a lease with its holder's socket (and the rover stops the robot).
      if (this.control.holder !== 'none') this.setControl({ holder: 'none', detail: this.control.holder === 'you' ? 'control lost with the connection to the server' : '' });
      if (this.stopped) return;
      if (event.code === CloseCode.BadRequest || event.code === CloseCode.UnsupportedVersion) {
        this.fail(`the server refused this viewer: ${event.reason || event.code}`);
        return;
      }
      if (!opened) {
        // The handshake failed: a refused token looks like a network error to a WebSocket. Ask why.
        void this.diagnoseRefusal(token);
        return;
      }
      // Video may still be flowing peer-to-peer; only the status changes until signaling returns.
      if (this.state !== 'live') this.setState('connecting', 'reconnecting to the server…');
      this.scheduleReconnect();
    };
  }

  /** Refused for good (expired link, wrong rover…): say so and stop; otherwise keep retrying. */
  private async diagnoseRefusal(token: string | undefined): Promise<void> {
    let explanation: string | null = null;
    try {
      const url = new URL(signalingUrl(this.server, this.roverId, 'viewer'));
      url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
      url.pathname = url.pathname.replace(/\/ws$/, '/access');
      url.search = '';
      const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, cache: 'no-store' });
      if (response.status === 401 || response.status === 403 || response.status === 503) {
        const body = (await response.json().catch(() => ({}))) as { message?: string };
        explanation = explainRefusal(response.status, body.message ?? '');
      }
    } catch {
      // Server unreachable: a plain network problem, retried below.
    }
    if (this.stopped) return;
    if (explanation !== null) {
      this.stopped = true;
      this.wantWatch = false;
      this.fail(explanation);
      return;
    }
    if (this.state !== 'live') this.setState('connecting', 'cannot reach the server, retrying…');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.reconnectAttempts++);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => !this.stopped && this.openSocket(), delay);
  }

  private send(message: ViewerToServer): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  private sendWatch(keepStatus = false): void {
    if (!this.wantWatch) return;
    this.timeline = { watch: performance.now() };
    this.send({ type: 'watch', cameraId: this.cameraId });
    if (this.state !== 'live' && !keepStatus) {
      this.setState(this.rover.online ? 'connecting' : 'offline', this.rover.online ? 'asking the rover for video…' : 'rover is offline; video starts when it connects');
    }
  }

  private async handle(message: ServerToViewer): Promise<void> {
    switch (message.type) {
      case 'welcome':
        this.rover = message.rover;
        this.emit('rover', { rover: message.rover });
        this.setControl({ holder: message.control.holder, canControl: message.control.canControl, detail: '' });
        this.syncClockIfTimecoded();
        if (this.wantWatch) this.sendWatch();
        else this.setState(this.rover.online ? 'waiting' : 'offline', this.rover.online ? 'rover online' : 'rover is offline');
        return;
      case 'rover-status': {
        const wasOnline = this.rover.online;
        this.rover = message.rover;
        this.emit('rover', { rover: message.rover });
        this.syncClockIfTimecoded();
        if (!message.rover.online && this.state !== 'live') {
          this.setState('offline', this.wantWatch ? 'rover is offline; video starts when it connects' : 'rover is offline');
        } else if (message.rover.online && !wasOnline && this.state !== 'live') {
          this.setState(this.wantWatch ? 'connecting' : 'waiting', this.wantWatch ? 'rover online, waiting for its offer…' : 'rover online');
        }
        return;
      }
      case 'offer':
        this.timeline.offer ??= performance.now();
        return this.acceptOffer(message.callId, message.sdp, message.ice);
      case 'candidate':
        return this.addRemoteCandidate(message.callId, message.candidate);
      case 'hangup':
        // No call yet counts too: the rover may refuse before offering (e.g. camera unavailable).
        if (this.call === null || this.call.id === message.callId) {
          this.closeCall();
          if (!this.wantWatch) {
            this.setState(this.rover.online ? 'waiting' : 'offline', `the rover ended the call: ${message.reason}`);
            return;
          }
          // Still wanted: ask again with growing pauses, so video resumes by itself when the cause goes
          // away (a camera restarted, a relay configured) — no reload, no click.
          const delay = this.nextRetryDelay();
          this.setState(
            this.rover.online ? 'waiting' : 'offline',
            `the rover ended the call: ${message.reason}. Asking again in ${Math.round(delay / 1000)} s…`,
          );
          this.scheduleRetry(delay);
        }
        return;
      case 'lease':
        this.setControl({
          holder: message.holder,
          canControl: message.canControl,
          detail:
            message.holder === 'you'
              ? 'you have control'
              : message.holder === 'other'
                ? 'another operator has control'
                : this.control.holder === 'you'
                  ? 'control released; the rover stopped'
                  : '',
        });
        return;
      case 'error':
        console.warn(`server error ${message.code}: ${message.message}`);
        if (message.code === 'unknown-camera') this.fail(message.message);
        else if (message.code === 'forbidden' || message.code === 'control-busy' || message.code === 'lease-lapsed') {
          this.setControl({ holder: message.code === 'control-busy' ? 'other' : 'none', detail: message.message });
        }
        return;
      case 'pong':
        return;
      case 'clock':
        this.clock.addReply(message.t, message.serverTime);
        return;
    }
  }

  /** Keep the server clock in sync while the watched camera carries a timecode (and only then). */
  private syncClockIfTimecoded(): void {
    if (!this.camera?.timecode) {
      this.stopClockSync();
      return;
    }
    if (this.clockTimers.length > 0) return;
    const ask = (): void => this.send({ type: 'clock', t: this.clock.localNow() });
    for (let i = 0; i < CLOCK_BURST; i++) this.clockTimers.push(setTimeout(ask, i * CLOCK_BURST_SPACING_MS));
    this.clockTimers.push(setInterval(ask, CLOCK_RESYNC_MS));
  }

  private stopClockSync(): void {
    for (const timer of this.clockTimers) clearTimeout(timer);
    this.clockTimers = [];
  }

  // ---------------------------------------------------------------- WebRTC

  private async acceptOffer(callId: string, sdp: string, ice: IceConfig): Promise<void> {
    if (!this.wantWatch) return;
    // A new offer always wins: the rover restarted the call (its restart, or our `watch`).
    this.closeCall();
    clearTimeout(this.retryTimer);
    const iceServers = [...ice.iceServers, ...this.iceServers];
    const relayOnly = this.relayOnly || ice.iceTransportPolicy === 'relay';
    if (relayOnly && !iceServers.some((server) => [server.urls].flat().some((url) => url.startsWith('turn')))) {
      // Nothing could ever connect: say so now instead of after a 30-second ICE timeout.
      this.send({ type: 'leave' });
      this.wantWatch = false;
      this.fail('video is only allowed through a TURN relay, but no TURN server is configured. Ask the operator to set up TURN (README: "TURN relay").');
      return;
    }
    this.setState('connecting', 'negotiating video…');
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: relayOnly ? 'relay' : 'all', bundlePolicy: 'max-bundle' });
    const call = { id: callId, pc, ice, pendingCandidates: [] as IceCandidate[], remoteSet: false };
    this.call = call;

    pc.ontrack = (event) => {
      // Ask the browser to play frames as soon as they are decodable (lowest latency).
      const receiver = event.receiver as RTCRtpReceiver & { jitterBufferTarget?: number | null; playoutDelayHint?: number };
      try {
        receiver.jitterBufferTarget = 0;
      } catch {
        receiver.playoutDelayHint = 0;
      }
      const stream = event.streams[0] ?? new MediaStream([event.track]);
      this.timeline.track ??= performance.now();
      this.emit('stream', { stream });
    };
    pc.ondatachannel = (event) => {
      if (this.call === call) this.onDataChannel(event.channel);
    };
    pc.onicecandidate = (event) => {
      if (this.call !== call) return;
      const candidate = event.candidate;
      this.send({
        type: 'candidate',
        callId,
        candidate: candidate ? { candidate: candidate.candidate, mid: candidate.sdpMid ?? '0' } : { candidate: '', mid: '0' },
      });
    };
    pc.oniceconnectionstatechange = () => {
      if (this.call === call && (pc.iceConnectionState === 'connected' || pc.iceConnectionState === 'completed')) this.timeline.ice ??= performance.now();
    };
    pc.onconnectionstatechange = () => {
      if (this.call !== call) return;
      switch (pc.connectionState) {
        case 'connected':
          this.timeline.connected ??= performance.now();
          this.failedCalls = 0;
          this.setState('live', 'receiving video');
          this.startStats();
          break;
        case 'disconnected':
          this.setState('connecting', 'connection interrupted, trying to recover…');
          break;
        case 'failed':
          this.onCallFailed(call.ice);
          break;
      }
    };

    await pc.setRemoteDescription({ type: 'offer', sdp });
    if (this.call !== call) return;
    call.remoteSet = true;
    for (const candidate of call.pendingCandidates.splice(0)) await this.applyCandidate(pc, candidate);
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    if (this.call !== call || !pc.localDescription) return;
    this.send({ type: 'answer', callId, sdp: pc.localDescription.sdp });
    this.timeline.answer ??= performance.now();
  }

  private async addRemoteCandidate(callId: string, candidate: IceCandidate): Promise<void> {
    const call = this.call;
    if (!call || call.id !== callId) return; // belongs to an older call
    if (!call.remoteSet) {
      call.pendingCandidates.push(candidate);
      return;
    }
    await this.applyCandidate(call.pc, candidate);
  }

  private async applyCandidate(pc: RTCPeerConnection, candidate: IceCandidate): Promise<void> {
    try {
      await pc.addIceCandidate(candidate.candidate ? { candidate: candidate.candidate, sdpMid: candidate.mid } : null);
    } catch (error) {
      console.warn('ignoring unusable ICE candidate', error);
    }
  }

  /** ICE found no path. Explain it in words a person can act on, then retry with growing pauses. */
  private onCallFailed(ice: IceConfig): void {
    this.closeCall();
    const delay = this.nextRetryDelay();
    const retry = `Retrying in ${Math.round(delay / 1000)} s.`;
    if (hasTurn(ice) || this.iceServers.length > 0) {
      this.fail(
        `No video path: neither a direct connection nor the TURN relay worked. Your network may block UDP; ` +
          `a relay on TCP/TLS port 443 (turns:) usually gets through. ${retry}`,
      );
    } else {
      this.fail(
        `No direct network path between you and the rover (strict NATs or firewalls on both sides), and this ` +
          `server offers no TURN relay. Ask the operator to configure TURN (README: "TURN relay"). ${retry}`,
      );
    }
    this.scheduleRetry(delay);
  }

  /** 2 s, 4 s, 8 s … 30 s while calls keep failing or being refused; reset once video plays. */
  private nextRetryDelay(): number {
    return Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.failedCalls++);
  }

  private scheduleRetry(delay: number): void {
    clearTimeout(this.retryTimer);
    // The current explanation stays up until the new attempt's own state replaces it.
    this.retryTimer = setTimeout(() => {
      if (this.call === null && this.wantWatch) this.sendWatch(true);
    }, delay);
  }

  private closeCall(): void {
    const call = this.call;
    this.call = null;
    this.path = null;
    this.controlChannel = null;
    this.frameClock = null;
    this.lastTelemetrySeq = -1; // a new call may come from a restarted rover, counting from 0
    clearInterval(this.statsTimer);
    this.lastStatsSample = null;
    if (call) {
      call.pc.ontrack = null;
      call.pc.ondatachannel = null;
      call.pc.onicecandidate = null;
      call.pc.onconnectionstatechange = null;
      call.pc.oniceconnectionstatechange = null;
      call.pc.close();
    }
  }

  private startStats(): void {
    clearInterval(this.statsTimer);
    this.statsTimer = setInterval(() => void this.sampleStats(), STATS_INTERVAL_MS);
  }

  private async sampleStats(): Promise<void> {
    const pc = this.call?.pc;
    if (!pc) return;
    const report = await pc.getStats();
    this.path = selectedPath(report);
    const rttMs = selectedRoundTripMs(report);
    report.forEach((entry: RTCStats & Record<string, unknown>) => {
      if (entry.type !== 'inbound-rtp' || entry['kind'] !== 'video') return;
      const bytes = Number(entry['bytesReceived'] ?? 0);
      const now = entry.timestamp;
      const previous = this.lastStatsSample;
      this.lastStatsSample = { bytes, at: now };
      const bitrateKbps = previous && now > previous.at ? ((bytes - previous.bytes) * 8) / (now - previous.at) : 0;
      this.emit('stats', {
        width: Number(entry['frameWidth'] ?? 0),
        height: Number(entry['frameHeight'] ?? 0),
        fps: Number(entry['framesPerSecond'] ?? 0),
        bitrateKbps: Math.round(bitrateKbps),
        framesDecoded: Number(entry['framesDecoded'] ?? 0),
        packetsLost: Number(entry['packetsLost'] ?? 0),
        path: this.path,
        rttMs,
      });
    });
  }

  private fail(detail: string): void {
    this.setState('failed', detail);
  }

  private setState(state: ViewerState, detail: string): void {
    if (this.state === state && this.stateDetail === detail) return;
    this.state = state;
    this.stateDetail = detail;
    this.emit('state', { state, detail });
  }

  private emit<K extends keyof ViewerClientEvents>(event: K, payload: ViewerClientEvents[K]): void {
    for (const listener of this.listeners.get(event) ?? []) (listener as (p: ViewerClientEvents[K]) => void)(payload);
  }
}

const CONTROL_REFUSALS: Record<'no-lease' | 'rate-limited' | 'invalid' | 'no-program', string> = {
  'no-lease': 'command not delivered: the rover does not see your control lease (it may have lapsed)',
  'rate-limited': 'commands are coming too fast; some were dropped',
  invalid: 'the rover could not read a command',
  'no-program': 'the rover\'s control program is not running; commands go nowhere',
};

/** The selected candidate pair of a stats report, as direct or relayed (either end a TURN relay). */
export function selectedPath(report: RTCStatsReport): MediaPath | null {
  let pairId: string | undefined;
  report.forEach((entry: RTCStats & Record<string, unknown>) => {
    if (entry.type === 'transport' && typeof entry['selectedCandidatePairId'] === 'string') pairId = entry['selectedCandidatePairId'];
  });
  const pair = pairId ? (report.get(pairId) as Record<string, unknown> | undefined) : undefined;
  if (!pair) return null;
  const local = report.get(String(pair['localCandidateId'])) as Record<string, unknown> | undefined;
  const remote = report.get(String(pair['remoteCandidateId'])) as Record<string, unknown> | undefined;
  if (!local || !remote) return null;
  const localType = String(local['candidateType'] ?? 'unknown');
  const remoteType = String(remote['candidateType'] ?? 'unknown');
  return {
    kind: localType === 'relay' || remoteType === 'relay' ? 'relayed' : 'direct',
    local: localType,
    remote: remoteType,
    // For a relay candidate, relayProtocol is how this browser reaches the TURN server.
    protocol: String(local['relayProtocol'] ?? local['protocol'] ?? 'udp'),
  };
}

/** The selected candidate pair's current round trip, ms (null before the first STUN check answers). */
export function selectedRoundTripMs(report: RTCStatsReport): number | null {
  let rtt: number | null = null;
  report.forEach((entry: RTCStats & Record<string, unknown>) => {
    if (entry.type !== 'transport' || typeof entry['selectedCandidatePairId'] !== 'string') return;
    const pair = report.get(entry['selectedCandidatePairId']) as Record<string, unknown> | undefined;
    const seconds = pair?.['currentRoundTripTime'];
    if (typeof seconds === 'number') rtt = seconds * 1000;
  });
  return rtt;
}

/** Why the server refused this viewer, in words for the person holding the link. */
export function explainRefusal(status: number, reason: string): string {
  if (status === 503) return 'The server is not set up for viewers yet (its operator must configure authentication).';
  if (/expired/.test(reason)) return 'Your viewer link has expired. Ask the rover\'s operator for a new link.';
  if (/^no viewer token/.test(reason)) {
    return 'This page needs a viewer link. Open the link the rover\'s operator gave you (it ends in #access=…).';
  }
  if (/another rover/.test(reason)) return 'This viewer link is for a different rover.';
  if (/origin/.test(reason)) return `This page may not show this rover: ${reason}.`;
  return 'This viewer link is not valid (damaged, or signed with a key the server no longer uses). Ask for a new link.';
}
