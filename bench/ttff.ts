/**
 * Time to first frame: viewer clicks Connect → first frame presented (requestVideoFrameCallback),
 * measured inside the page, against the real local stack. Cold runs use a fresh page each time
 * against an already-streaming rover; "second viewer" runs join while another viewer watches.
 *
 *   npm run bench:ttff            (RUNS=20 by default; RUNS=10 npm run bench:ttff)
 */
import { startSender, startWorker } from '../scripts/local-stack.mjs';
import { connectAndTimeFirstFrame, launchBrowser, openViewer, waitForFrames } from '../test/e2e/browser.js';
import { summary } from './summary.js';

const runs = Number(process.env['RUNS'] ?? 20);
const width = Number(process.env['WIDTH'] ?? 1280);
const height = Number(process.env['HEIGHT'] ?? 720);

const worker = await startWorker();
const browser = await launchBrowser();
const roverId = `bench-ttff-${process.pid}`;
const sender = await startSender({
  server: worker.url.replace('http', 'ws'),
  roverId,
  token: await worker.roverToken(roverId),
  args: ['--width', String(width), '--height', String(height), '--fps', '30', '--bitrate', '2000'],
});
try {
  const first: number[] = [];
  const second: number[] = [];
  for (let i = 0; i < runs; i++) {
    const page = await openViewer(browser, await worker.viewerLink(roverId));
    await page.waitForFunction(() => document.getElementById('state')?.dataset['state'] === 'waiting');
    first.push(await connectAndTimeFirstFrame(page));
    await waitForFrames(page, 5, 5_000);
    const joiner = await openViewer(browser, await worker.viewerLink(roverId));
    await joiner.waitForFunction(() => document.getElementById('state')?.dataset['state'] === 'waiting');
    second.push(await connectAndTimeFirstFrame(joiner));
    await Promise.all([page.close(), joiner.close()]);
    process.stdout.write('.');
  }
  console.log(`\n\nTime to first frame, ${width}x${height}@30, local workerd + sender + headless Chromium (loopback)`);
  console.log(summary('first viewer (connect→frame)', first));
  console.log(summary('second viewer joining', second));
} finally {
  await sender.stop();
  await browser.close();
  await worker.stop();
}
