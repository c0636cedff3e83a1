/**
 * Property-based fuzzing of everything the sender takes from the network ("Hostile and broken input"):
 * signaling frames, the viewer's SDP answer and ICE candidates (through the real node-datachannel stack),
 * and RTCP/RTP bytes. The property throughout: nothing crashes the process, every hostile input is either
 * refused with a log line or answered (a hangup), nothing hostile is echoed into the log, and afterwards
 * the sender still works.
 *
 * Network safety: a remote candidate whose address is a host name makes libdatachannel resolve it (DNS),
 * and one with a routable address makes it send connectivity checks there. Every hostile candidate and SDP
 * goes through `loopbackOnly()` first, and every ICE server in a hostile message is 127.0.0.1 or ::1 (see
 * `networkSafe()`), so these tests only ever touch loopback.
 *
 * `npx vitest run --config test/sender/vitest.config.ts test/sender/fuzz.test.ts`
 * FUZZ_SEED=<n> reproduces a run (the seed is printed in every summary line and in every failure).
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import nodeDataChannel from 'node-datachannel';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  ErrorCode,
  NO_ICE_SERVERS,
  parseMessage,
  PING_FRAME,
  PONG_FRAME,
  RoverToServer,
  ServerToRover,
  type IceConfig,
  type ServerToRover as ServerToRoverMessage,
} from '../../protocol/index.js';
import { createLogger, errorSummary, type Logger } from '../../sender/src/log.js';
import { toDataChannelIce } from '../../sender/src/ice.js';
import { ViewerCall } from '../../sender/src/peer.js';
const NO_LEASE = { viewerId: null, ttlMs: 0 };
import { parseSource } from '../../sender/src/pipeline.js';
import { isRtcp, parseRtcp, type RtcpEvent } from '../../sender/src/rtcp.js';
import { clearMarkerOnParameterSets, isKeyframePacket, nalTypes, parseRtpHeader, rewriteSsrc, type RtpHeader } from '../../sender/src/rtp.js';
import { RoverSender } from '../../sender/src/sender.js';
import { deeplyNested, marked, MARKER, mutatedMessage, randomText, sizedMessage, type Json } from '../fuzz/hostile.js';
import { bytes, NAL, u16, u32 } from './helpers.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0);
const runs = (numRuns: number): { numRuns: number; seed: number } => ({ numRuns, seed: SEED });
const sample = <T>(arbitrary: fc.Arbitrary<T>, numRuns: number, salt: number): T[] => fc.sample(arbitrary, { numRuns, seed: (SEED + salt) | 0 });

// ------------------------------------------------------------------ the process must survive

const crashes: string[] = [];
const onUncaught = (error: unknown): void => void crashes.push(`uncaughtException: ${errorSummary(error)}`);
const onUnhandled = (reason: unknown): void => void crashes.push(`unhandledRejection: ${errorSummary(reason)}`);
beforeAll(() => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => {
  expect(crashes, 'the process saw uncaught exceptions or unhandled rejections').toEqual([]);
});
afterAll(() => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUnhandled);
});

function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger('debug', {}, (line) => lines.push(line)), lines };
}

/** Log lines may name ids and states, never SDP, candidates or anything else the peer sent. */
function expectNothingEchoed(lines: readonly string[]): void {
  for (const line of lines) {
    // The server's own error text is logged as it is (it is the server's, not a peer's).
    if (line.includes('server reported an error')) continue;
    expect(line, 'a log line echoes hostile input').not.toContain(MARKER);
    expect(line).not.toMatch(/ice-pwd|ice-ufrag|a=fingerprint|\btyp host\b|candidate:\d/);
  }
}

// ------------------------------------------------------------------ network safety

const LOOPBACK = new Set(['127.0.0.1', '::1']);
const INT = /^[0-9]{1,9}$/;

/**
 * A candidate line that libdatachannel could parse (7th token "typ") must name a loopback address, or
 * it is defused: "typ" becomes "tyq" everywhere, so neither libdatachannel nor libjuice takes it for a
 * candidate. The check is conservative (libdatachannel's istream tokens, any odd control character).
 */
function loopbackOnlyCandidate(line: string): string {
  let body = line;
  if (body.startsWith('a=')) body = body.slice(2);
  if (body.startsWith('candidate:')) body = body.slice('candidate:'.length);
  if (!body.includes('typ')) return line;
  const tokens = body.split(/[ \t\n\v\f\r]+/).filter(Boolean);
  const safe =
    !/[\u0000\n\v\f\r]/.test(body.replace(/\r$/, '')) &&
    tokens.filter((token) => token.startsWith('typ')).length === 1 &&
    tokens.length >= 8 &&
    INT.test(tokens[1]!) &&
    /^(udp|UDP|tcp|TCP)$/.test(tokens[2]!) &&
    INT.test(tokens[3]!) &&
    LOOPBACK.has(tokens[4]!) &&
    INT.test(tokens[5]!) &&
    tokens[6] === 'typ';
  return safe ? line : line.replaceAll('typ', 'tyq');
}

/** loopbackOnlyCandidate() on every line of an SDP (libdatachannel splits lines at \n). */
function loopbackOnly(sdp: string): string {
  return sdp.split('\n').map(loopbackOnlyCandidate).join('\n');
}

/** True when a frame is safe to hand to the sender: any ICE server it carries is an IP literal on loopback. */
function networkSafe(frame: string): boolean {
  const parsed = parseMessage(ServerToRover, frame);
  if (!parsed.ok) return true;
  const message = parsed.message;
  const configs: IceConfig[] =
    message.type === 'welcome' ? message.viewers.map((viewer) => viewer.ice) : message.type === 'viewer-join' ? [message.ice] : [];
  const urls = configs.flatMap((config) => config.iceServers.flatMap((server) => server.urls));
  return urls.every((url) => /^(stuns?|turns?):(127\.0\.0\.1|\[::1\])(:\d+)?(\?transport=(udp|tcp))?$/.test(url));
}

// ------------------------------------------------------------------ server → rover messages

