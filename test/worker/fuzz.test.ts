/**
 * Property-based fuzzing of the Durable Object ("Hostile and broken input"): 10,000 random and mutated
 * frames from hostile rover and viewer sockets, while well-behaved peers in the same room keep signaling.
 * Every frame's fate is predicted from the protocol (`predict()`, a model of the room) and checked:
 *  - each bad frame gets exactly one `error` reply with the predicted code, bounded, that does not echo the
 *    frame (MARKER is in the payloads; the one allowed echo is the ≤ 32-character type of an unknown message);
 *  - each valid frame has exactly the effect the protocol describes, on exactly the addressed peer;
 *  - well-behaved traffic (watch → viewer-join, offer → viewer, answer/candidate → rover) arrives complete and
 *    in order during and after the fuzzing; no socket is closed; every server message passes the protocol's
 *    schemas (the helpers check each one); nothing arrives that is not accounted for.
 *
 * Batches: frames go out in batches closed by a barrier (an unknown type, answered with an error naming it);
 * the test then waits until every predicted reply and effect has arrived, and compares them as multisets.
 * Each socket is paced below the Durable Object's per-connection limits (MESSAGE_LIMITS), and hostile
 * viewers move to a fresh socket when their burst is spent.
 *
 * Ordering: in production (and plain workerd/Miniflare) a socket's messages are handled in order. Under
 * @cloudflare/vitest-pool-workers they are not always: its Durable Object wrapper awaits a module import
 * before each webSocketMessage, so concurrent messages of one socket can reach RoverRoom reordered. So this
 * test never relies on one socket's messages being handled in order: it counts instead, checks replies and
 * effects as multisets, sends the well-behaved traffic causally (each message after the previous one
 * arrived, so its order is still checked), and reads state that order could change (cameras, watching)
 * from what the room actually broadcast.
 *
 * `npx vitest run --config test/worker/vitest.config.ts test/worker/fuzz.test.ts --silent=false`
 * (--silent=false shows the summary line; the config hides the output of passing tests).
 */
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  MAX_MESSAGE_BYTES,
  PING_FRAME,
  ROVER_MESSAGE_TYPES,
  RoverToServer,
  VIEWER_MESSAGE_TYPES,
  ViewerToServer,
  type CameraInfo,
  type ErrorCode,
  type ServerToRover,
  type ServerToViewer,
} from '../../protocol/index.js';
import { MESSAGE_LIMITS } from '../../worker/src/room.js';
import { deeplyNested, MARKER, mutatedMessage, randomText, sizedMessage, utf8Length, type Json } from '../fuzz/hostile.js';
import {
  ANY_ICE,
  camera,
  closeAllPeers,
  connectRover,
  joinedViewer,
  onlineRover,
  QUIET_MS,
  sleep,
  uniqueRoverId,
  type Peer,
} from './helpers.js';

afterEach(closeAllPeers);

/** Set to a seed printed by an earlier run to replay it. */
const REPLAY_SEED: number | undefined = undefined;
const SEED = REPLAY_SEED ?? (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) >>> 0;
const totals = { fuzzed: 0, messages: 0, errors: 0, crashes: 0, byCode: {} as Record<string, number> };
afterAll(() => {
  // Shown with --silent=false (the Worker test config prints console output of failing tests only).
  console.log(
    `fuzz: ${totals.fuzzed} messages, ${totals.errors} errors answered, ${totals.crashes} crashes ` +
      `(+${totals.messages - totals.fuzzed} well-behaved messages; seed ${SEED}; ${JSON.stringify(totals.byCode)})`,
  );
});

// ------------------------------------------------------------------ pacing and barriers

type Role = 'rover' | 'viewer';
type Frame = string | Uint8Array;
type ServerMessage = ServerToRover | ServerToViewer;

/**
 * The Durable Object's per-connection token bucket, mirrored on the client with a margin (90 % of the
 * burst, 80 % of the rate): a paced socket is never cut off for flooding. The server counts a frame when
 * it handles it, after we sent it, so its bucket is always at least as full as ours.
 */
class Pacer {
  private readonly burst: number;
  private readonly perMs: number;
  private tokens: number;
  private at = Date.now();

  constructor(role: Role) {
    this.burst = Math.floor(MESSAGE_LIMITS[role].burst * 0.9);
    this.perMs = (MESSAGE_LIMITS[role].perSecond * 0.8) / 1000;
    this.tokens = this.burst;
  }

