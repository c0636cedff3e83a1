/**
 * Data channels end to end: the real sender with its local API socket, a stand-in rover program on that
 * socket, workerd granting the control lease, and two operators in headless Chromium.
 *  - telemetry published by the program reaches both viewers over the peer-to-peer telemetry channel;
 *  - only the lease holder's commands reach the program (a watcher's are refused by the rover itself);
 *  - a viewer whose link does not allow control is refused the lease;
 *  - a lease that is not renewed lapses and the program is told to stop.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, type SenderHandle, type WorkerHandle } from '../../scripts/local-stack.mjs';
import { launchBrowser, openViewer, waitForFrames, type Browser } from './browser.js';
import { connectRoverProgram, type RoverProgram } from './rover-program.js';
import { startLocalWorker, startRover, uniqueRoverId } from './stack.js';

let worker: WorkerHandle;
let browser: Browser;
let dir: string;
const senders: SenderHandle[] = [];
const programs: RoverProgram[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rover-control-'));
  [worker, browser] = await Promise.all([startLocalWorker(), launchBrowser()]);
});

afterAll(async () => {
  for (const program of programs) program.close();
  await Promise.allSettled(senders.map((s) => s.stop('SIGKILL')));
  await browser?.close();
  await worker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function roverWithProgram(roverId: string): Promise<{ sender: SenderHandle; program: RoverProgram }> {
  const socket = join(dir, `${roverId}.sock`);
  const sender = await startRover(worker, roverId, ['--api-socket', socket]);
  senders.push(sender);
  const program = await connectRoverProgram(socket);
  programs.push(program);
  await program.waitFor((line) => line['type'] === 'hello');
  return { sender, program };
}

/** Collect the client's telemetry and control events inside the page. */
async function recordEvents(page: Page): Promise<void> {
  await page.evaluate(() => {
    type Client = { on(event: string, listener: (payload: unknown) => void): void };
    const w = window as unknown as { roverViewer: Client; telemetry: unknown[]; controlEvents: unknown[] };
    w.telemetry = [];
    w.controlEvents = [];
    w.roverViewer.on('telemetry', (message) => w.telemetry.push(message));
    w.roverViewer.on('control', (status) => w.controlEvents.push(status));
  });
}

type ControlView = { holder: string; canControl: boolean; detail: string };
/** The page's client (window.roverViewer), as far as these tests drive it. */
type PageClient = { control: ControlView; requestControl(): void; releaseControl(): void; sendControl(command: object): boolean };
const requestControl = (page: Page): Promise<void> => page.evaluate(() => (window as unknown as { roverViewer: PageClient }).roverViewer.requestControl());
const releaseControl = (page: Page): Promise<void> => page.evaluate(() => (window as unknown as { roverViewer: PageClient }).roverViewer.releaseControl());
const sendControl = (page: Page, command: object): Promise<boolean> =>
  page.evaluate((c) => (window as unknown as { roverViewer: PageClient }).roverViewer.sendControl(c), command);


const control = (page: Page): Promise<ControlView> =>
  page.evaluate(() => (window as unknown as { roverViewer: { control: ControlView } }).roverViewer.control);
/** Wait until the page's control status matches (the page's CSP forbids evaluating strings: pass data). */
const waitForControl = (page: Page, expected: { holder?: string; detail?: RegExp }): Promise<unknown> =>
  page.waitForFunction(
    ({ holder, detail }) => {
      const c = (window as unknown as { roverViewer: { control: ControlView } }).roverViewer.control;
      return (holder === undefined || c.holder === holder) && (detail === undefined || new RegExp(detail).test(c.detail));
    },
    { holder: expected.holder, detail: expected.detail?.source },
    { timeout: 10_000, polling: 50 },
  );

/** An operator page (a link that may drive) playing video, holding control, and the program told so. */
async function driverInControl(roverId: string, program: RoverProgram): Promise<Page> {
  const driver = await openViewer(browser, await worker.viewerLink(roverId, 3600, { control: true }), '?autoconnect=1');
  await waitForFrames(driver, 15, 15_000);
  await requestControl(driver);
  await waitForControl(driver, { holder: 'you' });
  await program.waitFor((line) => line['type'] === 'lease' && line['viewer'] !== null);
  return driver;
}

