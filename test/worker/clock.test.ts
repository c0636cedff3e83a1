import { afterEach, describe, expect, it } from 'vitest';
import { camera, closeAllPeers, joinedViewer, onlineRover, uniqueRoverId } from './helpers.js';

afterEach(closeAllPeers);

describe('clock sync', () => {
  it('answers each side with the server time, echoing the asker\'s own time, to that asker only', async () => {
    const roverId = uniqueRoverId('clock');
    const { rover } = await onlineRover(roverId, [camera('main', { timecode: true })]);
    const { viewer, welcome } = await joinedViewer(roverId);
    expect(welcome.rover.cameras[0]?.timecode).toBe(true);

    const before = Date.now();
    viewer.send({ type: 'clock', t: 123.5 });
    const toViewer = await viewer.next('clock');
    expect(toViewer).toEqual({ type: 'clock', t: 123.5, serverTime: expect.any(Number) });
    expect(toViewer.serverTime).toBeGreaterThanOrEqual(before - 1000);
    expect(toViewer.serverTime).toBeLessThanOrEqual(Date.now() + 1000);
    await rover.expectNothing();

    rover.send({ type: 'clock', t: 77 });
    expect(await rover.next('clock')).toEqual({ type: 'clock', t: 77, serverTime: expect.any(Number) });
    await viewer.expectNothing();
  });

  it('refuses a malformed clock request with a coded error', async () => {
    const roverId = uniqueRoverId('clock-bad');
    await onlineRover(roverId);
    const { viewer } = await joinedViewer(roverId);
    viewer.send({ type: 'clock', t: -5 });
    expect(await viewer.next('error')).toMatchObject({ code: 'bad-message' });
    viewer.send({ type: 'clock', t: 'now' });
    expect(await viewer.next('error')).toMatchObject({ code: 'bad-message' });
  });
});
