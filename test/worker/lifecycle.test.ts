import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode } from '../../protocol/index.js';
import { camera, closeAllPeers, connectRover, joinedViewer, onlineRover, uniqueRoverId, ANY_ICE } from './helpers.js';

afterEach(closeAllPeers);

describe('rover superseded by a newer connection', () => {
  it('closes the old socket with 4001 and hands the viewers to the new one', async () => {
    const roverId = uniqueRoverId('supersede');
    const old = await onlineRover(roverId, [camera('main')], 'old rover');
    const a = await joinedViewer(roverId, 'viewer A');
    const b = await joinedViewer(roverId, 'viewer B');
    a.viewer.send({ type: 'watch', cameraId: 'main' });
    expect(await old.rover.next('viewer-join')).toMatchObject({ viewerId: a.viewerId });
    b.viewer.send({ type: 'watch', cameraId: 'main' });
    expect(await old.rover.next('viewer-join')).toMatchObject({ viewerId: b.viewerId });

    const fresh = await connectRover(roverId, 'new rover');
    // Sent at once, before the old rover has processed its close: must not be relayed.
    try {
      old.rover.send({ type: 'offer', viewerId: a.viewerId, callId: 'late-call', cameraId: 'main', sdp: 'v=0 late' });
      old.rover.send({ type: 'announce', cameras: [camera('stale')] });
    } catch {
      // The close may already have completed: nothing could reach the server then.
    }

    const welcome = await fresh.next('welcome');
    expect(welcome.viewers).toHaveLength(2);
    expect(welcome.viewers).toEqual(
      expect.arrayContaining([
        { viewerId: a.viewerId, cameraId: 'main', ice: ANY_ICE },
        { viewerId: b.viewerId, cameraId: 'main', ice: ANY_ICE },
      ]),
    );

    const closed = await old.rover.closed;
    expect(closed.code).toBe(CloseCode.Superseded);
    expect(closed.reason).toMatch(/superseded/);

    // Viewers hear that the (new) rover is online, with no cameras until it announces; never "offline".
    for (const v of [a.viewer, b.viewer]) {
      expect(await v.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: true, cameras: [] } });
      await v.expectNothing(); // no late offer, no stale announce, no offline status from the old socket
    }

    // The new rover works.
    fresh.send({ type: 'announce', cameras: [camera('main')] });
    for (const v of [a.viewer, b.viewer]) {
      expect(await v.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: true, cameras: [camera('main')] } });
    }
    fresh.send({ type: 'offer', viewerId: a.viewerId, callId: 'new-call', cameraId: 'main', sdp: 'v=0 new' });
    expect(await a.viewer.next('offer')).toMatchObject({ callId: 'new-call', sdp: 'v=0 new' });
    b.viewer.send({ type: 'answer', callId: 'x', sdp: 'v=0 answer' });
    expect(await fresh.next('answer')).toMatchObject({ viewerId: b.viewerId });
    await fresh.expectNothing();
  });

  it('drops messages that were still in flight from a rover when it was superseded', async () => {
    // Black-box, the old client cannot send once it has seen the close (the runtime answers it at once),
    // so drive the race inside the Durable Object: supersede, then deliver an old-socket message.
    const roverId = uniqueRoverId('late-messages');
    const old = await onlineRover(roverId, [camera('main')], 'old rover');
    const { viewer, viewerId } = await joinedViewer(roverId);
    viewer.send({ type: 'watch', cameraId: 'main' });
    await old.rover.next('viewer-join');

    const stub = env.ROVER_ROOMS.get(env.ROVER_ROOMS.idFromName(roverId));
    const inside = await runInDurableObject(stub, async (room, state) => {
      const [oldSocket, ...others] = state.getWebSockets('rover');
      if (!oldSocket || others.length > 0) throw new Error('expected exactly one rover socket');
      const response = await room.fetch(
        new Request(`http://example.com/rovers/${roverId}/ws?role=rover&v=1`, { headers: { Upgrade: 'websocket' } }),
      );
      const fresh = response.webSocket;
      if (!fresh) throw new Error('no rover socket');
      const received: string[] = [];
      fresh.addEventListener('message', (event) => {
        received.push(String(event.data));
      });
      fresh.accept();
      const attachment: unknown = oldSocket.deserializeAttachment();
      // In flight from the old rover: an offer, a camera change and garbage. All must be dropped silently.
      await room.webSocketMessage(oldSocket, JSON.stringify({ type: 'offer', viewerId, callId: 'late', cameraId: 'main', sdp: 'v=0' }));
      await room.webSocketMessage(oldSocket, JSON.stringify({ type: 'announce', cameras: [camera('stale')] }));
      await room.webSocketMessage(oldSocket, 'not json');
      await scheduler.wait(50);
      fresh.close(1000, 'test done');
      return { status: response.status, attachment, received };
    });
    expect(inside.status).toBe(101);
    expect(inside.attachment).toMatchObject({ role: 'rover', superseded: true });
    expect(inside.received.map((text) => JSON.parse(text) as unknown)).toEqual([
      { type: 'welcome', role: 'rover', protocolVersion: 1, viewers: [{ viewerId, cameraId: 'main', ice: ANY_ICE }], lease: { viewerId: null, ttlMs: 0 } },
    ]);
    expect((await old.rover.closed).code).toBe(CloseCode.Superseded);

    // The viewer saw the new rover come (no stale cameras) and go, and no late offer.
    expect(await viewer.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: true, cameras: [] } });
    expect(await viewer.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: false, cameras: [] } });
    await viewer.expectNothing();
  });

  it('a superseded rover closing does not take the new rover offline; the new one closing does', async () => {
    const roverId = uniqueRoverId('supersede-close');
    const old = await onlineRover(roverId, [], 'old rover');
    const { viewer } = await joinedViewer(roverId);
    const fresh = await onlineRover(roverId, [camera('main')], 'new rover');
    expect(await viewer.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: true, cameras: [] } });
    expect(await viewer.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: true, cameras: [camera('main')] } });
    await old.rover.closed;
    await viewer.expectNothing(300);

    // A viewer joining now sees the new rover's cameras.
    const later = await joinedViewer(roverId, 'later viewer');
    expect(later.welcome.rover).toEqual({ online: true, cameras: [camera('main')] });

    fresh.rover.close();
    expect(await viewer.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: false, cameras: [] } });
    expect(await later.viewer.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: false, cameras: [] } });
  });
});