  /** Tokens left right now (for sizing batches). */
  get available(): number {
    this.refill();
    return Math.floor(this.tokens);
  }

  async take(count: number): Promise<void> {
    if (count > this.burst) throw new Error(`a batch of ${count} can never fit a burst of ${this.burst}`);
    for (;;) {
      this.refill();
      if (this.tokens >= count) {
        this.tokens -= count;
        return;
      }
      await sleep(Math.ceil((count - this.tokens) / this.perMs) + 5);
    }
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.at) * this.perMs);
    this.at = now;
  }
}

/**
 * A socket read continuously in the background: tests wait for conditions on what has arrived and take
 * messages out. (Waiting for counts rather than relying on order: see "Ordering" in the header.)
 */
class Collector<M extends ServerMessage> {
  /** Arrived and not yet taken, in arrival order. */
  readonly received: M[] = [];
  readonly pacer: Pacer;
  private failure: Error | null = null;
  private readonly changed = new Set<() => void>();
  private barriers = 0;

  constructor(
    readonly peer: Peer<M>,
    role: Role,
    /** The server-assigned viewer id (viewers only). */
    readonly id = '',
  ) {
    this.pacer = new Pacer(role);
    void this.pump();
  }

  get name(): string {
    return this.peer.name;
  }

  async send(frames: readonly (Frame | object)[]): Promise<void> {
    await this.pacer.take(frames.length);
    for (const frame of frames) this.peer.send(frame);
    totals.messages += frames.length;
  }

  /** Send a barrier: an unknown message type, answered with an error that names it. Returns its type. */
  async barrier(): Promise<string> {
    const type = `fuzz-barrier-${++this.barriers}`;
    await this.send([{ type }]);
    totals.messages--; // not a fuzz message
    return type;
  }

  /** Resolves once `condition` holds for what has arrived; fails if the socket breaks or closes first. */
  until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.failure) finish(this.failure);
        else if (condition()) finish();
        else if (this.peer.isClosed) finish(new Error(`${this.name} closed while waiting for ${what}`));
      };
      const timer = setTimeout(() => {
        const pending = this.received.map((m) => JSON.stringify(m).slice(0, 200)).slice(0, 10);
        finish(new Error(`${this.name}: still waiting for ${what} after ${timeoutMs} ms; unclaimed: ${JSON.stringify(pending)}`));
      }, timeoutMs);
      const finish = (error?: Error): void => {
        clearTimeout(timer);
        this.changed.delete(check);
        if (error) reject(error);
        else resolve();
      };
      this.changed.add(check);
      check();
    });
  }

  /** Wait until `count` messages match, then take every match (more than `count` shows as a mismatch). */
  async collect(match: (message: M) => boolean, count: number, what: string): Promise<M[]> {
    await this.until(() => this.received.filter(match).length >= count, `${count} × ${what}`);
    return this.take(match);
  }

  /** Wait for the reply to barrier `type` and take it. */
  async collectBarrier(type: string): Promise<void> {
    await this.collect((message) => isBarrierReply(message, type), 1, `the reply to ${type}`);
  }

  take(match: (message: M) => boolean): M[] {
    const taken: M[] = [];
    for (let i = 0; i < this.received.length; ) {
      if (match(this.received[i]!)) taken.push(...this.received.splice(i, 1));
      else i++;
    }
    return taken;
  }

  expectOpen(): void {
    expect(this.failure).toBeNull();
    if (this.peer.isClosed) totals.crashes++;
    expect(this.peer.isClosed, `${this.name} was closed`).toBe(false);
  }

  /** Nothing arrived that nobody accounted for (after a quiet moment). */
  async expectNothingElse(): Promise<void> {
    await sleep(QUIET_MS);
    expect(this.failure).toBeNull();
    expect(this.received.map((m) => JSON.stringify(m).slice(0, 300)), `${this.name}: unaccounted messages`).toEqual([]);
  }

  private async pump(): Promise<void> {
    for (;;) {
      try {
        this.received.push(await this.peer.next(60_000));
      } catch (error) {
        if (this.peer.isClosed) break;
        if (error instanceof Error && error.message.includes('no message within')) continue;
        this.failure = error instanceof Error ? error : new Error(String(error)); // e.g. a message outside the protocol
        break;
      } finally {
        for (const check of [...this.changed]) check();
      }
    }
    for (const check of [...this.changed]) check();
  }
}

