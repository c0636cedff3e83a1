/**
 * RoverSender: ties cameras (one encoder each), the signaling connection, and one WebRTC call per
 * watching viewer together.
 */
import { randomBytes, randomInt } from 'node:crypto';
import {
  signalingUrl,
  type ApiInbound,
  type CameraInfo,
  type ControlRefusedMessage,
  type FrameClockMessage,
  type IceConfig,
  type ServerToRover,
  type WatchingViewer,
} from '../../protocol/index.js';
import { LocalApi } from './api.js';
import { ControlGate } from './control.js';
import { TelemetryRelay } from './telemetry.js';
import { ServerClock } from '../../protocol/clock.js';
import { backoffDelay } from './backoff.js';
import { CongestionController } from './congestion.js';
import { EncoderError, H264Encoder } from './encoder.js';
import type { EncoderProfile } from './encoders.js';
import { canRelay, toDataChannelIce, type DataChannelIce } from './ice.js';
import { errorSummary, type Logger } from './log.js';
import { CALL_FAILED_REASON, H264_PAYLOAD_TYPE, PEER_CLOSED_REASON, ViewerCall } from './peer.js';
import type { SourcePreset, VideoSettings } from './pipeline.js';
import { NetworkWatcher } from './network.js';
import { SignalingClient } from './signaling.js';

export interface CameraConfig {
  id: string;
  label: string;
  source: SourcePreset;
  video: VideoSettings;
  /** H.264 encoder, resolved once at start (cli.ts: resolveEncoder); default x264enc. */
  encoder?: EncoderProfile;
  /**
   * Adapt bitrate, picture size and frame rate to the viewers' links (default on). `video` is then the
   * start and the ceiling; minKbps the floor.
   */
  adapt?: { minKbps: number } | false;
}

export interface SenderConfig {
  server: string;
  roverId: string;
  cameras: CameraConfig[];
  token: string;
  /** The operator's own STUN/TURN URLs, added to the ones the server provides for each call. */
  iceServers: string[];
  relayOnly?: boolean;
  /** How often to look for address changes (default 2 s). */
  networkPollMs?: number;
  /** The local API for the rover's program (api.ts): a Unix socket path, and/or this process's stdin/stdout. */
  api?: { socket?: string; stdio?: boolean };
  log: Logger;
}

interface Camera {
  config: CameraConfig;
  encoder: H264Encoder;
  ssrc: number;
  /** False while the pipeline is down and being restarted. */
  live: boolean;
  restartAttempt: number;
  restartTimer?: NodeJS.Timeout;
  congestion: CongestionController | null;
  /** What the encoder produced over the last adaptation tick, kbit/s. */
  outputKbps: number;
  /** The encoder's packet count at the last adaptation tick. */
  packetsAtTick: number;
  /** The latest frame's RTP timestamp and when it left the encoder (server clock): viewers sync overlays to it. */
  frameClock: FrameClockMessage | null;
}

interface Watcher {
  cameraId: string;
  ice: IceConfig;
  restartAttempt: number;
  restartTimer?: NodeJS.Timeout;
}

/** A restart reuses the call's TURN credentials only while they have at least this long left. */
const MIN_CREDENTIAL_LIFE_MS = 60_000;
/** How often congestion control looks at the viewers' feedback (NACKs come within a round trip). */
const ADAPT_INTERVAL_MS = 250;
const KEYFRAME_AFTER_CUT_MS = 300;
/** Clock sync (for timecoded cameras): a few samples on connect, then one now and then to track drift. */
const CLOCK_BURST = 5;
const CLOCK_BURST_SPACING_MS = 150;
const CLOCK_RESYNC_MS = 30_000;
/** The server answers pings within milliseconds; no answer in this time means the link is down. */
const SIGNALING_PROBE_MS = 1_500;
/** How often each viewer gets its camera's frame clock (RTP timestamp ↔ capture time). */
const FRAME_CLOCK_INTERVAL_MS = 1_000;
/** Refusals of commands sent back to one viewer at most this often (a flood gets a trickle of answers). */
const REFUSAL_INTERVAL_MS = 250;

