/**
 * The embeddable player end to end: <rover-stream> from /rover-stream.js on the example page and on a page of
 * another origin (a separate local HTTP server), with real workerd, the real sender and headless Chromium.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SenderHandle, WorkerHandle } from '../../scripts/local-stack.mjs';
// Types only: document.querySelector('rover-stream') is a RoverStreamElement inside page.evaluate callbacks.
import type {} from '../../viewer/src/embed/element.js';
import { launchBrowser, type Browser } from './browser.js';
import { connectRoverProgram } from './rover-program.js';
import { startLocalWorker, startRover, uniqueRoverId } from './stack.js';

/** A plain web server on its own origin, serving pages that embed the player from the Worker. */
interface Site {
  origin: string;
  /** Serve `html` at a fresh path; returns its URL. */
  serve(html: string): string;
  close(): Promise<void>;
}

async function startSite(): Promise<Site> {
  const pages = new Map<string, string>();
  const server: Server = createServer((request, response) => {
    const html = pages.get(request.url ?? '');
    response.writeHead(html === undefined ? 404 : 200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    response.end(html ?? 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    serve: (html) => {
      const path = `/page-${pages.size + 1}.html`;
      pages.set(path, html);
      return origin + path;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A third-party page: only a script tag and the element with its attributes (the token in an attribute, never in a URL). */
function thirdPartyPage(workerUrl: string, roverId: string, token: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>embed</title>
<script type="module" src="${workerUrl}/rover-stream.js"></script></head>
<body><rover-stream server="${workerUrl}" rover="${roverId}" token="${token}" style="width: 640px"></rover-stream></body></html>`;
}

/** Runs before the page's own scripts: records every rover-state event (they bubble to document) and CSP violations. */
const RECORDER_SCRIPT = `
  window.roverStates = [];
  window.cspViolations = [];
  document.addEventListener('rover-state', (event) => window.roverStates.push(event.detail.state + ': ' + event.detail.detail));
  document.addEventListener('securitypolicyviolation', (event) => window.cspViolations.push(event.violatedDirective + ' ' + event.blockedURI));
`;

/** Counts frames presented by the <video> inside the element's shadow root (what a person sees). A string: see browser.ts. */
const FRAME_COUNTER_SCRIPT = `(() => {
  const video = document.querySelector('rover-stream').shadowRoot.querySelector('video');
  window.framesShown = 0;
  const tick = () => { window.framesShown++; video.requestVideoFrameCallback(tick); };
  video.requestVideoFrameCallback(tick);
})()`;

type Recorded = { roverStates: string[]; cspViolations: string[]; framesShown: number };

interface PlayerProbe {
  framesShown: number;
  width: number;
  height: number;
  state: string;
  detail: string;
  /** The status line inside the shadow root, as shown. */
  statusText: string;
  statusVisible: boolean;
  /** The `video` property is the shadow root's <video>. */
  videoIsShadowVideo: boolean;
}

let worker: WorkerHandle;
let browser: Browser;
let allowedSite: Site;
let refusedSite: Site;
const senders: SenderHandle[] = [];
const apiDir = mkdtempSync(join(tmpdir(), 'rover-embed-api-'));

beforeAll(async () => {
  [allowedSite, refusedSite] = await Promise.all([startSite(), startSite()]);
  [worker, browser] = await Promise.all([startLocalWorker({ vars: { ALLOWED_ORIGINS: `https://embedder.example ${allowedSite.origin}` } }), launchBrowser()]);
});

afterEach(async () => {
  // One test's sender at a time: this machine is small and others run tests too.
  await Promise.allSettled(senders.splice(0).map((s) => s.stop('SIGKILL')));
});

afterAll(async () => {
  await browser?.close();
  await worker?.stop();
  await Promise.allSettled([allowedSite?.close(), refusedSite?.close()]);
  rmSync(apiDir, { recursive: true, force: true });
});

async function rover(roverId: string, extraArgs: string[] = []): Promise<SenderHandle> {
  const sender = await startRover(worker, roverId, extraArgs);
  senders.push(sender);
  return sender;
}

async function openPlayer(url: string): Promise<{ page: Page; headers: Record<string, string> }> {
  const page = await browser.context.newPage();
  page.on('pageerror', (error) => console.error(`[page ${new URL(url).pathname}] ${error.message}`));
  await page.addInitScript(RECORDER_SCRIPT);
  const response = await page.goto(url);
  await page.waitForFunction(() => customElements.get('rover-stream') !== undefined && document.querySelector('rover-stream')?.shadowRoot !== null);
  await page.evaluate(FRAME_COUNTER_SCRIPT);
  return { page, headers: response?.headers() ?? {} };
}

async function probePlayer(page: Page): Promise<PlayerProbe> {
  return page.evaluate(() => {
    const player = document.querySelector('rover-stream')!;
    const video = player.shadowRoot!.querySelector('video')!;
    const status = player.shadowRoot!.querySelector<HTMLElement>('[part~="status"]')!;
    return {
      framesShown: (window as unknown as Recorded).framesShown,
      width: video.videoWidth,
      height: video.videoHeight,
      state: player.state,
      detail: player.stateDetail,
      statusText: status.textContent ?? '',
      statusVisible: getComputedStyle(status).display !== 'none' && status.getBoundingClientRect().height > 0,
      videoIsShadowVideo: player.video === video,
    };
  });
}

async function recorded(page: Page): Promise<Recorded> {
  return page.evaluate(() => {
    const w = window as unknown as Recorded;
    return { roverStates: w.roverStates, cspViolations: w.cspViolations, framesShown: w.framesShown };
  });
}

/** Wait until `count` more frames are presented than now. */
async function waitForFrames(page: Page, count: number, timeoutMs: number): Promise<void> {
  const base = (await probePlayer(page)).framesShown;
  await page.waitForFunction((target) => (window as unknown as Recorded).framesShown >= target, base + count, { timeout: timeoutMs, polling: 100 });
}

async function waitForOutput(lines: string[], pattern: RegExp, atLeast: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const count = (): number => lines.filter((line) => pattern.test(line)).length;
  while (count() < atLeast && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return count();
}

describe('<rover-stream> on the example page', () => {
  it('plays the rover in the element\'s shadow-root video under the Worker pages\' CSP, and logs its events', async () => {
    const roverId = uniqueRoverId('embed-example');
    await rover(roverId);
    const token = await worker.viewerToken(roverId);
    const { page, headers } = await openPlayer(`${worker.url}/embed-example.html?rover=${roverId}#access=${token}`);
    // Served as a static asset with the same strict policy as the Worker's own pages (_headers).
    expect(headers['content-security-policy']).toContain("script-src 'self'");
    expect(headers['content-security-policy']).toContain("style-src 'self'");

    await waitForFrames(page, 60, 15_000);
    expect(await probePlayer(page)).toMatchObject({ width: 640, height: 360, state: 'live', detail: 'receiving video', statusVisible: false, videoIsShadowVideo: true });
    const { roverStates, cspViolations } = await recorded(page);
    const connecting = roverStates.indexOf('connecting: connecting to the server…');
    expect(connecting).toBeGreaterThanOrEqual(0);
    expect(roverStates.indexOf('live: receiving video')).toBeGreaterThan(connecting);
    expect(cspViolations).toEqual([]); // no inline script or style anywhere, the player's shadow root included
    // The page's own log shows the events, stats included.
    expect(await page.locator('#log li[data-event="rover-state"]').allTextContents()).toContainEqual(expect.stringContaining('rover-state live · receiving video'));
    await page.waitForFunction(() => /640×360 · \d+ fps · \d+ kbit\/s · direct/.test(document.querySelector('#log li[data-event="rover-stats"]')?.textContent ?? ''), null, { timeout: 5_000 });
    // The token left the address bar.
    expect(page.url()).toBe(`${worker.url}/embed-example.html?rover=${roverId}`);
    await page.close();
  });

  it('shows what the rover\'s ML model sees: detections drawn over the video, telemetry events for the app', async () => {
    const roverId = uniqueRoverId('embed-telemetry');
    const socket = join(apiDir, `${roverId}.sock`);
    await rover(roverId, ['--api-socket', socket]);
    const program = await connectRoverProgram(socket);
    try {
      const { page } = await openPlayer(`${worker.url}/embed-example.html?rover=${roverId}#access=${await worker.viewerToken(roverId)}`);
      await waitForFrames(page, 30, 15_000);
      await page.evaluate(() => {
        const w = window as unknown as { telemetryEvents: unknown[] };
        w.telemetryEvents = [];
        document.querySelector('rover-stream')!.addEventListener('rover-telemetry', (event) => w.telemetryEvents.push(event.detail));
      });
      program.publish({ type: 'telemetry', camera: 'main', detections: [{ label: 'person', score: 0.9, box: [0.1, 0.1, 0.3, 0.6] }], status: { battery: 0.5 } });
      await page.waitForFunction(() => document.querySelector('rover-stream')!.overlay?.lastDraw?.boxes === 1, null, { timeout: 5_000, polling: 50 });
      expect(await page.evaluate(() => (window as unknown as { telemetryEvents: unknown[] }).telemetryEvents)).toEqual([
        expect.objectContaining({ type: 'telemetry', camera: 'main', status: { battery: 0.5 }, detections: [expect.objectContaining({ label: 'person' })] }),
      ]);
      // Drawn in the element's own canvas, over its video.
      const painted = await page.evaluate(() => {
        const canvas = document.querySelector('rover-stream')!.shadowRoot!.querySelector('canvas')!;
        const pixels = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        let opaque = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i]! > 0) opaque++;
        return opaque;
      });
      expect(painted).toBeGreaterThan(100);
      await page.close();
    } finally {
      program.close();
    }
  });

  it('disconnect() ends the call at the rover and stops the picture; connect() brings video back; removal closes it', async () => {
    const roverId = uniqueRoverId('embed-toggle');
    const sender = await rover(roverId);
    const { page } = await openPlayer(`${worker.url}/embed-example.html?rover=${roverId}#access=${await worker.viewerToken(roverId)}`);
    await waitForFrames(page, 30, 15_000);

    await page.evaluate(() => document.querySelector('rover-stream')!.disconnect());
    expect(await waitForOutput(sender.output, /call ended/, 1, 5_000)).toBe(1);
    await page.waitForFunction(() => document.querySelector('rover-stream')!.state === 'waiting');
    const stopped = await probePlayer(page);
    expect(stopped).toMatchObject({ state: 'waiting', detail: 'disconnected', statusVisible: true });
    expect(stopped.statusText).toBe('Rover online · disconnected');
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await probePlayer(page)).framesShown).toBe(stopped.framesShown);
    expect(await page.evaluate(() => document.querySelector('rover-stream')!.video.srcObject)).toBeNull();

    await page.evaluate(() => document.querySelector('rover-stream')!.connect());
    await waitForFrames(page, 30, 10_000);
    expect(await probePlayer(page)).toMatchObject({ width: 640, height: 360, state: 'live' });
    expect(sender.output.filter((line) => line.includes('starting call'))).toHaveLength(2);

    // Taken out of the page, the player closes its connection (the rover ends that call too) and says so.
    const removed = await page.evaluate(() => {
      const player = document.querySelector('rover-stream')!;
      player.remove();
      return { state: player.state, detail: player.stateDetail, clientClosed: player.client === null, videoCleared: player.video.srcObject === null };
    });
    expect(removed).toEqual({ state: 'offline', detail: 'removed from the page', clientClosed: true, videoCleared: true });
    expect(await waitForOutput(sender.output, /call ended/, 2, 5_000)).toBe(2);
    await page.close();
  });

  it('switching the camera attribute shows the other camera, on the same connection', async () => {
    const roverId = uniqueRoverId('embed-cameras');
    await rover(roverId, [
      '--camera', 'id=front,label=Front,source=test:ball',
      '--camera', 'id=rear,label=Rear,width=320,height=240,fps=15,bitrate=300,source=test:smpte',
    ]);
    const { page } = await openPlayer(`${worker.url}/embed-example.html?rover=${roverId}&camera=front#access=${await worker.viewerToken(roverId)}`);
    await waitForFrames(page, 30, 15_000);
    expect(await probePlayer(page)).toMatchObject({ width: 640, height: 360, state: 'live' });
    expect(await page.locator('#log li[data-event="rover-status"]').first().textContent()).toContain('cameras: front 640×360, rear 320×240');

    await page.evaluate(() => {
      const player = document.querySelector('rover-stream')!;
      (window as unknown as { clientBefore: unknown }).clientBefore = player.client;
      player.setAttribute('camera', 'rear');
    });
    await page.waitForFunction(() => document.querySelector('rover-stream')!.video.videoWidth === 320, null, { timeout: 10_000 });
    await waitForFrames(page, 15, 10_000);
    expect(await probePlayer(page)).toMatchObject({ width: 320, height: 240, state: 'live' });
    expect(
      await page.evaluate(() => {
        const player = document.querySelector('rover-stream')!;
        return { sameClient: player.client === (window as unknown as { clientBefore: unknown }).clientBefore, cameraId: player.client?.cameraId, camera: player.camera };
      }),
    ).toEqual({ sameClient: true, cameraId: 'rear', camera: 'rear' });
    await page.close();
  });
});

describe('<rover-stream> on a page of another origin', () => {
  it('plays when the Worker lists that origin in ALLOWED_ORIGINS', async () => {
    const roverId = uniqueRoverId('embed-allowed');
    const sender = await rover(roverId);
    const { page } = await openPlayer(allowedSite.serve(thirdPartyPage(worker.url, roverId, await worker.viewerToken(roverId))));
    await waitForFrames(page, 60, 15_000);
    expect(await probePlayer(page)).toMatchObject({ width: 640, height: 360, state: 'live', videoIsShadowVideo: true });
    expect((await recorded(page)).roverStates).toContain('live: receiving video');
    expect(sender.output.filter((line) => line.includes('starting call'))).toHaveLength(1);
    await page.close();
  });

  it('says the server refused this page and what to configure when the origin is not allowed (no silent black box)', async () => {
    const roverId = uniqueRoverId('embed-refused');
    const sender = await rover(roverId);
    const refusals = (): number => worker.output.filter((line) => /upgrade refused.*"status":403/.test(line)).length;
    const refusalsBefore = refusals();
    const { page } = await openPlayer(refusedSite.serve(thirdPartyPage(worker.url, roverId, await worker.viewerToken(roverId))));

    await page.waitForFunction(() => document.querySelector('rover-stream')!.state === 'failed', null, { timeout: 15_000 });
    const seen = await probePlayer(page);
    // The client asked the Worker why (GET /access answers other origins): the origin check, in words.
    const expected = 'This page may not show this rover: this origin may not connect; add it to ALLOWED_ORIGINS.';
    expect(seen.detail).toBe(expected);
    expect(seen).toMatchObject({ framesShown: 0, statusVisible: true, statusText: `Failed · ${expected}` });
    expect((await recorded(page)).roverStates.at(-1)).toBe(`failed: ${expected}`);
    expect(await page.evaluate(() => document.querySelector('rover-stream')!.client?.state)).toBe('failed');
    // It was the Worker's origin check (403), the rover never heard of this viewer, and the player stopped asking.
    expect(refusals()).toBeGreaterThan(refusalsBefore);
    const refusalsSeen = refusals();
    await new Promise((r) => setTimeout(r, 2_000));
    expect(refusals()).toBe(refusalsSeen);
    expect(await probePlayer(page)).toMatchObject({ state: 'failed', framesShown: 0 });
    expect(sender.output.filter((line) => line.includes('starting call'))).toHaveLength(0);
    await page.close();
  });
});