const isBarrierReply = (message: ServerMessage, type: string): boolean =>
  message.type === 'error' && message.code === 'bad-message' && message.message === `unknown message type "${type}"`;
const isBarrier = (message: ServerMessage): boolean =>
  message.type === 'error' && message.code === 'bad-message' && /^unknown message type "fuzz-barrier-\d+"$/.test(message.message);

/**
 * Messages as comparable strings, sorted (a multiset): keys sorted, and `ice` (minted per call, checked by
 * shape here) replaced by a placeholder.
 */
function multiset(messages: readonly object[]): string[] {
  const canonical = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(canonical);
    if (value === null || typeof value !== 'object') return value;
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => {
          const field = (value as Record<string, unknown>)[key];
          if (key === 'ice' && field !== ICE) {
            expect(field).toEqual(ANY_ICE);
            return [key, ICE];
          }
          return [key, canonical(field)];
        }),
    );
  };
  return messages.map((message) => JSON.stringify(canonical(message))).sort();
}
/** Placeholder for the ICE settings in expected messages. */
const ICE = '<ice>';

// ------------------------------------------------------------------ the protocol as a model

/** What the Durable Object must answer a frame with, and the parsed message when the frame is valid and has an effect. */
interface Prediction {
  reply: ErrorCode | 'pong' | 'clock' | null;
  /** The one echo allowed in an error: the (≤ 32-character) type of an unknown message. */
  allowedEcho?: string;
  valid?: RoverToServer | ViewerToServer;
}

/** The parts of a room's state that decide what a valid message does. */
interface RoomState {
  roverOnline: boolean;
  /** The cameras the rover announced last (an empty list means "not announced": no camera check). */
  cameras: readonly CameraInfo[];
  /** Viewers connected now. */
  viewerIds: ReadonlySet<string>;
}

