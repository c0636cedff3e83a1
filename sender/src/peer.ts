/**
 * One viewer's WebRTC call (node-datachannel / libdatachannel). Send-only H.264 video track fed with
 * RTP packets from the camera's shared encoder. The rover always offers.
 */
import nodeDataChannel from 'node-datachannel';
import type { DataChannel, PeerConnection, RtcpSrReporter, RtpPacketizationConfig, Track } from 'node-datachannel';
import { CONTROL_CHANNEL, TELEMETRY_CHANNEL, type IceCandidate } from '../../protocol/index.js';
import type { DataChannelIceEntry } from './ice.js';
import { errorSummary, type Logger } from './log.js';
import { isRtcp, parseRtcp, type RtcpEvent } from './rtcp.js';

const { PeerConnection: PeerConnectionCtor, Video, RtcpNackResponder, RtcpSrReporter: SrReporterCtor, RtpPacketizationConfig: RtpConfigCtor } =
  nodeDataChannel;

export const H264_PAYLOAD_TYPE = 96;
/** No RTCP from the viewer for this long means its path was interrupted (receivers report about every 1 s). */
const RTCP_SILENCE_MS = 2_500;
const VIDEO_CLOCK_RATE = 90_000;
/** Packets kept for retransmission on NACK: ~1 s at 2 Mbit/s with 1200-byte packets. */
const NACK_HISTORY_PACKETS = 512;
/**
 * Telemetry waiting in a viewer's send buffer beyond this is stale by the time it would arrive: newer
 * samples are skipped for that viewer until it drains (other viewers are not affected).
 */
const MAX_TELEMETRY_BUFFERED_BYTES = 64 * 1024;

export type CallState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';

/** Why a call ended when the network ended it (not the rover or the viewer). */
export const CALL_FAILED_REASON = 'connection lost (ICE/DTLS failed)';
/**
 * The peer connection closed without the rover closing it: the browser closed it (its ICE gave up first, or
 * the page went away), or the data channels' SCTP association was lost with the link, which makes
 * libdatachannel close the whole connection.
 */
export const PEER_CLOSED_REASON = 'peer connection closed';

export interface CallOptions {
  viewerId: string;
  callId: string;
  cameraId: string;
  ssrc: number;
  cname: string;
  iceServers: DataChannelIceEntry[];
  iceTransportPolicy: 'all' | 'relay';
  log: Logger;
  /** Send a signaling message for this call. */
  signal: (message: { type: 'offer'; sdp: string } | { type: 'candidate'; candidate: IceCandidate }) => void;
  onKeyframeRequest: (reason: 'track-open' | 'pli' | 'fir' | 'link-back') => void;
  onRtcp?: (event: RtcpEvent) => void;
  onClosed: (call: ViewerCall, reason: string) => void;
  /** ICE and DTLS are up (also after the path recovered by itself). */
  onConnected?: (call: ViewerCall) => void;
  /** A text message on the viewer's control channel (network input: validate it). */
  onControlMessage?: (call: ViewerCall, message: string) => void;
  /** The telemetry channel opened: a good moment to send what a new viewer needs first. */
  onTelemetryOpen?: (call: ViewerCall) => void;
}

export class ViewerCall {
  readonly viewerId: string;
  readonly callId: string;
  readonly cameraId: string;
  state: CallState = 'new';
  packetsSent = 0;
  bytesSent = 0;
  readonly startedAt = performance.now();
  connectedAt: number | null = null;

  private readonly pc: PeerConnection;
  private readonly track: Track;
  private readonly rtpConfig: RtpPacketizationConfig;
  private readonly srReporter: RtcpSrReporter;
  private readonly telemetryChannel: DataChannel;
  private readonly controlChannel: DataChannel;
  telemetrySkipped = 0;
  private trackOpen = false;
  private closed = false;
  private lastTimestamp = -1;
  private lastRtcpAt: number | null = null;
  private candidatesRefused = 0;

