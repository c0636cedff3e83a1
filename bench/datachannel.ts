/**
 * Data channel latency on the real local stack: a rover program on the sender's API socket, an operator in
 * headless Chromium.
 *  - telemetry: program writes a line → the page's `telemetry` event (both clocks are this machine's);
 *  - control: the page's sendControl → the program reads the command line;
 *  - rate: a program publishing at 200 Hz → what a viewer receives per second (cap: 30 Hz).
 *
 *   npm run bench:datachannel          (SAMPLES=200 by default)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TELEMETRY_MAX_HZ } from '../protocol/index.js';
import { startSender, startWorker } from '../scripts/local-stack.mjs';
import { launchBrowser, openViewer, waitForFrames } from '../test/e2e/browser.js';
import { connectRoverProgram } from '../test/e2e/rover-program.js';
import { distribution, summary } from './summary.js';

const samples = Number(process.env['SAMPLES'] ?? 200);
const dir = mkdtempSync(join(tmpdir(), 'rover-bench-dc-'));
const socket = join(dir, 'api.sock');
const roverId = `bench-dc-${process.pid}`;
const worker = await startWorker();
const browser = await launchBrowser();
const sender = await startSender({
  server: worker.url.replace('http', 'ws'),
  roverId,
  token: await worker.roverToken(roverId),
  args: ['--width', '1280', '--height', '720', '--fps', '30', '--bitrate', '2000', '--api-socket', socket],
});
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
try {
  const program = await connectRoverProgram(socket);
  const page = await openViewer(browser, await worker.viewerLink(roverId, 3600, { control: true }), '?autoconnect=1');
  await waitForFrames(page, 30, 15_000);
  await page.evaluate(() => {
    type Client = { on(event: 'telemetry', listener: (message: { status?: { sentAt?: number } }) => void): void };
    const w = window as unknown as { roverViewer: Client; arrivals: number[]; received: number };
    w.arrivals = [];
    w.received = 0;
    w.roverViewer.on('telemetry', (message) => {
      w.received++;
      const sentAt = message.status?.sentAt;
      if (typeof sentAt === 'number') w.arrivals.push(performance.timeOrigin + performance.now() - sentAt);
    });
  });

  // Telemetry latency: one sample every 50 ms (under the 30 Hz cap, so none is coalesced).
  for (let i = 0; i < samples; i++) {
    program.publish({ type: 'telemetry', status: { sentAt: Date.now() } });
    await sleep(50);
  }
  await sleep(500);
  const telemetry = await page.evaluate(() => (window as unknown as { arrivals: number[] }).arrivals);

  // Control latency: take the lease, then one command every 50 ms, stamped in the page.
  await page.evaluate(() => (window as unknown as { roverViewer: { requestControl(): void } }).roverViewer.requestControl());
  await program.waitFor((line) => line['type'] === 'lease' && line['viewer'] !== null);
  const before = program.lines.length;
  for (let i = 0; i < samples; i++) {
    await page.evaluate(() => (window as unknown as { roverViewer: { sendControl(command: object): boolean } }).roverViewer.sendControl({ sentAt: performance.timeOrigin + performance.now() }));
    await sleep(50);
  }
  await sleep(500);
  const control = program.lines.slice(before).flatMap((line, index) => {
    const receivedAt = program.arrivals[before + index];
    const sentAt = (line['command'] as { sentAt?: number } | undefined)?.sentAt;
    return line['type'] === 'control' && typeof sentAt === 'number' && typeof receivedAt === 'number' ? [receivedAt - sentAt] : [];
  });

  // Rate cap: publish at 200 Hz for 3 s.
  await page.evaluate(() => ((window as unknown as { received: number }).received = 0));
  const burstStart = Date.now();
  while (Date.now() - burstStart < 3_000) {
    program.publish({ type: 'telemetry', status: { burst: Date.now() } });
    await sleep(5);
  }
  await sleep(300);
  const perSecond = (await page.evaluate(() => (window as unknown as { received: number }).received)) / 3;

  console.log(`Data channels, loopback, 1280×720@30 video alongside, ${samples} samples each`);
  console.log(summary('telemetry: program line → viewer event (ms)', telemetry));
  console.log(summary('control: sendControl → program reads the line (ms)', control));
  console.log(`telemetry rate with a program publishing at ~200 Hz: ${perSecond.toFixed(1)} messages/s at the viewer (cap ${TELEMETRY_MAX_HZ})`);
  const t = distribution(telemetry);
  const c = distribution(control);
  console.log(`goal: telemetry p95 ≤ 50 ms → ${t.p95.toFixed(1)} ms; control p95 ≤ 50 ms → ${c.p95.toFixed(1)} ms; delivered ${telemetry.length}/${samples} and ${control.length}/${samples}`);
} finally {
  await sender.stop();
  await browser.close();
  await worker.stop();
  rmSync(dir, { recursive: true, force: true });
}
