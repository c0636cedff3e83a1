/**
 * One viewer's WebRTC call (node-datachannel / libdatachannel). Send-only H.264 video track fed with
 * RTP packets from the camera's shared encoder. The rover always offers.
 */
import nodeDataChannel from 'node-datachannel';
import type { PeerConnection, RtcpSrReporter, RtpPacketizationConfig, Track } from 'node-datachannel';
import type { IceCandidate } from '../../protocol/index.js';
import type { DataChannelIceEntry } from './ice.js';
import type { Logger } from './log.js';
import { isRtcp, parseRtcp, type RtcpEvent } from './rtcp.js';

const { PeerConnection: PeerConnectionCtor, Video, RtcpNackResponder, RtcpSrReporter: SrReporterCtor, RtpPacketizationConfig: RtpConfigCtor } =
  nodeDataChannel;

export const H264_PAYLOAD_TYPE = 96;
const VIDEO_CLOCK_RATE = 90_000;
/** Packets kept for retransmission on NACK: ~1 s at 2 Mbit/s with 1200-byte packets. */
const NACK_HISTORY_PACKETS = 512;

export type CallState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';

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
  onKeyframeRequest: (reason: 'track-open' | 'pli' | 'fir') => void;
  onRtcp?: (event: RtcpEvent) => void;
  onClosed: (call: ViewerCall, reason: string) => void;
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
  private trackOpen = false;
  private closed = false;
  private lastTimestamp = -1;

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
  }

  get isConnected(): boolean {
    return this.state === 'connected';
  }

  /** Selected ICE path, for logs and the viewer's "direct or relayed". */
  selectedPath(): string | undefined {
    const pair = this.pc.getSelectedCandidatePair();
    return pair ? `${pair.local.type}->${pair.remote.type}/${pair.local.transportType}` : undefined;
  }

  setAnswer(sdp: string): void {
    if (this.closed) return;
    this.pc.setRemoteDescription(sdp, 'answer');
  }

  addRemoteCandidate(candidate: IceCandidate): void {
    if (this.closed || candidate.candidate === '') return; // '' marks end-of-candidates
    this.pc.addRemoteCandidate(candidate.candidate, candidate.mid);
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

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.trackOpen = false;
    this.state = 'closed';
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
    if (state === 'connected') this.connectedAt ??= performance.now();
    if (state === 'failed') this.close('ICE/DTLS connection failed');
    else if (state === 'closed') this.close('peer connection closed');
  }

  private onTrackMessage(message: Buffer): void {
    if (!isRtcp(message)) return;
    for (const event of parseRtcp(message)) {
      if (event.type === 'pli') this.options.onKeyframeRequest('pli');
      else if (event.type === 'fir') this.options.onKeyframeRequest('fir');
      this.options.onRtcp?.(event);
    }
  }
}

/** node-datachannel may report "a=candidate:…"; browsers want "candidate:…". */
export function stripAttributePrefix(candidate: string): string {
  return candidate.startsWith('a=') ? candidate.slice(2) : candidate;
}
