/**
 * The hosted viewer page as a person uses it, in headless Chromium against local workerd and the real sender
 * with two test-pattern cameras of different sizes: the camera grid and the single view (mouse, keyboard,
 * address), the stats overlay, a phone-sized screen, and failures explained on the video area.
 *
 * Screenshots of each key state go to a temp dir (and, with UPDATE_SCREENSHOTS=1, to docs/screenshots/ for
 * the README). They are evidence for people, not the assertions: every test asserts DOM facts and frames.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser as PlaywrightBrowser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, type SenderHandle, type WorkerHandle } from '../../scripts/local-stack.mjs';
import { explainRefusal } from '../../viewer/src/client.js';
import { describeCondition } from '../../viewer/src/messages.js';
import { missingBrowserFeatures } from '../../viewer/src/support.js';
import { CHROMIUM_ARGS, CHROMIUM_PATH, launchBrowser, openViewer, probe, waitForFrames, type Browser } from './browser.js';
import { startLocalWorker, startRover, uniqueRoverId } from './stack.js';

const TWO_CAMERAS = [
  '--camera', 'id=front,label=Front,source=test:ball', // 640×360 from VIDEO_ARGS
  '--camera', 'id=rear,label=Rear,width=320,height=240,fps=15,bitrate=300,source=test:smpte',
];
const SIZES = { front: [640, 360], rear: [320, 240] } as const;
const PHONE = { width: 390, height: 844 };

let worker: WorkerHandle;
let browser: Browser;
let phoneBrowser: PlaywrightBrowser | undefined;
const senders: SenderHandle[] = [];
let twoCameraRover: string;
let twoCameraSender: SenderHandle;
let camera: ChildProcess | undefined;
const shotsDir = mkdtempSync(join(tmpdir(), 'rover-viewer-ui-'));
const docsDir = process.env['UPDATE_SCREENSHOTS'] === '1' ? join(repoRoot, 'docs', 'screenshots') : null;

beforeAll(async () => {
  [worker, browser] = await Promise.all([startLocalWorker(), launchBrowser()]);
  twoCameraRover = uniqueRoverId('ui-two-cameras');
  twoCameraSender = await rover(twoCameraRover, TWO_CAMERAS);
});

afterAll(async () => {
  camera?.kill('SIGKILL');
  await Promise.allSettled(senders.map((sender) => sender.stop('SIGKILL')));
  await phoneBrowser?.close();
  await browser?.close();
  await worker?.stop();
  if (docsDir === null) rmSync(shotsDir, { recursive: true, force: true });
  else console.log(`viewer-ui screenshots: ${shotsDir} and ${docsDir}`);
});

async function rover(roverId: string, args: string[] = []): Promise<SenderHandle> {
  const sender = await startRover(worker, roverId, args);
  senders.push(sender);
  return sender;
}

/**
 * Screenshot the page; assert it is a real picture of the expected size (not a blank or failed capture).
 * `docsName`: also written to docs/screenshots/ when UPDATE_SCREENSHOTS=1 (for the README).
 */
async function screenshot(page: Page, name: string, docsName?: string): Promise<void> {
  const png = await page.screenshot({ type: 'png' });
  writeFileSync(join(shotsDir, `${name}.png`), png);
  expect(png.subarray(1, 4).toString()).toBe('PNG');
  const { width, height, scale } = await page.evaluate(() => ({ width: innerWidth, height: innerHeight, scale: devicePixelRatio }));
  expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([Math.round(width * scale), Math.round(height * scale)]);
  // A one-colour or empty page compresses to a few KB; a page with video, text and controls does not.
  expect(png.length).toBeGreaterThan(20_000);
  if (docsDir !== null && docsName !== undefined) {
    expect(png.length, 'small enough to keep in git').toBeLessThan(300_000);
    mkdirSync(docsDir, { recursive: true });
    writeFileSync(join(docsDir, `${docsName}.png`), png);
  }
}

/** Frame counters on every tile's own <video> (requestVideoFrameCallback: what is really presented). */
async function countTileFrames(page: Page): Promise<void> {
  await page.waitForFunction(() => document.querySelectorAll('.tile video').length === 2, null, { timeout: 15_000 });
  await page.evaluate(`(() => {
    window.tileFrames = {};
    for (const tile of document.querySelectorAll('.tile')) {
      const id = tile.dataset.camera;
      const video = tile.querySelector('video');
      window.tileFrames[id] = 0;
      const tick = () => { window.tileFrames[id]++; video.requestVideoFrameCallback(tick); };
      video.requestVideoFrameCallback(tick);
    }
  })()`);
}

