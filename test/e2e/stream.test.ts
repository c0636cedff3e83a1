/**
 * The whole path with real parts: workerd (wrangler dev) + the real sender (GStreamer videotestsrc →
 * x264 → node-datachannel) + headless Chromium on the hosted viewer page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SenderHandle, WorkerHandle } from '../../scripts/local-stack.mjs';
import { connectAndTimeFirstFrame, launchBrowser, openViewer, probe, readLatency, viewerState, waitForDecodedFrames, waitForFrames, type Browser } from './browser.js';
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

async function rover(roverId: string, extraArgs: string[] = []): Promise<SenderHandle> {
  const sender = await startRover(worker, roverId, extraArgs);
  senders.push(sender);
  return sender;
}

describe('live video in a real browser', () => {
  it('plays when the viewer opens the page before the sender connects', async () => {
    const roverId = uniqueRoverId('viewer-first');
    const page = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    await page.waitForFunction(() => document.getElementById('state')?.dataset['state'] === 'offline');
    expect(await page.textContent('#state-detail')).toContain('offline');

    await rover(roverId);
    const elapsed = await waitForFrames(page, 60, 10_000);
    const seen = await probe(page);
    expect(seen.width).toBe(640);
    expect(seen.height).toBe(360);
    expect(seen.state).toBe('live');
    console.log(`viewer-first: 60 frames ${elapsed} ms after the sender connected`);
    await page.close();
  });

  it('plays when the sender is already streaming before the viewer connects, and shows stats', async () => {
    const roverId = uniqueRoverId('sender-first');
    await rover(roverId);
    const page = await openViewer(browser, await worker.viewerLink(roverId));
    await page.waitForFunction(() => document.getElementById('state')?.dataset['state'] === 'waiting');
    const ttff = await connectAndTimeFirstFrame(page);
    await waitForFrames(page, 60, 10_000);
    const seen = await probe(page);
    expect([seen.width, seen.height]).toEqual([640, 360]);
    await page.waitForFunction(() => /640×360 · \d+ fps · \d+ kbit\/s · RTT \d+ ms · \d+ lost/.test(document.getElementById('stats')?.textContent ?? ''));
    console.log(`sender-first: connect → first frame ${Math.round(ttff)} ms`);
    await page.close();
  });

  it('serves a second viewer while the first keeps playing, and frees each call when its viewer leaves', async () => {
    const roverId = uniqueRoverId('two-viewers');
    const sender = await rover(roverId);
    const first = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    await waitForFrames(first, 30, 10_000);
    const second = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    // Both must keep playing at the same time: the second on screen (in front), the first decoding in its
    // background tab.
    await Promise.all([waitForDecodedFrames(first, 60, 10_000), waitForFrames(second, 60, 10_000)]);
    expect((await probe(second)).width).toBe(640);
    const startedCalls = sender.output.filter((line) => line.includes('starting call')).length;
    expect(startedCalls).toBe(2);
    await Promise.all([first.close(), second.close()]);
    // The sender tears down both peer connections: whichever comes first, the browser's DTLS close
    // ("peer connection closed") or the DO's viewer-leave ("viewer left").
    const deadline = Date.now() + 5_000;
    const ended = (): number =>
      sender.output.filter((line) => /call ended .*reason="(viewer left|peer connection closed)"/.test(line)).length;
    while (ended() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(ended()).toBe(2);
  });

  it('recovers without a page reload when the sender restarts', async () => {
    const roverId = uniqueRoverId('restart');
    const firstSender = await rover(roverId);
    const page = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    await waitForFrames(page, 30, 10_000);

    const stopStarted = Date.now();
    await firstSender.stop('SIGTERM');
    const exitCode = await firstSender.exited;
    const shutdownMs = Date.now() - stopStarted;
    expect(exitCode).toBe(0);
    expect(shutdownMs).toBeLessThan(2_500);
    await page.waitForFunction(() => document.getElementById('state')?.dataset['state'] !== 'live', null, { timeout: 10_000 });
    const framesWhileDown = (await probe(page)).framesShown;

    await rover(roverId);
    await waitForFrames(page, 60, 10_000);
    expect((await probe(page)).framesShown).toBeGreaterThanOrEqual(framesWhileDown + 60);
    expect(await viewerState(page)).toBe('live');
    await page.close();
  });
});

/** The glass-to-glass meter end to end: the `meter` source stamps frames, x264 encodes, Chromium decodes, the viewer reads. */
describe('glass-to-glass latency meter', () => {
  it('reads the capture time from every frame and shows live latency in the viewer', async () => {
    const roverId = uniqueRoverId('meter');
    await rover(roverId, ['--source', 'meter']);
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
    await rover(roverId);
    const page = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    await waitForFrames(page, 60, 15_000);
    await page.waitForFunction(() => /\d+ fps/.test(document.getElementById('stats')?.textContent ?? ''));
    expect(await page.isVisible('#latency')).toBe(false);
    expect((await readLatency(page)).glassToGlass).toEqual([]);
    await page.close();
  });
});