/** WebSocket text is UTF-8: lone surrogates arrive as U+FFFD. Predict from what the server will see. */
function wellFormed(text: string): string {
  return text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

/** The protocol (protocol/index.ts and the room's documented behaviour) as a function of one frame. */
function predict(frame: Frame, role: Role, room: RoomState): Prediction {
  if (typeof frame !== 'string') return { reply: 'binary-not-supported' };
  if (frame === PING_FRAME) return { reply: 'pong' };
  if (utf8Length(frame) > MAX_MESSAGE_BYTES) return { reply: 'too-large' };
  let json: unknown;
  try {
    json = JSON.parse(frame);
  } catch {
    return { reply: 'bad-json' };
  }
  const type = typeof json === 'object' && json !== null && 'type' in json ? (json as { type: unknown }).type : undefined;
  if (typeof type !== 'string') return { reply: 'bad-message' };
  const own = role === 'rover' ? ROVER_MESSAGE_TYPES : VIEWER_MESSAGE_TYPES;
  const other = role === 'rover' ? VIEWER_MESSAGE_TYPES : ROVER_MESSAGE_TYPES;
  const parsed = role === 'rover' ? RoverToServer.safeParse(json) : ViewerToServer.safeParse(json);
  if (!parsed.success) {
    if (!own.has(type) && other.has(type)) return { reply: 'wrong-role' };
    if (!own.has(type)) return { reply: 'bad-message', allowedEcho: `unknown message type "${type.slice(0, 32)}"` };
    return { reply: 'bad-message' };
  }
  const message = parsed.data;
  switch (message.type) {
    case 'clock': // answered to the asker only; nothing reaches anyone else
      return { reply: 'clock' };
    case 'watch':
      if (room.cameras.length > 0 && !room.cameras.some((c) => c.id === message.cameraId)) return { reply: 'unknown-camera' };
      return { reply: null, valid: message };
    case 'answer':
      return room.roverOnline ? { reply: null, valid: message } : { reply: 'rover-offline' };
    case 'candidate':
      if ('viewerId' in message) return room.viewerIds.has(message.viewerId) ? { reply: null, valid: message } : { reply: 'unknown-viewer' };
      return room.roverOnline ? { reply: null, valid: message } : { reply: 'rover-offline' };
    case 'offer':
    case 'hangup':
      return room.viewerIds.has(message.viewerId) ? { reply: null, valid: message } : { reply: 'unknown-viewer' };
    default: // leave, announce
      return { reply: null, valid: message };
  }
}

const describeFrame = (frame: Frame): string =>
  typeof frame === 'string' ? JSON.stringify(frame.length > 160 ? `${frame.slice(0, 160)}… (${frame.length} chars)` : frame) : `${frame.byteLength} binary bytes`;

/**
 * Wait for the replies to a batch (and its barrier) and check them: exactly one per bad frame, with the
 * predicted codes, and a pong per heartbeat frame. Error texts are bounded and never carry MARKER (except
 * the allowed echo of an unknown type).
 */
async function expectReplies<M extends ServerMessage>(hostile: Collector<M>, frames: readonly Frame[], predictions: readonly Prediction[], barrier: string): Promise<void> {
  const isReply = (message: M): boolean =>
    (message.type === 'error' && !isBarrierReply(message, barrier)) || message.type === 'pong' || message.type === 'clock';
  const expected = predictions.flatMap((prediction) => (prediction.reply === null ? [] : [prediction.reply]));
  await hostile.collectBarrier(barrier);
  const replies = await hostile.collect(isReply, expected.length, `replies to a batch from ${hostile.name}`);
  const got = replies.map((reply) => (reply.type === 'error' ? reply.code : reply.type));
  if (JSON.stringify([...got].sort()) !== JSON.stringify([...expected].sort())) {
    const lines = frames.map((frame, i) => `  ${String(predictions[i]!.reply).padEnd(22)} ${describeFrame(frame)}`);
    throw new Error(`${hostile.name}: replies ${JSON.stringify([...got].sort())}\n  expected ${JSON.stringify([...expected].sort())}\nframes:\n${lines.join('\n')}`);
  }
  const allowedEchoes = new Set(predictions.flatMap((prediction) => (prediction.allowedEcho ? [prediction.allowedEcho] : [])));
  totals.fuzzed += frames.length;
  for (const reply of replies) {
    if (reply.type !== 'error') continue;
    totals.errors++;
    totals.byCode[reply.code] = (totals.byCode[reply.code] ?? 0) + 1;
    if (reply.code === 'internal') totals.crashes++; // a handler threw (never predicted, so the check above failed too)
    expect(reply.message.length).toBeGreaterThan(0);
    expect(reply.message.length).toBeLessThan(1_000);
    if (reply.message.includes(MARKER)) expect(allowedEchoes, `${hostile.name}: an error echoes the input: ${reply.message}`).toContain(reply.message);
  }
}

// ------------------------------------------------------------------ generators

const callId = fc.oneof(fc.constantFrom('c1', 'call-1', 'A'.repeat(64)), fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/));
const cameraId = fc.oneof({ weight: 4, arbitrary: fc.constantFrom('main', 'rear') }, { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,31}$/) });
const text = (maxLength: number): fc.Arbitrary<string> => fc.oneof(fc.string({ maxLength }), fc.string({ maxLength: Math.ceil(maxLength / 2), unit: 'grapheme' }));
const iceCandidate = fc.record({
  candidate: fc.oneof(fc.constantFrom('', 'candidate:1 1 UDP 2122252543 192.0.2.1 5000 typ host'), text(120)),
  mid: fc.oneof(fc.constantFrom('0', 'video'), text(32)),
});
const sdp = fc.oneof(fc.constantFrom('v=0\r\n', 'v=0 offer'), text(300).filter((s) => s.length > 0));
const cameraInfo: fc.Arbitrary<CameraInfo> = fc.record({
  id: cameraId,
  label: text(64),
  width: fc.integer({ min: 1, max: 8192 }),
  height: fc.integer({ min: 1, max: 8192 }),
  fps: fc.oneof(fc.constantFrom(30, 240, 0.5), fc.double({ min: 0.01, max: 240, noNaN: true })),
});

const clockRequest = fc.record({ type: fc.constant('clock'), t: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 4e12, noNaN: true })) });
const validViewerMessage: fc.Arbitrary<Json> = fc.oneof(
  fc.record({ type: fc.constant('watch'), cameraId }),
  fc.constant({ type: 'leave' }),
  fc.record({ type: fc.constant('answer'), callId, sdp }),
  fc.record({ type: fc.constant('candidate'), callId, candidate: iceCandidate }),
  clockRequest,
);

