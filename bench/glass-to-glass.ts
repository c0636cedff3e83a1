/**
 * Glass-to-glass latency: the rover's `meter` source paints each frame's capture time into the picture;
 * the viewer page's own meter (viewer/src/latency.ts) reads it back from every presented frame and
 * subtracts it from the display time. Real stack: local workerd + sender + headless Chromium (loopback).
 *
 *   npm run bench:g2g                     (1280x720@30, 2000 kbit/s, 30 s)
 *   DURATION_S=60 WIDTH=640 HEIGHT=360 npm run bench:g2g
 */
import { openViewer, readLatency, waitForFrames } from '../test/e2e/browser.js';
import { startLocalBench } from './local.js';
import { distribution, summary } from './summary.js';

const durationS = Number(process.env['DURATION_S'] ?? 30);
const width = Number(process.env['WIDTH'] ?? 1280);
const height = Number(process.env['HEIGHT'] ?? 720);
const bitrate = Number(process.env['BITRATE'] ?? 2000);

const { worker, browser, roverId, stop } = await startLocalBench('g2g', [
  '--source', 'meter', '--width', String(width), '--height', String(height), '--fps', '30', '--bitrate', String(bitrate),
]);
try {
  const page = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
  await waitForFrames(page, 60, 20_000); // warm up: 2 s of video, clock synced
  await readLatency(page, true);
  const framesBefore = (await page.evaluate('window.framesShown')) as number;
  await new Promise((resolve) => setTimeout(resolve, durationS * 1000));
  const framesShown = ((await page.evaluate('window.framesShown')) as number) - framesBefore;
  const readout = await readLatency(page);
  if (readout.glassToGlass.length === 0) throw new Error('no frame carried a readable timecode');
  const g2g = distribution(readout.glassToGlass);
  console.log(`\nGlass-to-glass latency, ${width}x${height}@30 ${bitrate} kbit/s, meter source → local workerd → headless Chromium (loopback), ${durationS} s`);
  console.log(summary('capture → display', readout.glassToGlass));
  console.log(summary('capture → last packet in', readout.network));
  console.log(
    `frames presented ${framesShown} (${(framesShown / durationS).toFixed(1)} fps), read ${readout.glassToGlass.length}, unreadable ${readout.unreadable}; ` +
      `clock sync round trip ${readout.clockRoundTripMs?.toFixed(1) ?? 'n/a'} ms (bounds the clock error: ±half of it)`,
  );
  console.log(`goal p50 ≤ 80 ms: ${g2g.p50 <= 80 ? 'met' : 'MISSED'} (${g2g.p50.toFixed(0)}); goal p95 ≤ 120 ms: ${g2g.p95 <= 120 ? 'met' : 'MISSED'} (${g2g.p95.toFixed(0)})`);
} finally {
  await stop();
}
