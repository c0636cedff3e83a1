/**
 * Pure RTP helpers for H.264 packets coming out of GStreamer's rtph264pay (RFC 3550 / RFC 6184).
 * They edit packets in place: one encoder's packets are fanned out to every viewer unchanged.
 */

const RTP_HEADER_MIN = 12;
const NAL_SPS = 7;
const NAL_PPS = 8;
const NAL_IDR = 5;
const NAL_STAP_A = 24;
const NAL_FU_A = 28;

export interface RtpHeader {
  version: number;
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  /** Offset of the payload (after CSRCs and header extension). */
  payloadOffset: number;
}

/** Parse the fixed header; null when the buffer is not a plausible RTP packet. */
export function parseRtpHeader(packet: Uint8Array): RtpHeader | null {
  if (packet.length < RTP_HEADER_MIN) return null;
  const b0 = packet[0]!;
  const version = b0 >> 6;
  if (version !== 2) return null;
  const csrcCount = b0 & 0x0f;
  const hasExtension = (b0 & 0x10) !== 0;
  let offset = RTP_HEADER_MIN + csrcCount * 4;
  if (hasExtension) {
    if (packet.length < offset + 4) return null;
    const extensionWords = (packet[offset + 2]! << 8) | packet[offset + 3]!;
    offset += 4 + extensionWords * 4;
  }
  if (offset > packet.length) return null;
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  return {
    version,
    marker: (packet[1]! & 0x80) !== 0,
    payloadType: packet[1]! & 0x7f,
    sequenceNumber: view.getUint16(2),
    timestamp: view.getUint32(4),
    ssrc: view.getUint32(8),
    payloadOffset: offset,
  };
}

/** NAL unit types carried by the packet's payload (expanding STAP-A; FU-A reports the fragment's type). */
export function nalTypes(packet: Uint8Array, header: RtpHeader): number[] {
  const payload = packet.subarray(header.payloadOffset);
  if (payload.length === 0) return [];
  const type = payload[0]! & 0x1f;
  if (type === NAL_FU_A) return payload.length > 1 ? [payload[1]! & 0x1f] : [];
  if (type !== NAL_STAP_A) return [type];
  const types: number[] = [];
  let offset = 1;
  while (offset + 2 < payload.length) {
    const size = (payload[offset]! << 8) | payload[offset + 1]!;
    if (size === 0 || offset + 2 + size > payload.length) break;
    types.push(payload[offset + 2]! & 0x1f);
    offset += 2 + size;
  }
  return types;
}

/** True when the packet carries (the start of) an IDR slice. */
export function isKeyframePacket(packet: Uint8Array, header: RtpHeader): boolean {
  return nalTypes(packet, header).includes(NAL_IDR);
}

/**
 * rtph264pay sets the marker bit on a packet that only holds SPS/PPS after a forced keyframe.
 * Chrome takes the marker as "frame complete", finds no picture, and asks for another keyframe: a PLI
 * loop. Clearing the bit on parameter-set-only packets fixes it. Returns true when the bit was cleared.
 */
export function clearMarkerOnParameterSets(packet: Uint8Array, header: RtpHeader): boolean {
  if (!header.marker) return false;
  const types = nalTypes(packet, header);
  if (types.length === 0 || !types.every((t) => t === NAL_SPS || t === NAL_PPS)) return false;
  packet[1] = packet[1]! & 0x7f;
  return true;
}

/** Overwrite the SSRC with the one announced in the SDP. A buffer too short to be RTP is left alone. */
export function rewriteSsrc(packet: Uint8Array, ssrc: number): void {
  if (packet.length < RTP_HEADER_MIN) return;
  new DataView(packet.buffer, packet.byteOffset, packet.byteLength).setUint32(8, ssrc >>> 0);
}
