/**
 * The control lease: one controller at a time, granted by the Durable Object to viewers whose token
 * allows control, renewed by heartbeat, ended by release, by the holder leaving, or by lapsing. The
 * rover hears every change (and every renewal: its dead-man timer), viewers see "you", "other" or "none".
 */
import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { afterEach, describe, expect, it } from 'vitest';
import { CONTROL_LEASE_TTL_MS, PROTOCOL_VERSION } from '../../protocol/index.js';
import type { RoverRoom } from '../../worker/src/room.js';
import { camera, closeAllPeers, joinedViewer, onlineRover, Peer, tokenFor, uniqueRoverId, upgrade } from './helpers.js';
import { ServerToViewer } from '../../protocol/index.js';

afterEach(closeAllPeers);

const room = (roverId: string): DurableObjectStub<RoverRoom> => env.ROVER_ROOMS.get(env.ROVER_ROOMS.idFromName(roverId));
const controller = (roverId: string, name: string) => joinedViewer(roverId, name, { control: true });

/** A rover online, operators A and B (both may control), A granted the lease and everyone told. */
async function aHoldsTheLease(label: string) {
  const roverId = uniqueRoverId(label);
  const { rover } = await onlineRover(roverId, [camera('main')]);
  const a = await controller(roverId, 'A');
  const b = await controller(roverId, 'B');
  a.viewer.send({ type: 'lease', action: 'request' });
  expect(await a.viewer.next('lease')).toMatchObject({ holder: 'you' });
  expect(await b.viewer.next('lease')).toMatchObject({ holder: 'other' });
  expect(await rover.next('lease')).toMatchObject({ viewerId: a.viewerId });
  return { roverId, rover, a, b };
}

