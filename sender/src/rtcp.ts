/**
 * Pure parser for compound RTCP packets (RFC 3550, 4585, 5104, draft-alvestrand-rmcat-remb) as they
 * arrive raw from node-datachannel's track.onMessage. Never throws: malformed input yields `malformed`.
 */

export interface ReportBlock {
  ssrc: number;
  /** Fraction lost since the previous report, 0..1. */
  fractionLost: number;
  cumulativeLost: number;
  highestSequence: number;
  /** Interarrival jitter in RTP timestamp units. */
  jitter: number;
  lastSenderReport: number;
  delaySinceLastSenderReport: number;
}

export type RtcpEvent =
  | { type: 'sender-report'; ssrc: number; reports: ReportBlock[] }
  | { type: 'receiver-report'; ssrc: number; reports: ReportBlock[] }
  | { type: 'pli'; senderSsrc: number; mediaSsrc: number }
  | { type: 'fir'; senderSsrc: number; mediaSsrcs: number[] }
  | { type: 'nack'; senderSsrc: number; mediaSsrc: number; lostSequenceNumbers: number[] }
  | { type: 'remb'; senderSsrc: number; bitrateBps: number; ssrcs: number[] }
  | { type: 'bye'; ssrcs: number[] }
  | { type: 'other'; packetType: number; format: number }
  | { type: 'malformed'; reason: string };

const PT_SR = 200;
const PT_RR = 201;
const PT_SDES = 202;
const PT_BYE = 203;
const PT_RTPFB = 205;
const PT_PSFB = 206;
const FMT_NACK = 1;
const FMT_PLI = 1;
const FMT_FIR = 4;
const FMT_AFB = 15;

/** Is this datagram RTCP rather than RTP? (RFC 5761 demultiplexing by packet type 192–223.) */
export function isRtcp(data: Uint8Array): boolean {
  return data.length >= 8 && data[0]! >> 6 === 2 && data[1]! >= 192 && data[1]! <= 223;
}

export function parseRtcp(data: Uint8Array): RtcpEvent[] {
  const events: RtcpEvent[] = [];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let offset = 0;
  while (offset < data.length) {
    if (data.length - offset < 4) {
      events.push({ type: 'malformed', reason: 'truncated header' });
      break;
    }
    const b0 = data[offset]!;
    if (b0 >> 6 !== 2) {
      events.push({ type: 'malformed', reason: 'bad version' });
      break;
    }
    const count = b0 & 0x1f;
    const packetType = data[offset + 1]!;
    const length = (view.getUint16(offset + 2) + 1) * 4;
    if (offset + length > data.length) {
      events.push({ type: 'malformed', reason: 'length exceeds datagram' });
      break;
    }
    const body = new DataView(data.buffer, data.byteOffset + offset, length);
    const event = parsePacket(packetType, count, body);
    if (event) events.push(event);
    offset += length;
  }
  return events;
}

function parsePacket(packetType: number, count: number, p: DataView): RtcpEvent | null {
  const len = p.byteLength;
  switch (packetType) {
    case PT_SR: {
      if (len < 28 + count * 24) return { type: 'malformed', reason: 'short sender report' };
      return { type: 'sender-report', ssrc: p.getUint32(4), reports: reportBlocks(p, 28, count) };
    }
    case PT_RR: {
      if (len < 8 + count * 24) return { type: 'malformed', reason: 'short receiver report' };
      return { type: 'receiver-report', ssrc: p.getUint32(4), reports: reportBlocks(p, 8, count) };
    }
    case PT_BYE: {
      if (len < 4 + count * 4) return { type: 'malformed', reason: 'short bye' };
      const ssrcs: number[] = [];
      for (let i = 0; i < count; i++) ssrcs.push(p.getUint32(4 + i * 4));
      return { type: 'bye', ssrcs };
    }
    case PT_RTPFB: {
      if (len < 12) return { type: 'malformed', reason: 'short transport feedback' };
      if (count !== FMT_NACK) return { type: 'other', packetType, format: count };
      const lost: number[] = [];
      for (let at = 12; at + 4 <= len; at += 4) {
        const pid = p.getUint16(at);
        const blp = p.getUint16(at + 2);
        lost.push(pid);
        for (let bit = 0; bit < 16; bit++) if (blp & (1 << bit)) lost.push((pid + bit + 1) & 0xffff);
      }
      return { type: 'nack', senderSsrc: p.getUint32(4), mediaSsrc: p.getUint32(8), lostSequenceNumbers: lost };
    }
    case PT_PSFB: {
      if (len < 12) return { type: 'malformed', reason: 'short payload feedback' };
      const senderSsrc = p.getUint32(4);
      if (count === FMT_PLI) return { type: 'pli', senderSsrc, mediaSsrc: p.getUint32(8) };
      if (count === FMT_FIR) {
        const mediaSsrcs: number[] = [];
        for (let at = 12; at + 8 <= len; at += 8) mediaSsrcs.push(p.getUint32(at));
        return { type: 'fir', senderSsrc, mediaSsrcs };
      }
      if (count === FMT_AFB && len >= 20 && p.getUint32(12) === 0x52454d42 /* "REMB" */) {
        const ssrcCount = p.getUint8(16);
        const exponent = p.getUint8(17) >> 2;
        const mantissa = ((p.getUint8(17) & 0x03) << 16) | p.getUint16(18);
        const ssrcs: number[] = [];
        for (let i = 0; i < ssrcCount && 20 + i * 4 + 4 <= len; i++) ssrcs.push(p.getUint32(20 + i * 4));
        return { type: 'remb', senderSsrc, bitrateBps: mantissa * 2 ** exponent, ssrcs };
      }
      return { type: 'other', packetType, format: count };
    }
    case PT_SDES:
      return null; // carries only CNAMEs: nothing to act on
    default:
      return { type: 'other', packetType, format: count };
  }
}

function reportBlocks(p: DataView, start: number, count: number): ReportBlock[] {
  const blocks: ReportBlock[] = [];
  for (let i = 0; i < count; i++) {
    const at = start + i * 24;
    const lostWord = p.getUint32(at + 4);
    let cumulativeLost = lostWord & 0x00ffffff;
    if (cumulativeLost & 0x800000) cumulativeLost -= 0x1000000; // signed 24-bit
    blocks.push({
      ssrc: p.getUint32(at),
      fractionLost: (lostWord >>> 24) / 256,
      cumulativeLost,
      highestSequence: p.getUint32(at + 8),
      jitter: p.getUint32(at + 12),
      lastSenderReport: p.getUint32(at + 16),
      delaySinceLastSenderReport: p.getUint32(at + 20),
    });
  }
  return blocks;
}