describe('several cameras on one rover', () => {
  it('two cameras of different sizes: viewers see both at once, and one switches without disturbing the other', async () => {
    const roverId = uniqueRoverId('two-cameras');
    const sender = await rover(roverId, [
      '--camera', 'id=front,label=Front,source=test:ball',
      '--camera', 'id=rear,label=Rear,width=320,height=240,fps=15,bitrate=300,source=test:smpte',
    ]);
    expect(sender.output.filter((line) => /camera streaming/.test(line))).toHaveLength(2); // an encoder each

    const link = await worker.viewerLink(roverId);
    const front = await openViewer(browser, link, '?autoconnect=1&camera=front');
    await waitForFrames(front, 30, 15_000);
    const rear = await openViewer(browser, link, '?autoconnect=1&camera=rear');
    // Both play at the same time, each at its own camera's size.
    await Promise.all([waitForFrames(front, 30, 10_000), waitForFrames(rear, 15, 10_000)]);
    expect(await probe(front)).toMatchObject({ width: 640, height: 360, state: 'live' });
    expect(await probe(rear)).toMatchObject({ width: 320, height: 240, state: 'live' });

    // The page lists both cameras; picking the other one switches this viewer only.
    await front.bringToFront();
    expect(await front.locator('#camera option').allTextContents()).toEqual(['Front (640×360)', 'Rear (320×240)']);
    await front.selectOption('#camera', 'rear');
    await front.waitForFunction(() => document.querySelector('video')?.videoWidth === 320, null, { timeout: 10_000 });
    await waitForFrames(front, 15, 10_000);
    expect(await probe(front)).toMatchObject({ width: 320, height: 240, state: 'live' });
    expect(new URL(front.url()).searchParams.get('camera')).toBe('rear');
    // The other viewer kept playing throughout.
    await waitForFrames(rear, 15, 5_000);
    expect((await probe(rear)).width).toBe(320);
    await Promise.all([front.close(), rear.close()]);
  });
});

describe('viewer controls', () => {
  it('saves a snapshot as a PNG at the video\'s own size, and toggles fullscreen (button and "f")', async () => {
    const roverId = uniqueRoverId('controls');
    await rover(roverId);
    const page = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    await waitForFrames(page, 30, 15_000);

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#snapshot')]);
    expect(download.suggestedFilename()).toMatch(new RegExp(`^${roverId}-main-.*\\.png$`));
    const stream = await download.createReadStream();
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    const png = Buffer.concat(chunks);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([640, 360]); // IHDR width, height

    await page.click('#fullscreen');
    await page.waitForFunction(() => document.fullscreenElement !== null, null, { timeout: 5_000 });
    await page.keyboard.press('f');
    await page.waitForFunction(() => document.fullscreenElement === null, null, { timeout: 5_000 });
    await page.close();
  });
});
