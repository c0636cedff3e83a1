/**
 * A lightweight receiving peer for benchmarks: it does on the wire what the browser viewer does
 * (viewer/src/client.ts) — the same signaling socket, subprotocols, `watch`, answer, candidates and
 * heartbeat — but receives the video with node-datachannel and only counts it (RTP bytes, packets,
 * sequence gaps, keyframes) instead of decoding it. Eight of these cost a fraction of one Chromium page.
 *
 * Like a browser it sends RTCP receiver reports (libdatachannel's RtcpReceivingSession answers each
 * sender report), so the rover sees a live receiver. Unlike a browser it never sends NACK or PLI.
 */
import nodeDataChannel from 'node-datachannel';
import type { PeerConnection, Track } from 'node-datachannel';
import WebSocket from 'ws';
import {
  DEFAULT_CAMERA_ID,
  HEARTBEAT_INTERVAL_MS,
  PING_FRAME,
  ServerToViewer,
  SUBPROTOCOL,
  TOKEN_SUBPROTOCOL_PREFIX,
  parseMessage,
  signalingUrl,
  type IceCandidate,
  type IceConfig,
  type ViewerToServer,
} from '../protocol/index.js';
import { toDataChannelIce } from '../sender/src/ice.js';

const { PeerConnection: PeerConnectionCtor, Video, RtcpReceivingSession } = nodeDataChannel;

/** The payload type the rover offers for H.264 (sender/src/peer.ts). */
export const H264_PAYLOAD_TYPE = 96;

export interface LightViewerOptions {
  /** Worker base URL (http:// or ws://). */
  server: string;
  roverId: string;
  /** Viewer token (the `#access=` part of a viewer link). */
  token: string;
  cameraId?: string;
  /** Label for log lines and the native peer connection. */
  name?: string;
  /** Where diagnostics go (invalid messages, server errors, hangups); default: stderr. */
  log?: (line: string) => void;
}

/** Cumulative receive counters of the current call. */
export interface ReceiveCounters {
  /** RTP bytes (header + payload, after SRTP) and packets received. */
  bytes: number;
  packets: number;
  /** Sequence numbers never seen (RFC 3550 A.3: expected − received; late packets count as received). */
  lost: number;
  /** Frames that carried an IDR slice (counted once per RTP timestamp). */
  keyframes: number;
}

type CallState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';

interface Call {
  id: string;
  pc: PeerConnection;
  track: Track | null;
  state: CallState;
}

export class LightViewer {
  readonly name: string;
  viewerId: string | null = null;
  /** Calls offered to this viewer (a restart by the rover shows up as more than one). */
  offers = 0;
  hangups: string[] = [];
  errors: string[] = [];
  /** Messages from the server that failed validation against ServerToViewer. */
  invalidMessages = 0;
  /** performance.now() when connect() was called, and when the first keyframe arrived. */
  connectStartedAt: number | null = null;
  firstKeyframeAt: number | null = null;

  private readonly options: LightViewerOptions;
  private readonly log: (line: string) => void;
  private socket: WebSocket | null = null;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private call: Call | null = null;
  private closed = false;
  private readonly keyframeWaiters = new Set<() => void>();

  // Receive statistics (reset per call).
  private bytes = 0;
  private packets = 0;
  private keyframes = 0;
  private lastKeyframeTimestamp = -1;
  private baseSeq = -1;
  private maxSeq = 0;
  private cycles = 0;

  constructor(options: LightViewerOptions) {
    this.options = options;
    this.name = options.name ?? 'light-viewer';
    this.log = options.log ?? ((line) => process.stderr.write(line + '\n'));
  }

