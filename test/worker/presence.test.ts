import { SELF } from 'cloudflare:test';
import { afterEach, describe, expect, it } from 'vitest';
import { RoverPresence } from '../../protocol/index.js';
import { camera, closeAllPeers, joinedViewer, ORIGIN, onlineRover, sleep, tokenFor, uniqueRoverId } from './helpers.js';

afterEach(closeAllPeers);

const status = (roverId: string, headers: Record<string, string> = {}): Promise<Response> =>
  SELF.fetch(`${ORIGIN}/rovers/${roverId}/status`, { headers });

async function presence(roverId: string): Promise<RoverPresence> {
  const response = await status(roverId, { Authorization: `Bearer ${await tokenFor('viewer', roverId)}` });
  expect(response.status).toBe(200);
  expect(response.headers.get('cache-control')).toBe('no-store');
  return RoverPresence.parse(await response.json());
}

describe('GET /rovers/<id>/status (presence without a socket)', () => {
  it('says offline, then online with the cameras and how many viewers are connected and watching', async () => {
    const roverId = uniqueRoverId('presence');
    expect(await presence(roverId)).toEqual({ roverId, rover: { online: false, cameras: [] }, viewers: 0, watching: 0 });

    const cameras = [camera('front'), camera('rear', { width: 320, height: 240 })];
    await onlineRover(roverId, cameras);
    const a = await joinedViewer(roverId, 'viewer A');
    await joinedViewer(roverId, 'viewer B');
    a.viewer.send({ type: 'watch', cameraId: 'rear' });
    await sleep(50);
    expect(await presence(roverId)).toEqual({ roverId, rover: { online: true, cameras }, viewers: 2, watching: 1 });
  });

  it('needs a viewer token for this very rover: none 401, another rover\'s 403, a rover token 401', async () => {
    const roverId = uniqueRoverId('presence-auth');
    expect((await status(roverId)).status).toBe(401);
    expect((await status(roverId, { Authorization: `Bearer ${await tokenFor('viewer', `${roverId}-other`)}` })).status).toBe(403);
    expect((await status(roverId, { Authorization: `Bearer ${await tokenFor('rover', roverId)}` })).status).toBe(401);
    expect((await SELF.fetch(`${ORIGIN}/rovers/${roverId}/status`, { method: 'POST' })).status).toBe(405);
  });
});