  constructor(private readonly options: CallOptions) {
    this.viewerId = options.viewerId;
    this.callId = options.callId;
    this.cameraId = options.cameraId;
    const log = options.log;

    this.pc = new PeerConnectionCtor(`viewer-${options.viewerId.slice(0, 8)}`, {
      iceServers: options.iceServers,
      iceTransportPolicy: options.iceTransportPolicy,
      // Offers are made explicitly below, once the track exists.
      disableAutoNegotiation: true,
    });

    try {
      const video = new Video('video', 'SendOnly');
      video.addH264Codec(H264_PAYLOAD_TYPE);
      video.addSSRC(options.ssrc, options.cname, `rover-${options.cameraId}`, `video-${options.cameraId}`);
      this.track = this.pc.addTrack(video);

      // Sender reports give the browser RTT and clock mapping; the NACK responder repairs loss from history.
      this.rtpConfig = new RtpConfigCtor(options.ssrc, options.cname, H264_PAYLOAD_TYPE, VIDEO_CLOCK_RATE);
      this.srReporter = new SrReporterCtor(this.rtpConfig);
      this.srReporter.addToChain(new RtcpNackResponder(NACK_HISTORY_PACKETS));
      this.track.setMediaHandler(this.srReporter);

      this.track.onOpen(() => {
        this.trackOpen = true;
        log.debug('video track open');
        // A joining viewer can decode nothing until the next keyframe: ask for one now.
        options.onKeyframeRequest('track-open');
      });
      this.track.onClosed(() => {
        this.trackOpen = false;
      });
      this.track.onMessage((message) => this.onTrackMessage(message));

      // Both data channels go into the first offer, next to the video (protocol: TELEMETRY_CHANNEL).
      this.telemetryChannel = this.pc.createDataChannel(TELEMETRY_CHANNEL, { unordered: true, maxRetransmits: 0 });
      this.controlChannel = this.pc.createDataChannel(CONTROL_CHANNEL);
      this.telemetryChannel.onOpen(() => {
        if (!this.closed) options.onTelemetryOpen?.(this);
      });
      this.controlChannel.onMessage((message) => {
        if (this.closed || typeof message !== 'string') return;
        try {
          options.onControlMessage?.(this, message);
        } catch (error) {
          log.warn('failed to handle a control message', { error: errorSummary(error) });
        }
      });

      this.pc.onLocalDescription((sdp, type) => {
        if (this.closed || type !== 'offer') return;
        options.signal({ type: 'offer', sdp });
      });
      this.pc.onLocalCandidate((candidate, mid) => {
        if (this.closed) return;
        options.signal({ type: 'candidate', candidate: { candidate: stripAttributePrefix(candidate), mid } });
      });
      this.pc.onStateChange((state) => this.onStateChange(state as CallState));

      this.pc.setLocalDescription('offer');
    } catch (error) {
      // Do not leak the native peer connection (and its threads) when setting it up fails.
      this.closed = true;
      try {
        this.pc.close();
      } catch {
        // already closed
      }
      throw error;
    }
  }

  get isConnected(): boolean {
    return this.state === 'connected';
  }

  /** Selected ICE path, for logs and the viewer's "direct or relayed". */
  selectedPath(): string | undefined {
    const pair = this.pc.getSelectedCandidatePair();
    return pair ? `${pair.local.type}->${pair.remote.type}/${pair.local.transportType}` : undefined;
  }

  /**
   * Apply the viewer's answer. The SDP comes from the network: libdatachannel throws on anything it
   * cannot use, and that must not escape (it would crash the process). Returns false when the answer was
   * refused (logged without its content); the call cannot go on then, and the caller ends it.
   */
  setAnswer(sdp: string): boolean {
    if (this.closed) return false;
    try {
      this.pc.setRemoteDescription(sdp, 'answer');
      return true;
    } catch (error) {
      this.options.log.warn('refused the viewer\'s answer', { error: errorSummary(error) });
      return false;
    }
  }