const opaqueId = fc.oneof(fc.constantFrom('live', 'v1', 'a'.repeat(64)), fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/));
const cameraId = fc.oneof(fc.constantFrom('main', 'rear', 'no-such-camera'), fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,31}$/));
const shortText = (maxLength: number): fc.Arbitrary<string> => fc.string({ maxLength, unit: 'grapheme' });
// Only loopback IP literals (see networkSafe); [::1] with a port also covers libdatachannel's IPv6 URL bug.
const iceUrl = fc.constantFrom(
  'stun:127.0.0.1',
  'stun:127.0.0.1:3478',
  'stun:[::1]:3478',
  'stun:[::1]',
  'stuns:127.0.0.1:5349',
  'turn:127.0.0.1:3478?transport=udp',
  'turn:[::1]:3478?transport=tcp',
  'turns:127.0.0.1:5349?transport=tcp',
  'turn:127.0.0.1:65535',
  'stun:127.0.0.1:1',
);
const iceConfig: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(NO_ICE_SERVERS as unknown as Json) },
  {
    weight: 2,
    arbitrary: fc.record({
      iceServers: fc.array(
        fc.record(
          { urls: fc.array(iceUrl, { minLength: 1, maxLength: 3 }), username: fc.oneof(shortText(40), marked), credential: fc.oneof(shortText(40), marked) },
          { requiredKeys: ['urls'] },
        ),
        { maxLength: 3 },
      ),
      iceTransportPolicy: fc.constantFrom('all', 'relay'),
      expiresAt: fc.option(fc.integer(), { nil: null }),
    }),
  },
);
const candidateBody = fc.oneof(
  fc.constantFrom('', 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host', 'candidate:2 1 tcp 1518280447 ::1 9 typ host tcptype active'),
  shortText(100),
  marked,
);
const validServerToRover: fc.Arbitrary<Json> = fc.oneof(
  fc.record({
    type: fc.constant('welcome'),
    role: fc.constant('rover'),
    protocolVersion: fc.integer(),
    viewers: fc.array(fc.record({ viewerId: opaqueId, cameraId, ice: iceConfig }), { maxLength: 3 }),
  }),
  fc.record({ type: fc.constant('viewer-join'), viewerId: opaqueId, cameraId, ice: iceConfig }),
  fc.record({ type: fc.constant('viewer-leave'), viewerId: opaqueId }),
  fc.record({ type: fc.constant('answer'), viewerId: opaqueId, callId: opaqueId, sdp: fc.oneof(shortText(300).filter((s) => s.length > 0), marked) }),
  fc.record({
    type: fc.constant('candidate'),
    viewerId: opaqueId,
    callId: opaqueId,
    candidate: fc.record({ candidate: candidateBody, mid: fc.oneof(fc.constantFrom('video', '0', ''), shortText(32)) }),
  }),
  fc.record({ type: fc.constant('error'), code: fc.constantFrom(...ErrorCode.options), message: fc.oneof(shortText(80), marked) }),
  fc.constant({ type: 'pong' }),
);
const ALL_TYPES = [
  'welcome', 'viewer-join', 'viewer-leave', 'answer', 'candidate', 'error', 'pong', 'ping', // server → rover
  'announce', 'offer', 'hangup', // rover → server
  'watch', 'leave', 'rover-status', // viewer ↔ server
];

/** Hostile text frames from the server: random, mutated valid messages, deep nesting, sizes near the limit. */
const serverFrame: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: randomText },
  { weight: 8, arbitrary: mutatedMessage(validServerToRover, ALL_TYPES) },
  { weight: 2, arbitrary: validServerToRover.map((message) => JSON.stringify(message)) },
  { weight: 1, arbitrary: deeplyNested(ALL_TYPES) },
);
const hugeServerFrame = sizedMessage(validServerToRover as fc.Arbitrary<{ [key: string]: Json }>, [-1, 0, 1, 48 * 1024]);

describe('parseMessage(ServerToRover, …): what the sender does with every signaling frame', () => {
  it('never throws; valid messages round-trip, invalid ones get a code and a message that echoes nothing', () => {
    const stats = { valid: 0, invalid: 0 };
    fc.assert(
      fc.property(fc.oneof({ weight: 30, arbitrary: serverFrame }, { weight: 1, arbitrary: hugeServerFrame }), (raw) => {
        const result = parseMessage(ServerToRover, raw);
        if (result.ok) {
          stats.valid++;
          const text = JSON.stringify(result.message);
          const again = parseMessage(ServerToRover, text);
          expect(again.ok).toBe(true);
          expect(again.ok && JSON.stringify(again.message)).toBe(text);
        } else {
          stats.invalid++;
          expect(['bad-json', 'bad-message']).toContain(result.code);
          expect(result.error).not.toContain(MARKER);
          expect(result.error.length).toBeLessThan(600);
        }
      }),
      runs(12_000),
    );
    // Prototype pollution attempts ("__proto__" keys) changed nothing.
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.keys(Object.prototype)).toEqual([]);
    expect(stats.valid).toBeGreaterThan(500); // the generator reaches both sides
    expect(stats.invalid).toBeGreaterThan(5_000);
    console.log(`fuzz parseMessage: ${stats.valid + stats.invalid} frames (${stats.valid} valid, ${stats.invalid} refused), 0 crashes (seed ${SEED})`);
  });
});

// ------------------------------------------------------------------ RTCP

const hdr = (count: number, packetType: number, lengthWords: number): number[] => [0x80 | count, packetType, ...u16(lengthWords)];
const reportBlock = (ssrc: number): number[] => [...u32(ssrc), 64, 0xff, 0xff, 0xfe, ...u32(0x1ffff), ...u32(291), ...u32(0x12345678), ...u32(0x10000)];
const REAL_RTCP: readonly Uint8Array[] = [
  bytes(hdr(1, 201, 7), u32(0x11223344), reportBlock(0xaabbccdd)), // RR, one block
  bytes(hdr(0, 201, 1), u32(0x55)), // RR, no blocks
  bytes(hdr(2, 200, 18), u32(0xcafebabe), u32(1), u32(2), u32(90000), u32(1000), u32(1_200_000), reportBlock(1), reportBlock(2)), // SR
  bytes(hdr(1, 206, 2), u32(0x11223344), u32(0xaabbccdd)), // PLI
  bytes(hdr(4, 206, 6), u32(0x0badf00d), u32(0), u32(0x01020304), [7, 0, 0, 0], u32(0x05060708), [8, 0, 0, 0]), // FIR
  bytes(hdr(1, 205, 3), u32(0x11223344), u32(0xaabbccdd), u16(100), u16(0x8005)), // NACK
  bytes(hdr(1, 205, 4), u32(1), u32(2), u16(65534), u16(0x0007), u16(65535), u16(0xffff)), // NACK, two FCIs
  bytes(hdr(15, 206, 6), u32(1), u32(0), [0x52, 0x45, 0x4d, 0x42], [2, (10 << 2) | 0x03, 0xff, 0xff], u32(7), u32(8)), // REMB
  bytes(hdr(2, 203, 2), u32(0xa), u32(0xb)), // BYE
  bytes(hdr(1, 202, 3), u32(0x33), [1, 4, 0x61, 0x62, 0x63, 0x64, 0, 0]), // SDES
  bytes(hdr(15, 205, 2), u32(1), u32(2)), // transport-cc
  bytes(hdr(3, 204, 2), u32(1), [0x6e, 0x61, 0x6d, 0x65]), // APP
];

const byte = fc.integer({ min: 0, max: 255 });
const rtcpShaped: fc.Arbitrary<Uint8Array> = fc
  .record({
    count: fc.integer({ min: 0, max: 31 }),
    padding: fc.boolean(),
    packetType: fc.oneof(fc.integer({ min: 200, max: 206 }), fc.integer({ min: 192, max: 223 }), byte),
    body: fc.uint8Array({ maxLength: 160 }),
    lengthSkew: fc.integer({ min: -3, max: 3 }),
  })
  .map(({ count, padding, packetType, body, lengthSkew }) => {
    const words = Math.max(0, Math.ceil(body.length / 4) + lengthSkew) & 0xffff;
    return bytes([0x80 | (padding ? 0x20 : 0) | count, packetType, ...u16(words)], [...body]);
  });
function mutate(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc
    .record({
      seed: fc.constantFrom(...seeds),
      flips: fc.array(fc.tuple(fc.nat(), byte), { maxLength: 6 }),
      cut: fc.option(fc.nat()),
      tail: fc.uint8Array({ maxLength: 12 }),
    })
    .map(({ seed, flips, cut, tail }) => {
      const copy = Uint8Array.from(seed);
      for (const [at, value] of flips) if (copy.length > 0) copy[at % copy.length] = value;
      const kept = cut === null ? copy : copy.subarray(0, cut % (copy.length + 1));
      return bytes([...kept], [...tail]);
    });
}
const rtcpPacket = fc.oneof(fc.uint8Array({ maxLength: 120 }), rtcpShaped, mutate(REAL_RTCP), fc.constantFrom(...REAL_RTCP));
const rtcpDatagram: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: rtcpPacket },
  { weight: 2, arbitrary: fc.array(rtcpPacket, { minLength: 2, maxLength: 5 }).map((parts) => bytes(...parts.map((part) => [...part]))) },
);

