import { describe, expect, it } from 'vitest';
import {
  clearMarkerOnParameterSets,
  isKeyframePacket,
  nalTypes,
  parseRtpHeader,
  rewriteSsrc,
  type RtpHeader,
} from '../../sender/src/rtp.js';
import { bytes, embedded, NAL, u16, u32 } from './helpers.js';

const { SPS, PPS, IDR, SLICE, STAP_A, FU_A } = NAL;

/** Fixed 12-byte RTP header: V=2, no padding/extension/CSRC, PT 96, seq 0x1234, ts 0x89abcdef, SSRC 0x01020304. */
function header12(marker: boolean): number[] {
  return [0x80, (marker ? 0x80 : 0) | 96, ...u16(0x1234), ...u32(0x89abcdef), ...u32(0x01020304)];
}

function parsed(packet: Uint8Array): RtpHeader {
  const header = parseRtpHeader(packet);
  if (!header) throw new Error('expected a valid RTP header');
  return header;
}

/** STAP-A payload: indicator then (16-bit size, NAL) pairs. */
function stapA(...nals: number[][]): number[] {
  return [STAP_A, ...nals.flatMap((nal) => [...u16(nal.length), ...nal])];
}

const spsNal = [SPS, 0x42, 0xc0, 0x1f, 0xda];
const ppsNal = [PPS, 0xce, 0x3c, 0x80];
const idrNal = [IDR, 0x88, 0x84, 0x00, 0x33];

describe('parseRtpHeader', () => {
  it('reads the fixed header fields', () => {
    const packet = bytes(header12(true), [SLICE, 1, 2, 3]);
    expect(parseRtpHeader(packet)).toEqual({
      version: 2,
      marker: true,
      payloadType: 96,
      sequenceNumber: 0x1234,
      timestamp: 0x89abcdef,
      ssrc: 0x01020304,
      payloadOffset: 12,
    });
  });

  it('reads marker=false and another payload type', () => {
    const packet = bytes([0x80, 0x6f, 0xff, 0xff, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff], [SLICE]);
    const header = parsed(packet);
    expect(header.marker).toBe(false);
    expect(header.payloadType).toBe(111);
    expect(header.sequenceNumber).toBe(65535);
    expect(header.timestamp).toBe(1);
    expect(header.ssrc).toBe(0xffffffff);
  });

  it('rejects versions other than 2', () => {
    for (const b0 of [0x00, 0x40, 0xc0]) {
      const packet = bytes([b0, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], [SLICE]);
      expect(parseRtpHeader(packet)).toBeNull();
    }
  });

  it('skips CSRCs (CC field)', () => {
    const packet = bytes([0x82, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], u32(0xaaaaaaaa), u32(0xbbbbbbbb), [IDR, 9]);
    const header = parsed(packet);
    expect(header.payloadOffset).toBe(20);
    expect(packet[header.payloadOffset]).toBe(IDR);
  });

  it('skips a header extension after the CSRCs', () => {
    // X=1, CC=1; extension profile 0xBEDE with 2 words of data.
    const packet = bytes(
      [0x91, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1],
      u32(0xcccccccc),
      [0xbe, 0xde, 0x00, 0x02],
      u32(0x11111111),
      u32(0x22222222),
      [SPS, 0x42],
    );
    const header = parsed(packet);
    expect(header.payloadOffset).toBe(12 + 4 + 4 + 8);
    expect(packet[header.payloadOffset]).toBe(SPS);
    expect(nalTypes(packet, header)).toEqual([7]);
  });

  it('returns null for packets too short for their header', () => {
    expect(parseRtpHeader(new Uint8Array(0))).toBeNull();
    expect(parseRtpHeader(bytes(header12(false)).subarray(0, 11))).toBeNull();
    // CC=2 but only one CSRC present.
    expect(parseRtpHeader(bytes([0x82, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], u32(1)))).toBeNull();
    // X=1 but the extension header is cut off.
    expect(parseRtpHeader(bytes([0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], [0xbe, 0xde]))).toBeNull();
    // X=1, extension claims 3 words, only 1 present.
    expect(parseRtpHeader(bytes([0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], [0xbe, 0xde, 0, 3], u32(0)))).toBeNull();
  });

  it('accepts a header-only packet (empty payload) with no NAL types', () => {
    const packet = bytes(header12(false));
    const header = parsed(packet);
    expect(header.payloadOffset).toBe(12);
    expect(nalTypes(packet, header)).toEqual([]);
  });

  it('reads a packet that is a view into a larger buffer', () => {
    const packet = embedded(bytes(header12(true), [IDR, 1]));
    expect(packet.byteOffset).not.toBe(0);
    const header = parsed(packet);
    expect(header.sequenceNumber).toBe(0x1234);
    expect(header.ssrc).toBe(0x01020304);
    expect(isKeyframePacket(packet, header)).toBe(true);
  });
});