describe('viewer leaves', () => {
  it('`leave` makes the rover get viewer-leave, and the viewer is no longer listed', async () => {
    const roverId = uniqueRoverId('leave');
    const { rover } = await onlineRover(roverId);
    const { viewer, viewerId } = await joinedViewer(roverId);
    const other = await joinedViewer(roverId, 'other viewer');
    viewer.send({ type: 'watch', cameraId: 'main' });
    other.viewer.send({ type: 'watch', cameraId: 'main' });
    await rover.next('viewer-join');
    await rover.next('viewer-join');

    viewer.send({ type: 'leave' });
    expect(await rover.next('viewer-leave')).toEqual({ type: 'viewer-leave', viewerId });
    await other.viewer.expectNothing(0);

    // A replacement rover is only asked to call the viewer still watching.
    const fresh = await connectRover(roverId, 'new rover');
    expect((await fresh.next('welcome')).viewers).toEqual([{ viewerId: other.viewerId, cameraId: 'main', ice: ANY_ICE }]);

    // Watching again after leaving works.
    viewer.send({ type: 'watch', cameraId: 'main' });
    expect(await fresh.next('viewer-join')).toEqual({ type: 'viewer-join', viewerId, cameraId: 'main', ice: ANY_ICE });
  });

  it('a viewer socket closing makes the rover get viewer-leave; later offers to it are unknown-viewer', async () => {
    const roverId = uniqueRoverId('viewer-close');
    const { rover } = await onlineRover(roverId);
    const { viewer, viewerId } = await joinedViewer(roverId);
    const other = await joinedViewer(roverId, 'other viewer');
    viewer.send({ type: 'watch', cameraId: 'main' });
    expect(await rover.next('viewer-join')).toMatchObject({ viewerId });

    viewer.close(1001, 'tab closed');
    expect(await rover.next('viewer-leave')).toEqual({ type: 'viewer-leave', viewerId });

    rover.send({ type: 'offer', viewerId, callId: 'too-late', cameraId: 'main', sdp: 'v=0' });
    const error = await rover.nextError('unknown-viewer');
    expect(error.message).toContain(viewerId);
    rover.send({ type: 'candidate', viewerId, callId: 'too-late', candidate: { candidate: '', mid: '0' } });
    await rover.nextError('unknown-viewer');
    await other.viewer.expectNothing(0);

    // The rover socket is still fine.
    other.viewer.send({ type: 'watch', cameraId: 'main' });
    expect(await rover.next('viewer-join')).toMatchObject({ viewerId: other.viewerId });
  });

  it('a viewer that never watched leaves silently', async () => {
    const roverId = uniqueRoverId('idle-close');
    const { rover } = await onlineRover(roverId);
    const { viewer } = await joinedViewer(roverId);
    viewer.close();
    await viewer.closed;
    await rover.expectNothing();
  });

  it('offers to a viewer id that never existed are unknown-viewer', async () => {
    const roverId = uniqueRoverId('no-such-viewer');
    const { rover } = await onlineRover(roverId);
    rover.send({ type: 'hangup', viewerId: 'nobody', callId: 'c', reason: 'bye' });
    await rover.nextError('unknown-viewer');
  });
});