/** The datagram inside a larger buffer between sentinel bytes, to catch reads and writes outside the view. */
function inSentinels(data: Uint8Array, before: number, after: number): { view: Uint8Array; backing: Uint8Array } {
  const backing = new Uint8Array(before + data.length + after).fill(0xee);
  backing.set(data, before);
  return { view: backing.subarray(before, before + data.length), backing };
}
function expectSentinels(backing: Uint8Array, before: number, length: number): void {
  for (let i = 0; i < backing.length; i++) {
    if (i >= before && i < before + length) continue;
    if (backing[i] !== 0xee) throw new Error(`wrote outside the packet at offset ${i - before}`);
  }
}

function expectSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  if (actual.length !== expected.length || actual.some((value, i) => value !== expected[i])) {
    throw new Error(`${what} changed bytes it should not: ${Buffer.from(expected).toString('hex')} → ${Buffer.from(actual).toString('hex')}`);
  }
}

const isUint32 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;

function checkRtcpEvents(events: RtcpEvent[], length: number): void {
  expect(events.length).toBeLessThanOrEqual(Math.floor(length / 4) + 1);
  let entries = 0;
  for (const event of events) {
    switch (event.type) {
      case 'sender-report':
      case 'receiver-report':
        expect(isUint32(event.ssrc)).toBe(true);
        expect(event.reports.length).toBeLessThanOrEqual(31);
        for (const block of event.reports) {
          expect(block.fractionLost).toBeGreaterThanOrEqual(0);
          expect(block.fractionLost).toBeLessThan(1);
          expect(block.cumulativeLost).toBeGreaterThanOrEqual(-(2 ** 23));
          expect(block.cumulativeLost).toBeLessThan(2 ** 23);
          for (const n of [block.ssrc, block.highestSequence, block.jitter, block.lastSenderReport, block.delaySinceLastSenderReport]) {
            expect(isUint32(n)).toBe(true);
          }
        }
        entries += event.reports.length * 24;
        break;
      case 'pli':
        expect(isUint32(event.senderSsrc) && isUint32(event.mediaSsrc)).toBe(true);
        break;
      case 'fir':
        expect(event.mediaSsrcs.every(isUint32)).toBe(true);
        entries += event.mediaSsrcs.length * 8;
        break;
      case 'nack':
        expect(isUint32(event.senderSsrc) && isUint32(event.mediaSsrc)).toBe(true);
        expect(event.lostSequenceNumbers.every((seq) => Number.isInteger(seq) && seq >= 0 && seq <= 0xffff)).toBe(true);
        // Each 4-byte FCI names at most 17 packets.
        entries += Math.ceil(event.lostSequenceNumbers.length / 17) * 4;
        break;
      case 'remb':
        expect(event.ssrcs.length).toBeLessThanOrEqual(255);
        expect(event.ssrcs.every(isUint32)).toBe(true);
        expect(Number.isFinite(event.bitrateBps) && event.bitrateBps >= 0).toBe(true);
        entries += event.ssrcs.length * 4;
        break;
      case 'bye':
        expect(event.ssrcs.length).toBeLessThanOrEqual(31);
        expect(event.ssrcs.every(isUint32)).toBe(true);
        entries += event.ssrcs.length * 4;
        break;
      case 'other':
        expect(event.packetType >= 0 && event.packetType <= 255 && event.format >= 0 && event.format <= 31).toBe(true);
        break;
      case 'malformed':
        expect(event.reason.length).toBeGreaterThan(0);
        break;
      default:
        throw new Error(`unknown RTCP event ${JSON.stringify(event)}`);
    }
  }
  // Whatever the events list, it was read from the datagram's own bytes: never more than it holds.
  expect(entries).toBeLessThanOrEqual(length);
}

describe('RTCP from the viewer: parseRtcp / isRtcp', () => {
  it('never throw, never read outside the datagram, never report impossible values', () => {
    let malformed = 0;
    let count = 0;
    fc.assert(
      fc.property(rtcpDatagram, fc.nat({ max: 16 }), fc.nat({ max: 16 }), (data, before, after) => {
        count++;
        const { view, backing } = inSentinels(data, before, after);
        const original = Uint8Array.from(view);
        const rtcp = isRtcp(view);
        expect(rtcp).toBe(view.length >= 8 && view[0]! >> 6 === 2 && view[1]! >= 192 && view[1]! <= 223);
        const events = parseRtcp(view);
        checkRtcpEvents(events, view.length);
        // Same events as from a standalone copy: nothing outside the view was read; nothing was written.
        expect(events).toEqual(parseRtcp(Uint8Array.from(data)));
        expectSameBytes(view, original, 'parseRtcp');
        expectSentinels(backing, before, view.length);
        if (events.some((event) => event.type === 'malformed')) malformed++;
      }),
      runs(12_000),
    );
    expect(malformed).toBeGreaterThan(1_000);
    console.log(`fuzz parseRtcp/isRtcp: ${count} datagrams (${malformed} malformed), 0 crashes (seed ${SEED})`);
  });
});

// ------------------------------------------------------------------ RTP

const { SPS, PPS, IDR, SLICE, STAP_A, FU_A } = NAL;
const rtpHeader12 = (marker: boolean): number[] => [0x80, (marker ? 0x80 : 0) | 96, ...u16(0x1234), ...u32(0x89abcdef), ...u32(0x01020304)];
const stapA = (...nals: number[][]): number[] => [STAP_A, ...nals.flatMap((nal) => [...u16(nal.length), ...nal])];
const REAL_RTP: readonly Uint8Array[] = [
  bytes(rtpHeader12(true), [IDR, 0x88, 0x84, 0, 0x33]),
  bytes(rtpHeader12(false), [SLICE, 1, 2, 3]),
  bytes(rtpHeader12(true), stapA([SPS, 0x42, 0xc0, 0x1f, 0xda], [PPS, 0xce, 0x3c, 0x80])), // SPS+PPS with the marker bit
  bytes(rtpHeader12(false), stapA([SPS, 0x42], [PPS, 0xce], [IDR, 0x88, 0x84])),
  bytes(rtpHeader12(false), [FU_A, 0x80 | 5, 0xaa, 0xbb]), // FU-A start of an IDR
  bytes(rtpHeader12(true), [FU_A, 0x40 | 5, 0xcc]),
  bytes([0x92, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], u32(0xaaaaaaaa), u32(0xbbbbbbbb), [0xbe, 0xde, 0, 1], u32(0x10203040), [SPS, 1]), // CSRCs + extension
];
const nalPayload: fc.Arbitrary<number[]> = fc.oneof(
  fc.array(byte, { maxLength: 40 }),
  fc.tuple(fc.constantFrom(SPS, PPS, IDR, SLICE, FU_A, STAP_A, 0x00, 0x1f, 0xff), fc.array(byte, { maxLength: 20 })).map(([h, rest]) => [h, ...rest]),
  fc
    .array(fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.array(byte, { minLength: 1, maxLength: 8 })), { maxLength: 4 })
    .map((nals) => [STAP_A, ...nals.flatMap(([size, nal]) => [...u16(size % 3 === 0 ? nal.length : size), ...nal])]), // STAP-A, sizes sometimes lying
);
const rtpShaped: fc.Arbitrary<Uint8Array> = fc
  .record({
    version: fc.oneof(fc.constant(2), fc.integer({ min: 0, max: 3 })),
    padding: fc.boolean(),
    extension: fc.boolean(),
    csrcCount: fc.integer({ min: 0, max: 15 }),
    marker: fc.boolean(),
    payloadType: fc.integer({ min: 0, max: 127 }),
    seq: fc.integer({ min: 0, max: 0xffff }),
    timestamp: fc.integer({ min: 0, max: 0xffffffff }),
    ssrc: fc.integer({ min: 0, max: 0xffffffff }),
    csrcs: fc.array(byte, { maxLength: 64 }),
    extensionWords: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 0xffff })),
    extensionData: fc.array(byte, { maxLength: 20 }),
    payload: nalPayload,
  })
  .map((p) =>
    bytes(
      [(p.version << 6) | (p.padding ? 0x20 : 0) | (p.extension ? 0x10 : 0) | p.csrcCount, (p.marker ? 0x80 : 0) | p.payloadType],
      u16(p.seq),
      u32(p.timestamp),
      u32(p.ssrc),
      p.csrcs.slice(0, p.csrcCount * 4),
      p.extension ? [0xbe, 0xde, ...u16(p.extensionWords), ...p.extensionData] : [],
      p.payload,
    ),
  );
