/**
 * One camera's GStreamer pipeline: capture → H.264 → RTP → UDP loopback → this process.
 * Exactly one encoder per camera; its packets are fanned out to every viewer by the caller.
 */
import { createSocket, type Socket } from 'node:dgram';
import { accessSync, constants as fsConstants } from 'node:fs';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Pipeline } from 'gstreamer-superficial';
import { runtimeBitrateValue, X264_PROFILE, type EncoderProfile } from './encoders.js';
import { KeyframeLimiter } from './keyframe-limiter.js';
import { MeterSource } from './meter.js';
import type { Logger } from './log.js';
import {
  buildPipeline,
  ENCODER_NAME,
  METER_SOURCE_NAME,
  SHAPE_NAME,
  shapeCaps,
  explainMissingElement,
  explainSourceError,
  PAYLOADER_NAME,
  type SourcePreset,
  type VideoSettings,
} from './pipeline.js';
import { clearMarkerOnParameterSets, isKeyframePacket, parseRtpHeader, rewriteSsrc } from './rtp.js';

// The addon's package entry is the .node binary itself, which only CommonJS require can load.
const gstreamer = createRequire(import.meta.url)('gstreamer-superficial') as typeof import('gstreamer-superficial').default;

export class EncoderError extends Error {
  constructor(
    message: string,
    /** True when retrying cannot help (missing plugin, bad pipeline text). */
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

export interface EncoderOptions {
  source: SourcePreset;
  video: VideoSettings;
  payloadType: number;
  ssrc: number;
  log: Logger;
  /** How long to wait for the first packet before declaring the source dead. */
  startTimeoutMs?: number;
  keyframeMinIntervalMs?: number;
  /** H.264 encoder profile, resolved once at start (encoders.ts: resolveEncoder); default x264enc. */
  encoder?: EncoderProfile;
  /** Capture clock for the `meter` source, ms since the Unix epoch (default: this machine's clock). */
  clock?: () => number;
}

export interface EncoderEvents {
  packet: [packet: Buffer, rtpTimestamp: number];
  keyframe: [];
  error: [error: EncoderError];
}

const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

export class H264Encoder extends EventEmitter<EncoderEvents> {
  private pipeline: Pipeline | null = null;
  private socket: Socket | null = null;
  private readonly limiter: KeyframeLimiter;
  private running = false;
  private meter: MeterSource | null = null;
  private shape: { width: number; height: number; fps: number } | null = null;
  private outputSample: { bytes: number; at: number } | null = null;
  private lastSequence: number | null = null;
  /** Packets the pipeline sent that never reached this process (sequence gaps). */
  packetsMissed = 0;
  private keyframeRequestedAt: number | null = null;
  /** For encoders whose bitrate cannot change while running: said once, not on every congestion tick. */
  private bitrateFixedLogged = false;
  packetsReceived = 0;
  bytesReceived = 0;
  /** Forced-keyframe latency of the last request, ms (request → first IDR packet). */
  lastKeyframeLatencyMs: number | null = null;

  constructor(private readonly options: EncoderOptions) {
    super();
    this.limiter = new KeyframeLimiter(() => this.forceKeyframe(), options.keyframeMinIntervalMs ?? 300);
  }

  get bitrateKbps(): number {
    return this.options.video.bitrateKbps;
  }

  /** Start capture; resolves once the first RTP packet has arrived. */
  async start(): Promise<void> {
    checkSourceDevice(this.options.source);
    this.lastSequence = null; // a new pipeline numbers its packets afresh
    const socket = createSocket({ type: 'udp4', recvBufferSize: RECEIVE_BUFFER_BYTES });
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const description = buildPipeline({
      source: this.options.source,
      video: this.options.video,
      payloadType: this.options.payloadType,
      ssrc: this.options.ssrc,
      udpPort: socket.address().port,
      encoder: this.options.encoder,
    });
    this.options.log.debug('starting pipeline', { pipeline: description });

    try {
      this.pipeline = new gstreamer.Pipeline(description);
    } catch (error) {
      this.closeSocket();
      const message = error instanceof Error ? error.message : String(error);
      throw new EncoderError(explainMissingElement(message) ?? `invalid GStreamer pipeline: ${message}`, true);
    }

    const firstPacket = new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(
        () =>
          reject(
            new EncoderError(
              `camera produced no video within ${Math.round((this.options.startTimeoutMs ?? 10_000) / 1000)} s (is it connected, powered and not in use by another program?)`,
              false,
            ),
          ),
        this.options.startTimeoutMs ?? 10_000,
      );
      const onError = (error: EncoderError): void => {
        clearTimeout(timeout);
        reject(error);
      };
      this.once('error', onError);
      socket.once('message', () => {
        clearTimeout(timeout);
        this.off('error', onError);
        resolve();
      });
    });

    socket.on('message', (packet) => this.onPacket(packet));
    this.running = true;
    const pipeline = this.pipeline;
    pipeline.pollBus((message) => {
      if (this.pipeline !== pipeline || !this.running) return;
      if (message.type === 'error') {
        const text = String(message.message ?? 'unknown GStreamer error');
        this.options.log.warn('pipeline error', { element: message._src_element_name, error: text });
        this.fail(new EncoderError(explainMissingElement(text) ?? explainSourceError(this.options.source, text), false));
      } else if (message.type === 'eos') {
        this.fail(new EncoderError('camera source ended (end of stream)', false));
      }
    });
    pipeline.play();
    try {
      if (this.options.source.kind === 'meter') this.startMeter(pipeline);
      await firstPacket;
    } catch (error) {
      this.stop();
      throw error;
    }
  }