  /**
   * Add one of the viewer's ICE candidates. One unusable candidate (malformed, an unsupported kind, or
   * early) does not end the call: it is skipped, logged without its content (the first at warn level,
   * the rest at debug, so a flood cannot flood the log). Returns false when skipped.
   */
  addRemoteCandidate(candidate: IceCandidate): boolean {
    if (this.closed) return false;
    if (candidate.candidate === '') return true; // '' marks end-of-candidates
    try {
      this.pc.addRemoteCandidate(candidate.candidate, candidate.mid);
      return true;
    } catch (error) {
      const level = this.candidatesRefused++ === 0 ? 'warn' : 'debug';
      this.options.log[level]('skipped an unusable ICE candidate from the viewer', { error: errorSummary(error) });
      return false;
    }
  }

  /** Forward one RTP packet from the shared encoder. Cheap no-op until the track is open. */
  sendRtp(packet: Buffer, rtpTimestamp: number): void {
    if (!this.trackOpen || this.closed) return;
    if (rtpTimestamp !== this.lastTimestamp) {
      // The SR reporter stamps sender reports with this; keep it on the encoder's clock.
      this.rtpConfig.timestamp = rtpTimestamp;
      this.lastTimestamp = rtpTimestamp;
    }
    try {
      if (this.track.sendMessageBinary(packet)) {
        this.packetsSent++;
        this.bytesSent += packet.length;
      }
    } catch (error) {
      this.options.log.debug('send failed', { error: error instanceof Error ? error.message : String(error) });
    }
  }

  /** Telemetry for this viewer; skipped (false) while its channel is not open or still full of older samples. */
  sendTelemetry(text: string): boolean {
    return this.sendOn(this.telemetryChannel, text, MAX_TELEMETRY_BUFFERED_BYTES);
  }

  /** A reply on the control channel (a refused command). */
  sendControlReply(text: string): boolean {
    return this.sendOn(this.controlChannel, text, MAX_TELEMETRY_BUFFERED_BYTES);
  }

  private sendOn(channel: DataChannel, text: string, maxBuffered: number): boolean {
    if (this.closed) return false;
    try {
      if (!channel.isOpen()) return false;
      if (channel.bufferedAmount() > maxBuffered) {
        this.telemetrySkipped++;
        return false;
      }
      return channel.sendMessage(text);
    } catch {
      return false;
    }
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.trackOpen = false;
    this.state = 'closed';
    for (const channel of [this.telemetryChannel, this.controlChannel]) {
      try {
        channel.close();
      } catch {
        // already closed
      }
    }
    try {
      this.track.close();
    } catch {
      // already closed
    }
    try {
      this.pc.close();
    } catch {
      // already closed
    }
    this.options.onClosed(this, reason);
  }

  private onStateChange(state: CallState): void {
    if (this.closed) return;
    this.state = state;
    this.options.log.info('call state', { state, path: state === 'connected' ? this.selectedPath() : undefined });
    if (state === 'connected') {
      this.connectedAt ??= performance.now();
      this.options.onConnected?.(this);
    }
    if (state === 'failed') this.close(CALL_FAILED_REASON);
    else if (state === 'closed') this.close(PEER_CLOSED_REASON);
  }

  /** RTCP from the viewer (network input), called from a native callback: nothing may escape it. */
  private onTrackMessage(message: Buffer): void {
    if (this.closed || !isRtcp(message)) return;
    // Browsers report every second. Reports resuming after a silence mean the path just came back (a
    // dropped link): the viewer lost frames and cannot decode until a keyframe. Send one now instead of
    // waiting for its NACKs to give up and a PLI to arrive.
    const now = performance.now();
    if (this.lastRtcpAt !== null && now - this.lastRtcpAt > RTCP_SILENCE_MS) this.options.onKeyframeRequest('link-back');
    this.lastRtcpAt = now;
    try {
      for (const event of parseRtcp(message)) {
        if (event.type === 'pli') this.options.onKeyframeRequest('pli');
        else if (event.type === 'fir') this.options.onKeyframeRequest('fir');
        this.options.onRtcp?.(event);
      }
    } catch (error) {
      this.options.log.debug('failed to handle RTCP from the viewer', { error: errorSummary(error) });
    }
  }
}

/** node-datachannel may report "a=candidate:…"; browsers want "candidate:…". */
export function stripAttributePrefix(candidate: string): string {
  return candidate.startsWith('a=') ? candidate.slice(2) : candidate;
}