/** Valid rover messages; `viewerIds` are real targets in the room, the rest go to unknown viewers. */
function validRoverMessage(viewerIds: readonly string[]): fc.Arbitrary<Json> {
  const target = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...viewerIds) }, { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/) });
  return fc.oneof(
    { weight: 1, arbitrary: fc.record({ type: fc.constant('announce'), cameras: fc.array(cameraInfo, { minLength: 1, maxLength: 16 }) }) },
    { weight: 2, arbitrary: fc.record({ type: fc.constant('offer'), viewerId: target, callId, cameraId, sdp }) },
    { weight: 2, arbitrary: fc.record({ type: fc.constant('candidate'), viewerId: target, callId, candidate: iceCandidate }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('hangup'), viewerId: target, callId, reason: text(200) }) },
    { weight: 1, arbitrary: clockRequest },
  ) as fc.Arbitrary<Json>;
}

const ALL_TYPES = [
  ...ROVER_MESSAGE_TYPES,
  ...VIEWER_MESSAGE_TYPES,
  'welcome', 'viewer-join', 'viewer-leave', 'rover-status', 'error', 'pong', 'ping', 'hello',
];

/** Hostile frames for a socket whose valid messages are `valid`: mostly mutations, some random, some valid. */
function hostileFrames(valid: fc.Arbitrary<Json>): fc.Arbitrary<Frame> {
  return fc.oneof(
    { weight: 4, arbitrary: randomText },
    { weight: 12, arbitrary: mutatedMessage(valid, ALL_TYPES) },
    { weight: 3, arbitrary: valid.map((message) => JSON.stringify(message)) },
    { weight: 1, arbitrary: deeplyNested(ALL_TYPES) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }) as fc.Arbitrary<Frame> },
    { weight: 1, arbitrary: fc.constantFrom(PING_FRAME, '{ "type": "ping" }', '{"type":"pong"}', '{"type":"ping","x":1}') },
  ).map((frame) => (typeof frame === 'string' ? wellFormed(frame) : frame));
}

/** A few frames at and over MAX_MESSAGE_BYTES, and one over the platform's 1 MiB (slow to make and send, so few). */
function hugeFrames(valid: fc.Arbitrary<Json>, count: number, salt: number): Frame[] {
  const sized = sample(sizedMessage(valid as fc.Arbitrary<{ [key: string]: Json }>, [-1, 0, 1, 2, 20_000]), count - 2, salt);
  return [...sized.map(wellFormed), new Uint8Array(MAX_MESSAGE_BYTES + 1), `{"type":"${MARKER}","pad":"${'x'.repeat(1_100_000)}"}`];
}

function sample<T>(arbitrary: fc.Arbitrary<T>, count: number, salt: number): T[] {
  return fc.sample(arbitrary, { numRuns: count, seed: (SEED + salt) | 0 });
}

/** Shuffle `extra` into `frames` at positions drawn from the seed. */
function interleave(frames: Frame[], extra: Frame[], salt: number): Frame[] {
  const result = [...frames];
  const positions = sample(fc.nat(), extra.length, salt);
  extra.forEach((frame, i) => result.splice(positions[i]! % (result.length + 1), 0, frame));
  return result;
}

// ------------------------------------------------------------------ tests

/** The effects a batch's valid messages must have at one socket, as messages. */
type Effects = object[];