describe('telemetry and control over data channels', () => {
  it('telemetry from the rover program reaches two viewers', async () => {
    const roverId = uniqueRoverId('telemetry');
    const { program } = await roverWithProgram(roverId);
    const first = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    await waitForFrames(first, 15, 15_000);
    const second = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    await waitForFrames(second, 15, 15_000);
    await Promise.all([recordEvents(first), recordEvents(second)]);

    // 20 samples at ~20 Hz, each with a detection box and rover status.
    for (let i = 0; i < 20; i++) {
      program.publish({
        type: 'telemetry',
        camera: 'main',
        detections: [{ label: 'person', score: 0.9, box: [0.1 + i * 0.01, 0.2, 0.3, 0.4] }],
        status: { battery: 0.8, speed: i / 10 },
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const page of [first, second]) {
      await page.waitForFunction(() => (window as unknown as { telemetry: { status?: { speed?: number } }[] }).telemetry.some((m) => m.status?.speed === 1.9), null, { timeout: 5_000 });
      const received = await page.evaluate(() => (window as unknown as { telemetry: { seq: number; ts: number; camera?: string; detections?: { label: string }[] }[] }).telemetry);
      expect(received.length).toBeGreaterThanOrEqual(15); // an unreliable channel on loopback loses none in practice
      expect(received[0]).toMatchObject({ camera: 'main', detections: [{ label: 'person' }] });
      // In order, and stamped close to now on the server clock.
      expect(received.map((m) => m.seq)).toEqual([...received.map((m) => m.seq)].sort((a, b) => a - b));
      expect(Math.abs(received.at(-1)!.ts - Date.now())).toBeLessThan(5_000);
      // The frame clock arrived too (RTP ↔ capture time), for overlays in sync with the video.
      expect(await page.evaluate(() => (window as unknown as { roverViewer: { frameClock: unknown } }).roverViewer.frameClock)).toMatchObject({ camera: 'main' });
    }
    await Promise.all([first.close(), second.close()]);
  });

  it('one controller at a time: only the lease holder\'s commands reach the program; a watch-only link is refused', async () => {
    const roverId = uniqueRoverId('control');
    const { program } = await roverWithProgram(roverId);
    const driver = await openViewer(browser, await worker.viewerLink(roverId, 3600, { control: true }), '?autoconnect=1');
    await waitForFrames(driver, 15, 15_000);
    const watcher = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    await waitForFrames(watcher, 15, 15_000);
    const rival = await openViewer(browser, await worker.viewerLink(roverId, 3600, { control: true }), '?autoconnect=1');
    await waitForFrames(rival, 15, 15_000);

    expect(await control(driver)).toMatchObject({ holder: 'none', canControl: true });
    expect(await control(watcher)).toMatchObject({ holder: 'none', canControl: false });

    // The watch-only link asks for control: refused by the Durable Object.
    await requestControl(watcher);
    await waitForControl(watcher, { detail: /only allows watching/ });

    // The driver takes control; everyone else sees someone has it, and the program learns the controller.
    await requestControl(driver);
    await waitForControl(driver, { holder: 'you' });
    await waitForControl(watcher, { holder: 'other' });
    await waitForControl(rival, { holder: 'other' });
    const lease = await program.waitFor((line) => line['type'] === 'lease' && line['viewer'] !== null);
    expect(lease['viewer']).toMatch(/^[0-9a-f-]{8}$/);

    // A second operator with a control link is refused while the lease is held.
    await requestControl(rival);
    await waitForControl(rival, { detail: /another operator has control/ });

    // The driver's commands reach the program, in order.
    const sent = await driver.evaluate(async () => {
      const client = (window as unknown as { roverViewer: { sendControl(command: object): boolean } }).roverViewer;
      const results: boolean[] = [];
      for (let i = 0; i < 5; i++) {
        results.push(client.sendControl({ drive: { linear: 0.5, angular: i / 10 } }));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return results;
    });
    expect(sent).toEqual([true, true, true, true, true]);
    await program.waitFor((line) => line['type'] === 'control' && (line['command'] as { drive?: { angular?: number } }).drive?.angular === 0.4);
    const commands = program.lines.filter((line) => line['type'] === 'control');
    expect(commands.map((line) => (line['command'] as { drive: { angular: number } }).drive.angular)).toEqual([0, 0.1, 0.2, 0.3, 0.4]);
    expect(new Set(commands.map((line) => line['viewer']))).toEqual(new Set([lease['viewer']]));

    // The client will not send without the lease; and a watcher forcing a command onto its own control
    // channel is refused by the rover itself (it checks the lease, not the browser).
    expect(await sendControl(watcher, { drive: { linear: 1 } })).toBe(false);
    await watcher.evaluate(() => {
      const channel = (window as unknown as { roverViewer: { controlChannel: RTCDataChannel } }).roverViewer.controlChannel;
      channel.send(JSON.stringify({ type: 'control', seq: 1, command: { drive: { linear: 1, hijack: true } } }));
    });
    await waitForControl(watcher, { detail: /does not see your control lease/ });
    expect(program.lines.some((line) => JSON.stringify(line).includes('hijack'))).toBe(false);

    // Release: the program is told to stop, and control is free for the next operator.
    await releaseControl(driver);
    expect(await program.waitFor((line) => line['type'] === 'stop')).toEqual({ type: 'stop', reason: 'released' });
    await waitForControl(rival, { holder: 'none' });
    await Promise.all([driver.close(), watcher.close(), rival.close()]);
  });

  it('a lease that is not renewed lapses: the program gets a stop and the driver sees control is gone', async () => {
    const roverId = uniqueRoverId('lapse');
    const { program } = await roverWithProgram(roverId);
    const driver = await driverInControl(roverId, program);
    // Renewals keep it alive past its first term.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    expect(program.lines.some((line) => line['type'] === 'stop')).toBe(false);
    expect(await control(driver)).toMatchObject({ holder: 'you' });

    // The operator's browser stops renewing (a frozen tab, a dead laptop) but stays connected.
    const stoppedAt = Date.now();
    await driver.evaluate(() => clearInterval((window as unknown as { roverViewer: { leaseTimer: number } }).roverViewer.leaseTimer));
    const stop = await program.waitFor((line) => line['type'] === 'stop', 8_000);
    expect(stop).toEqual({ type: 'stop', reason: 'lease-lapsed' });
    const lapsedAfter = Date.now() - stoppedAt;
    expect(lapsedAfter).toBeGreaterThan(1_000);
    expect(lapsedAfter).toBeLessThan(5_000);
    await waitForControl(driver, { holder: 'none' });
    // Commands after the lapse go nowhere.
    expect(await sendControl(driver, { drive: { linear: 1 } })).toBe(false);
    console.log(`lease lapsed ${lapsedAfter} ms after the last renewal was due`);
    await driver.close();
  });

  it('the controller closing its page stops the rover at once', async () => {
    const roverId = uniqueRoverId('controller-gone');
    const { program } = await roverWithProgram(roverId);
    const driver = await driverInControl(roverId, program);
    const closedAt = Date.now();
    await driver.close();
    expect(await program.waitFor((line) => line['type'] === 'stop', 5_000)).toEqual({ type: 'stop', reason: 'controller-left' });
    expect(Date.now() - closedAt).toBeLessThan(2_500);
  });

  it('the operator page draws detections in step with the video, shows rover status, and drives with the keyboard', async () => {
    const roverId = uniqueRoverId('operator');
    const { program } = await roverWithProgram(roverId);
    const page = await openViewer(browser, await worker.viewerLink(roverId, 3600, { control: true }), '?autoconnect=1');
    await page.setViewportSize({ width: 1280, height: 900 });
    await waitForFrames(page, 30, 15_000);
    type Draw = { seq: number; frameCaptureTs: number | null; sampleTs: number; boxes: number } | null;
    const lastDraw = (): Promise<Draw> => page.evaluate(() => (window as unknown as { roverOverlay: { lastDraw: Draw } }).roverOverlay.lastDraw);

    // A detection stamped 1.5 s in the future (on the rover's clock, as a slow camera pipeline would) must
    // wait for its frame: the overlay maps the frame on screen to its capture time and holds the box back.
    const publishedAt = Date.now();
    program.publish({ type: 'telemetry', ts: publishedAt + 1_500, camera: 'main', detections: [{ label: 'person', score: 0.92, box: [0.25, 0.25, 0.5, 0.5] }], status: { battery: 0.8, speed: 0 } });
    await page.waitForFunction(() => document.querySelector('#rover-status [data-key="battery"]')?.textContent === 'battery 80%', null, { timeout: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(await lastDraw()).toBeNull();
    await page.waitForFunction(() => (window as unknown as { roverOverlay: { lastDraw: Draw } }).roverOverlay.lastDraw !== null, null, { timeout: 5_000, polling: 20 });
    const drawn = (await lastDraw())!;
    const drawnAfter = Date.now() - publishedAt;
    expect(drawn.boxes).toBe(1);
    expect(drawn.frameCaptureTs).not.toBeNull(); // synced by the frame clock, not "newest wins"
    expect(drawn.frameCaptureTs!).toBeGreaterThanOrEqual(drawn.sampleTs - 25);
    expect(drawnAfter).toBeGreaterThan(1_200);
    console.log(`detection stamped +1500 ms drawn after ${drawnAfter} ms, on the frame captured at +${drawn.frameCaptureTs! - publishedAt} ms`);
    // The box is really on the canvas: its left edge, halfway down, is painted.
    const painted = await page.evaluate(() => {
      const canvas = document.getElementById('detections') as HTMLCanvasElement;
      const video = document.getElementById('video') as HTMLVideoElement;
      const scale = Math.min(canvas.clientWidth / video.videoWidth, canvas.clientHeight / video.videoHeight);
      const left = (canvas.clientWidth - video.videoWidth * scale) / 2 + 0.25 * video.videoWidth * scale;
      const middle = (canvas.clientHeight - video.videoHeight * scale) / 2 + 0.5 * video.videoHeight * scale;
      const ratio = canvas.width / canvas.clientWidth;
      const pixel = canvas.getContext('2d')!.getImageData(Math.round(left * ratio), Math.round(middle * ratio), 1, 1).data;
      const away = canvas.getContext('2d')!.getImageData(Math.round((left - 20) * ratio), Math.round(middle * ratio), 1, 1).data;
      return { edge: pixel[3], away: away[3] };
    });
    expect(painted.edge).toBeGreaterThan(0);
    expect(painted.away).toBe(0);

    // Take control with the button, drive with the arrow key, let go: the program sees forward, then zero.
    await page.click('#take-control');
    await page.waitForFunction(() => document.querySelector('.control-panel')?.getAttribute('data-holder') === 'you', null, { timeout: 5_000 });
    expect(await page.textContent('#control-status')).toMatch(/You are driving/);
    await page.focus('body');
    await page.keyboard.down('ArrowUp');
    await program.waitFor((line) => line['type'] === 'control' && (line['command'] as { drive?: { linear?: number } }).drive?.linear === 1);
    await new Promise((resolve) => setTimeout(resolve, 350));
    await page.keyboard.up('ArrowUp');
    await program.waitFor((line) => {
      const index = program.lines.indexOf(line);
      return index > 0 && line['type'] === 'control' && (line['command'] as { drive?: { linear?: number } }).drive?.linear === 0;
    });
    const forward = program.lines.filter((line) => line['type'] === 'control' && (line['command'] as { drive: { linear: number } }).drive.linear === 1);
    expect(forward.length).toBeGreaterThanOrEqual(3); // repeated while held (10 Hz), so a lost one is replaced

    // Keep a box on screen for the picture.
    program.publish({ type: 'telemetry', camera: 'main', detections: [{ label: 'person', score: 0.92, box: [0.25, 0.25, 0.5, 0.5] }, { label: 'rock', score: 0.71, box: [0.05, 0.6, 0.15, 0.2] }], status: { battery: 0.8, speed: 0.5, mode: 'driving' } });
    await page.waitForFunction(() => (window as unknown as { roverOverlay: { lastDraw: Draw } }).roverOverlay.lastDraw?.boxes === 2, null, { timeout: 5_000 });
    const png = await page.screenshot({ type: 'png' });
    expect(png.length).toBeGreaterThan(20_000);
    if (process.env['UPDATE_SCREENSHOTS'] === '1') {
      mkdirSync(join(repoRoot, 'docs', 'screenshots'), { recursive: true });
      writeFileSync(join(repoRoot, 'docs', 'screenshots', 'operator-control.png'), png);
    }
    await page.click('#take-control'); // release
    expect(await program.waitFor((line) => line['type'] === 'stop')).toEqual({ type: 'stop', reason: 'released' });
    await page.close();
  });
});