export class RoverSender {
  private readonly cameras = new Map<string, Camera>();
  private readonly calls = new Map<string, ViewerCall>();
  /**
   * Viewers that want video (from viewer-join / welcome), with the ICE settings the Worker minted for them.
   * Lets the rover restart a call the network broke without waiting for the viewer to ask again.
   */
  private readonly watchers = new Map<string, Watcher>();
  private readonly signaling: SignalingClient;
  private readonly network: NetworkWatcher;
  private readonly cname = `rover-${randomBytes(6).toString('hex')}`;
  private stopping = false;
  /** The server's clock: timecoded cameras paint capture times on it, so viewers anywhere can read them. */
  readonly clock = new ServerClock();
  private clockTimers: NodeJS.Timeout[] = [];
  private adaptTimer: NodeJS.Timeout | undefined;
  private frameClockTimer: NodeJS.Timeout | undefined;
  /** Who may drive, and the dead-man timer that stops the robot (control.ts). */
  readonly control: ControlGate;
  private readonly telemetry: TelemetryRelay;
  private readonly api: LocalApi;
  private readonly lastRefusalAt = new Map<string, number>();

  constructor(private readonly config: SenderConfig) {
    this.signaling = new SignalingClient({
      url: signalingUrl(config.server, config.roverId, 'rover'),
      log: config.log,
      headers: { authorization: `Bearer ${config.token}` },
    });
    this.signaling.on('message', (message) => this.onSignal(message));
    this.network = new NetworkWatcher((before, after) => this.onNetworkChange(before, after), config.networkPollMs);
    this.signaling.on('fatal', (error) => this.onFatal(error));
    this.api = new LocalApi(config.log.child({ part: 'api' }), (message) => this.onApiMessage(message), () => ({
      type: 'hello',
      roverId: config.roverId,
      cameras: config.cameras.map((camera) => camera.id),
    }));
    this.telemetry = new TelemetryRelay({
      toServerTime: (localMs) => this.clock.toServerTime(localMs),
      publish: (_message, text) => {
        for (const call of this.calls.values()) call.sendTelemetry(text);
      },
    });
    this.control = new ControlGate({
      command: (viewerId, seq, command) => {
        if (this.api.clientCount === 0) return false;
        this.api.broadcast({ type: 'control', viewer: viewerId.slice(0, 8), seq, command });
        return true;
      },
      lease: (viewerId) => {
        config.log.info(viewerId === null ? 'nobody has control' : 'control granted', viewerId === null ? {} : { viewer: viewerId.slice(0, 8) });
        this.api.broadcast({ type: 'lease', viewer: viewerId === null ? null : viewerId.slice(0, 8) });
      },
      stop: (reason) => {
        config.log.info('stop sent to the rover program', { reason });
        this.api.broadcast({ type: 'stop', reason });
      },
    });
  }

  /** Publish telemetry to every viewer (what the local API does for the rover's program). False: too large. */
  publishTelemetry(sample: Extract<ApiInbound, { type: 'telemetry' }>): boolean {
    return this.telemetry.submit(sample);
  }

  private onApiMessage(message: ApiInbound): string | null {
    if (message.camera !== undefined && !this.cameras.has(message.camera)) return `no camera "${message.camera}" (cameras: ${[...this.cameras.keys()].join(', ')})`;
    if (!this.telemetry.submit(message)) return 'telemetry message too large: dropped';
    return null;
  }

  /** A message on a viewer's control channel: the gate decides; a refusal is answered (not too often). */
  private onControlMessage(call: ViewerCall, raw: string): void {
    const verdict = this.control.receive(call.viewerId, raw);
    if (verdict.accepted) return;
    const now = performance.now();
    if (now - (this.lastRefusalAt.get(call.viewerId) ?? -Infinity) < REFUSAL_INTERVAL_MS) return;
    this.lastRefusalAt.set(call.viewerId, now);
    call.sendControlReply(JSON.stringify({ type: 'control-refused', seq: verdict.seq, reason: verdict.reason } satisfies ControlRefusedMessage));
  }

  /** Tell viewers how their camera's RTP timestamps map to capture times (for overlays in sync). */
  private sendFrameClock(call: ViewerCall): void {
    const clock = this.cameras.get(call.cameraId)?.frameClock;
    if (clock) call.sendTelemetry(JSON.stringify(clock));
  }