describe('fuzzing the Durable Object with hostile input', () => {
  it('hostile viewers (a second viewer, on rotating sockets) next to a well-behaved rover and viewer', async () => {
    const roverId = uniqueRoverId('fuzz-viewers');
    const cameras = [camera('main'), camera('rear')];
    const rover = new Collector<ServerToRover>((await onlineRover(roverId, cameras)).rover, 'rover');
    const goodJoin = await joinedViewer(roverId, 'good viewer');
    const viewer = new Collector<ServerToViewer>(goodJoin.viewer, 'viewer', goodJoin.viewerId);
    const fromViewer = (id: string) => (message: ServerToRover): boolean => 'viewerId' in message && message.viewerId === id;

    await viewer.send([{ type: 'watch', cameraId: 'main' }]);
    expect(multiset(await rover.collect(fromViewer(viewer.id), 1, 'viewer-join'))).toEqual(
      multiset([{ type: 'viewer-join', viewerId: viewer.id, cameraId: 'main', ice: ICE }]),
    );

    let round = 0;
    /** One round of good traffic: an offer to the viewer, an answer or a candidate to the rover. */
    const sendGood = async (): Promise<{ offer: object; reply: object }> => {
      round++;
      const callId = `good-${round}`;
      await rover.send([{ type: 'offer', viewerId: viewer.id, callId, cameraId: 'main', sdp: `v=0 good ${round}` }]);
      const reply =
        round % 2 === 0
          ? { type: 'answer', callId, sdp: `v=0 answer ${round}` }
          : { type: 'candidate', callId, candidate: { candidate: `candidate:${round} 1 UDP 1 192.0.2.1 ${round} typ host`, mid: '0' } };
      await viewer.send([reply]);
      return { offer: { type: 'offer', callId, cameraId: 'main', sdp: `v=0 good ${round}`, ice: ICE }, reply: { ...reply, viewerId: viewer.id } };
    };
    /** The round arrived, complete: each side got exactly the one message (the previous round was complete, so in order). */
    const receiveGood = async (sent: { offer: object; reply: object }): Promise<void> => {
      expect(multiset(await viewer.collect((m) => !isBarrier(m), 1, 'the good offer'))).toEqual(multiset([sent.offer]));
      expect(multiset(await rover.collect(fromViewer(viewer.id), 1, 'the good reply'))).toEqual(multiset([sent.reply]));
    };

    const TOTAL = 5_000;
    const frames = interleave(sample(hostileFrames(validViewerMessage), TOTAL - 12, 1), hugeFrames(validViewerMessage, 12, 2), 3);
    let sockets = 0;
    let valid = 0;
    let next = 0;
    while (next < frames.length) {
      // A fresh hostile viewer; every other one is in a call (watching, with an offer) before it turns hostile.
      sockets++;
      const joined = await joinedViewer(roverId, `hostile viewer ${sockets}`);
      const hostile = new Collector<ServerToViewer>(joined.viewer, 'viewer', joined.viewerId);
      const room: RoomState = { roverOnline: true, cameras, viewerIds: new Set([viewer.id, hostile.id]) };
      let watching = false;
      if (sockets % 2 === 0) {
        await hostile.send([{ type: 'watch', cameraId: 'rear' }]);
        await rover.collect(fromViewer(hostile.id), 1, 'viewer-join of the hostile viewer');
        watching = true;
        await rover.send([{ type: 'offer', viewerId: hostile.id, callId: 'h-call', cameraId: 'rear', sdp: 'v=0 to the hostile viewer' }]);
        expect(await hostile.collect((m) => m.type === 'offer', 1, 'its offer')).toEqual([expect.objectContaining({ callId: 'h-call' })]);
      }
      for (let batch = 0; batch < 2 && next < frames.length; batch++) {
        const size = Math.min(hostile.pacer.available - 1, 48, frames.length - next);
        const chunk = frames.slice(next, (next += size));
        const predictions = chunk.map((frame) => predict(frame, 'viewer', room));
        await hostile.send(chunk);
        const barrier = await hostile.barrier();
        const good = await sendGood(); // in flight together with the hostile batch
        // Its valid messages reach the rover (and nobody else), as the protocol says.
        const effects: Effects = [];
        for (const { valid: message } of predictions) {
          if (!message) continue;
          valid++;
          const m = message as Exclude<ViewerToServer, { type: 'clock' }>;
          if (m.type === 'watch') effects.push({ type: 'viewer-join', viewerId: hostile.id, cameraId: m.cameraId, ice: ICE });
          else if (m.type === 'leave') effects.push({ type: 'viewer-leave', viewerId: hostile.id });
          else effects.push({ ...m, viewerId: hostile.id });
        }
        await expectReplies(hostile, chunk, predictions, barrier);
        const arrived = await rover.collect(fromViewer(hostile.id), effects.length, `the effects of ${hostile.name}'s batch`);
        expect(multiset(arrived), `at the rover, from ${hostile.name}`).toEqual(multiset(effects));
        // Whether it is watching now is what the room saw last (the harness may reorder one socket's messages).
        for (const message of arrived) {
          if (message.type === 'viewer-join') watching = true;
          else if (message.type === 'viewer-leave') watching = false;
        }
        await receiveGood(good);
        hostile.expectOpen();
        rover.expectOpen();
        viewer.expectOpen();
      }
      await hostile.expectNothingElse();
      hostile.peer.close();
      await hostile.peer.closed;
      // A viewer that leaves while watching is reported to the rover.
      const leave = await rover.collect(fromViewer(hostile.id), watching ? 1 : 0, 'viewer-leave');
      expect(leave).toEqual(watching ? [{ type: 'viewer-leave', viewerId: hostile.id }] : []);
    }
    // After the fuzzing, the well-behaved pair still signals, and nothing is left unaccounted for.
    await receiveGood(await sendGood());
    await rover.expectNothingElse();
    await viewer.expectNothingElse();
    console.log(`fuzz hostile viewers: ${frames.length} frames over ${sockets} sockets (${valid} valid), ${round} good rounds (seed ${SEED})`);
  }, 120_000);

  it('hostile viewers while the rover is offline: refused or remembered; nothing reaches anyone else', async () => {
    const roverId = uniqueRoverId('fuzz-offline');
    const standing = await joinedViewer(roverId, 'bystander');
    const bystander = new Collector<ServerToViewer>(standing.viewer, 'viewer', standing.viewerId);
    const frames = interleave(sample(hostileFrames(validViewerMessage), 1_200 - 4, 4), hugeFrames(validViewerMessage, 4, 5), 6);
    const room: RoomState = { roverOnline: false, cameras: [], viewerIds: new Set() };
    let next = 0;
    let sockets = 0;
    while (next < frames.length) {
      sockets++;
      const joined = await joinedViewer(roverId, `hostile viewer ${sockets}`);
      const hostile = new Collector<ServerToViewer>(joined.viewer, 'viewer', joined.viewerId);
      for (let batch = 0; batch < 2 && next < frames.length; batch++) {
        const size = Math.min(hostile.pacer.available - 1, 48, frames.length - next);
        const chunk = frames.slice(next, (next += size));
        const predictions = chunk.map((frame) => predict(frame, 'viewer', room));
        for (const { valid: message } of predictions) {
          // While the rover is away only watch (remembered) and leave pass; answers and candidates are refused.
          if (message) expect(['watch', 'leave']).toContain(message.type);
        }
        await hostile.send(chunk);
        await expectReplies(hostile, chunk, predictions, await hostile.barrier());
        hostile.expectOpen();
      }
      await hostile.expectNothingElse();
      hostile.peer.close();
      await hostile.peer.closed;
    }
    await bystander.expectNothingElse(); // nothing of it reached the bystander
    // The rover comes: no hostile viewer is remembered (all left); the bystander's watch is.
    await bystander.send([{ type: 'watch', cameraId: 'main' }]);
    await sleep(QUIET_MS);
    const { rover, welcome } = await onlineRover(roverId, []);
    expect(welcome.viewers).toEqual([{ viewerId: bystander.id, cameraId: 'main', ice: ANY_ICE }]);
    await bystander.send([{ type: 'answer', callId: 'c1', sdp: 'v=0 still fine' }]);
    expect(await rover.next('answer')).toEqual({ type: 'answer', viewerId: bystander.id, callId: 'c1', sdp: 'v=0 still fine' });
    console.log(`fuzz hostile viewers, rover offline: ${frames.length} frames over ${sockets} sockets (seed ${SEED})`);
  }, 60_000);

  it('a hostile rover: its well-behaved viewers get exactly its valid messages, never garbage, and keep signaling', async () => {
    const roverId = uniqueRoverId('fuzz-rover');
    // The viewers come first; the watching one is remembered until the rover connects.
    const goodJoin = await joinedViewer(roverId, 'good viewer');
    const viewer = new Collector<ServerToViewer>(goodJoin.viewer, 'viewer', goodJoin.viewerId);
    const standing = await joinedViewer(roverId, 'bystander');
    const bystander = new Collector<ServerToViewer>(standing.viewer, 'viewer', standing.viewerId);
    await viewer.send([{ type: 'watch', cameraId: 'main' }]);
    await sleep(QUIET_MS);
    const roverPeer = await connectRover(roverId, 'hostile rover');
    const welcome = await roverPeer.next('welcome');
    expect(welcome.viewers).toEqual([{ viewerId: viewer.id, cameraId: 'main', ice: ANY_ICE }]);
    const hostile = new Collector<ServerToRover>(roverPeer, 'rover');
    for (const peer of [viewer, bystander]) {
      expect(await peer.collect((m) => m.type === 'rover-status', 1, 'rover-status')).toEqual([
        { type: 'rover-status', rover: { online: true, cameras: [] } },
      ]);
    }

    let cameras: readonly CameraInfo[] = [];
    let round = 0;
    const fromGoodViewer = (message: ServerToRover): boolean => 'viewerId' in message && message.viewerId === viewer.id;
    /** The good viewer answers or sends a candidate while the hostile frames are in flight. */
    const sendGood = async (): Promise<object> => {
      round++;
      const message =
        round % 2 === 0
          ? { type: 'answer', callId: `good-${round}`, sdp: `v=0 answer ${round}` }
          : { type: 'candidate', callId: `good-${round}`, candidate: { candidate: '', mid: '0' } };
      await viewer.send([message]);
      return { ...message, viewerId: viewer.id };
    };

    const TOTAL = 3_800;
    const ids = [viewer.id, bystander.id];
    const validMessage = validRoverMessage(ids);
    const frames = interleave(sample(hostileFrames(validMessage), TOTAL - 10, 7), hugeFrames(validMessage, 10, 8), 9);
    const room: RoomState = { roverOnline: true, cameras: [], viewerIds: new Set(ids) };
    let valid = 0;
    for (let next = 0, batch = 0; next < frames.length; batch++) {
      const chunk = frames.slice(next, (next += Math.min(50, frames.length - next)));
      const predictions = chunk.map((frame) => predict(frame, 'rover', room));
      await hostile.send(chunk);
      const barrier = await hostile.barrier();
      const good = await sendGood();
      const atViewer: Effects = [];
      const atBystander: Effects = [];
      for (const { valid: message } of predictions) {
        if (!message) continue;
        valid++;
        const m = message as Exclude<RoverToServer, { type: 'clock' }>;
        if (m.type === 'announce') {
          for (const effects of [atViewer, atBystander]) effects.push({ type: 'rover-status', rover: { online: true, cameras: m.cameras } });
          continue;
        }
        const to = m.viewerId === viewer.id ? atViewer : atBystander;
        if (m.type === 'offer') to.push({ type: 'offer', callId: m.callId, cameraId: m.cameraId, sdp: m.sdp, ice: ICE });
        else if (m.type === 'candidate') to.push({ type: 'candidate', callId: m.callId, candidate: m.candidate });
        else to.push({ type: 'hangup', callId: m.callId, reason: m.reason });
      }
      await expectReplies(hostile, chunk, predictions, barrier);
      const notBarrier = (message: ServerToViewer): boolean => !isBarrier(message);
      const arrived = await viewer.collect(notBarrier, atViewer.length, 'the hostile rover\'s messages to the good viewer');
      expect(multiset(arrived), 'at the good viewer').toEqual(multiset(atViewer));
      expect(multiset(await bystander.collect(notBarrier, atBystander.length, 'its messages to the bystander')), 'at the bystander').toEqual(
        multiset(atBystander),
      );
      // The cameras are what the room announced last (the harness may reorder one socket's messages).
      const statuses = arrived.filter((message) => message.type === 'rover-status');
      if (statuses.length > 0) cameras = (statuses.at(-1) as Extract<ServerToViewer, { type: 'rover-status' }>).rover.cameras;
      expect(multiset(await hostile.collect(fromGoodViewer, 1, 'the good viewer\'s message'))).toEqual(multiset([good]));
      if (batch % 8 === 7) {
        // The good viewer re-watches a camera the room has now: the (hostile) rover hears of it.
        const cameraId = cameras[0]?.id ?? 'main';
        await viewer.send([{ type: 'watch', cameraId }]);
        expect(multiset(await hostile.collect(fromGoodViewer, 1, 'viewer-join'))).toEqual(
          multiset([{ type: 'viewer-join', viewerId: viewer.id, cameraId, ice: ICE }]),
        );
      }
      for (const peer of [viewer, bystander, hostile]) peer.expectOpen();
    }
    // After the fuzzing the rover still reaches the viewer, and the viewer the rover.
    await hostile.send([{ type: 'offer', viewerId: viewer.id, callId: 'after', cameraId: 'main', sdp: 'v=0 after' }]);
    expect(multiset(await viewer.collect((m) => m.type === 'offer', 1, 'the last offer'))).toEqual(
      multiset([{ type: 'offer', callId: 'after', cameraId: 'main', sdp: 'v=0 after', ice: ICE }]),
    );
    const last = await sendGood();
    expect(multiset(await hostile.collect(fromGoodViewer, 1, 'the last answer'))).toEqual(multiset([last]));
    for (const peer of [viewer, bystander, hostile]) await peer.expectNothingElse();
    console.log(`fuzz hostile rover: ${frames.length} frames (${valid} valid), ${round} good rounds (seed ${SEED})`);
  }, 120_000);
});