async function tileFrames(page: Page): Promise<Record<string, number>> {
  return page.evaluate(() => ({ ...(window as unknown as { tileFrames: Record<string, number> }).tileFrames }));
}

/** Both tiles present at least `count` more frames than now. */
async function waitForTileFrames(page: Page, count: number, timeoutMs = 15_000): Promise<void> {
  const base = await tileFrames(page);
  await page.waitForFunction(
    ({ base, count }) => {
      const now = (window as unknown as { tileFrames: Record<string, number> }).tileFrames;
      return Object.keys(base).every((id) => (now[id] ?? 0) >= (base[id] ?? 0) + count);
    },
    { base, count },
    { timeout: timeoutMs, polling: 100 },
  );
}

async function tileVideoSizes(page: Page): Promise<Record<string, [number, number]>> {
  return page.evaluate(() =>
    Object.fromEntries(
      [...document.querySelectorAll<HTMLElement>('.tile')].map((tile) => {
        const video = tile.querySelector('video')!;
        return [tile.dataset['camera'], [video.videoWidth, video.videoHeight]];
      }),
    ),
  );
}

/** Every tile shows figures from a full stats interval (the first sample has no bitrate yet). */
async function waitForTileStats(page: Page): Promise<void> {
  await page.waitForFunction(
    () => [...document.querySelectorAll('.tile .tile-stats')].every((line) => / [1-9]\d* kbit\/s$/.test(line.textContent ?? '')),
    null,
    { timeout: 10_000 },
  );
}

async function activeElement(page: Page): Promise<{ id: string; camera: string | null; outline: string }> {
  return page.evaluate(() => {
    const active = document.activeElement as HTMLElement | null;
    return { id: active?.id ?? '', camera: active?.dataset['camera'] ?? null, outline: active ? getComputedStyle(active).outlineStyle : 'none' };
  });
}

/** Press Tab until `matches` holds for the focused element (every control must be reachable). */
async function tabTo(page: Page, matches: (focused: { id: string; camera: string | null }) => boolean, maxPresses = 25): Promise<void> {
  for (let i = 0; i < maxPresses; i++) {
    await page.keyboard.press('Tab');
    if (matches(await activeElement(page))) return;
  }
  throw new Error('Tab never reached the element');
}

async function isHidden(page: Page, selector: string): Promise<boolean> {
  return !(await page.isVisible(selector));
}

function callsStarted(sender: SenderHandle, camera: string): number {
  return sender.output.filter((line) => line.includes('starting call') && line.includes(`camera=${camera}`)).length;
}

async function noHorizontalOverflow(page: Page): Promise<{ scrollWidth: number; innerWidth: number; widest: number }> {
  return page.evaluate(() => ({
    scrollWidth: document.scrollingElement!.scrollWidth,
    innerWidth,
    // The right edge of the widest visible element: anything past the viewport would be cut off or scroll.
    widest: Math.max(...[...document.querySelectorAll<HTMLElement>('body *')].filter((el) => el.offsetParent !== null).map((el) => el.getBoundingClientRect().right)),
  }));
}