  /** Number of live viewer calls (for tests and status). */
  get callCount(): number {
    return this.calls.size;
  }

  onFatal: (error: Error) => void = (error) => {
    this.config.log.error(error.message);
  };

  /** Start every camera (fails fast on configuration errors), then dial out. */
  async start(): Promise<void> {
    for (const config of this.config.cameras) {
      const camera = this.createCamera(config);
      this.cameras.set(config.id, camera);
      await camera.encoder.start();
      camera.live = true;
      this.config.log.info('camera streaming', {
        camera: config.id,
        size: `${config.video.width}x${config.video.height}`,
        fps: config.video.fps,
        kbps: config.video.bitrateKbps,
      });
    }
    if (this.config.api?.socket) await this.api.listen(this.config.api.socket);
    if (this.config.api?.stdio) this.api.attachStreams(process.stdin, process.stdout);
    this.signaling.start();
    this.network.start();
    this.adaptTimer = setInterval(() => this.adapt(), ADAPT_INTERVAL_MS);
    this.frameClockTimer = setInterval(() => {
      for (const call of this.calls.values()) this.sendFrameClock(call);
    }, FRAME_CLOCK_INTERVAL_MS);
  }

  /** Congestion control tick: measure each encoder's output, let its controller decide, apply. */
  private adapt(): void {
    const now = performance.now();
    for (const camera of this.cameras.values()) {
      camera.outputKbps = camera.encoder.sampleOutputKbps(now);
      const packets = camera.encoder.packetsReceived - camera.packetsAtTick;
      camera.packetsAtTick = camera.encoder.packetsReceived;
      if (!camera.congestion || !camera.live) continue;
      const before = camera.congestion.current;
      const level = camera.congestion.decide(now, camera.outputKbps, Math.max(0, packets));
      if (!level) continue;
      camera.encoder.setBitrate(level.kbps);
      const reshaped = level.width !== before.width || level.height !== before.height || level.fps !== before.fps;
      if (reshaped) camera.encoder.setShape(level);
      // A deep cut follows heavy loss: viewers are missing references and would wait for repairs the
      // congested link cannot carry. Once the queue has drained, a keyframe at the new rate restarts them.
      else if (level.kbps < before.kbps * 0.7) setTimeout(() => camera.live && camera.encoder.requestKeyframe(), KEYFRAME_AFTER_CUT_MS);
      this.config.log[reshaped ? 'info' : 'debug']('adapting video to the viewers\' links', {
        camera: camera.config.id,
        kbps: level.kbps,
        size: `${level.width}x${level.height}`,
        fps: level.fps,
        producedKbps: Math.round(camera.outputKbps),
        loss: camera.congestion.weakest()?.loss.toFixed(3),
        rembKbps: camera.congestion.weakest()?.rembKbps?.toFixed(0),
      });
    }
  }

  /**
   * The rover's addresses changed: every open socket is bound to a path that may no longer exist. End all
   * calls and reconnect signaling now; the welcome that follows lists the watching viewers, and each gets
   * a fresh call (new ICE, new TURN credentials) — no operator action, no waiting for timeouts.
   */
  private onNetworkChange(before: string, after: string): void {
    if (this.stopping) return;
    this.config.log.warn('network changed: renegotiating every call', {
      addressesBefore: before.split(',').filter(Boolean).length,
      addressesNow: after.split(',').filter(Boolean).length,
    });
    for (const call of [...this.calls.values()]) call.close('network changed');
    this.signaling.reconnectNow();
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.network.stop();
    this.stopClockSync();
    clearInterval(this.adaptTimer);
    clearInterval(this.frameClockTimer);
    this.control.shutdown();
    await this.api.close();
    for (const viewerId of [...this.watchers.keys()]) this.forgetWatcher(viewerId);
    for (const call of [...this.calls.values()]) this.hangUp(call, 'rover shutting down');
    for (const camera of this.cameras.values()) {
      clearTimeout(camera.restartTimer);
      camera.encoder.stop();
    }
    await this.signaling.stop();
  }