  /** Ask for a keyframe soon; bursts of requests collapse into one (see KeyframeLimiter). */
  requestKeyframe(): void {
    if (this.running) this.limiter.request();
  }

  /**
   * Change the target bitrate while running, through the encoder profile's bitrate property and unit.
   * Returns false when nothing changed: not running, or an encoder whose bitrate cannot change at run
   * time (v4l2h264enc, see encoders.ts), which keeps its start bitrate.
   */
  setBitrate(kbps: number): boolean {
    const profile = this.options.encoder ?? X264_PROFILE;
    const value = runtimeBitrateValue(profile, kbps);
    const encoder = this.pipeline?.findChild(ENCODER_NAME);
    if (value === null) {
      if (!this.bitrateFixedLogged) this.options.log.info('encoder keeps its start bitrate', { encoder: profile.element, kbps: this.options.video.bitrateKbps });
      this.bitrateFixedLogged = true;
      return false;
    }
    if (!encoder) return false;
    encoder[profile.bitrate.property] = value;
    this.options.video.bitrateKbps = Math.max(1, Math.round(kbps));
    return true;
  }

  /**
   * Change the picture size and frame rate while running (congestion control). The caps filter before the
   * encoder renegotiates; the encoder restarts its stream with a keyframe at the new size, which browsers
   * follow without a new call. The capture itself is untouched (the meter source keeps its size too).
   */
  setShape(shape: { width: number; height: number; fps: number }): void {
    const filter = this.pipeline?.findChild(SHAPE_NAME);
    if (!filter) return;
    filter['caps'] = shapeCaps(shape);
    this.shape = { ...shape };
  }

  /** The picture size and frame rate the encoder is fed now. */
  get currentShape(): { width: number; height: number; fps: number } {
    return this.shape ?? { width: this.options.video.width, height: this.options.video.height, fps: this.options.video.fps };
  }

  /** What the encoder actually produced since the previous call, kbit/s (0 on the first call). */
  sampleOutputKbps(now = performance.now()): number {
    const previous = this.outputSample;
    this.outputSample = { bytes: this.bytesReceived, at: now };
    if (!previous || now <= previous.at) return 0;
    return ((this.bytesReceived - previous.bytes) * 8) / (now - previous.at);
  }

  stop(): void {
    this.running = false;
    this.limiter.dispose();
    this.meter?.stop();
    this.meter = null;
    if (this.pipeline) {
      try {
        this.pipeline.stop(); // to NULL: releases the camera device
      } catch {
        // already torn down
      }
    }
    this.pipeline = null;
    this.closeSocket();
  }

  private startMeter(pipeline: Pipeline): void {
    const appsrc = pipeline.findChild(METER_SOURCE_NAME);
    if (!appsrc?.push) throw new EncoderError('the meter source has no appsrc to feed', true);
    const push = appsrc.push.bind(appsrc);
    const { width, height, fps } = this.options.video;
    this.meter = new MeterSource({ push }, { width, height, fps, now: this.options.clock ?? Date.now });
    this.meter.start();
  }

  private fail(error: EncoderError): void {
    if (!this.running) return;
    this.stop();
    this.emit('error', error);
  }

  private forceKeyframe(): void {
    if (!this.pipeline || !this.running) return;
    this.keyframeRequestedAt ??= performance.now();
    this.pipeline.forceKeyUnit(PAYLOADER_NAME, 1);
  }

  private onPacket(packet: Buffer): void {
    const header = parseRtpHeader(packet);
    if (!header) return;
    this.packetsReceived++;
    this.bytesReceived += packet.length;
    // A packet lost between the pipeline and this process (a full socket buffer under load) can never be
    // resent to anyone: every viewer would wait for the next periodic keyframe (up to 2 s frozen). Ask now.
    if (this.lastSequence !== null && header.sequenceNumber !== ((this.lastSequence + 1) & 0xffff)) {
      this.packetsMissed++;
      this.limiter.request();
    }
    this.lastSequence = header.sequenceNumber;
    clearMarkerOnParameterSets(packet, header);
    rewriteSsrc(packet, this.options.ssrc);
    if (this.keyframeRequestedAt !== null && isKeyframePacket(packet, header)) {
      this.lastKeyframeLatencyMs = performance.now() - this.keyframeRequestedAt;
      this.keyframeRequestedAt = null;
      this.emit('keyframe');
    }
    this.emit('packet', packet, header.timestamp);
  }

  private closeSocket(): void {
    try {
      this.socket?.close();
    } catch {
      // already closed
    }
    this.socket = null;
  }
}

/**
 * A v4l2 device that is missing or not permitted fails before the pipeline reaches READY, and the
 * binding stops reading the bus in that state, so the error would be lost: check the device first.
 */
function checkSourceDevice(source: SourcePreset): void {
  if (source.kind !== 'v4l2') return;
  try {
    accessSync(source.device, fsConstants.R_OK | fsConstants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new EncoderError(
      explainSourceError(source, code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(code)),
      false,
    );
  }
}
