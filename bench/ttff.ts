/**
 * Time to first frame: viewer clicks Connect → first frame presented (requestVideoFrameCallback),
 * measured inside the page, against the real local stack. Cold runs use a fresh page each time
 * against an already-streaming rover; "second viewer" runs join while another viewer watches.
 * The viewer's call timeline splits each run into stages, to show where the time goes.
 *
 *   npm run bench:ttff            (RUNS=20 by default; RUNS=10 npm run bench:ttff)
 */
import type { Page } from 'playwright-core';
import { connectAndTimeFirstFrame, openViewer, waitForFrames } from '../test/e2e/browser.js';
import { startLocalBench } from './local.js';
import { distribution, summary } from './summary.js';

const runs = Number(process.env['RUNS'] ?? 20);
const width = Number(process.env['WIDTH'] ?? 1280);
const height = Number(process.env['HEIGHT'] ?? 720);

const STAGES = [
  ['watch', 'offer', 'watch → offer in (signaling + rover builds the call)'],
  ['offer', 'answer', 'offer → answer out (browser)'],
  ['answer', 'ice', 'answer → ICE connected'],
  ['ice', 'connected', 'ICE → DTLS connected'],
  ['connected', 'frame', 'connected → first frame (keyframe + decode)'],
] as const;

type Timeline = Record<string, number>;

async function timeline(page: Page): Promise<Timeline> {
  return page.evaluate(() => {
    const w = window as unknown as { roverViewer: { timeline: Record<string, number> }; firstFrameAt: number };
    return { ...w.roverViewer.timeline, frame: w.firstFrameAt };
  });
}

const { worker, browser, roverId, stop } = await startLocalBench('ttff', [
  '--width', String(width), '--height', String(height), '--fps', '30', '--bitrate', '2000',
]);
try {
  const first: number[] = [];
  const second: number[] = [];
  const stages = new Map<string, number[]>(STAGES.map(([, , label]) => [label, []]));
  for (let i = 0; i < runs; i++) {
    const page = await openViewer(browser, await worker.viewerLink(roverId));
    await page.waitForFunction(() => document.getElementById('state')?.dataset['state'] === 'waiting');
    first.push(await connectAndTimeFirstFrame(page));
    const marks = await timeline(page);
    for (const [from, to, label] of STAGES) {
      if (marks[from] !== undefined && marks[to] !== undefined) stages.get(label)!.push(marks[to]! - marks[from]!);
    }
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
  console.log('\nwhere the first viewer\'s time goes (median per stage):');
  for (const [label, values] of stages) if (values.length) console.log(`  ${label.padEnd(52)} ${distribution(values).p50.toFixed(0)} ms`);
  const d = distribution(first);
  console.log(`\ngoal p50 ≤ 300 ms: ${d.p50 <= 300 ? 'met' : 'MISSED'} (${d.p50.toFixed(0)}); goal p95 ≤ 500 ms: ${d.p95 <= 500 ? 'met' : 'MISSED'} (${d.p95.toFixed(0)})`);
} finally {
  await stop();
}