  /** Open signaling (as the browser does) and ask for video. Resolves when the socket is open. */
  async connect(timeoutMs = 10_000): Promise<void> {
    this.connectStartedAt = performance.now();
    const url = signalingUrl(this.options.server, this.options.roverId, 'viewer');
    const socket = new WebSocket(url, [SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + this.options.token]);
    this.socket = socket;
    socket.on('message', (data, isBinary) => {
      if (isBinary) return; // the protocol is text only, like the browser we ignore binary frames
      this.onSignal(data.toString());
    });
    socket.on('close', (code, reason) => {
      clearInterval(this.heartbeat);
      if (!this.closed) this.note(`signaling closed unexpectedly: ${code} ${reason.toString()}`);
    });
    socket.on('error', (error) => {
      if (!this.closed) this.note(`signaling error: ${error.message}`);
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: signaling not open within ${timeoutMs} ms`)), timeoutMs);
      socket.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('unexpected-response', (_request, response) => {
        clearTimeout(timer);
        reject(new Error(`${this.name}: signaling refused: HTTP ${response.statusCode}`));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    this.heartbeat = setInterval(() => socket.readyState === WebSocket.OPEN && socket.send(PING_FRAME), HEARTBEAT_INTERVAL_MS);
  }

  /** Resolves at the first keyframe received (the first moment a real viewer could show a picture). */
  waitForKeyframe(timeoutMs: number): Promise<void> {
    if (this.firstKeyframeAt !== null) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.keyframeWaiters.delete(done);
        reject(new Error(`${this.name}: no keyframe within ${timeoutMs} ms (call ${this.call?.state ?? 'none'}, ${this.packets} packets)`));
      }, timeoutMs);
      this.keyframeWaiters.add(done);
    });
  }

  get callState(): CallState | 'none' {
    return this.call?.state ?? 'none';
  }

  counters(): ReceiveCounters {
    const expected = this.baseSeq < 0 ? 0 : this.cycles + this.maxSeq - this.baseSeq + 1;
    return { bytes: this.bytes, packets: this.packets, lost: Math.max(0, expected - this.packets), keyframes: this.keyframes };
  }

  /** Leave (the rover ends our call), then close everything. */
  close(): void {
    if (this.closed) return;
    this.send({ type: 'leave' });
    this.closed = true;
    clearInterval(this.heartbeat);
    this.closeCall();
    this.socket?.close(1000, 'viewer closed');
    this.socket = null;
    for (const waiter of this.keyframeWaiters) waiter();
    this.keyframeWaiters.clear();
  }

  // ---------------------------------------------------------------- signaling

  private send(message: ViewerToServer): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  private note(line: string): void {
    this.errors.push(line);
    this.log(`[${this.name}] ${line}`);
  }

  private onSignal(raw: string): void {
    if (this.closed) return;
    const parsed = parseMessage(ServerToViewer, raw);
    if (!parsed.ok) {
      this.invalidMessages++;
      this.note(`ignoring invalid message from server: ${parsed.error}`);
      return;
    }
    const message = parsed.message;
    try {
      switch (message.type) {
        case 'welcome':
          this.viewerId = message.viewerId;
          this.send({ type: 'watch', cameraId: this.options.cameraId ?? DEFAULT_CAMERA_ID });
          return;
        case 'rover-status':
        case 'pong':
          return;
        case 'offer':
          this.acceptOffer(message.callId, message.sdp, message.ice);
          return;
        case 'candidate':
          this.addRemoteCandidate(message.callId, message.candidate);
          return;
        case 'hangup':
          if (this.call === null || this.call.id === message.callId) {
            this.hangups.push(message.reason);
            this.log(`[${this.name}] the rover ended the call: ${message.reason}`);
            this.closeCall();
          }
          return;
        case 'error':
          this.note(`server error ${message.code}: ${message.message}`);
          return;
      }
    } catch (error) {
      this.note(`signaling step failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  // ---------------------------------------------------------------- WebRTC

  private acceptOffer(callId: string, sdp: string, ice: IceConfig): void {
    // A new offer always wins (the rover restarted the call), as in the browser.
    this.closeCall();
    this.resetCounters();
    this.offers++;
    const dataChannelIce = toDataChannelIce(ice);
    const pc = new PeerConnectionCtor(`${this.name}-${callId.slice(0, 6)}`, {
      iceServers: dataChannelIce.iceServers,
      iceTransportPolicy: dataChannelIce.iceTransportPolicy,
      // The answer is made explicitly below, once the receiving track is set up.
      disableAutoNegotiation: true,
    });
    const call: Call = { id: callId, pc, track: null, state: 'new' };
    this.call = call;
    pc.onStateChange((state) => {
      call.state = state as CallState;
    });
    // The answer goes out before any candidate, as from a browser (setLocalDescription, then gathering):
    // candidates that overtook it would reach the rover before it has a remote description.
    let answered = false;
    const pendingCandidates: IceCandidate[] = [];
    const sendAnswer = (answer: string): void => {
      if (answered || this.call !== call) return;
      answered = true;
      this.send({ type: 'answer', callId, sdp: answer });
      for (const candidate of pendingCandidates.splice(0)) this.send({ type: 'candidate', callId, candidate });
    };
    pc.onLocalCandidate((line, mid) => {
      if (this.call !== call) return;
      const candidate = { candidate: line.startsWith('a=') ? line.slice(2) : line, mid };
      if (answered) this.send({ type: 'candidate', callId, candidate });
      else pendingCandidates.push(candidate);
    });
    pc.onLocalDescription((answer, type) => {
      if (type === 'answer') sendAnswer(answer);
    });
    // Should the offer carry a media section we did not prepare for, receive it all the same.
    pc.onTrack((track) => {
      if (this.call === call && call.track === null) this.attachTrack(call, track);
    });

    // Receive-only H.264 on the offer's video mid (a browser's answer to a send-only offer is recvonly).
    const mid = videoMid(sdp);
    if (mid !== null) {
      const video = new Video(mid, 'RecvOnly');
      video.addH264Codec(H264_PAYLOAD_TYPE);
      this.attachTrack(call, pc.addTrack(video));
    }
    pc.setRemoteDescription(sdp, 'offer');
    pc.setLocalDescription('answer');
    const local = pc.localDescription();
    if (local?.type === 'answer') sendAnswer(local.sdp);
  }

  private attachTrack(call: Call, track: Track): void {
    call.track = track;
    // Sends receiver reports (answering each sender report), as the browser's RTCP does.
    track.setMediaHandler(new RtcpReceivingSession());
    track.onMessage((message) => {
      if (this.call === call) this.onPacket(message);
    });
  }

  private addRemoteCandidate(callId: string, candidate: IceCandidate): void {
    const call = this.call;
    if (!call || call.id !== callId || candidate.candidate === '') return; // older call, or end-of-candidates
    try {
      call.pc.addRemoteCandidate(candidate.candidate, candidate.mid);
    } catch (error) {
      this.log(`[${this.name}] ignoring unusable ICE candidate: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private closeCall(): void {
    const call = this.call;
    this.call = null;
    if (!call) return;
    try {
      call.track?.close();
    } catch {
      // already closed
    }
    try {
      call.pc.close();
    } catch {
      // already closed
    }
    call.state = 'closed';
  }

  // ---------------------------------------------------------------- RTP accounting

  private resetCounters(): void {
    this.bytes = 0;
    this.packets = 0;
    this.keyframes = 0;
    this.lastKeyframeTimestamp = -1;
    this.baseSeq = -1;
    this.maxSeq = 0;
    this.cycles = 0;
  }

  private onPacket(packet: Buffer): void {
    // RTCP is consumed by the receiving session; anything left that is not RTP is not counted.
    if (packet.length < 12 || packet[0]! >> 6 !== 2) return;
    const payloadType = packet[1]! & 0x7f;
    if (payloadType >= 72 && payloadType <= 95) return; // RTCP (RFC 5761 demultiplexing)
    this.bytes += packet.length;
    this.packets++;

    const seq = packet.readUInt16BE(2);
    if (this.baseSeq < 0) {
      this.baseSeq = seq;
      this.maxSeq = seq;
    } else {
      const delta = (seq - this.maxSeq) & 0xffff;
      if (delta > 0 && delta < 0x8000) {
        if (seq < this.maxSeq) this.cycles += 0x10000;
        this.maxSeq = seq;
      }
    }

    if (payloadType !== H264_PAYLOAD_TYPE) return;
    const timestamp = packet.readUInt32BE(4);
    if (timestamp === this.lastKeyframeTimestamp) return;
    const payload = rtpPayload(packet);
    if (payload && carriesIdr(payload)) {
      this.lastKeyframeTimestamp = timestamp;
      this.keyframes++;
      if (this.firstKeyframeAt === null) {
        this.firstKeyframeAt = performance.now();
        for (const waiter of this.keyframeWaiters) waiter();
        this.keyframeWaiters.clear();
      }
    }
  }
}

/** The mid of the first video media section of an SDP, or null. */
export function videoMid(sdp: string): string | null {
  const sections = sdp.split(/\r?\n(?=m=)/);
  for (const section of sections) {
    if (!section.startsWith('m=video')) continue;
    const match = /^a=mid:(\S+)/m.exec(section);
    if (match) return match[1]!;
  }
  return null;
}

/** The payload of an RTP packet (after CSRCs, header extension and before padding), or null if malformed. */
export function rtpPayload(packet: Uint8Array): Uint8Array | null {
  if (packet.length < 12) return null;
  let offset = 12 + (packet[0]! & 0x0f) * 4;
  if (packet[0]! & 0x10) {
    if (packet.length < offset + 4) return null;
    offset += 4 + ((packet[offset + 2]! << 8) | packet[offset + 3]!) * 4;
  }
  let end = packet.length;
  if (packet[0]! & 0x20) end -= packet[packet.length - 1]!;
  return offset < end ? packet.subarray(offset, end) : null;
}

const NAL_IDR = 5;
const NAL_STAP_A = 24;
const NAL_FU_A = 28;

/** Does this H.264 RTP payload (RFC 6184) carry (the start of) an IDR slice? */
export function carriesIdr(payload: Uint8Array): boolean {
  const type = payload[0]! & 0x1f;
  if (type === NAL_IDR) return true;
  if (type === NAL_FU_A) return payload.length > 1 && (payload[1]! & 0x80) !== 0 && (payload[1]! & 0x1f) === NAL_IDR;
  if (type === NAL_STAP_A) {
    for (let at = 1; at + 2 < payload.length; ) {
      const size = (payload[at]! << 8) | payload[at + 1]!;
      if (size === 0) break;
      if ((payload[at + 2]! & 0x1f) === NAL_IDR) return true;
      at += 2 + size;
    }
  }
  return false;
}
