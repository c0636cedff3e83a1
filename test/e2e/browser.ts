/** Headless Debian Chromium via playwright-core, plus probes that read what the viewer page really shows. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
/** Headless Debian Chromium that makes no connections of its own (this machine has no internet). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** `executablePath` may be a wrapper, e.g. one that starts Chromium inside a network namespace. */
export async function launchBrowser({ executablePath = CHROMIUM_PATH }: { executablePath?: string } = {}): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'rover-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Counts presented frames. A string, not a function: tsx/esbuild may inject helpers that do not exist in the page. */
const FRAME_COUNTER_SCRIPT = `(() => {
  const video = document.querySelector('video');
  window.framesShown = 0;
  window.firstFrameAt = null;
  const tick = (now) => {
    window.framesShown++;
    if (window.firstFrameAt === null) window.firstFrameAt = now;
    video.requestVideoFrameCallback(tick);
  };
  video.requestVideoFrameCallback(tick);
})()`;

/**
 * Open a viewer link (as an operator would) and install a frame counter on its <video>: requestVideoFrameCallback fires
 * once per frame presented, independent of the app's own code, so the test checks what a person sees.
 */
export async function openViewer(browser: Browser, link: string, query = ''): Promise<Page> {
  const page = await browser.context.newPage();
  const url = new URL(link); // e.g. http://127.0.0.1:8787/rovers/demo#access=<viewer token>
  url.search = query;
  page.on('pageerror', (error) => console.error(`[page ${url.pathname}] ${error.message}`));
  await page.goto(url.toString());
  await page.evaluate(FRAME_COUNTER_SCRIPT);
  return page;
}

export interface VideoProbe {
  framesShown: number;
  width: number;
  height: number;
  state: string;
}

export async function probe(page: Page): Promise<VideoProbe> {
  return page.evaluate(() => {
    const video = document.querySelector('video')!;
    return {
      framesShown: (window as unknown as { framesShown: number }).framesShown,
      width: video.videoWidth,
      height: video.videoHeight,
      state: document.getElementById('state')?.dataset['state'] ?? '',
    };
  });
}

/** Wait until at least `count` more frames are shown than at call time; returns the elapsed ms. */
export async function waitForFrames(page: Page, count: number, timeoutMs: number): Promise<number> {
  const start = Date.now();
  const base = (await probe(page)).framesShown;
  await page.waitForFunction(
    ({ target }) => (window as unknown as { framesShown: number }).framesShown >= target,
    { target: base + count },
    { timeout: timeoutMs, polling: 100 },
  );
  return Date.now() - start;
}

/**
 * Wait until the page's call has decoded `count` more frames (WebRTC stats). For a page that is not in
 * front: headless Chromium presents a background tab's frames only a few times a second, so presented
 * frames say nothing there, while decoding shows the video still flows to it.
 */
export async function waitForDecodedFrames(page: Page, count: number, timeoutMs: number): Promise<void> {
  const decoded = (): Promise<number> =>
    page.evaluate(async () => {
      const pc = (window as unknown as { roverViewer: { peerConnection: RTCPeerConnection | null } }).roverViewer.peerConnection;
      let frames = 0;
      (await pc?.getStats())?.forEach((entry: { type: string; kind?: string; framesDecoded?: number }) => {
        if (entry.type === 'inbound-rtp' && entry.kind === 'video') frames = entry.framesDecoded ?? 0;
      });
      return frames;
    });
  const target = (await decoded()) + count;
  const deadline = Date.now() + timeoutMs;
  while ((await decoded()) < target) {
    if (Date.now() > deadline) throw new Error(`fewer than ${count} frames decoded within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function viewerState(page: Page): Promise<string> {
  return (await probe(page)).state;
}

/** Click Connect and measure, inside the page, connect → first presented frame (ms). */
export async function connectAndTimeFirstFrame(page: Page, timeoutMs = 15_000): Promise<number> {
  await page.evaluate(() => {
    const w = window as unknown as { connectAt: number; firstFrameAt: number | null };
    w.firstFrameAt = null;
    w.connectAt = performance.now();
    document.getElementById('connect')!.click();
  });
  await page.waitForFunction(() => (window as unknown as { firstFrameAt: number | null }).firstFrameAt !== null, null, {
    timeout: timeoutMs,
    polling: 20,
  });
  return page.evaluate(() => {
    const w = window as unknown as { connectAt: number; firstFrameAt: number };
    return w.firstFrameAt - w.connectAt;
  });
}

export interface LatencyReadout {
  /** Glass-to-glass of each frame read since the last reset, ms. */
  glassToGlass: number[];
  /** Capture → last packet received (encoder + network), ms. */
  network: number[];
  unreadable: number;
  clockRoundTripMs: number | null;
}

/** Read (and optionally reset) the viewer's own latency meter (viewer/src/latency.ts) on a timecoded camera. */
export async function readLatency(page: Page, reset = false): Promise<LatencyReadout> {
  return page.evaluate((doReset) => {
    type Meter = { samples: { glassToGlassMs: number; networkMs: number | null }[]; unreadable: number; reset(): void };
    type Client = { clock: { best(): { roundTripMs: number } | null } };
    const w = window as unknown as { roverLatency: Meter; roverViewer: Client };
    const result = {
      glassToGlass: w.roverLatency.samples.map((s) => s.glassToGlassMs),
      network: w.roverLatency.samples.flatMap((s) => (s.networkMs === null ? [] : [s.networkMs])),
      unreadable: w.roverLatency.unreadable,
      clockRoundTripMs: w.roverViewer.clock.best()?.roundTripMs ?? null,
    };
    if (doReset) w.roverLatency.reset();
    return result;
  }, reset);
}
