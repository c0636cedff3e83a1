import { afterEach, describe, expect, it } from 'vitest';
import {
  camera,
  closeAllPeers,
  connectRover,
  connectViewer,
  joinedViewer,
  onlineRover,
  uniqueRoverId,
  ANY_ICE,
} from './helpers.js';

afterEach(closeAllPeers);

const candidate = { candidate: 'candidate:1 1 UDP 2122252543 192.0.2.1 5000 typ host', mid: '0' };

describe('relay and addressing', () => {
  it('addresses every signaling message to exactly one peer', async () => {
    const roverId = uniqueRoverId('relay');
    const { rover } = await onlineRover(roverId);
    const a = await joinedViewer(roverId, 'viewer A');
    const b = await joinedViewer(roverId, 'viewer B');
    expect(a.viewerId).not.toBe(b.viewerId);
    expect(a.welcome.rover).toEqual({ online: true, cameras: [camera('main')] });
    expect(b.welcome.rover).toEqual({ online: true, cameras: [camera('main')] });

    a.viewer.send({ type: 'watch', cameraId: 'main' });
    expect(await rover.next('viewer-join')).toEqual({ type: 'viewer-join', viewerId: a.viewerId, cameraId: 'main', ice: ANY_ICE });
    b.viewer.send({ type: 'watch', cameraId: 'main' });
    expect(await rover.next('viewer-join')).toEqual({ type: 'viewer-join', viewerId: b.viewerId, cameraId: 'main', ice: ANY_ICE });

    // Offer for A reaches only A.
    rover.send({ type: 'offer', viewerId: a.viewerId, callId: 'call-a1', cameraId: 'main', sdp: 'v=0 offer for A' });
    expect(await a.viewer.next('offer')).toEqual({ type: 'offer', callId: 'call-a1', cameraId: 'main', sdp: 'v=0 offer for A', ice: ANY_ICE });
    await b.viewer.expectNothing();

    // Offer for B reaches only B.
    rover.send({ type: 'offer', viewerId: b.viewerId, callId: 'call-b1', cameraId: 'main', sdp: 'v=0 offer for B' });
    expect(await b.viewer.next('offer')).toEqual({ type: 'offer', callId: 'call-b1', cameraId: 'main', sdp: 'v=0 offer for B', ice: ANY_ICE });
    await a.viewer.expectNothing();

    // Answers and candidates from a viewer reach the rover tagged with that viewer's id.
    b.viewer.send({ type: 'answer', callId: 'call-b1', sdp: 'v=0 answer from B' });
    expect(await rover.next('answer')).toEqual({ type: 'answer', viewerId: b.viewerId, callId: 'call-b1', sdp: 'v=0 answer from B' });
    a.viewer.send({ type: 'answer', callId: 'call-a1', sdp: 'v=0 answer from A' });
    expect(await rover.next('answer')).toEqual({ type: 'answer', viewerId: a.viewerId, callId: 'call-a1', sdp: 'v=0 answer from A' });
    a.viewer.send({ type: 'candidate', callId: 'call-a1', candidate });
    expect(await rover.next('candidate')).toEqual({ type: 'candidate', viewerId: a.viewerId, callId: 'call-a1', candidate });
    // End of candidates (empty candidate) is relayed too.
    b.viewer.send({ type: 'candidate', callId: 'call-b1', candidate: { candidate: '', mid: '0' } });
    expect(await rover.next('candidate')).toEqual({
      type: 'candidate',
      viewerId: b.viewerId,
      callId: 'call-b1',
      candidate: { candidate: '', mid: '0' },
    });

    // A viewer cannot impersonate another: a viewerId it sends is replaced by its own.
    a.viewer.send({ type: 'answer', viewerId: b.viewerId, callId: 'call-a1', sdp: 'v=0 spoofed' });
    expect(await rover.next('answer')).toMatchObject({ viewerId: a.viewerId, sdp: 'v=0 spoofed' });

    // Rover candidates go to one viewer, without the viewerId.
    rover.send({ type: 'candidate', viewerId: b.viewerId, callId: 'call-b1', candidate });
    expect(await b.viewer.next('candidate')).toEqual({ type: 'candidate', callId: 'call-b1', candidate });
    await a.viewer.expectNothing();

    // Hangup is forwarded to the one viewer.
    rover.send({ type: 'hangup', viewerId: a.viewerId, callId: 'call-a1', reason: 'camera unplugged' });
    expect(await a.viewer.next('hangup')).toEqual({ type: 'hangup', callId: 'call-a1', reason: 'camera unplugged' });
    await b.viewer.expectNothing();
    await rover.expectNothing(0);
  });

  it('keeps rooms of different rovers apart', async () => {
    const one = uniqueRoverId('room-one');
    const two = uniqueRoverId('room-two');
    const { rover: roverOne } = await onlineRover(one);
    const { rover: roverTwo } = await onlineRover(two);
    const { viewer, viewerId } = await joinedViewer(one);
    viewer.send({ type: 'watch', cameraId: 'main' });
    expect(await roverOne.next('viewer-join')).toMatchObject({ viewerId });
    await roverTwo.expectNothing();
    // Rover two cannot reach a viewer of rover one even with its id.
    roverTwo.send({ type: 'offer', viewerId, callId: 'c1', cameraId: 'main', sdp: 'v=0' });
    await roverTwo.nextError('unknown-viewer');
    await viewer.expectNothing();
  });
});