  private createCamera(config: CameraConfig): Camera {
    const ssrc = randomInt(1, 0xffffffff);
    const encoder = new H264Encoder({
      source: config.source,
      video: { ...config.video },
      payloadType: H264_PAYLOAD_TYPE,
      ssrc,
      log: this.config.log.child({ camera: config.id }),
      clock: () => this.clock.now(),
      encoder: config.encoder,
    });
    const congestion =
      config.adapt === false
        ? null
        : new CongestionController({
            maxKbps: config.video.bitrateKbps,
            minKbps: config.adapt?.minKbps,
            width: config.video.width,
            height: config.video.height,
            fps: config.video.fps,
          });
    const camera: Camera = { config, encoder, ssrc, live: false, restartAttempt: 0, congestion, outputKbps: 0, packetsAtTick: 0, frameClock: null };
    encoder.on('packet', (packet, timestamp) => {
      if (camera.frameClock?.rtp !== timestamp) camera.frameClock = { type: 'frame-clock', camera: config.id, rtp: timestamp, ts: Math.round(this.clock.now()) };
      for (const call of this.calls.values()) if (call.cameraId === config.id) call.sendRtp(packet, timestamp);
    });
    encoder.on('error', (error) => this.onCameraFailed(camera, error));
    return camera;
  }

  /** A running camera failed: end its calls with a reason and restart the pipeline with backoff. */
  private onCameraFailed(camera: Camera, error: EncoderError): void {
    camera.live = false;
    this.config.log.error('camera failed', { camera: camera.config.id, error: error.message });
    for (const call of [...this.calls.values()]) {
      if (call.cameraId === camera.config.id) this.hangUp(call, 'camera unavailable');
    }
    if (this.stopping || error.permanent) return;
    const delay = backoffDelay(camera.restartAttempt++, { minMs: 1_000, maxMs: 30_000 });
    camera.restartTimer = setTimeout(() => void this.restartCamera(camera), delay);
  }

  private async restartCamera(camera: Camera): Promise<void> {
    if (this.stopping) return;
    try {
      await camera.encoder.start();
      camera.live = true;
      camera.restartAttempt = 0;
      // The new pipeline starts from the configured settings: put back what the links currently allow.
      if (camera.congestion) {
        const level = camera.congestion.current;
        camera.encoder.setBitrate(level.kbps);
        camera.encoder.setShape(level);
      }
      this.config.log.info('camera recovered', { camera: camera.config.id });
    } catch (error) {
      const encoderError = error instanceof EncoderError ? error : new EncoderError(String(error), false);
      this.onCameraFailed(camera, encoderError);
    }
  }

  private onSignal(message: ServerToRover): void {
    switch (message.type) {
      case 'welcome':
        this.signaling.send({ type: 'announce', cameras: this.cameraInfo() });
        this.reconcileViewers(message.viewers);
        this.control.setLease(message.lease.viewerId, message.lease.ttlMs);
        // Capture times (timecoded frames, telemetry, frame clocks) are all on the server's clock.
        this.startClockSync();
        return;
      case 'lease':
        this.control.setLease(message.viewerId, message.ttlMs, message.ended);
        return;
      case 'clock':
        this.clock.addReply(message.t, message.serverTime);
        return;
      case 'viewer-join':
        this.setWatcher(message.viewerId, message.cameraId, message.ice);
        this.startCall(message.viewerId, message.cameraId, message.ice);
        return;
      case 'viewer-leave':
        this.forgetWatcher(message.viewerId);
        this.calls.get(message.viewerId)?.close('viewer left');
        return;
      case 'answer': {
        const call = this.callFor(message.viewerId, message.callId);
        // An answer libdatachannel refuses leaves the call dead: say so, so the viewer can watch again.
        if (call && !call.setAnswer(message.sdp)) this.hangUp(call, 'the rover could not use the answer');
        return;
      }
      case 'candidate': {
        const call = this.callFor(message.viewerId, message.callId);
        call?.addRemoteCandidate(message.candidate);
        return;
      }
      case 'error':
        this.config.log.warn('server reported an error', { code: message.code, message: message.message });
        return;
      case 'pong':
        return;
    }
  }

