/**
 * SignalingClient against a server that accepts TCP but never answers the upgrade — what an attempt made
 * during a link outage sees until its SYNs get through. The client must give up on such a handshake
 * quickly and retry promptly, so the link's return is noticed within seconds, not after a 10 s timeout
 * plus a grown backoff.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { createLogger } from '../../sender/src/log.js';
import { QUICK_HANDSHAKE_MS, SignalingClient } from '../../sender/src/signaling.js';

let server: Server | undefined;
let client: SignalingClient | undefined;
const held: Socket[] = [];

afterEach(async () => {
  await client?.stop();
  for (const socket of held.splice(0)) socket.destroy();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

describe('SignalingClient reconnects', () => {
  it('gives up on a silent handshake after QUICK_HANDSHAKE_MS, retries at once without growing backoff, and connects when the path answers', async () => {
    let answering = false;
    const attempts: number[] = [];
    const wss = new WebSocketServer({ noServer: true });
    server = createServer();
    server.on('upgrade', (request, socket, head) => {
      attempts.push(Date.now());
      if (!answering) {
        held.push(socket as Socket); // a black hole: the handshake never completes
        return;
      }
      wss.handleUpgrade(request, socket, head, (ws) => ws.on('error', () => undefined));
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const lines: string[] = [];
    client = new SignalingClient({ url: `ws://127.0.0.1:${port}/rovers/x/ws`, log: createLogger('info', {}, (line) => lines.push(line)) });
    const opened = new Promise<number>((resolve) => client!.once('open', () => resolve(Date.now())));
    const started = Date.now();
    client.start();

    // Three silent attempts: each abandoned after the quick timeout, the next one ~0.25–0.5 s later.
    await expect.poll(() => attempts.length, { timeout: 4 * (QUICK_HANDSHAKE_MS + 600), interval: 50 }).toBeGreaterThanOrEqual(3);
    const gaps = attempts.slice(1, 3).map((at, i) => at - attempts[i]!);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(QUICK_HANDSHAKE_MS);
      expect(gap).toBeLessThan(QUICK_HANDSHAKE_MS + 800);
    }
    expect(lines.filter((line) => /reconnecting.*after=.handshake timeout/.test(line)).length).toBeGreaterThanOrEqual(2);

    // The path comes back: connected within one quick timeout and a short pause.
    answering = true;
    const backAt = Date.now();
    const openedAt = await opened;
    expect(openedAt - backAt).toBeLessThan(QUICK_HANDSHAKE_MS + 800);
    expect(openedAt - started).toBeLessThan(6 * QUICK_HANDSHAKE_MS);
  }, 30_000);
});
