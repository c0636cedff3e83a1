import { describe, expect, it } from 'vitest';
import { isRtcp, parseRtcp, type RtcpEvent } from '../../sender/src/rtcp.js';
import { bytes, embedded, mulberry32, u16, u32 } from './helpers.js';

/** RTCP common header: V=2, P=0, count/format, packet type, length in 32-bit words minus one. */
const hdr = (count: number, packetType: number, lengthWords: number): number[] => [0x80 | count, packetType, ...u16(lengthWords)];

/** One 24-byte report block. `lost` is the raw 24-bit cumulative-lost field. */
function reportBlock(ssrc: number, fraction: number, lost: number, highestSeq: number, jitter: number, lsr: number, dlsr: number): number[] {
  return [...u32(ssrc), fraction, (lost >>> 16) & 0xff, (lost >>> 8) & 0xff, lost & 0xff, ...u32(highestSeq), ...u32(jitter), ...u32(lsr), ...u32(dlsr)];
}

// Receiver report, RC=1: 4 header + 4 SSRC + 24 block = 32 bytes → length 7.
const RR_ONE_BLOCK = bytes(hdr(1, 201, 7), u32(0x11223344), reportBlock(0xaabbccdd, 64, 0xfffffe, 0x0001ffff, 291, 0x12345678, 0x00010000));
// PLI: 12 bytes → length 2.
const PLI = bytes(hdr(1, 206, 2), u32(0x11223344), u32(0xaabbccdd));
// Generic NACK, one FCI: pid 100, blp 0x8005 (bits 0, 2, 15) → 100, 101, 103, 116. 16 bytes → length 3.
const NACK = bytes(hdr(1, 205, 3), u32(0x11223344), u32(0xaabbccdd), u16(100), u16(0x8005));

function only<T extends RtcpEvent['type']>(events: RtcpEvent[], type: T): Extract<RtcpEvent, { type: T }> {
  expect(events.map((e) => e.type)).toEqual([type]);
  return events[0] as Extract<RtcpEvent, { type: T }>;
}