  /**
   * After (re)connecting: keep calls that still carry video (the media path does not need signaling),
   * start calls for waiting viewers that have none, and drop calls for viewers that are gone.
   */
  private reconcileViewers(viewers: WatchingViewer[]): void {
    const waiting = new Map(viewers.map((viewer) => [viewer.viewerId, viewer]));
    for (const viewerId of [...this.watchers.keys()]) if (!waiting.has(viewerId)) this.forgetWatcher(viewerId);
    for (const call of [...this.calls.values()]) {
      if (!waiting.has(call.viewerId)) call.close('viewer no longer connected');
    }
    for (const { viewerId, cameraId, ice } of waiting.values()) {
      this.setWatcher(viewerId, cameraId, ice);
      const existing = this.calls.get(viewerId);
      if (existing?.isConnected && existing.cameraId === cameraId) continue;
      this.startCall(viewerId, cameraId, ice);
    }
  }

  private startCall(viewerId: string, cameraId: string, serverIce: IceConfig): void {
    const camera = this.cameras.get(cameraId);
    this.calls.get(viewerId)?.close('replaced by a new call');
    const callId = randomBytes(9).toString('base64url');
    const ice = toDataChannelIce(serverIce, this.config.iceServers, this.config.relayOnly);
    let refusal: string | undefined;
    if (!camera) refusal = `no camera "${cameraId}"`;
    else if (!camera.live) refusal = 'camera unavailable';
    else if (ice.iceTransportPolicy === 'relay' && !canRelay(ice)) {
      refusal = 'the rover only sends video through a TURN relay, and none is configured';
      this.config.log.error('relay-only, but neither the server nor --ice-server provides TURN: calls cannot connect');
    }
    if (!camera || refusal !== undefined) {
      this.signaling.send({ type: 'hangup', viewerId, callId, reason: refusal ?? 'camera unavailable' });
      return;
    }
    const log = this.config.log.child({ viewer: viewerId.slice(0, 8), call: callId });
    log.info('starting call', { camera: cameraId, relayOnly: ice.iceTransportPolicy === 'relay', turn: canRelay(ice) });
    if (ice.skipped.length > 0) log.debug('unusable ICE servers skipped', { skipped: ice.skipped.join('; ') });
    let call: ViewerCall;
    try {
      call = this.createCall(viewerId, callId, cameraId, camera, ice, log);
    } catch (error) {
      // e.g. ICE server settings libdatachannel cannot parse: refuse this call, keep the rover running.
      log.error('cannot start call', { error: errorSummary(error) });
      this.signaling.send({ type: 'hangup', viewerId, callId, reason: 'the rover could not start the call' });
      return;
    }
    this.calls.set(viewerId, call);
  }

  private createCall(viewerId: string, callId: string, cameraId: string, camera: Camera, ice: DataChannelIce, log: Logger): ViewerCall {
    return new ViewerCall({
      viewerId,
      callId,
      cameraId,
      ssrc: camera.ssrc,
      cname: this.cname,
      iceServers: ice.iceServers,
      iceTransportPolicy: ice.iceTransportPolicy,
      log,
      signal: (message) => {
        if (message.type === 'offer') this.signaling.send({ type: 'offer', viewerId, callId, cameraId, sdp: message.sdp });
        else this.signaling.send({ type: 'candidate', viewerId, callId, candidate: message.candidate });
      },
      onKeyframeRequest: (reason) => {
        log.debug('keyframe requested', { reason });
        camera.encoder.requestKeyframe();
      },
      onConnected: () => {
        const watcher = this.watchers.get(viewerId);
        if (watcher) watcher.restartAttempt = 0;
        camera.congestion?.addViewer(viewerId);
      },
      onRtcp: (event) => camera.congestion?.onRtcp(viewerId, event, performance.now()),
      onControlMessage: (call, message) => this.onControlMessage(call, message),
      onTelemetryOpen: (call) => this.sendFrameClock(call),
      onClosed: (closed, reason) => {
        if (this.calls.get(viewerId) === closed) {
          this.calls.delete(viewerId);
          camera.congestion?.removeViewer(viewerId);
        }
        log.info('call ended', { reason, packetsSent: closed.packetsSent});
        // A viewer that still wants video gets a fresh call at once. One that left is forgotten by its
        // viewer-leave, which cancels the restart before it fires (restartBrokenCall waits ≥ 100 ms).
        if ((reason === CALL_FAILED_REASON || reason === PEER_CLOSED_REASON) && !this.stopping) this.restartBrokenCall(viewerId, callId, log);
        this.lastRefusalAt.delete(viewerId);
      },
    });
  }

