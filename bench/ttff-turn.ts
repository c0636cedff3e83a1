/**
 * Time to first frame through TURN: the rover and the viewer each behind a symmetric NAT (network
 * namespaces, test/netlab), coturn + workerd on the lab's "internet". Viewer clicks Connect → first frame
 * presented, measured in the page. Every run is a fresh page, so a fresh call with fresh TURN allocations.
 * Needs root (network namespaces).
 *
 *   npm run bench:ttff:turn          (RUNS=10 by default)
 */
import { createLab, netnsAvailable } from '../test/netlab/lab.js';
import { connectAndTimeFirstFrame, openViewer, waitForFrames } from '../test/e2e/browser.js';
import { startLabStack } from '../test/e2e/lab-stack.js';
import { summary } from './summary.js';

const runs = Number(process.env['RUNS'] ?? 10);
const width = Number(process.env['WIDTH'] ?? 1280);
const height = Number(process.env['HEIGHT'] ?? 720);

const available = await netnsAvailable();
if (!available.ok) {
  console.error(`cannot run: ${available.reason}`);
  process.exit(1);
}
const lab = await createLab({ nat: 'symmetric' });
try {
  const stack = await startLabStack(lab, {
    turn: true,
    videoArgs: ['--width', String(width), '--height', String(height), '--fps', '30', '--bitrate', '2000'],
  });
  try {
    const samples: number[] = [];
    const paths = new Set<string>();
    for (let i = 0; i < runs; i++) {
      const page = await openViewer(stack.browser, await stack.worker.viewerLink(stack.roverId));
      await page.waitForFunction(() => document.getElementById('state')?.dataset['state'] === 'waiting');
      samples.push(await connectAndTimeFirstFrame(page, 30_000));
      await waitForFrames(page, 5, 5_000);
      // The path badge appears with the first stats sample (1 s after going live).
      await page.waitForFunction(() => (document.getElementById('path')?.textContent ?? '') !== '', null, { timeout: 5_000 });
      paths.add((await page.locator('#path').textContent()) ?? '?');
      await page.close();
      process.stdout.write('.');
    }
    console.log(`\n\nTime to first frame through TURN, ${width}x${height}@30, symmetric NAT on both sides (netns lab)`);
    console.log(`paths seen: ${[...paths].join(', ')}`);
    console.log(summary('viewer (connect→frame)', samples));
  } finally {
    await stack.stop();
  }
} finally {
  await lab.destroy();
}