const rtpPacket: fc.Arbitrary<Uint8Array> = fc.oneof(fc.uint8Array({ maxLength: 80 }), rtpShaped, mutate(REAL_RTP), fc.constantFrom(...REAL_RTP));

function checkRtp(data: Uint8Array, before: number, after: number, ssrc: number, foreignHeader: RtpHeader | null): void {
  const { view, backing } = inSentinels(data, before, after);
  const header = parseRtpHeader(view);
  if (header) {
    expect(header.version).toBe(2);
    expect(header.payloadOffset).toBeGreaterThanOrEqual(12);
    expect(header.payloadOffset).toBeLessThanOrEqual(view.length);
    expect(header.payloadType).toBeLessThan(128);
    expect(header.sequenceNumber).toBeLessThanOrEqual(0xffff);
    expect(isUint32(header.timestamp) && isUint32(header.ssrc)).toBe(true);
    const types = nalTypes(view, header);
    expect(types.length).toBeLessThanOrEqual(view.length - header.payloadOffset);
    expect(types.every((type) => Number.isInteger(type) && type >= 0 && type <= 31)).toBe(true);
    expect(typeof isKeyframePacket(view, header)).toBe('boolean');

    const beforeMarker = Uint8Array.from(view);
    const cleared = clearMarkerOnParameterSets(view, header);
    if (cleared) {
      expect(header.marker).toBe(true);
      beforeMarker[1] = beforeMarker[1]! & 0x7f;
    }
    expectSameBytes(view, beforeMarker, 'clearMarkerOnParameterSets');
  }
  // Also with a header that belongs to another packet (offsets past the end): still nothing outside the view.
  if (foreignHeader) {
    nalTypes(view, foreignHeader);
    isKeyframePacket(view, foreignHeader);
    clearMarkerOnParameterSets(view, foreignHeader);
  }
  const expected = Uint8Array.from(view);
  if (expected.length >= 12) new DataView(expected.buffer).setUint32(8, ssrc >>> 0);
  rewriteSsrc(view, ssrc);
  expectSameBytes(view, expected, 'rewriteSsrc');
  expect(view.length).toBe(data.length); // in place: the length never changes
  expectSentinels(backing, before, view.length);
}

describe('RTP from the encoder loopback: parseRtpHeader / nalTypes / isKeyframePacket / clearMarkerOnParameterSets / rewriteSsrc', () => {
  it('never throw, never write outside the packet, keep its length', () => {
    let parsed = 0;
    let count = 0;
    const foreign = fc.option(
      fc.record({
        version: fc.constant(2),
        marker: fc.boolean(),
        payloadType: fc.constant(96),
        sequenceNumber: fc.constant(1),
        timestamp: fc.constant(1),
        ssrc: fc.constant(1),
        payloadOffset: fc.integer({ min: 0, max: 4096 }),
      }),
    );
    fc.assert(
      fc.property(rtpPacket, fc.nat({ max: 16 }), fc.nat({ max: 16 }), fc.integer({ min: 0, max: 0xffffffff }), foreign, (data, before, after, ssrc, header) => {
        count++;
        if (parseRtpHeader(data)) parsed++;
        checkRtp(data, before, after, ssrc, header);
      }),
      runs(12_000),
    );
    expect(parsed).toBeGreaterThan(2_000);
    console.log(`fuzz rtp.ts: ${count} packets (${parsed} parsed as RTP), 0 crashes (seed ${SEED})`);
  });
});

// ------------------------------------------------------------------ SDP answers and candidates (node-datachannel)

const CHROME_ANSWER = [
  'v=0',
  'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE video',
  'a=extmap-allow-mixed',
  'a=msid-semantic: WMS',
  'm=video 9 UDP/TLS/RTP/SAVPF 96',
  'c=IN IP4 0.0.0.0',
  'a=rtcp:9 IN IP4 0.0.0.0',
  'a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0 network-id 1',
  'a=candidate:2 1 udp 2122262783 ::1 50001 typ host generation 0 network-id 2',
  'a=ice-ufrag:Wq3e',
  'a=ice-pwd:abcdefghijklmnopqrstuvwx',
  'a=ice-options:trickle',
  'a=fingerprint:sha-256 3A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9',
  'a=setup:active',
  'a=mid:video',
  'a=recvonly',
  'a=rtcp-mux',
  'a=rtcp-rsize',
  'a=rtpmap:96 H264/90000',
  'a=rtcp-fb:96 goog-remb',
  'a=rtcp-fb:96 transport-cc',
  'a=rtcp-fb:96 ccm fir',
  'a=rtcp-fb:96 nack',
  'a=rtcp-fb:96 nack pli',
  'a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
  '',
].join('\r\n');

const SDP_LINES = [
  'm=audio 9 UDP/TLS/RTP/SAVPF 111',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'm=video 0 UDP/TLS/RTP/SAVPF 96',
  'm=video 9 RTP/AVP 0',
  'm=video 9 UDP/TLS/RTP/SAVPF',
  'm=video 99999999999 UDP/TLS/RTP/SAVPF 96 97 98',
  'm=',
  'a=mid:',
  'a=mid:audio',
  `a=mid:${'x'.repeat(300)}`,
  'a=setup:actpass',
  'a=setup:passive',
  'a=setup:holdconn',
  'a=sendrecv',
  'a=inactive',
  'a=sendonly',
  'a=fingerprint:md5 00',
  'a=fingerprint:sha-256 ZZ',
  'a=fingerprint:sha-256',
  `a=fingerprint:sha-512 ${'AB:'.repeat(63)}AB`,
  'a=ice-ufrag:',
  'a=ice-pwd:',
  'a=ice-lite',
  'a=group:BUNDLE nope',
  'a=group:BUNDLE',
  'a=rtpmap:96 VP8/90000',
  'a=rtpmap:x',
  'a=rtpmap:4294967296 H264/90000',
  'a=ssrc:4294967296 cname:x',
  'a=ssrc:-1 cname',
  'a=extmap:999999999 urn:x',
  'a=extmap:1/sendonly',
  'a=rtcp-fb:* nack',
  'a=end-of-candidates',
  'c=IN IP6 ::1',
  'o=- 1 2 IN IP4 127.0.0.1',
  'o=',
  'v=1',
  't=',
  's=',
  `b=AS:${'9'.repeat(30)}`,
  'a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host',
  'a=candidate:2 1 tcp 1 ::1 9 typ host tcptype passive',
  'a=candidate:3 1 udp 99999999999 127.0.0.1 0 typ relay raddr 0.0.0.0 rport 0',
  'a=max-message-size:-1',
  'a=sctp-port:99999',
  'a=simulcast:recv 1;2',
  'a=rid:1 recv',
  '\u0000',
];