describe('control lease', () => {
  it('a watch-only viewer is told it cannot control, and its request is refused without reaching the rover', async () => {
    const roverId = uniqueRoverId('lease-forbidden');
    const { rover } = await onlineRover(roverId, [camera('main')]);
    const { viewer, welcome } = await joinedViewer(roverId, 'watcher');
    expect(welcome.control).toEqual({ holder: 'none', canControl: false, ttlMs: 0 });
    viewer.send({ type: 'lease', action: 'request' });
    const refusal = await viewer.nextError('forbidden');
    expect(refusal.message).toMatch(/only allows watching/);
    await rover.expectNothing();
  });

  it('a client cannot grant itself control with the Worker\'s permissions header', async () => {
    const roverId = uniqueRoverId('lease-header');
    const { viewer, welcome } = await joinedViewer(roverId, 'forger', { headers: { 'x-rover-live-permissions': 'control' } });
    expect(welcome.control.canControl).toBe(false);
    viewer.send({ type: 'lease', action: 'request' });
    await viewer.nextError('forbidden');
  });

  it('grants one controller; the rover learns who; others see "other" and are refused while it is held', async () => {
    const roverId = uniqueRoverId('lease-grant');
    const { rover } = await onlineRover(roverId, [camera('main')]);
    const a = await controller(roverId, 'A');
    const b = await controller(roverId, 'B');
    expect(a.welcome.control).toEqual({ holder: 'none', canControl: true, ttlMs: 0 });

    a.viewer.send({ type: 'lease', action: 'request' });
    const granted = await a.viewer.next('lease');
    expect(granted).toMatchObject({ holder: 'you', canControl: true });
    expect(granted.ttlMs).toBeGreaterThan(CONTROL_LEASE_TTL_MS - 500);
    expect(granted.ttlMs).toBeLessThanOrEqual(CONTROL_LEASE_TTL_MS);
    const toRover = await rover.next('lease');
    expect(toRover.viewerId).toBe(a.viewerId);
    expect(toRover.ttlMs).toBeGreaterThan(CONTROL_LEASE_TTL_MS - 500);
    expect(await b.viewer.next('lease')).toEqual({ type: 'lease', holder: 'other', canControl: true, ttlMs: 0 });

    b.viewer.send({ type: 'lease', action: 'request' });
    await b.viewer.nextError('control-busy');
    await rover.expectNothing();

    // Renewal: the rover's dead-man timer restarts; only the holder hears back; other viewers hear nothing.
    a.viewer.send({ type: 'lease', action: 'renew' });
    expect(await rover.next('lease')).toMatchObject({ viewerId: a.viewerId });
    expect(await a.viewer.next('lease')).toMatchObject({ holder: 'you' });
    await b.viewer.expectNothing();

    // A rover that reconnects learns the current holder in its welcome.
    const { welcome } = await onlineRover(roverId, [camera('main')], 'rover again');
    expect(welcome.lease.viewerId).toBe(a.viewerId);
    expect(welcome.lease.ttlMs).toBeGreaterThan(0);
  });

  it('release frees control: the rover hears "nobody", and the next operator can take it', async () => {
    const { roverId, rover, a, b } = await aHoldsTheLease('lease-release');

    a.viewer.send({ type: 'lease', action: 'release' });
    expect(await rover.next('lease')).toEqual({ type: 'lease', viewerId: null, ttlMs: 0, ended: 'released' });
    expect(await a.viewer.next('lease')).toMatchObject({ holder: 'none' });
    expect(await b.viewer.next('lease')).toMatchObject({ holder: 'none' });

    b.viewer.send({ type: 'lease', action: 'request' });
    expect(await b.viewer.next('lease')).toMatchObject({ holder: 'you' });
    expect(await rover.next('lease')).toMatchObject({ viewerId: b.viewerId });
    expect(await a.viewer.next('lease')).toMatchObject({ holder: 'other' });
  });

  it('the holder\'s socket closing ends the lease at once', async () => {
    const roverId = uniqueRoverId('lease-gone');
    const { rover } = await onlineRover(roverId, [camera('main')]);
    const a = await controller(roverId, 'A');
    const b = await joinedViewer(roverId, 'B (watch only)');
    a.viewer.send({ type: 'lease', action: 'request' });
    await a.viewer.next('lease');
    await rover.next('lease');
    expect(await b.viewer.next('lease')).toEqual({ type: 'lease', holder: 'other', canControl: false, ttlMs: 0 });

    a.viewer.close();
    expect(await rover.next('lease')).toEqual({ type: 'lease', viewerId: null, ttlMs: 0, ended: 'left' });
    expect(await b.viewer.next('lease')).toMatchObject({ holder: 'none' });
  });

  it('a lease without renewals lapses: the alarm is due by then, everyone hears it, and a late renewal is refused', async () => {
    const { roverId, rover, a, b } = await aHoldsTheLease('lease-lapse');

    const alarm = await runInDurableObject(room(roverId), (_instance, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm! - Date.now()).toBeLessThanOrEqual(CONTROL_LEASE_TTL_MS);
    // Not yet: the alarm finds the lease alive.
    expect(await runInDurableObject(room(roverId), (instance) => instance.expireLease(Date.now()))).toBe(false);
    // Past its time.
    expect(await runInDurableObject(room(roverId), (instance) => instance.expireLease(Date.now() + CONTROL_LEASE_TTL_MS + 10))).toBe(true);
    expect(await rover.next('lease')).toEqual({ type: 'lease', viewerId: null, ttlMs: 0, ended: 'lapsed' });
    expect(await a.viewer.next('lease')).toMatchObject({ holder: 'none' });
    expect(await b.viewer.next('lease')).toMatchObject({ holder: 'none' });

    a.viewer.send({ type: 'lease', action: 'renew' });
    await a.viewer.nextError('lease-lapsed');
    await rover.expectNothing();
    // The alarm keeps running for the sweep.
    expect(await runDurableObjectAlarm(room(roverId))).toBe(true);
  });

  it('renew and release from a viewer that never held the lease change nothing', async () => {
    const roverId = uniqueRoverId('lease-stranger');
    const { rover } = await onlineRover(roverId, [camera('main')]);
    const a = await controller(roverId, 'A');
    a.viewer.send({ type: 'lease', action: 'release' });
    a.viewer.send({ type: 'lease', action: 'renew' });
    await a.viewer.nextError('lease-lapsed');
    await rover.expectNothing();
  });

  it('a malformed lease action is a bad message', async () => {
    const roverId = uniqueRoverId('lease-bad');
    const a = await controller(roverId, 'A');
    a.viewer.send({ type: 'lease', action: 'steal' });
    expect((await a.viewer.nextError('bad-message')).message).toMatch(/invalid "lease" message/);
  });

  it('an upgrade with a control token shows canControl in the welcome (the Worker verified the scope)', async () => {
    const roverId = uniqueRoverId('lease-token');
    const token = await tokenFor('viewer', roverId, 600, { control: true });
    const response = await upgrade(roverId, `?role=viewer&v=${PROTOCOL_VERSION}`, { Upgrade: 'websocket', Authorization: `Bearer ${token}` });
    expect(response.status).toBe(101);
    const viewer = new Peer(response.webSocket!, ServerToViewer, 'viewer');
    expect((await viewer.next('welcome')).control).toEqual({ holder: 'none', canControl: true, ttlMs: 0 });
  });
});
