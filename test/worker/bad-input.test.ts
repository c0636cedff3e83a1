import { afterEach, describe, expect, it } from 'vitest';
import { MAX_MESSAGE_BYTES, PONG_FRAME, type ErrorCode } from '../../protocol/index.js';
import {
  camera,
  closeAllPeers,
  joinedViewer,
  onlineRover,
  uniqueRoverId,
  type RoverPeer,
  type ViewerPeer,
  ANY_ICE,
} from './helpers.js';

afterEach(closeAllPeers);

interface Room {
  roverId: string;
  rover: RoverPeer;
  /** Watching camera "main"; the one that sends the bad input in viewer cases. */
  viewer: ViewerPeer;
  viewerId: string;
  /** Watching too; must never see anything caused by someone else's bad input. */
  bystander: ViewerPeer;
  bystanderId: string;
}

async function room(label: string): Promise<Room> {
  const roverId = uniqueRoverId(label);
  const { rover } = await onlineRover(roverId, [camera('main'), camera('rear')]);
  const a = await joinedViewer(roverId, 'viewer');
  const b = await joinedViewer(roverId, 'bystander');
  a.viewer.send({ type: 'watch', cameraId: 'main' });
  expect(await rover.next('viewer-join')).toMatchObject({ viewerId: a.viewerId });
  b.viewer.send({ type: 'watch', cameraId: 'main' });
  expect(await rover.next('viewer-join')).toMatchObject({ viewerId: b.viewerId });
  return { roverId, rover, viewer: a.viewer, viewerId: a.viewerId, bystander: b.viewer, bystanderId: b.viewerId };
}

/** The viewer's socket still works after the bad input, and nobody else saw anything. */
async function expectViewerStillWorks(r: Room): Promise<void> {
  r.viewer.send({ type: 'answer', callId: 'call-ok', sdp: 'v=0 still fine' });
  expect(await r.rover.next('answer')).toEqual({ type: 'answer', viewerId: r.viewerId, callId: 'call-ok', sdp: 'v=0 still fine' });
  await r.bystander.expectNothing(0);
  await r.rover.expectNothing(0);
  await r.viewer.expectNothing(0);
}

/** The rover's socket still works after the bad input, and no viewer saw anything but its own offer. */
async function expectRoverStillWorks(r: Room): Promise<void> {
  r.rover.send({ type: 'offer', viewerId: r.viewerId, callId: 'call-ok', cameraId: 'main', sdp: 'v=0 still fine' });
  expect(await r.viewer.next('offer')).toEqual({ type: 'offer', callId: 'call-ok', cameraId: 'main', sdp: 'v=0 still fine', ice: ANY_ICE });
  await r.bystander.expectNothing(0);
  await r.rover.expectNothing(0);
}

const bigSdp = 'a'.repeat(48 * 1024 + 1); // one over the schema's SDP limit, well under the frame limit
const candidate = { candidate: 'candidate:1 1 UDP 2122252543 192.0.2.1 5000 typ host', mid: '0' };

/** A JSON text frame of exactly `bytes` UTF-8 bytes that is otherwise a valid viewer `watch`. */
function paddedWatch(bytes: number): string {
  const empty = JSON.stringify({ type: 'watch', cameraId: 'main', pad: '' });
  return JSON.stringify({ type: 'watch', cameraId: 'main', pad: 'x'.repeat(bytes - empty.length) });
}

type Case = [label: string, frame: string | object, code: ErrorCode];