type SdpMutation =
  | { kind: 'drop' | 'duplicate'; at: number }
  | { kind: 'replace' | 'insert'; at: number; line: string }
  | { kind: 'value'; at: number; value: string }
  | { kind: 'truncate'; at: number }
  | { kind: 'swap'; at: number; other: number }
  | { kind: 'eol'; eol: string }
  | { kind: 'repeat-media'; times: number };

const sdpLine = fc.oneof(fc.constantFrom(...SDP_LINES), marked.map((text) => `a=${text}`), marked);
const sdpMutation: fc.Arbitrary<SdpMutation> = fc.oneof(
  fc.record({ kind: fc.constantFrom('drop' as const, 'duplicate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constantFrom('replace' as const, 'insert' as const), at: fc.nat(), line: sdpLine }),
  fc.record({ kind: fc.constant('value' as const), at: fc.nat(), value: fc.oneof(marked, fc.constantFrom('', ' ', ':', '\u0000', 'x'.repeat(2000))) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('swap' as const), at: fc.nat(), other: fc.nat() }),
  fc.record({ kind: fc.constant('eol' as const), eol: fc.constantFrom('\n', '\r', '\n\r', '\r\r\n', '') }),
  fc.record({ kind: fc.constant('repeat-media' as const), times: fc.integer({ min: 2, max: 200 }) }),
);

function mutateSdp(sdp: string, mutations: SdpMutation[]): string {
  let lines = sdp.split('\r\n');
  let eol = '\r\n';
  let cut: number | null = null;
  for (const m of mutations) {
    const at = 'at' in m ? m.at % Math.max(lines.length, 1) : 0;
    switch (m.kind) {
      case 'drop':
        lines.splice(at, 1);
        break;
      case 'duplicate':
        lines.splice(at, 0, lines[at] ?? '');
        break;
      case 'replace':
        lines[at] = m.line;
        break;
      case 'insert':
        lines.splice(at, 0, m.line);
        break;
      case 'value': {
        const line = lines[at] ?? '';
        const colon = line.indexOf(':');
        lines[at] = colon >= 0 ? line.slice(0, colon + 1) + m.value : `${line} ${m.value}`;
        break;
      }
      case 'truncate':
        cut = m.at;
        break;
      case 'swap': {
        const other = m.other % Math.max(lines.length, 1);
        [lines[at], lines[other]] = [lines[other] ?? '', lines[at] ?? ''];
        break;
      }
      case 'eol':
        eol = m.eol;
        break;
      case 'repeat-media': {
        const start = lines.findIndex((line) => line.startsWith('m='));
        // Many m-sections (bounded: repeats of repeats would grow without limit).
        if (start >= 0 && lines.length < 500) lines = [...lines, ...Array.from({ length: m.times - 1 }, () => lines.slice(start)).flat()];
        break;
      }
    }
  }
  const text = lines.join(eol);
  return cut === null ? text : text.slice(0, cut % (text.length + 1));
}

function answerArb(realAnswers: readonly string[]): fc.Arbitrary<string> {
  return fc
    .oneof(
      { weight: 12, arbitrary: fc.tuple(fc.constantFrom(...realAnswers), fc.array(sdpMutation, { minLength: 1, maxLength: 6 })).map(([sdp, m]) => mutateSdp(sdp, m)) },
      { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 2000 }).map((text) => text + MARKER) },
      { weight: 2, arbitrary: marked },
      { weight: 2, arbitrary: fc.array(sdpLine, { maxLength: 30 }).map((lines) => lines.join('\r\n')) },
      { weight: 1, arbitrary: fc.constantFrom(...realAnswers) },
      { weight: 1, arbitrary: fc.constantFrom(...realAnswers).map((sdp) => `${sdp}a=x-pad:${MARKER}${'x'.repeat(48 * 1024)}\r\n`) }, // huge
    )
    .map(loopbackOnly);
}

/** Per candidate field: values a browser sends, and broken ones (each field is broken one time in six). */
const CANDIDATE_TOKENS = {
  component: [['1', '2'], ['0', '-1', '65536', 'x', '1.5', '99999999999']],
  transport: [['udp', 'UDP', 'tcp'], ['sctp', '', MARKER]],
  priority: [['2122260223', '1518280447', '1'], ['0', '4294967296', '-5', 'p']],
  address: [['127.0.0.1', '::1'], ['[::1]', '0', '', MARKER, `127.0.0.1${MARKER}`]],
  port: [['50000', '9', '65535'], ['0', '65536', '-1', 'http', MARKER]],
  type: [['host', 'srflx', 'prflx', 'relay'], ['bogus', '']],
  extra: [['', ' generation 0', ' tcptype active', ' raddr 0.0.0.0 rport 0', ' network-id 1 network-cost 10'], [' tcptype bogus', ` ufrag ${MARKER}`]],
} satisfies Record<string, [valid: string[], broken: string[]]>;
const pick = ([valid, broken]: [string[], string[]]): fc.Arbitrary<string> =>
  fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...valid) }, { weight: 1, arbitrary: fc.constantFrom(...broken) });
const candidateArb: fc.Arbitrary<{ candidate: string; mid: string }> = fc
  .record({
    candidate: fc.oneof(
      {
        weight: 12,
        arbitrary: fc
          .tuple(
            pick([['candidate:', 'a=candidate:', ''], ['candidate:candidate:']]),
            fc.oneof({ weight: 4, arbitrary: fc.stringMatching(/^[0-9]{1,10}$/) }, { weight: 1, arbitrary: marked }),
            pick(CANDIDATE_TOKENS.component),
            pick(CANDIDATE_TOKENS.transport),
            pick(CANDIDATE_TOKENS.priority),
            pick(CANDIDATE_TOKENS.address),
            pick(CANDIDATE_TOKENS.port),
            pick([['typ'], ['TYP', '']]),
            pick(CANDIDATE_TOKENS.type),
            pick(CANDIDATE_TOKENS.extra),
            pick([[' '], ['  ', '\t']]),
          )
          .map(([prefix, foundation, component, transport, priority, address, port, typ, type, extra, gap]) =>
            `${prefix}${foundation}${gap}${component} ${transport} ${priority} ${address} ${port} ${typ} ${type}${extra}`,
          ),
      },
      { weight: 2, arbitrary: marked },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }).map((text) => text + MARKER) },
      { weight: 1, arbitrary: fc.constantFrom('', 'candidate:', 'a=end-of-candidates', `candidate:${'1 '.repeat(600)}`, 'x'.repeat(1024)) },
    ),
    mid: fc.oneof(fc.constantFrom('video', 'video', '0', '', 'audio', 'x'.repeat(32)), marked),
  })
  .map(({ candidate, mid }) => ({ candidate: loopbackOnlyCandidate(candidate), mid }));