describe('nalTypes / isKeyframePacket', () => {
  it('single NAL unit packets report their own type', () => {
    for (const [nal, type, keyframe] of [
      [SPS, 7, false],
      [PPS, 8, false],
      [IDR, 5, true],
      [SLICE, 1, false],
    ] as const) {
      const packet = bytes(header12(false), [nal, 0xaa, 0xbb]);
      const header = parsed(packet);
      expect(nalTypes(packet, header)).toEqual([type]);
      expect(isKeyframePacket(packet, header)).toBe(keyframe);
    }
  });

  it('STAP-A with SPS+PPS', () => {
    const packet = bytes(header12(false), stapA(spsNal, ppsNal));
    const header = parsed(packet);
    expect(nalTypes(packet, header)).toEqual([7, 8]);
    expect(isKeyframePacket(packet, header)).toBe(false);
  });

  it('STAP-A with SPS+PPS+IDR', () => {
    const packet = bytes(header12(true), stapA(spsNal, ppsNal, idrNal));
    const header = parsed(packet);
    expect(nalTypes(packet, header)).toEqual([7, 8, 5]);
    expect(isKeyframePacket(packet, header)).toBe(true);
  });

  it('STAP-A stops at a unit whose size overruns the payload', () => {
    const payload = stapA(spsNal, ppsNal);
    payload.push(...u16(100), IDR, 1, 2); // claims 100 bytes, has 3
    const packet = bytes(header12(false), payload);
    expect(nalTypes(packet, parsed(packet))).toEqual([7, 8]);
    expect(isKeyframePacket(packet, parsed(packet))).toBe(false);
  });

  it('FU-A start of an IDR slice reports type 5', () => {
    const packet = bytes(header12(false), [FU_A, 0x80 | 5, 0x88, 0x84, 0x21]);
    const header = parsed(packet);
    expect(nalTypes(packet, header)).toEqual([5]);
    expect(isKeyframePacket(packet, header)).toBe(true);
  });

  it('FU-A of a non-IDR slice is not a keyframe; a bare FU indicator has no type', () => {
    const slice = bytes(header12(false), [FU_A, 0x80 | 1, 0x9a]);
    expect(nalTypes(slice, parsed(slice))).toEqual([1]);
    expect(isKeyframePacket(slice, parsed(slice))).toBe(false);
    const bare = bytes(header12(false), [FU_A]);
    expect(nalTypes(bare, parsed(bare))).toEqual([]);
  });

  it('honours the payload offset (CSRC bytes that look like an IDR are not read as payload)', () => {
    const packet = bytes([0x81, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], [IDR, IDR, IDR, IDR], [SLICE, 0]);
    const header = parsed(packet);
    expect(nalTypes(packet, header)).toEqual([1]);
    expect(isKeyframePacket(packet, header)).toBe(false);
  });
});

