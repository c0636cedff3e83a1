/**
 * The Worker restarts (a deploy disconnects every WebSocket): the rover and the viewers reconnect on their
 * own with backoff and jitter, and video keeps going (the media path does not run through the Worker) or
 * resumes after a fresh negotiation. Real workerd, real sender, real Chromium.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, generateSecrets, startWorker, type SenderHandle, type WorkerHandle } from '../../scripts/local-stack.mjs';
import { launchBrowser, openViewer, probe, waitForFrames, type Browser } from './browser.js';
import { startRover, uniqueRoverId } from './stack.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

describe('Worker restart', () => {
  it('rover and viewer reconnect by themselves; video keeps playing; new viewers can join', async () => {
    const port = await freePort();
    const secrets = generateSecrets();
    const persistDir = mkdtempSync(join(tmpdir(), 'rover-restart-'));
    cleanups.push(async () => rmSync(persistDir, { recursive: true, force: true }));
    let worker: WorkerHandle = await startWorker({ port, secrets, persistDir });
    cleanups.push(() => worker.stop());
    const browser: Browser = await launchBrowser();
    cleanups.push(() => browser.close());
    const roverId = uniqueRoverId('restart');
    const sender: SenderHandle = await startRover(worker, roverId);
    cleanups.push(() => sender.stop('SIGKILL'));

    const page = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    await waitForFrames(page, 30, 20_000);
    const connectsBefore = sender.output.filter((line) => line.includes('connected to signaling server')).length;

    // "Deploy": the Worker goes away for two seconds, then the new version answers on the same address.
    await worker.stop();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    worker = await startWorker({ port, secrets, persistDir });
    const restartedAt = Date.now();

    // The sender reconnects on its own (with backoff and jitter: the delays it chose are logged).
    const reconnected = async (): Promise<boolean> =>
      sender.output.filter((line) => line.includes('connected to signaling server')).length > connectsBefore;
    while (!(await reconnected())) {
      if (Date.now() - restartedAt > 30_000) throw new Error(`sender did not reconnect:\n${sender.output.slice(-20).join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const reconnectMs = Date.now() - restartedAt;
    const delays = sender.output.filter((line) => /reconnecting .*inMs=\d+/.test(line)).map((line) => Number(/inMs=(\d+)/.exec(line)![1]));
    expect(delays.length).toBeGreaterThanOrEqual(1);

    // The viewer's page never reloaded: it is live again and frames keep coming.
    await page.waitForFunction(() => document.getElementById('state')?.dataset['state'] === 'live', null, { timeout: 20_000 });
    await waitForFrames(page, 30, 20_000);
    console.log(`worker restart: sender reconnected ≤ ${reconnectMs} ms after the new Worker was up (delays chosen: ${delays.join(', ')} ms)`);

    // And the room works for newcomers.
    const newcomer = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    await waitForFrames(newcomer, 30, 20_000);
    expect((await probe(page)).state).toBe('live');
  });
});
