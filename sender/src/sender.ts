/**
 * RoverSender: ties cameras (one encoder each), the signaling connection, and one WebRTC call per
 * watching viewer together.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { signalingUrl, type CameraInfo, type IceConfig, type ServerToRover, type WatchingViewer } from '../../protocol/index.js';
import { backoffDelay } from './backoff.js';
import { EncoderError, H264Encoder } from './encoder.js';
import { canRelay, toDataChannelIce } from './ice.js';
import type { Logger } from './log.js';
import { H264_PAYLOAD_TYPE, ViewerCall } from './peer.js';
import type { SourcePreset, VideoSettings } from './pipeline.js';
import { SignalingClient } from './signaling.js';

export interface CameraConfig {
  id: string;
  label: string;
  source: SourcePreset;
  video: VideoSettings;
}

export interface SenderConfig {
  server: string;
  roverId: string;
  cameras: CameraConfig[];
  token?: string;
  /** The operator's own STUN/TURN URLs, added to the ones the server provides for each call. */
  iceServers: string[];
  relayOnly?: boolean;
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
}

export class RoverSender {
  private readonly cameras = new Map<string, Camera>();
  private readonly calls = new Map<string, ViewerCall>();
  private readonly signaling: SignalingClient;
  private readonly cname = `rover-${randomBytes(6).toString('hex')}`;
  private stopping = false;

  constructor(private readonly config: SenderConfig) {
    this.signaling = new SignalingClient({
      url: signalingUrl(config.server, config.roverId, 'rover'),
      log: config.log,
      headers: config.token ? { authorization: `Bearer ${config.token}` } : undefined,
    });
    this.signaling.on('message', (message) => this.onSignal(message));
    this.signaling.on('fatal', (error) => this.onFatal(error));
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
    this.signaling.start();
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const call of [...this.calls.values()]) {
      this.signaling.send({ type: 'hangup', viewerId: call.viewerId, callId: call.callId, reason: 'rover shutting down' });
      call.close('rover shutting down');
    }
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
    });
    const camera: Camera = { config, encoder, ssrc, live: false, restartAttempt: 0 };
    encoder.on('packet', (packet, timestamp) => {
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
      if (call.cameraId !== camera.config.id) continue;
      this.signaling.send({ type: 'hangup', viewerId: call.viewerId, callId: call.callId, reason: 'camera unavailable' });
      call.close('camera unavailable');
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
        return;
      case 'viewer-join':
        this.startCall(message.viewerId, message.cameraId, message.ice);
        return;
      case 'viewer-leave':
        this.calls.get(message.viewerId)?.close('viewer left');
        return;
      case 'answer': {
        const call = this.callFor(message.viewerId, message.callId);
        call?.setAnswer(message.sdp);
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
    for (const call of [...this.calls.values()]) {
      if (!waiting.has(call.viewerId)) call.close('viewer no longer connected');
    }
    for (const { viewerId, cameraId, ice } of waiting.values()) {
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
    const call = new ViewerCall({
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
      onClosed: (closed, reason) => {
        if (this.calls.get(viewerId) === closed) this.calls.delete(viewerId);
        log.info('call ended', { reason, packetsSent: closed.packetsSent });
      },
    });
    this.calls.set(viewerId, call);
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
    }));
  }
}