  /**
   * The network broke a call (a link that dropped for too long, a changed route). The viewer still wants
   * video, so offer a fresh call at once (then with backoff while it keeps failing); its new offer replaces
   * the viewer's dead connection. If the call's TURN credentials are about to expire, let the viewer ask
   * again instead (its request brings fresh ones).
   */
  private restartBrokenCall(viewerId: string, callId: string, log: Logger): void {
    const watcher = this.watchers.get(viewerId);
    if (!watcher) return;
    if (watcher.ice.expiresAt !== null && watcher.ice.expiresAt - Date.now() < MIN_CREDENTIAL_LIFE_MS) {
      this.signaling.send({ type: 'hangup', viewerId, callId, reason: 'connection lost' });
      return;
    }
    const delay = backoffDelay(watcher.restartAttempt++, { minMs: 200, maxMs: 15_000 });
    log.info('restarting the broken call', { inMs: delay });
    // If the server does not answer a ping either, the link itself is down: the signaling TCP connection
    // is then in retransmission backoff (its next try can come seconds after the link returns) and the new
    // offer would wait behind it. A fresh connection retries on its own schedule, sooner.
    void this.signaling.probe(SIGNALING_PROBE_MS).then((alive) => {
      if (alive || this.stopping) return;
      log.info('signaling does not answer either: reconnecting it');
      this.signaling.reconnectNow();
    });
    clearTimeout(watcher.restartTimer);
    watcher.restartTimer = setTimeout(() => {
      if (this.stopping || this.watchers.get(viewerId) !== watcher || this.calls.has(viewerId)) return;
      this.startCall(viewerId, watcher.cameraId, watcher.ice);
    }, delay);
  }

  private setWatcher(viewerId: string, cameraId: string, ice: IceConfig): void {
    const existing = this.watchers.get(viewerId);
    if (existing) {
      existing.cameraId = cameraId;
      existing.ice = ice;
    } else {
      this.watchers.set(viewerId, { cameraId, ice, restartAttempt: 0 });
    }
  }

  private forgetWatcher(viewerId: string): void {
    clearTimeout(this.watchers.get(viewerId)?.restartTimer);
    this.watchers.delete(viewerId);
  }

  /** End a call and tell its viewer why. */
  private hangUp(call: ViewerCall, reason: string): void {
    this.signaling.send({ type: 'hangup', viewerId: call.viewerId, callId: call.callId, reason });
    call.close(reason);
  }

  private callFor(viewerId: string, callId: string): ViewerCall | undefined {
    const call = this.calls.get(viewerId);
    if (call && call.callId === callId) return call;
    this.config.log.debug('ignoring signaling for an old call', { viewer: viewerId.slice(0, 8), call: callId });
    return undefined;
  }

  private cameraInfo(): CameraInfo[] {
    return [...this.cameras.values()].map(({ config }) => ({
      id: config.id,
      label: config.label,
      width: config.video.width,
      height: config.video.height,
      fps: config.video.fps,
      ...(config.source.kind === 'meter' ? { timecode: true } : {}),
    }));
  }

  /** A burst of clock requests now (after each (re)connect), then one every CLOCK_RESYNC_MS. */
  private startClockSync(): void {
    this.stopClockSync();
    const ask = (): void => void this.signaling.send({ type: 'clock', t: this.clock.localNow() });
    for (let i = 0; i < CLOCK_BURST; i++) this.clockTimers.push(setTimeout(ask, i * CLOCK_BURST_SPACING_MS));
    this.clockTimers.push(setInterval(ask, CLOCK_RESYNC_MS));
  }

  private stopClockSync(): void {
    for (const timer of this.clockTimers) clearTimeout(timer);
    this.clockTimers = [];
  }
}