describe('clearMarkerOnParameterSets', () => {
  it('clears the marker on a STAP-A that holds only SPS+PPS', () => {
    const packet = bytes(header12(true), stapA(spsNal, ppsNal));
    expect(clearMarkerOnParameterSets(packet, parsed(packet))).toBe(true);
    expect(packet[1]).toBe(96); // marker cleared, payload type kept
    expect(parsed(packet).marker).toBe(false);
  });

  it('clears the marker on a single SPS or PPS packet', () => {
    for (const nal of [spsNal, ppsNal]) {
      const packet = bytes(header12(true), nal);
      expect(clearMarkerOnParameterSets(packet, parsed(packet))).toBe(true);
      expect(packet[1]).toBe(96);
    }
  });

  it('returns false and leaves the packet alone when the marker is not set', () => {
    const packet = bytes(header12(false), stapA(spsNal, ppsNal));
    const before = Uint8Array.from(packet);
    expect(clearMarkerOnParameterSets(packet, parsed(packet))).toBe(false);
    expect(packet).toEqual(before);
  });

  it('keeps the marker on an IDR packet', () => {
    const packet = bytes(header12(true), idrNal);
    expect(clearMarkerOnParameterSets(packet, parsed(packet))).toBe(false);
    expect(packet[1]).toBe(0x80 | 96);
  });

  it('keeps the marker on a STAP-A that also contains a slice', () => {
    for (const slice of [idrNal, [SLICE, 0x9a, 0x01]]) {
      const packet = bytes(header12(true), stapA(spsNal, ppsNal, slice));
      expect(clearMarkerOnParameterSets(packet, parsed(packet))).toBe(false);
      expect(packet[1]).toBe(0x80 | 96);
    }
  });

  it('keeps the marker on the last FU-A fragment of an IDR and on an empty payload', () => {
    const fuEnd = bytes(header12(true), [FU_A, 0x40 | 5, 0x11]);
    expect(clearMarkerOnParameterSets(fuEnd, parsed(fuEnd))).toBe(false);
    expect(fuEnd[1]).toBe(0x80 | 96);
    const empty = bytes(header12(true));
    expect(clearMarkerOnParameterSets(empty, parsed(empty))).toBe(false);
    expect(empty[1]).toBe(0x80 | 96);
  });
});

describe('rewriteSsrc', () => {
  it('writes the SSRC big-endian at offset 8 of a Buffer that is a view into a larger ArrayBuffer', () => {
    const packet = embedded(bytes(header12(true), [IDR, 1, 2]), 13, 9);
    expect(packet.byteOffset).toBe(13);
    const backing = new Uint8Array(packet.buffer, 0, 13 + packet.length + 9);
    const before = Uint8Array.from(backing);

    rewriteSsrc(packet, 0xdeadbeef);

    expect([...packet.subarray(8, 12)]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    expect(parsed(packet).ssrc).toBe(0xdeadbeef);
    // Nothing else changed: not the rest of the packet, not the bytes around it.
    for (let i = 0; i < backing.length; i++) {
      if (i >= 13 + 8 && i < 13 + 12) continue;
      expect(backing[i], `byte ${i}`).toBe(before[i]);
    }
  });

  it('accepts a negative (signed 32-bit) SSRC and writes its unsigned form', () => {
    const packet = bytes(header12(false), [SLICE]);
    rewriteSsrc(packet, -2);
    expect([...packet.subarray(8, 12)]).toEqual([0xff, 0xff, 0xff, 0xfe]);
  });

  it('leaves a buffer shorter than an RTP header alone (it used to throw a RangeError; found by fuzzing)', () => {
    for (const length of [0, 1, 8, 11]) {
      const packet = embedded(bytes(Array.from({ length }, (_, i) => i)), 4, 4);
      const backing = new Uint8Array(packet.buffer, 0, 4 + length + 4);
      const before = Uint8Array.from(backing);
      expect(() => rewriteSsrc(packet, 0xdeadbeef)).not.toThrow();
      expect(backing).toEqual(before);
    }
  });
});
