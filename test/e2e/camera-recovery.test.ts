/**
 * The camera goes away while streaming and comes back (a USB camera unplugged, a driver crash): the sender
 * tells viewers "camera unavailable", keeps running, retries with backoff, and video resumes by itself
 * when the source returns. The "camera" is a real GStreamer process feeding the sender through shared
 * memory (shmsink → shmsrc): killing it makes the sender's source fail exactly like a vanished device.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SenderHandle, WorkerHandle } from '../../scripts/local-stack.mjs';
import { launchBrowser, openViewer, probe, waitForFrames, type Browser } from './browser.js';
import { startLocalWorker, startRover, uniqueRoverId } from './stack.js';

const CAPS = 'video/x-raw,format=I420,width=320,height=240,framerate=30/1';
let worker: WorkerHandle;
let browser: Browser;
let sender: SenderHandle | undefined;
let camera: ChildProcess | undefined;
const dir = mkdtempSync(join(tmpdir(), 'rover-camera-'));
const socketPath = join(dir, 'camera.sock');

function startCamera(): ChildProcess {
  rmSync(socketPath, { force: true });
  return spawn('gst-launch-1.0', ['-q', 'videotestsrc', 'is-live=true', 'pattern=ball', '!', CAPS, '!',
    'shmsink', `socket-path=${socketPath}`, 'shm-size=20000000', 'wait-for-connection=false', 'sync=true'], { stdio: 'ignore' });
}

async function stopCamera(): Promise<void> {
  const child = camera;
  camera = undefined;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL'); // a device does not say goodbye
  await exited;
}

beforeAll(async () => {
  [worker, browser] = await Promise.all([startLocalWorker(), launchBrowser()]);
});

afterAll(async () => {
  await sender?.stop('SIGKILL');
  await stopCamera();
  await browser?.close();
  await worker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('camera failure and recovery', () => {
  it('viewers are told, the sender keeps running and retries, and video resumes when the camera is back', async () => {
    camera = startCamera();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const roverId = uniqueRoverId('camera');
    sender = await startRover(worker, roverId, ['--source', `pipeline:shmsrc socket-path=${socketPath} is-live=true do-timestamp=true ! ${CAPS}`]);
    const page = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    await waitForFrames(page, 30, 20_000);

    await stopCamera();
    await page.waitForFunction(() => /camera unavailable/.test(document.getElementById('state-detail')?.textContent ?? ''), null, {
      timeout: 15_000,
    });
    const told = (await page.locator('#state-detail').textContent()) ?? '';
    expect(told).toMatch(/the rover ended the call: camera unavailable\. Asking again in \d+ s/);

    // Down for a while: the sender retries (and fails) without exiting.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    expect(sender.process.exitCode).toBeNull();
    expect(sender.output.join('\n')).toMatch(/camera failed/);

    camera = startCamera();
    const back = Date.now();
    await page.waitForFunction(() => document.getElementById('state')?.dataset['state'] === 'live', null, { timeout: 60_000 });
    await waitForFrames(page, 30, 20_000);
    console.log(`camera recovery: video again ${Date.now() - back} ms after the camera returned`);
    expect(sender.output.join('\n')).toMatch(/camera recovered/);
    expect((await probe(page)).state).toBe('live');
  });
});