const viewerCases: Case[] = [
  ['not JSON', 'hello', 'bad-json'],
  ['truncated JSON', '{"type":"watch",', 'bad-json'],
  ['an empty frame', '', 'bad-json'],
  ['JSON without type', '{"cameraId":"main"}', 'bad-message'],
  ['a non-string type', '{"type":7}', 'bad-message'],
  ['a number', '42', 'bad-message'],
  ['a string', '"watch"', 'bad-message'],
  ['null', 'null', 'bad-message'],
  ['an array', '[{"type":"watch","cameraId":"main"}]', 'bad-message'],
  ['an unknown type', { type: 'dance' }, 'bad-message'],
  ['a rover-only type (offer)', { type: 'offer', viewerId: 'x', callId: 'c', cameraId: 'main', sdp: 'v=0' }, 'wrong-role'],
  ['a rover-only type (announce)', { type: 'announce', cameras: [camera('main')] }, 'wrong-role'],
  ['a rover-only type (hangup)', { type: 'hangup', viewerId: 'x', callId: 'c', reason: '' }, 'wrong-role'],
  ['a camera id with uppercase', { type: 'watch', cameraId: 'Main' }, 'bad-message'],
  ['a camera id with a slash', { type: 'watch', cameraId: '../main' }, 'bad-message'],
  ['an empty camera id', { type: 'watch', cameraId: '' }, 'bad-message'],
  ['a missing camera id', { type: 'watch' }, 'bad-message'],
  ['an answer without sdp', { type: 'answer', callId: 'c' }, 'bad-message'],
  ['an answer without callId', { type: 'answer', sdp: 'v=0' }, 'bad-message'],
  ['an answer with an empty sdp', { type: 'answer', callId: 'c', sdp: '' }, 'bad-message'],
  ['an answer with an oversized sdp', { type: 'answer', callId: 'c', sdp: bigSdp }, 'bad-message'],
  ['a callId with bad characters', { type: 'answer', callId: 'a b', sdp: 'v=0' }, 'bad-message'],
  ['a candidate without mid', { type: 'candidate', callId: 'c', candidate: { candidate: 'x' } }, 'bad-message'],
  ['an oversized candidate', { type: 'candidate', callId: 'c', candidate: { candidate: 'x'.repeat(1025), mid: '0' } }, 'bad-message'],
  ['a frame over 64 KiB', paddedWatch(MAX_MESSAGE_BYTES + 1), 'too-large'],
  ['a frame over 64 KiB only in UTF-8 bytes', JSON.stringify({ type: 'watch', cameraId: 'main', pad: '€'.repeat(22_000) }), 'too-large'],
  ['a watch for a camera the rover did not announce', { type: 'watch', cameraId: 'arm' }, 'unknown-camera'],
];

const roverCases: Case[] = [
  ['not JSON', '{oops}', 'bad-json'],
  ['JSON without type', '{}', 'bad-message'],
  ['an array', '[]', 'bad-message'],
  ['an unknown type', { type: 'viewer-join', viewerId: 'x', cameraId: 'main' }, 'bad-message'],
  ['a viewer-only type (watch)', { type: 'watch', cameraId: 'main' }, 'wrong-role'],
  ['a viewer-only type (leave)', { type: 'leave' }, 'wrong-role'],
  ['a viewer-only type (answer)', { type: 'answer', callId: 'c', sdp: 'v=0' }, 'wrong-role'],
  ['an announce without cameras', { type: 'announce', cameras: [] }, 'bad-message'],
  ['an announce with a bad camera id', { type: 'announce', cameras: [camera('Front Cam')] }, 'bad-message'],
  ['an announce with 17 cameras', { type: 'announce', cameras: Array.from({ length: 17 }, (_, i) => camera(`c${i}`)) }, 'bad-message'],
  ['an announce with a fractional width', { type: 'announce', cameras: [camera('main', { width: 12.5 })] }, 'bad-message'],
  ['an announce with fps 0', { type: 'announce', cameras: [camera('main', { fps: 0 })] }, 'bad-message'],
  ['an offer without viewerId', { type: 'offer', callId: 'c', cameraId: 'main', sdp: 'v=0' }, 'bad-message'],
  ['an offer with an oversized sdp', { type: 'offer', viewerId: 'v', callId: 'c', cameraId: 'main', sdp: bigSdp }, 'bad-message'],
  ['an offer with a bad camera id', { type: 'offer', viewerId: 'v', callId: 'c', cameraId: 'a.b', sdp: 'v=0' }, 'bad-message'],
  ['a candidate without the candidate', { type: 'candidate', viewerId: 'v', callId: 'c' }, 'bad-message'],
  ['a hangup with an overlong reason', { type: 'hangup', viewerId: 'v', callId: 'c', reason: 'r'.repeat(201) }, 'bad-message'],
  ['a frame over 64 KiB', JSON.stringify({ type: 'offer', viewerId: 'v', callId: 'c', cameraId: 'main', sdp: 'a'.repeat(MAX_MESSAGE_BYTES) }), 'too-large'],
];