describe('join orders and rover presence', () => {
  it('viewer first: the rover’s welcome lists the waiting viewer', async () => {
    const roverId = uniqueRoverId('viewer-first');
    const { viewer, viewerId, welcome } = await joinedViewer(roverId);
    expect(welcome.rover).toEqual({ online: false, cameras: [] });
    viewer.send({ type: 'watch', cameraId: 'main' });
    await viewer.expectNothing(); // remembered, no error although the rover is away

    // A second viewer that connects but does not watch is not listed.
    await joinedViewer(roverId, 'idle viewer');

    const rover = await connectRover(roverId);
    const roverWelcome = await rover.next('welcome');
    expect(roverWelcome).toEqual({ type: 'welcome', role: 'rover', protocolVersion: 1, viewers: [{ viewerId, cameraId: 'main', ice: ANY_ICE }], lease: { viewerId: null, ttlMs: 0 } });
    expect(await viewer.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: true, cameras: [] } });

    rover.send({ type: 'announce', cameras: [camera('main')] });
    expect(await viewer.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: true, cameras: [camera('main')] } });

    // The rover starts the call the welcome asked for.
    rover.send({ type: 'offer', viewerId, callId: 'call-1', cameraId: 'main', sdp: 'v=0' });
    expect(await viewer.next('offer')).toMatchObject({ callId: 'call-1' });
  });

  it('rover first: a viewer that watches makes the rover get viewer-join', async () => {
    const roverId = uniqueRoverId('rover-first');
    const { rover, welcome } = await onlineRover(roverId, [camera('main'), camera('rear', { width: 640, height: 480, fps: 15 })]);
    expect(welcome.viewers).toEqual([]);

    const { viewer, viewerId, welcome: viewerWelcome } = await joinedViewer(roverId);
    expect(viewerWelcome.rover).toEqual({ online: true, cameras: [camera('main'), camera('rear', { width: 640, height: 480, fps: 15 })] });
    await rover.expectNothing(); // connecting alone is not watching

    viewer.send({ type: 'watch', cameraId: 'rear' });
    expect(await rover.next('viewer-join')).toEqual({ type: 'viewer-join', viewerId, cameraId: 'rear', ice: ANY_ICE });
    // watch is idempotent "start or restart": again → another viewer-join.
    viewer.send({ type: 'watch', cameraId: 'main' });
    expect(await rover.next('viewer-join')).toEqual({ type: 'viewer-join', viewerId, cameraId: 'main', ice: ANY_ICE });
  });

  it('tells viewers when the rover comes and goes, and reflects announced cameras', async () => {
    const roverId = uniqueRoverId('presence');
    const { viewer } = await joinedViewer(roverId);

    const first = await onlineRover(roverId, []);
    expect(await viewer.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: true, cameras: [] } });
    first.rover.send({ type: 'announce', cameras: [camera('main')] });
    expect(await viewer.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: true, cameras: [camera('main')] } });

    // Re-announce when cameras change.
    const cameras = [camera('main', { label: 'Front' }), camera('arm', { fps: 60 })];
    first.rover.send({ type: 'announce', cameras });
    expect(await viewer.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: true, cameras } });

    // A later viewer's welcome carries the announced cameras.
    const later = await joinedViewer(roverId, 'later viewer');
    expect(later.welcome.rover).toEqual({ online: true, cameras });

    first.rover.close(1000, 'shutting down');
    expect(await viewer.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: false, cameras: [] } });
    expect(await later.viewer.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: false, cameras: [] } });

    // And a viewer joining now sees the rover offline.
    const third = await joinedViewer(roverId, 'third viewer');
    expect(third.welcome.rover).toEqual({ online: false, cameras: [] });

    // The rover comes back.
    await onlineRover(roverId, [camera('main')]);
    for (const v of [viewer, later.viewer, third.viewer]) {
      expect(await v.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: true, cameras: [] } });
      expect(await v.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: true, cameras: [camera('main')] } });
    }
  });

  it('a watching viewer is listed again for a rover that reconnects', async () => {
    const roverId = uniqueRoverId('reconnect');
    const first = await onlineRover(roverId);
    const { viewer, viewerId } = await joinedViewer(roverId);
    viewer.send({ type: 'watch', cameraId: 'main' });
    expect(await first.rover.next('viewer-join')).toMatchObject({ viewerId });
    first.rover.close();
    await first.rover.closed;
    expect(await viewer.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: false, cameras: [] } });

    const rover = await connectRover(roverId, 'rover again');
    expect(await rover.next('welcome')).toMatchObject({ viewers: [{ viewerId, cameraId: 'main', ice: ANY_ICE }] });
  });

  it('a viewer connecting before anyone else gets a well-formed welcome', async () => {
    const roverId = uniqueRoverId('fresh');
    const viewer = await connectViewer(roverId);
    const welcome = await viewer.next('welcome');
    expect(welcome.viewerId).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(welcome.rover).toEqual({ online: false, cameras: [] });
    await viewer.expectNothing();
  });
});