describe('camera grid and single view', () => {
  it('shows every camera at once in a grid, each tile playing at its own size with its label and state', async () => {
    const before = { front: callsStarted(twoCameraSender, 'front'), rear: callsStarted(twoCameraSender, 'rear') };
    const page = await openViewer(browser, await worker.viewerLink(twoCameraRover), '?autoconnect=1');
    // Several cameras and no view asked for: the grid.
    await page.waitForFunction(() => document.body.dataset['view'] === 'grid', null, { timeout: 15_000 });
    await countTileFrames(page);
    await waitForTileFrames(page, 15);
    expect(await page.isVisible('#grid-view')).toBe(true);
    expect(await isHidden(page, '#single-view')).toBe(true);
    expect(await page.locator('.tile .tile-label').allTextContents()).toEqual(['Front', 'Rear']);
    expect(await page.locator('.tile .tile-size').allTextContents()).toEqual(['640×360', '320×240']);
    expect(await tileVideoSizes(page)).toEqual(SIZES);
    await page.waitForFunction(() => [...document.querySelectorAll('.tile .state')].every((badge) => badge.textContent === 'Live'));
    expect(await page.textContent('#state')).toBe('Live · 2 cameras');
    expect(await page.getAttribute('.tile[data-camera="rear"]', 'aria-label')).toBe('Rear camera: Live. Open single view.');
    // With the stats overlay on (the default), each tile shows its own figures.
    await waitForTileStats(page);
    expect(await page.textContent('.tile[data-camera="rear"] .tile-stats')).toMatch(/^320×240 · [1-9]\d* fps · [1-9]\d* kbit\/s$/);
    // One call per camera for this page, no more (a duplicate "watch" would start a second one).
    expect({ front: callsStarted(twoCameraSender, 'front') - before.front, rear: callsStarted(twoCameraSender, 'rear') - before.rear }).toEqual({ front: 1, rear: 1 });
    await screenshot(page, 'desktop-grid', 'desktop-grid');
    await page.close();
  });

  it('opens a camera with the keyboard (Tab to its tile, Enter) and returns with Escape; only shown cameras stream', async () => {
    const page = await openViewer(browser, await worker.viewerLink(twoCameraRover), '?autoconnect=1&view=grid');
    await countTileFrames(page);
    await waitForTileFrames(page, 10);

    await tabTo(page, (focused) => focused.camera === 'rear');
    expect((await activeElement(page)).outline).not.toBe('none'); // focus is visible
    const endedBefore = twoCameraSender.output.filter((line) => line.includes('call ended')).length;
    await page.keyboard.press('Enter');

    // The single view of the rear camera: big video playing at 320×240, address and hooks follow.
    expect(await page.isVisible('#single-view')).toBe(true);
    expect(await isHidden(page, '#grid-view')).toBe(true);
    await page.waitForFunction(() => document.querySelector<HTMLVideoElement>('#video')?.videoWidth === 320, null, { timeout: 10_000 });
    await waitForFrames(page, 15, 10_000);
    expect(await probe(page)).toMatchObject({ width: 320, height: 240, state: 'live' });
    expect(new URL(page.url()).searchParams.get('view')).toBe('single');
    expect(new URL(page.url()).searchParams.get('camera')).toBe('rear');
    expect(await page.evaluate(() => (window as unknown as { roverViewer: { cameraId: string } }).roverViewer.cameraId)).toBe('rear');
    expect(await page.inputValue('#camera')).toBe('rear');
    expect((await activeElement(page)).id).toBe('grid-button'); // keyboard users land next to the way back
    // The front camera is off screen: its call ends, so the rover does not stream it for nobody.
    await expect.poll(() => twoCameraSender.output.filter((line) => line.includes('call ended')).length, { timeout: 10_000 }).toBeGreaterThan(endedBefore);

    await page.keyboard.press('Escape');
    expect(await page.isVisible('#grid-view')).toBe(true);
    expect(await isHidden(page, '#single-view')).toBe(true);
    expect(await activeElement(page)).toMatchObject({ camera: 'rear' }); // focus back on the tile it came from
    expect(new URL(page.url()).searchParams.get('view')).toBe('grid');
    await waitForTileFrames(page, 10); // both play again

    // "g" opens the focused tile, and goes back; the browser's Back button returns to the grid too.
    await page.keyboard.press('g');
    expect(await page.isVisible('#single-view')).toBe(true);
    expect(await page.evaluate(() => (window as unknown as { roverViewer: { cameraId: string } }).roverViewer.cameraId)).toBe('rear');
    await page.goBack();
    await page.waitForFunction(() => document.body.dataset['view'] === 'grid');
    // A click on a tile opens it as well.
    await page.click('.tile[data-camera="front"]');
    await page.waitForFunction(() => document.querySelector<HTMLVideoElement>('#video')?.videoWidth === 640, null, { timeout: 10_000 });
    await page.click('#grid-button');
    expect(await page.isVisible('#grid-view')).toBe(true);
    await page.close();
  });

  it('the single view shows live stats on the video (toggle: button and "i"), all controls reachable by Tab', async () => {
    const page = await openViewer(browser, await worker.viewerLink(twoCameraRover), '?autoconnect=1&view=single&camera=front');
    await waitForFrames(page, 30, 15_000);
    expect(await page.isVisible('#single-view')).toBe(true);
    await page.waitForFunction(() => /^640×360 · [1-9]\d* fps · [1-9]\d* kbit\/s · RTT \d+ ms · \d+ lost$/.test(document.getElementById('stats')?.textContent ?? ''), null, {
      timeout: 10_000,
    });
    expect(await page.isVisible('#stats-overlay')).toBe(true);
    expect(await page.textContent('#path')).toBe('Direct');
    expect(await page.isVisible('#path')).toBe(true);
    expect(await page.getAttribute('#stats-toggle', 'aria-pressed')).toBe('true');
    expect(await isHidden(page, '#message')).toBe(true); // nothing covers live video
    // The overlay lies on the video.
    const [stage, overlay] = await Promise.all([page.locator('#stage').boundingBox(), page.locator('#stats-overlay').boundingBox()]);
    expect(overlay!.x).toBeGreaterThanOrEqual(stage!.x);
    expect(overlay!.y).toBeGreaterThanOrEqual(stage!.y);
    expect(overlay!.y + overlay!.height).toBeLessThanOrEqual(stage!.y + stage!.height);
    await screenshot(page, 'desktop-single-stats', 'desktop-single-stats');

    // Every control is reachable by Tab, with visible focus.
    const reached = new Set<string>();
    for (let i = 0; i < 15; i++) {
      await page.keyboard.press('Tab');
      const focused = await activeElement(page);
      if (focused.id) {
        reached.add(focused.id);
        expect(focused.outline, `focus on #${focused.id} is visible`).not.toBe('none');
      }
    }
    expect([...reached]).toEqual(expect.arrayContaining(['grid-button', 'connect', 'camera', 'snapshot', 'fullscreen', 'stats-toggle']));

    await page.focus('#stats-toggle');
    await page.keyboard.press('i');
    expect(await isHidden(page, '#stats-overlay')).toBe(true);
    expect(await page.getAttribute('#stats-toggle', 'aria-pressed')).toBe('false');
    // Letters typed into a field are not shortcuts.
    await page.focus('#camera');
    await page.keyboard.press('i');
    expect(await isHidden(page, '#stats-overlay')).toBe(true);
    await page.click('#stats-toggle');
    expect(await page.isVisible('#stats-overlay')).toBe(true);
    expect(await page.getAttribute('#stats-toggle', 'aria-pressed')).toBe('true');
    await page.close();
  });
});

