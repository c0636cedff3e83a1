/**
 * The glass-to-glass meter end to end: the sender's `meter` source stamps frames, real x264 encodes them,
 * real Chromium decodes them, and the hosted viewer's meter reads the stamps back and shows latency.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SenderHandle, WorkerHandle } from '../../scripts/local-stack.mjs';
import { launchBrowser, openViewer, probe, readLatency, waitForFrames, type Browser } from './browser.js';
import { startLocalWorker, startRover, uniqueRoverId } from './stack.js';

let worker: WorkerHandle;
let browser: Browser;
const senders: SenderHandle[] = [];

beforeAll(async () => {
  [worker, browser] = await Promise.all([startLocalWorker(), launchBrowser()]);
});

afterAll(async () => {
  await Promise.allSettled(senders.map((s) => s.stop('SIGKILL')));
  await browser?.close();
  await worker?.stop();
});

describe('glass-to-glass latency meter', () => {
  it('reads the capture time from every frame and shows live latency in the viewer', async () => {
    const roverId = uniqueRoverId('meter');
    senders.push(await startRover(worker, roverId, ['--source', 'meter']));
    const page = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    await waitForFrames(page, 30, 15_000);
    await readLatency(page, true);
    await waitForFrames(page, 90, 10_000);
    const readout = await readLatency(page);
    const seen = await probe(page);
    expect([seen.width, seen.height]).toEqual([640, 360]);
    // Nearly every presented frame carries a readable code (a few may be read mid-transition).
    expect(readout.glassToGlass.length).toBeGreaterThanOrEqual(60);
    expect(readout.unreadable).toBeLessThanOrEqual(readout.glassToGlass.length * 0.1);
    // Plausible on loopback: positive (the clock sync works: no frame shown before it was captured, within
    // the sync's error) and far below a second.
    const slack = (readout.clockRoundTripMs ?? 0) / 2 + 2;
    for (const ms of readout.glassToGlass) {
      expect(ms).toBeGreaterThan(-slack);
      expect(ms).toBeLessThan(1_000);
    }
    expect(readout.clockRoundTripMs).not.toBeNull();
    await page.waitForFunction(() => /^Glass-to-glass \d+ ms$/.test(document.getElementById('latency')?.textContent ?? ''), null, { timeout: 5_000 });
    expect(await page.isVisible('#latency')).toBe(true);
    const sorted = [...readout.glassToGlass].sort((a, b) => a - b);
    console.log(`meter: ${sorted.length} frames, glass-to-glass median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} ms, unreadable ${readout.unreadable}`);
    await page.close();
  });

  it('shows no latency for a camera without a timecode, and reads no bogus figures from it', async () => {
    const roverId = uniqueRoverId('no-meter');
    senders.push(await startRover(worker, roverId));
    const page = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    await waitForFrames(page, 60, 15_000);
    await page.waitForFunction(() => /\d+ fps/.test(document.getElementById('stats')?.textContent ?? ''));
    expect(await page.isVisible('#latency')).toBe(false);
    expect((await readLatency(page)).glassToGlass).toEqual([]);
    await page.close();
  });
});