describe('bad input from a viewer is answered with an error, and the socket stays usable', () => {
  it.each(viewerCases)('%s → %s', async (_label, frame, code) => {
    const r = await room('bad-viewer');
    r.viewer.send(frame);
    await r.viewer.nextError(code);
    await expectViewerStillWorks(r);
  });

  it('a binary frame → binary-not-supported', async () => {
    const r = await room('bad-viewer-binary');
    r.viewer.send(new TextEncoder().encode('{"type":"leave"}'));
    await r.viewer.nextError('binary-not-supported');
    await expectViewerStillWorks(r);
  });

  it('the error for a schema violation names the field, not the value', async () => {
    const r = await room('bad-viewer-details');
    r.viewer.send({ type: 'watch', cameraId: 'SECRET-Value' });
    const error = await r.viewer.nextError('bad-message');
    expect(error.message).toContain('cameraId');
    expect(error.message).not.toContain('SECRET-Value');
  });

  it('a frame of exactly 64 KiB is accepted', async () => {
    const r = await room('exact-limit');
    const frame = paddedWatch(MAX_MESSAGE_BYTES);
    expect(new TextEncoder().encode(frame).byteLength).toBe(MAX_MESSAGE_BYTES);
    r.viewer.send(frame);
    expect(await r.rover.next('viewer-join')).toEqual({ type: 'viewer-join', viewerId: r.viewerId, cameraId: 'main', ice: ANY_ICE });
    await r.viewer.expectNothing(0);
  });

  it('an unknown camera does not change what the viewer watches', async () => {
    const r = await room('unknown-camera');
    r.viewer.send({ type: 'watch', cameraId: 'arm' });
    await r.viewer.nextError('unknown-camera');
    await r.rover.expectNothing(); // no viewer-join for a camera that does not exist
    r.viewer.send({ type: 'watch', cameraId: 'rear' });
    expect(await r.rover.next('viewer-join')).toEqual({ type: 'viewer-join', viewerId: r.viewerId, cameraId: 'rear', ice: ANY_ICE });
  });

  it('a viewer answer or candidate while the rover is offline → rover-offline', async () => {
    const roverId = uniqueRoverId('rover-offline');
    const { viewer } = await joinedViewer(roverId);
    const other = await joinedViewer(roverId, 'other viewer');
    viewer.send({ type: 'answer', callId: 'c', sdp: 'v=0' });
    await viewer.nextError('rover-offline');
    viewer.send({ type: 'candidate', callId: 'c', candidate });
    await viewer.nextError('rover-offline');
    // Still usable: watch is remembered (no camera check while the rover is away), then reaches the rover.
    viewer.send({ type: 'watch', cameraId: 'anything' });
    await viewer.expectNothing();
    await other.viewer.expectNothing(0);
    const { rover, welcome } = await onlineRover(roverId, []);
    expect(welcome.viewers).toHaveLength(1);
    expect(welcome.viewers[0]?.cameraId).toBe('anything');
    viewer.send({ type: 'answer', callId: 'c', sdp: 'v=0' });
    expect(await rover.next('answer')).toMatchObject({ callId: 'c', sdp: 'v=0' });
  });
});

describe('bad input from the rover is answered with an error, and the socket stays usable', () => {
  it.each(roverCases)('%s → %s', async (_label, frame, code) => {
    const r = await room('bad-rover');
    r.rover.send(frame);
    await r.rover.nextError(code);
    await r.viewer.expectNothing(0);
    await expectRoverStillWorks(r);
  });

  it('a binary frame → binary-not-supported', async () => {
    const r = await room('bad-rover-binary');
    r.rover.send(new Uint8Array([0x7b, 0x7d]).buffer);
    await r.rover.nextError('binary-not-supported');
    await expectRoverStillWorks(r);
  });

  it('a rejected announce keeps the previous cameras', async () => {
    const r = await room('bad-announce');
    r.rover.send({ type: 'announce', cameras: [camera('main', { fps: 1000 })] });
    await r.rover.nextError('bad-message');
    await r.viewer.expectNothing(); // no rover-status for a rejected announce
    const later = await joinedViewer(r.roverId, 'later viewer');
    expect(later.welcome.rover).toEqual({ online: true, cameras: [camera('main'), camera('rear')] });
    r.viewer.send({ type: 'watch', cameraId: 'rear' });
    expect(await r.rover.next('viewer-join')).toMatchObject({ cameraId: 'rear' });
  });
});

describe('heartbeat', () => {
  it('answers {"type":"ping"} with {"type":"pong"} for viewers and rovers', async () => {
    const r = await room('heartbeat');
    for (const peer of [r.viewer, r.rover] as const) {
      peer.send('{"type":"ping"}');
      const frame = await peer.nextFrame();
      expect(frame).toEqual({ kind: 'text', text: PONG_FRAME });
    }
    await r.bystander.expectNothing(0);
    // A ping that is not byte-for-byte the heartbeat frame is an ordinary (unknown) message.
    r.viewer.send('{ "type": "ping" }');
    await r.viewer.nextError('bad-message');
    await expectViewerStillWorks(r);
  });

  it('answers pings from a viewer of a rover that is not connected', async () => {
    const { viewer } = await joinedViewer(uniqueRoverId('heartbeat-alone'));
    await viewer.ping();
    await viewer.ping();
  });
});
