/**
 * Peers that vanish without a close frame (a tab killed mid-network-loss, a rover driving into a tunnel):
 * the Durable Object sweeps sockets with no heartbeat for its timeout, and tells the other side.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode } from '../../protocol/index.js';
import { DEFAULT_HEARTBEAT_TIMEOUT_SECONDS, type RoverRoom } from '../../worker/src/room.js';
import { camera, closeAllPeers, joinedViewer, onlineRover, sleep, uniqueRoverId } from './helpers.js';

const TIMEOUT_MS = DEFAULT_HEARTBEAT_TIMEOUT_SECONDS * 1000;
const room = (roverId: string): DurableObjectStub<RoverRoom> => env.ROVER_ROOMS.get(env.ROVER_ROOMS.idFromName(roverId));

describe('heartbeat timeout', () => {
  afterEach(closeAllPeers);

  it('keeps a sweep alarm pending while sockets are open', async () => {
    const roverId = uniqueRoverId('sweep-alarm');
    await onlineRover(roverId, [camera('main')]);
    const alarm = await runInDurableObject(room(roverId), (_instance, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm! - Date.now()).toBeLessThanOrEqual(30_000);
    // Running it early sweeps nobody (everyone is fresh) and schedules the next one.
    expect(await runDurableObjectAlarm(room(roverId))).toBe(true);
    expect(await runInDurableObject(room(roverId), (_instance, state) => state.storage.getAlarm())).not.toBeNull();
  });

  it('with the default timeout, everyone silent for longer is swept; no one sooner', async () => {
    const roverId = uniqueRoverId('sweep-default');
    const { rover } = await onlineRover(roverId, [camera('main')]);
    await joinedViewer(roverId);
    expect(await runInDurableObject(room(roverId), (instance) => instance.sweep(Date.now() + TIMEOUT_MS - 1_000))).toBe(0);
    expect(await runInDurableObject(room(roverId), (instance) => instance.sweep(Date.now() + TIMEOUT_MS + 1_000))).toBe(2);
    expect((await rover.closed).code).toBe(CloseCode.HeartbeatTimeout);
  });

  it('fresh sockets survive a sweep', async () => {
    const roverId = uniqueRoverId('sweep-fresh');
    const { rover } = await onlineRover(roverId, [camera('main')]);
    const { viewer } = await joinedViewer(roverId);
    expect(await runInDurableObject(room(roverId), (instance) => instance.sweep(Date.now()))).toBe(0);
    await rover.ping();
    await viewer.ping();
  });

  it('a silent viewer is dropped with 4408 and the rover is told to free its call', async () => {
    const roverId = uniqueRoverId('sweep-viewer');
    const { rover } = await onlineRover(roverId, [camera('main')]);
    const silent = await joinedViewer(roverId, 'silent viewer');
    silent.viewer.send({ type: 'watch', cameraId: 'main' });
    expect(await rover.next('viewer-join')).toMatchObject({ viewerId: silent.viewerId });

    // With a 300 ms timeout: the viewer has been silent for longer; the rover has just pinged (the runtime's
    // auto-response records when, without waking the object).
    await sleep(400);
    await rover.ping();
    const swept = await runInDurableObject(room(roverId), (instance) => instance.sweep(Date.now(), 300));
    expect(swept).toBe(1);
    expect(await rover.next('viewer-leave')).toEqual({ type: 'viewer-leave', viewerId: silent.viewerId });
    expect((await silent.viewer.closed).code).toBe(CloseCode.HeartbeatTimeout);
  });

  it('a silent rover is dropped and viewers see it go offline', async () => {
    const roverId = uniqueRoverId('sweep-rover');
    const { rover } = await onlineRover(roverId, [camera('main')]);
    const { viewer } = await joinedViewer(roverId);
    await sleep(400);
    await viewer.ping();
    expect(await runInDurableObject(room(roverId), (instance) => instance.sweep(Date.now(), 300))).toBe(1);
    expect((await rover.closed).code).toBe(CloseCode.HeartbeatTimeout);
    expect(await viewer.next('rover-status')).toEqual({ type: 'rover-status', rover: { online: false, cameras: [] } });
  });
});