describe('phone-sized screen', () => {
  it('at 390×844 with touch: one column, controls wrap, nothing scrolls sideways, tiles play', async () => {
    phoneBrowser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
    const context = await phoneBrowser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${await worker.viewerLink(twoCameraRover)}`.replace('#', '?autoconnect=1#'));
    await page.waitForFunction(() => document.body.dataset['view'] === 'grid', null, { timeout: 15_000 });
    await countTileFrames(page);
    await waitForTileFrames(page, 10);

    const overflow = await noHorizontalOverflow(page);
    expect(overflow.innerWidth).toBe(PHONE.width);
    expect(overflow.scrollWidth).toBeLessThanOrEqual(overflow.innerWidth);
    expect(overflow.widest).toBeLessThanOrEqual(overflow.innerWidth);
    // One column: the second tile sits under the first, both the full width.
    const [front, rear] = await Promise.all([page.locator('.tile[data-camera="front"]').boundingBox(), page.locator('.tile[data-camera="rear"]').boundingBox()]);
    expect(rear!.x).toBe(front!.x);
    expect(rear!.y).toBeGreaterThanOrEqual(front!.y + front!.height);
    expect(front!.width).toBeGreaterThan(PHONE.width * 0.85);
    for (const selector of ['header', '#rover-name', '#state', '#connect', '#fullscreen', '#stats-toggle', '.tile[data-camera="rear"]']) {
      expect(await page.isVisible(selector), selector).toBe(true);
    }
    await page.waitForFunction(() => [...document.querySelectorAll('.tile .state')].every((badge) => badge.textContent === 'Live'));
    await waitForTileStats(page);
    await screenshot(page, 'phone-grid', 'phone-grid');

    // Tap a tile: the single view fits the screen width too.
    await page.tap('.tile[data-camera="front"]');
    await page.waitForFunction(() => document.querySelector<HTMLVideoElement>('#video')?.videoWidth === 640, null, { timeout: 10_000 });
    await page.waitForFunction(() => / [1-9]\d* kbit\/s/.test(document.getElementById('stats')?.textContent ?? ''), null, { timeout: 10_000 });
    const singleOverflow = await noHorizontalOverflow(page);
    expect(singleOverflow.scrollWidth).toBeLessThanOrEqual(singleOverflow.innerWidth);
    expect(singleOverflow.widest).toBeLessThanOrEqual(singleOverflow.innerWidth);
    const stage = await page.locator('#stage').boundingBox();
    expect(stage!.width).toBeGreaterThan(PHONE.width * 0.9);
    expect(await page.isVisible('#grid-button')).toBe(true);
    await screenshot(page, 'phone-single', 'phone-single');
    expect(errors).toEqual([]);
    await context.close();
  });
});

describe('failures in words, on the video', () => {
  it('rover offline: says so over the video, then plays by itself (single view for a one-camera rover)', async () => {
    const roverId = uniqueRoverId('ui-offline');
    const page = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    await page.waitForFunction(() => document.getElementById('message-title')?.textContent === 'Rover offline', null, { timeout: 15_000 });
    expect(await page.isVisible('#message')).toBe(true);
    expect(await page.textContent('#message-body')).toMatch(/Video starts by itself as soon as it comes online/);
    expect(await page.getAttribute('#state', 'data-state')).toBe('offline');
    // The message covers the video area, not a line under it.
    const [stage, message] = await Promise.all([page.locator('#stage').boundingBox(), page.locator('#message').boundingBox()]);
    expect(message).toEqual(stage);
    await screenshot(page, 'error-offline', 'error-offline');

    await rover(roverId);
    await waitForFrames(page, 30, 15_000);
    expect(await probe(page)).toMatchObject({ width: 640, height: 360, state: 'live' });
    expect(await isHidden(page, '#message')).toBe(true);
    expect(await page.evaluate(() => document.body.dataset['view'])).toBe('single');
    expect(await isHidden(page, '#grid-button')).toBe(true); // one camera: no grid to go to
    await page.close();
  });

  it('camera unavailable: the rover hangs up, and the page says the camera is not working and when it retries', async () => {
    // A "camera" the test can unplug: a GStreamer process feeding the sender through shared memory
    // (as in camera-recovery.test.ts); killing it fails the sender's source like a vanished device.
    const caps = 'video/x-raw,format=I420,width=320,height=240,framerate=30/1';
    const socketPath = join(shotsDir, 'camera.sock');
    camera = spawn('gst-launch-1.0', ['-q', 'videotestsrc', 'is-live=true', 'pattern=ball', '!', caps, '!',
      'shmsink', `socket-path=${socketPath}`, 'shm-size=20000000', 'wait-for-connection=false', 'sync=true'], { stdio: 'ignore' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const roverId = uniqueRoverId('ui-camera');
    await rover(roverId, ['--source', `pipeline:shmsrc socket-path=${socketPath} is-live=true do-timestamp=true ! ${caps}`]);
    const page = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    await waitForFrames(page, 15, 20_000);
    expect(await isHidden(page, '#message')).toBe(true);

    const exited = new Promise((resolve) => camera!.once('exit', resolve));
    camera.kill('SIGKILL');
    await exited;
    await page.waitForFunction(() => document.getElementById('message-title')?.textContent === 'Camera unavailable', null, { timeout: 15_000 });
    expect(await page.isVisible('#message')).toBe(true);
    expect(await page.getAttribute('#message', 'data-tone')).toBe('warning');
    expect(await page.textContent('#message-body')).toMatch(/^The rover reports that this camera is not working \(unplugged, busy or restarting\)\. Trying again in \d+ s…$/);
    // The client's own words stay in #state-detail for scripts (camera-recovery.test.ts reads them).
    expect(await page.textContent('#state-detail')).toMatch(/the rover ended the call: camera unavailable/);
    await screenshot(page, 'error-camera-unavailable');
    await page.close();
  });

  it('access denied: a page without a viewer link says it needs one, on the video', async () => {
    const page = await openViewer(browser, `${worker.url}/rovers/${uniqueRoverId('ui-no-link')}`, '?autoconnect=1');
    await page.waitForFunction(() => document.getElementById('message-title')?.textContent === 'Access denied', null, { timeout: 15_000 });
    expect(await page.textContent('#message-body')).toMatch(/needs a viewer link/);
    expect(await page.getAttribute('#message', 'data-tone')).toBe('error');
    expect(await page.getAttribute('#state', 'data-state')).toBe('failed');
    await screenshot(page, 'error-access-denied');
    await page.close();
  });

  it('unsupported browser (no RTCPeerConnection): names what is missing and what to use, without a script error', async () => {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.addInitScript(() => {
      const scope = window as unknown as Record<string, unknown>;
      delete scope['RTCPeerConnection'];
      delete scope['webkitRTCPeerConnection'];
    });
    await page.goto(await worker.viewerLink(twoCameraRover));
    await page.waitForFunction(() => document.getElementById('message-title')?.textContent !== '');
    expect(await page.evaluate(() => typeof (window as unknown as Record<string, unknown>)['RTCPeerConnection'])).toBe('undefined');
    expect(await page.isVisible('#message')).toBe(true);
    expect(await page.textContent('#message-title')).toBe('This browser cannot show live video');
    const body = (await page.textContent('#message-body')) ?? '';
    expect(body).toContain('WebRTC (RTCPeerConnection)');
    expect(body).toMatch(/current Chrome, Edge, Firefox or Safari/);
    expect(body).not.toContain('WebSockets'); // only what is really missing
    expect(await page.textContent('#state')).toBe('Unsupported browser');
    expect(await page.isDisabled('#connect')).toBe(true);
    await screenshot(page, 'error-unsupported', 'error-unsupported');
    expect(errors).toEqual([]);
    await page.close();
  });
});

/** The words for failures that need a NAT lab or a broken camera to cause, from the texts the client really produces. */
describe('failure messages', () => {
  const condition = (state: 'failed' | 'waiting' | 'offline' | 'connecting', detail: string) => describeCondition({ state, detail, watching: true });

  it('maps refusals of a viewer link to "Access denied" with the reason', () => {
    for (const [status, reason] of [[401, 'token expired'], [401, 'no viewer token'], [403, 'token for another rover'], [401, 'bad signature']] as const) {
      const situation = condition('failed', explainRefusal(status, reason));
      expect(situation).toMatchObject({ tone: 'error', title: 'Access denied', body: explainRefusal(status, reason) });
    }
  });

  it('maps ICE failures to "No network path" with the TURN hint', () => {
    const noTurn =
      'No direct network path between you and the rover (strict NATs or firewalls on both sides), and this server offers no TURN relay. Ask the operator to configure TURN (README: "TURN relay"). Retrying in 2 s.';
    expect(condition('failed', noTurn)).toMatchObject({ tone: 'error', title: 'No network path to the rover', body: expect.stringContaining('configure TURN') });
    const turnFailed = 'No video path: neither a direct connection nor the TURN relay worked. Your network may block UDP; a relay on TCP/TLS port 443 (turns:) usually gets through. Retrying in 4 s.';
    expect(condition('failed', turnFailed)).toMatchObject({ title: 'No network path to the rover', body: expect.stringContaining('turns:') });
  });

  it('maps the rover hanging up with "camera unavailable", and keeps the retry countdown', () => {
    expect(condition('waiting', 'the rover ended the call: camera unavailable. Asking again in 4 s…')).toEqual({
      tone: 'warning',
      title: 'Camera unavailable',
      body: 'The rover reports that this camera is not working (unplugged, busy or restarting). Trying again in 4 s…',
    });
    expect(condition('offline', 'the rover ended the call: camera unavailable')).toMatchObject({ title: 'Rover offline' });
  });

  it('says nothing over live video, and "checking" before the server has answered', () => {
    expect(condition('connecting', 'negotiating video…')).toMatchObject({ title: 'Connecting…', body: 'Negotiating video…' });
    expect(describeCondition({ state: 'live', detail: 'receiving video', watching: true })).toBeNull();
    expect(condition('offline', '')).toMatchObject({ title: 'Connecting…' });
  });

  it('lists the browser features that are missing', () => {
    expect(missingBrowserFeatures({ WebSocket: class {}, MediaStream: class {} })).toEqual(['WebRTC (RTCPeerConnection)']);
    expect(missingBrowserFeatures({})).toHaveLength(3);
    expect(missingBrowserFeatures({ WebSocket: class {}, MediaStream: class {}, RTCPeerConnection: class {} })).toEqual([]);
  });
});