/** A ViewerCall like sender.ts makes one, with its offer and everything it signalled. */
function newCall(log: Logger, iceServers = toDataChannelIce(NO_ICE_SERVERS).iceServers): {
  call: ViewerCall;
  offer: Promise<string>;
  closed: string[];
} {
  let resolveOffer!: (sdp: string) => void;
  const offer = new Promise<string>((resolve) => (resolveOffer = resolve));
  const closed: string[] = [];
  const call = new ViewerCall({
    viewerId: 'viewer-1',
    callId: 'call-1',
    cameraId: 'main',
    ssrc: 0x1234abcd,
    cname: 'rover-fuzz',
    iceServers,
    iceTransportPolicy: 'all',
    log,
    signal: (message) => {
      if (message.type === 'offer') resolveOffer(message.sdp);
    },
    onKeyframeRequest: () => {},
    onClosed: (_call, reason) => void closed.push(reason),
  });
  return { call, offer, closed };
}

/** The answer a real WebRTC stack (node-datachannel as the "browser") gives to the sender's offer. */
async function realAnswerTo(offer: string): Promise<string> {
  const browser = new nodeDataChannel.PeerConnection('fuzz-browser', { iceServers: [] });
  try {
    const answer = new Promise<string>((resolve) => browser.onLocalDescription((sdp, type) => type === 'answer' && resolve(sdp)));
    browser.onLocalCandidate(() => {});
    browser.setRemoteDescription(offer, 'offer');
    // Strip any candidates it put in: the fuzzers add loopback ones of their own.
    return loopbackOnly((await withTimeout(answer, 5_000, 'answer')).replace(/^a=candidate:.*\r?\n/gm, ''));
  } finally {
    browser.close();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms))),
  ]);
}

let realAnswers: string[] = [];
beforeAll(async () => {
  const { log } = capturingLogger();
  const { call, offer } = newCall(log);
  realAnswers = [CHROME_ANSWER, await realAnswerTo(await withTimeout(offer, 5_000, 'offer'))];
  call.close('done');
});