describe('parseRtcp', () => {
  it('receiver report with one block: fraction lost, negative cumulative lost, jitter', () => {
    const rr = only(parseRtcp(RR_ONE_BLOCK), 'receiver-report');
    expect(rr.ssrc).toBe(0x11223344);
    expect(rr.reports).toEqual([
      {
        ssrc: 0xaabbccdd,
        fractionLost: 0.25,
        cumulativeLost: -2,
        highestSequence: 131071,
        jitter: 291,
        lastSenderReport: 0x12345678,
        delaySinceLastSenderReport: 65536,
      },
    ]);
  });

  it('receiver report: positive cumulative lost and extreme 24-bit values', () => {
    const data = bytes(
      hdr(3, 201, 19),
      u32(1),
      reportBlock(10, 0, 0x000100, 5, 0, 0, 0),
      reportBlock(11, 255, 0x7fffff, 5, 0xffffffff, 0, 0),
      reportBlock(12, 128, 0x800000, 5, 0, 0, 0),
    );
    const rr = only(parseRtcp(data), 'receiver-report');
    expect(rr.reports.map((r) => [r.ssrc, r.fractionLost, r.cumulativeLost, r.jitter])).toEqual([
      [10, 0, 256, 0],
      [11, 255 / 256, 8388607, 0xffffffff],
      [12, 0.5, -8388608, 0],
    ]);
  });

  it('receiver report with no blocks (RC=0)', () => {
    expect(parseRtcp(bytes(hdr(0, 201, 1), u32(0x55)))).toEqual([{ type: 'receiver-report', ssrc: 0x55, reports: [] }]);
  });

  it('sender report with two report blocks (after the 20-byte sender info)', () => {
    // 4 header + 4 SSRC + 20 sender info + 2×24 = 76 bytes → length 18.
    const data = bytes(
      hdr(2, 200, 18),
      u32(0xcafebabe),
      u32(0xe1234567), u32(0x89abcdef), u32(90000), u32(1000), u32(1_200_000), // NTP msw/lsw, RTP ts, packets, octets
      reportBlock(0x01010101, 26, 7, 70000, 12, 0xaaaa0000, 3),
      reportBlock(0x02020202, 0, 0, 1, 0, 0, 0),
    );
    const sr = only(parseRtcp(data), 'sender-report');
    expect(sr.ssrc).toBe(0xcafebabe);
    expect(sr.reports).toHaveLength(2);
    expect(sr.reports[0]).toEqual({
      ssrc: 0x01010101,
      fractionLost: 26 / 256,
      cumulativeLost: 7,
      highestSequence: 70000,
      jitter: 12,
      lastSenderReport: 0xaaaa0000,
      delaySinceLastSenderReport: 3,
    });
    expect(sr.reports[1]!.ssrc).toBe(0x02020202);
  });

  it('sender report shorter than its report count → malformed', () => {
    const data = bytes(hdr(1, 200, 6), u32(1), u32(0), u32(0), u32(0), u32(0), u32(0)); // RC=1, no block
    expect(parseRtcp(data)).toEqual([{ type: 'malformed', reason: 'short sender report' }]);
  });

  it('PLI', () => {
    expect(parseRtcp(PLI)).toEqual([{ type: 'pli', senderSsrc: 0x11223344, mediaSsrc: 0xaabbccdd }]);
  });

  it('FIR with two entries', () => {
    // FMT=4; 12 bytes + 2×8 FCI = 28 → length 6. Media SSRC field is 0 for FIR.
    const data = bytes(hdr(4, 206, 6), u32(0x0badf00d), u32(0), u32(0x01020304), [7, 0, 0, 0], u32(0x05060708), [8, 0, 0, 0]);
    expect(parseRtcp(data)).toEqual([{ type: 'fir', senderSsrc: 0x0badf00d, mediaSsrcs: [0x01020304, 0x05060708] }]);
  });

  it('generic NACK expands pid + blp bitmask', () => {
    const nack = only(parseRtcp(NACK), 'nack');
    expect(nack.senderSsrc).toBe(0x11223344);
    expect(nack.mediaSsrc).toBe(0xaabbccdd);
    expect(nack.lostSequenceNumbers).toEqual([100, 101, 103, 116]);
  });

  it('generic NACK wraps around at 65535 and reads several FCIs', () => {
    // FCI 1: pid 65534, blp 0b111 → 65534, 65535, 0, 1. FCI 2: pid 65535, blp 0xffff → 65535, 0..15.
    const data = bytes(hdr(1, 205, 4), u32(1), u32(2), u16(65534), u16(0x0007), u16(65535), u16(0xffff));
    const nack = only(parseRtcp(data), 'nack');
    expect(nack.lostSequenceNumbers).toEqual([65534, 65535, 0, 1, 65535, ...Array.from({ length: 16 }, (_, i) => i)]);
  });

  it('other transport feedback formats are reported as other', () => {
    const data = bytes(hdr(15, 205, 2), u32(1), u32(2)); // transport-cc
    expect(parseRtcp(data)).toEqual([{ type: 'other', packetType: 205, format: 15 }]);
  });

  it('REMB: mantissa × 2^exponent', () => {
    // FMT=15, "REMB", 1 SSRC, exponent 3, mantissa 187500 (0x2DC6C) → 1 500 000 bps. 24 bytes → length 5.
    const data = bytes(hdr(15, 206, 5), u32(0x11111111), u32(0), [0x52, 0x45, 0x4d, 0x42], [1, (3 << 2) | 0x02, 0xdc, 0x6c], u32(0x22222222));
    expect(parseRtcp(data)).toEqual([{ type: 'remb', senderSsrc: 0x11111111, bitrateBps: 1_500_000, ssrcs: [0x22222222] }]);
  });

  it('REMB with the maximum mantissa and two SSRCs', () => {
    const data = bytes(hdr(15, 206, 6), u32(1), u32(0), [0x52, 0x45, 0x4d, 0x42], [2, (10 << 2) | 0x03, 0xff, 0xff], u32(7), u32(8));
    const remb = only(parseRtcp(data), 'remb');
    expect(remb.bitrateBps).toBe(262143 * 1024);
    expect(remb.ssrcs).toEqual([7, 8]);
  });

  it('application feedback that is not REMB is other', () => {
    const data = bytes(hdr(15, 206, 4), u32(1), u32(0), [0x41, 0x42, 0x43, 0x44], u32(0));
    expect(parseRtcp(data)).toEqual([{ type: 'other', packetType: 206, format: 15 }]);
  });

  it('BYE with two SSRCs', () => {
    expect(parseRtcp(bytes(hdr(2, 203, 2), u32(0xa), u32(0xb)))).toEqual([{ type: 'bye', ssrcs: [0xa, 0xb] }]);
  });

  it('SDES is skipped, and what follows it is still parsed', () => {
    // SDES chunk: SSRC, CNAME (type 1, length 4, "abcd"), END, padding to 32 bits → 12 bytes; packet 16 → length 3.
    const sdes = bytes(hdr(1, 202, 3), u32(0x33), [1, 4, 0x61, 0x62, 0x63, 0x64, 0, 0]);
    expect(parseRtcp(sdes)).toEqual([]);
    expect(parseRtcp(bytes([...sdes], [...PLI]))).toEqual([{ type: 'pli', senderSsrc: 0x11223344, mediaSsrc: 0xaabbccdd }]);
  });

  it('compound RR + PLI + NACK in one datagram, as a view into a larger buffer', () => {
    const rrNoBlocks = bytes(hdr(0, 201, 1), u32(0x11223344));
    const datagram = embedded(bytes([...rrNoBlocks], [...PLI], [...NACK]), 3, 11);
    expect(datagram.byteOffset).toBe(3);
    expect(parseRtcp(datagram)).toEqual([
      { type: 'receiver-report', ssrc: 0x11223344, reports: [] },
      { type: 'pli', senderSsrc: 0x11223344, mediaSsrc: 0xaabbccdd },
      { type: 'nack', senderSsrc: 0x11223344, mediaSsrc: 0xaabbccdd, lostSequenceNumbers: [100, 101, 103, 116] },
    ]);
  });

  it('compound RR (with a block) + SDES + NACK', () => {
    const sdes = bytes(hdr(1, 202, 3), u32(0x33), [1, 4, 0x61, 0x62, 0x63, 0x64, 0, 0]);
    const events = parseRtcp(bytes([...RR_ONE_BLOCK], [...sdes], [...NACK]));
    expect(events.map((e) => e.type)).toEqual(['receiver-report', 'nack']);
    expect((events[1] as Extract<RtcpEvent, { type: 'nack' }>).lostSequenceNumbers).toEqual([100, 101, 103, 116]);
  });

  it('unknown packet types are other', () => {
    expect(parseRtcp(bytes(hdr(3, 204, 2), u32(1), [0x6e, 0x61, 0x6d, 0x65]))).toEqual([{ type: 'other', packetType: 204, format: 3 }]);
  });

  describe('malformed input gives a malformed event, never a throw', () => {
    it('empty datagram → no events', () => {
      expect(parseRtcp(new Uint8Array(0))).toEqual([]);
    });

    it('truncated header', () => {
      expect(parseRtcp(bytes([0x81, 201, 0]))).toEqual([{ type: 'malformed', reason: 'truncated header' }]);
    });

    it('length field larger than the datagram', () => {
      expect(parseRtcp(bytes(hdr(1, 206, 10), u32(1), u32(2)))).toEqual([{ type: 'malformed', reason: 'length exceeds datagram' }]);
    });

    it('bad version', () => {
      expect(parseRtcp(bytes([0x41, 206, 0, 2], u32(1), u32(2)))).toEqual([{ type: 'malformed', reason: 'bad version' }]);
    });

    it('a valid packet followed by garbage keeps the valid event and reports the rest', () => {
      expect(parseRtcp(bytes([...PLI], [0x81, 0xce]))).toEqual([
        { type: 'pli', senderSsrc: 0x11223344, mediaSsrc: 0xaabbccdd },
        { type: 'malformed', reason: 'truncated header' },
      ]);
      expect(parseRtcp(bytes([...PLI], [0x01, 0x02, 0x03, 0x04])).map((e) => e.type)).toEqual(['pli', 'malformed']);
    });

    it('feedback, RR and BYE packets shorter than their content', () => {
      expect(parseRtcp(bytes(hdr(1, 206, 1), u32(1)))).toEqual([{ type: 'malformed', reason: 'short payload feedback' }]);
      expect(parseRtcp(bytes(hdr(1, 205, 1), u32(1)))).toEqual([{ type: 'malformed', reason: 'short transport feedback' }]);
      expect(parseRtcp(bytes(hdr(2, 201, 1), u32(1)))).toEqual([{ type: 'malformed', reason: 'short receiver report' }]);
      expect(parseRtcp(bytes(hdr(3, 203, 1), u32(1)))).toEqual([{ type: 'malformed', reason: 'short bye' }]);
    });
  });

  it('property: never throws on ~5000 random and mutated datagrams', () => {
    const random = mulberry32(0x5eed);
    const int = (n: number): number => Math.floor(random() * n);
    const seeds: Uint8Array[] = [
      RR_ONE_BLOCK,
      PLI,
      NACK,
      bytes(hdr(4, 206, 6), u32(1), u32(0), u32(2), u32(0), u32(3), u32(0)),
      bytes(hdr(15, 206, 6), u32(1), u32(0), [0x52, 0x45, 0x4d, 0x42], [200, 0xff, 0xff, 0xff], u32(7), u32(8)),
      bytes([...RR_ONE_BLOCK], [...PLI], [...NACK]),
    ];
    const known = new Set(['sender-report', 'receiver-report', 'pli', 'fir', 'nack', 'remb', 'bye', 'other', 'malformed']);
    let malformed = 0;
    for (let i = 0; i < 5000; i++) {
      let data: Uint8Array;
      if (i % 2 === 0) {
        // Random bytes, biased to start with version 2 so the parser gets past the first check.
        data = Uint8Array.from({ length: int(80) }, () => int(256));
        if (data.length > 0 && random() < 0.8) data[0] = 0x80 | (data[0]! & 0x3f);
        if (data.length > 1 && random() < 0.8) data[1] = 200 + int(7);
      } else {
        // Mutate a valid packet: flip bytes, truncate, or extend.
        const seed = seeds[int(seeds.length)]!;
        const copy = Array.from(seed);
        for (let flips = 1 + int(4); flips > 0; flips--) copy[int(copy.length)] = int(256);
        const cut = random() < 0.5 ? int(copy.length + 1) : copy.length;
        data = Uint8Array.from([...copy.slice(0, cut), ...(random() < 0.3 ? Array.from({ length: int(12) }, () => int(256)) : [])]);
      }
      const view = random() < 0.5 ? embedded(data, 1 + int(8), int(8)) : data;
      let events: RtcpEvent[] = [];
      expect(() => {
        events = parseRtcp(view);
      }, `iteration ${i}: ${Buffer.from(data).toString('hex')}`).not.toThrow();
      for (const event of events) expect(known.has(event.type)).toBe(true);
      if (events.some((e) => e.type === 'malformed')) malformed++;
    }
    // The generator really exercises the error paths.
    expect(malformed).toBeGreaterThan(500);
  });
});

describe('isRtcp', () => {
  it('accepts RTCP packet types 200-206', () => {
    for (let pt = 200; pt <= 206; pt++) expect(isRtcp(bytes([0x81, pt, 0, 1], u32(1))), `pt ${pt}`).toBe(true);
    expect(isRtcp(PLI)).toBe(true);
  });

  it('rejects RTP with payload type 96, with and without the marker bit', () => {
    const rtp = (b1: number): Uint8Array => bytes([0x80, b1, 0, 1], u32(0), u32(0x1234), [0x65]);
    expect(isRtcp(rtp(96))).toBe(false);
    expect(isRtcp(rtp(0x80 | 96))).toBe(false);
  });

  it('rejects short datagrams and wrong versions', () => {
    expect(isRtcp(bytes([0x81, 201, 0, 1]))).toBe(false);
    expect(isRtcp(bytes([0x41, 201, 0, 1], u32(1)))).toBe(false);
  });
});