describe('the viewer’s answer and candidates, into a real ViewerCall (node-datachannel)', () => {
  it('hostile answers: never throw; refused ones are logged without their content; the call can always be closed', async () => {
    const { log, lines } = capturingLogger();
    let refused = 0;
    let accepted = 0;
    for (const sdp of sample(answerArb(realAnswers), 400, 1)) {
      const before = lines.length;
      const { call, closed } = newCall(log);
      const ok = call.setAnswer(sdp);
      const warned = lines.slice(before).filter((line) => line.includes("refused the viewer's answer"));
      if (ok) accepted++;
      else {
        refused++;
        expect(warned).toHaveLength(1);
        expect(warned[0]).toMatch(/ WARN  refused the viewer's answer error=/);
      }
      // A few hostile candidates on top, and hostile RTCP into the track handler.
      for (const candidate of sample(candidateArb, 2, refused * 7 + accepted)) expect(typeof call.addRemoteCandidate(candidate)).toBe('boolean');
      call.close('done');
      expect(closed).toEqual(['done']);
      expect(call.setAnswer(sdp)).toBe(false); // closed: refused quietly
    }
    expectNothingEchoed(lines);
    expect(accepted).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(100);
    console.log(`fuzz ViewerCall.setAnswer: 400 answers (${refused} refused, ${accepted} accepted), 0 crashes (seed ${SEED})`);
  });

  it('hostile candidates, before and after a real answer: never throw, logged without content, at most one warning per call', async () => {
    const { log, lines } = capturingLogger();
    let skipped = 0;
    let count = 0;
    // libdatachannel keeps a bounded number of remote candidates per call: spread them over several calls.
    for (const [round, answered] of [false, true, true, true, true, true].entries()) {
      const { call, offer } = newCall(log);
      if (answered) expect(call.setAnswer(await realAnswerTo(await withTimeout(offer, 5_000, 'offer')))).toBe(true);
      const before = lines.length;
      for (const candidate of sample(candidateArb, 100, 10 + round)) {
        count++;
        if (!call.addRemoteCandidate(candidate)) skipped++;
      }
      expect(lines.slice(before).filter((line) => line.includes(' WARN ')).length).toBeLessThanOrEqual(1);
      expect(call.state).not.toBe('closed'); // one bad candidate never ends a call
      call.close('done');
    }
    expectNothingEchoed(lines);
    expect(skipped).toBeGreaterThan(100);
    expect(count - skipped).toBeGreaterThan(25); // the accepting path is fuzzed too
    console.log(`fuzz ViewerCall.addRemoteCandidate: ${count} candidates (${skipped} skipped, ${count - skipped} accepted), 0 crashes (seed ${SEED})`);
  });

  it('hostile RTCP into the track handler: never throws, PLI/FIR still ask for keyframes', () => {
    const { log } = capturingLogger();
    const requests: string[] = [];
    const call = new ViewerCall({
      viewerId: 'viewer-1',
      callId: 'call-1',
      cameraId: 'main',
      ssrc: 1,
      cname: 'c',
      iceServers: [],
      iceTransportPolicy: 'all',
      log,
      signal: () => {},
      onKeyframeRequest: (reason) => void requests.push(reason),
      onClosed: () => {},
    });
    // The private handler libdatachannel calls with each RTCP datagram from the viewer.
    const onTrackMessage = (call as unknown as { onTrackMessage(message: Buffer): void }).onTrackMessage.bind(call);
    for (const datagram of sample(rtcpDatagram, 2_000, 4)) onTrackMessage(Buffer.from(datagram));
    onTrackMessage(Buffer.from(REAL_RTCP[3]!)); // PLI
    expect(requests.at(-1)).toBe('pli');
    call.close('done');
  });

  it('afterwards, a fresh call still makes an offer and takes a real answer', async () => {
    const { log, lines } = capturingLogger();
    const { call, offer } = newCall(log);
    const sdp = await withTimeout(offer, 5_000, 'offer');
    expect(sdp).toMatch(/^v=0\r?\n/);
    expect(call.setAnswer(await realAnswerTo(sdp))).toBe(true);
    expect(call.addRemoteCandidate({ candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host', mid: 'video' })).toBe(true);
    expect(lines.filter((line) => / (WARN|ERROR) /.test(line))).toEqual([]);
    call.close('done');
  });
});

// ------------------------------------------------------------------ regressions found by this fuzzing

describe('regressions found by fuzzing', () => {
  it('a garbage answer used to throw out of ViewerCall.setAnswer (and crash the rover from the ws listener)', () => {
    const { log, lines } = capturingLogger();
    const { call } = newCall(log);
    expect(call.setAnswer(`v=0\r\na=ice-pwd:${MARKER}\r\n`)).toBe(false);
    expect(lines.at(-1)).toMatch(/WARN  refused the viewer's answer error="Remote description has no ICE user fragment"$/);
    expectNothingEchoed(lines);
    call.close('done');
  });

  it('a malformed or early candidate used to throw out of ViewerCall.addRemoteCandidate', () => {
    const { log, lines } = capturingLogger();
    const { call } = newCall(log);
    expect(call.addRemoteCandidate({ candidate: `candidate:${MARKER}`, mid: 'video' })).toBe(false); // malformed
    expect(call.addRemoteCandidate({ candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', mid: 'video' })).toBe(false); // before the answer
    expect(lines.filter((line) => line.includes('skipped an unusable ICE candidate'))).toHaveLength(2);
    expect(lines.filter((line) => line.includes(' WARN '))).toHaveLength(1);
    expectNothingEchoed(lines);
    call.close('done');
  });

  it('an IPv6 STUN server from the Worker used to make every call throw (libdatachannel cannot parse stun:[v6]:port)', async () => {
    const { log } = capturingLogger();
    const ice = toDataChannelIce({ ...NO_ICE_SERVERS, iceServers: [{ urls: ['stun:[::1]:3478'] }] });
    const { call, offer } = newCall(log, ice.iceServers);
    expect(await withTimeout(offer, 5_000, 'offer')).toMatch(/^v=0/);
    call.close('done');
  });

  it('errorSummary keeps libdatachannel’s reason and drops the value it quotes', () => {
    expect(errorSummary(new Error('libdatachannel error while adding remote candidate: Invalid candidate address "evil.example"'))).toBe(
      'Invalid candidate address',
    );
    expect(errorSummary(new Error('libdatachannel error while adding remote description: Unknown SDP fingerprint format: sha-1 AB'))).toBe(
      'Unknown SDP fingerprint format',
    );
    expect(errorSummary(new TypeError('SyntaxError: IceServer config error: Invalid ICE server port in URL: db8::1]:3478'))).toBe(
      'Invalid ICE server port in URL',
    );
    expect(errorSummary({ toString: () => { throw new Error('hostile'); } })).toBe('unknown error');
    expect(errorSummary(`x`.repeat(500))).toHaveLength(100);
  });
});

// ------------------------------------------------------------------ a real RoverSender behind a fake signaling server

/**
 * A WebSocket server on 127.0.0.1 playing the Worker: it says what we tell it to and records everything
 * the sender sends (each one checked against the protocol's rover → server schema).
 */
class FakeSignalingServer {
  readonly received: RoverToServer[] = [];
  /** Anything the sender sent that is not in the protocol (asserted by the tests, not thrown in ws's callback). */
  readonly violations: string[] = [];
  connections = 0;
  private socket: WebSocket | null = null;
  private barriers = 0;
  private readonly changed = new Set<() => void>();

  private constructor(private readonly wss: WebSocketServer) {
    wss.on('connection', (socket) => {
      this.socket = socket;
      this.connections++;
      socket.on('message', (data, isBinary) => {
        const text = data.toString();
        if (text === PING_FRAME) return void socket.send(PONG_FRAME); // heartbeat, as the Durable Object answers it
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        const parsed = RoverToServer.safeParse(json);
        if (isBinary || !parsed.success) this.violations.push(text.slice(0, 200));
        else this.received.push(parsed.data);
        this.notify();
      });
      this.notify();
    });
  }

  static async start(): Promise<FakeSignalingServer> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 1024 * 1024 });
    await once(wss, 'listening');
    return new FakeSignalingServer(wss);
  }

  get url(): string {
    return `http://127.0.0.1:${(this.wss.address() as AddressInfo).port}`;
  }

  send(frame: string | Buffer | ServerToRoverMessage): void {
    if (!this.socket) throw new Error('no sender connected');
    this.socket.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  /** The first recorded message that matches (removed from the record), waiting for it if needed. */
  async take<T extends RoverToServer>(match: (message: RoverToServer) => message is T, what: string, timeoutMs?: number): Promise<T>;
  async take(match: (message: RoverToServer) => boolean, what: string, timeoutMs?: number): Promise<RoverToServer>;
  async take(match: (message: RoverToServer) => boolean, what: string, timeoutMs = 5_000): Promise<RoverToServer> {
    return withTimeout(
      new Promise<RoverToServer>((resolve) => {
        const check = (): void => {
          const index = this.received.findIndex(match);
          if (index < 0) return;
          this.changed.delete(check);
          resolve(this.received.splice(index, 1)[0]!);
        };
        this.changed.add(check);
        check();
      }),
      timeoutMs,
      what,
    );
  }

  async connection(count: number): Promise<void> {
    await withTimeout(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (this.connections < count) return;
          this.changed.delete(check);
          resolve();
        };
        this.changed.add(check);
        check();
      }),
      10_000,
      `connection #${count}`,
    );
  }

  /**
   * Once this resolves, the sender has handled everything sent before: a viewer-join for a camera it does
   * not have is refused with a hangup, synchronously, in order.
   */
  async barrier(): Promise<void> {
    const viewerId = `barrier-${++this.barriers}`;
    this.send({ type: 'viewer-join', viewerId, cameraId: 'no-such-camera', ice: NO_ICE_SERVERS });
    await this.take((m) => m.type === 'hangup' && m.viewerId === viewerId, viewerId);
  }

  hangupFor(viewerId: string, callId: string): RoverToServer | undefined {
    const index = this.received.findIndex((m) => m.type === 'hangup' && m.viewerId === viewerId && m.callId === callId);
    return index < 0 ? undefined : this.received.splice(index, 1)[0];
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private notify(): void {
    for (const check of [...this.changed]) check();
  }
}

describe('RoverSender: a call libdatachannel cannot set up is refused, not fatal', () => {
  it('regression: an --ice-server URL libdatachannel cannot parse (stun:[v6]:port) gets each viewer a hangup', async () => {
    const server = await FakeSignalingServer.start();
    const { log, lines } = capturingLogger();
    const sender = new RoverSender({
      server: server.url,
      roverId: 'fuzz-rover-2',
      token: 'fuzz.test.token',
      cameras: [{ id: 'main', label: 'Main', source: parseSource('test'), video: { width: 160, height: 120, fps: 10, bitrateKbps: 100 } }],
      iceServers: ['stun:[::1]:3478'], // passed through to libdatachannel as the operator wrote it
      log,
    });
    try {
      await sender.start();
      await server.connection(1);
      server.send({ type: 'welcome', role: 'rover', protocolVersion: 1, viewers: [{ viewerId: 'v1', cameraId: 'main', ice: NO_ICE_SERVERS }], lease: NO_LEASE });
      const hangup = await server.take((m) => m.type === 'hangup' && m.viewerId === 'v1', 'hangup for v1');
      expect(hangup).toMatchObject({ reason: 'the rover could not start the call' });
      expect(lines.some((line) => / ERROR cannot start call .*error="Invalid ICE server port in URL"/.test(line))).toBe(true);
      expect(sender.callCount).toBe(0);
      await server.barrier(); // and it still handles what comes next
    } finally {
      await sender.stop();
      await server.close();
    }
  }, 30_000);
});

describe('a real RoverSender (GStreamer test source) fed hostile signaling over a real WebSocket', () => {
  let server: FakeSignalingServer;
  let sender: RoverSender;
  const { log, lines } = capturingLogger();
  let liveCalls = 0;

  /** A new call for a new viewer (the previous one leaves): its viewer and call ids, once the offer came. */
  async function liveCall(): Promise<{ viewerId: string; callId: string }> {
    if (liveCalls > 0) server.send({ type: 'viewer-leave', viewerId: `live-${liveCalls}` });
    const viewerId = `live-${++liveCalls}`;
    server.send({ type: 'viewer-join', viewerId, cameraId: 'main', ice: NO_ICE_SERVERS });
    const offer = await server.take((m): m is Extract<RoverToServer, { type: 'offer' }> => m.type === 'offer' && m.viewerId === viewerId, `offer for ${viewerId}`);
    return { viewerId, callId: offer.callId };
  }

  beforeAll(async () => {
    server = await FakeSignalingServer.start();
    sender = new RoverSender({
      server: server.url,
      roverId: 'fuzz-rover',
      token: 'fuzz.test.token', // the fake server does not check it
      cameras: [{ id: 'main', label: 'Main', source: parseSource('test'), video: { width: 160, height: 120, fps: 10, bitrateKbps: 100 } }],
      iceServers: [],
      log,
    });
    await sender.start();
    await server.connection(1);
    server.send({ type: 'welcome', role: 'rover', protocolVersion: 1, viewers: [], lease: NO_LEASE });
    await server.take((m) => m.type === 'announce', 'announce');
  }, 30_000);

  afterAll(async () => {
    await sender?.stop();
    await server?.close();
  });

  // Regressions found by the fuzzing (each of these used to throw out of the ws message listener:
  // an uncaught exception that ended the rover process).
  it('regression: a garbage answer is refused with a hangup, the process lives on', async () => {
    const { viewerId, callId } = await liveCall();
    server.send({ type: 'answer', viewerId, callId, sdp: `garbage ${MARKER}` });
    await server.barrier();
    expect(server.hangupFor(viewerId, callId)).toEqual({ type: 'hangup', viewerId, callId, reason: 'the rover could not use the answer' });
    expect(sender.callCount).toBe(0);
    expectNothingEchoed(lines);
  });

  it('regression: a candidate before the answer, or a malformed one, is skipped; the call goes on', async () => {
    const { viewerId, callId } = await liveCall();
    server.send({ type: 'candidate', viewerId, callId, candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', mid: 'video' } });
    server.send({ type: 'candidate', viewerId, callId, candidate: { candidate: `candidate:${MARKER}`, mid: 'video' } });
    await server.barrier();
    expect(server.hangupFor(viewerId, callId)).toBeUndefined();
    expect(sender.callCount).toBe(1);
    expectNothingEchoed(lines);
  });

  it('regression: a viewer-join whose ICE settings name an IPv6 STUN server starts a call', async () => {
    const ice: IceConfig = { iceServers: [{ urls: ['stun:[::1]:3478'] }], iceTransportPolicy: 'all', expiresAt: null };
    server.send({ type: 'viewer-join', viewerId: 'ipv6-stun', cameraId: 'main', ice });
    await server.take((m) => m.type === 'offer' && m.viewerId === 'ipv6-stun', 'offer for the IPv6 STUN call');
    server.send({ type: 'viewer-leave', viewerId: 'ipv6-stun' });
    await server.barrier();
  });

  it('random and mutated frames (text and binary): each invalid one is ignored with a log line, nothing crashes', async () => {
    const frames = sample(
      fc.oneof(
        { weight: 40, arbitrary: serverFrame.filter(networkSafe) },
        { weight: 1, arbitrary: hugeServerFrame.filter(networkSafe) },
        { weight: 3, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) },
      ),
      2_500,
      5,
    );
    let invalid = 0;
    let binary = 0;
    for (let start = 0; start < frames.length; start += 100) {
      const before = lines.length;
      let expectedIgnored = 0;
      for (const frame of frames.slice(start, start + 100)) {
        if (Buffer.isBuffer(frame)) {
          binary++;
          expectedIgnored++;
        } else if (!parseMessage(ServerToRover, frame).ok) {
          invalid++;
          expectedIgnored++;
        }
        server.send(frame);
      }
      await server.barrier();
      const ignored = lines.slice(before).filter((line) => /ignoring invalid message from server|ignoring a binary frame from the server/.test(line));
      expect(ignored).toHaveLength(expectedIgnored);
    }
    expectNothingEchoed(lines);
    expect(lines.filter((line) => line.includes('failed to handle a message from the server'))).toEqual([]);
    // The hostile welcomes and joins started calls: a welcome without viewers ends them all.
    server.send({ type: 'welcome', role: 'rover', protocolVersion: 1, viewers: [], lease: NO_LEASE });
    await server.barrier();
    expect(sender.callCount).toBe(0);
    console.log(`fuzz RoverSender signaling: ${frames.length} frames (${invalid} invalid text, ${binary} binary, ${frames.length - invalid - binary} valid), 0 crashes (seed ${SEED})`);
  }, 60_000);

  it('hostile answers for a live call: the call is hung up with a reason when the answer is refused, never a crash', async () => {
    let refused = 0;
    const answers = sample(
      answerArb(realAnswers).filter((sdp) => sdp.length > 0 && sdp.length <= 48 * 1024),
      150,
      6,
    );
    for (const sdp of answers) {
      const { viewerId, callId } = await liveCall();
      const before = lines.length;
      server.send({ type: 'answer', viewerId, callId, sdp });
      await server.barrier();
      const hangup = server.hangupFor(viewerId, callId);
      const warned = lines.slice(before).some((line) => line.includes("refused the viewer's answer") && line.includes(`call=${callId}`));
      expect(Boolean(hangup)).toBe(warned);
      if (hangup) {
        refused++;
        expect(hangup).toEqual({ type: 'hangup', viewerId, callId, reason: 'the rover could not use the answer' });
      }
    }
    expectNothingEchoed(lines);
    expect(refused).toBeGreaterThan(30);
    console.log(`fuzz RoverSender answers: ${answers.length} answers (${refused} refused with a hangup), 0 crashes (seed ${SEED})`);
  }, 60_000);

  it('hostile candidates for a live, answered call: skipped with a log line, the call goes on', async () => {
    const { viewerId, callId } = await liveCall();
    server.send({ type: 'answer', viewerId, callId, sdp: CHROME_ANSWER });
    await server.barrier();
    expect(server.hangupFor(viewerId, callId)).toBeUndefined();
    const before = lines.length;
    const candidates = sample(candidateArb, 300, 7);
    for (const candidate of candidates) server.send({ type: 'candidate', viewerId, callId, candidate });
    await server.barrier();
    expect(server.hangupFor(viewerId, callId)).toBeUndefined();
    expect(sender.callCount).toBeGreaterThan(0);
    const skipped = lines.slice(before).filter((line) => line.includes('skipped an unusable ICE candidate'));
    expect(skipped.length).toBeGreaterThan(50);
    expect(skipped.filter((line) => line.includes(' WARN ')).length).toBeLessThanOrEqual(1);
    expectNothingEchoed(lines);
    console.log(`fuzz RoverSender candidates: ${candidates.length} candidates, 0 crashes (seed ${SEED})`);
  }, 30_000);

  it('a frame over the client’s 256 KiB limit drops the connection; the sender reconnects and works on', async () => {
    const connections = server.connections;
    server.send(JSON.stringify({ type: 'answer', viewerId: 'live', callId: 'x', sdp: 'x'.repeat(300 * 1024) }));
    await server.connection(connections + 1);
    server.send({ type: 'welcome', role: 'rover', protocolVersion: 1, viewers: [], lease: NO_LEASE });
    await server.take((m) => m.type === 'announce', 'announce after reconnecting', 10_000);
  }, 30_000);

  it('afterwards, the sender still starts calls and takes a real answer', async () => {
    const { viewerId, callId } = await liveCall();
    server.send({ type: 'answer', viewerId, callId, sdp: realAnswers[1]! });
    await server.barrier();
    expect(server.hangupFor(viewerId, callId)).toBeUndefined();
    expect(sender.callCount).toBeGreaterThanOrEqual(1);
    expect(lines.filter((line) => line.includes('failed to handle a message from the server'))).toEqual([]);
    expect(server.violations).toEqual([]);
    expectNothingEchoed(lines);
  }, 30_000);
});
