/**
 * NAT traversal on a realistic network (test/netlab): the rover behind one NAT router, the viewer behind
 * another, coturn + the Worker on the "internet". Real sender, real workerd, real coturn, real Chromium.
 *   1. symmetric NATs + TURN      → video plays, through a relay
 *   2. symmetric NATs, no TURN    → the call fails, and the viewer says so in plain words with a hint
 *   3. cone NATs, no TURN         → video plays directly (the control: the topology is fair)
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { netnsForTests } from '../netlab/lab.js';
import { openViewer, probe, waitForFrames } from './browser.js';
import { labPerTest } from './lab-per-test.js';
import { withDiagnostics } from './lab-stack.js';

const labAvailable = await netnsForTests('NAT traversal tests');

interface PathInfo {
  kind: string;
  local: string;
  remote: string;
  protocol: string;
}

async function mediaPath(page: Page): Promise<PathInfo | null> {
  return page.evaluate(() => (window as unknown as { roverViewer: { path: PathInfo | null } }).roverViewer.path);
}

async function waitForPath(page: Page): Promise<PathInfo> {
  await page.waitForFunction(() => (window as unknown as { roverViewer: { path: unknown } }).roverViewer.path !== null, null, {
    timeout: 10_000,
    polling: 200,
  });
  return (await mediaPath(page))!;
}

describe.skipIf(!labAvailable)('NAT traversal (network namespaces)', () => {
  const startLab = labPerTest();

  it('symmetric NATs with TURN: video plays through a relay, and the viewer says so', async () => {
    const { stack } = await startLab({ nat: 'symmetric' }, { turn: true });
    const page = await openViewer(stack.browser, await stack.worker.viewerLink(stack.roverId), '?autoconnect=1');
    await withDiagnostics(stack, page, () => waitForFrames(page, 30, 30_000));
    // Frames keep coming, not just a first burst.
    await waitForFrames(page, 30, 5_000);
    expect((await probe(page)).state).toBe('live');

    const path = await waitForPath(page);
    expect(path.kind).toBe('relayed');
    expect(path.local === 'relay' || path.remote === 'relay').toBe(true);
    expect(await page.locator('#path').textContent()).toMatch(/^Relayed via TURN/);
    // The sender sees the same pair: one end is a relay (coturn's permissions are per IP, so one relay
    // can be enough; the rover's end may then be its NAT's peer-reflexive mapping).
    expect(stack.sender.output.join('\n')).toMatch(/call state.*state=connected.*path=(relay->\w+|\w+->relay)\//);
  });

  it('symmetric NATs without TURN: the call fails, and the viewer explains why and what helps', async () => {
    const { stack } = await startLab({ nat: 'symmetric' }, { turn: false });
    const page = await openViewer(stack.browser, await stack.worker.viewerLink(stack.roverId));
    // Record every state the viewer goes through, then connect.
    await page.evaluate(`(() => {
      window.statesSeen = [];
      window.roverViewer.on('state', ({ state }) => window.statesSeen.push(state));
      document.getElementById('connect').click();
    })()`);
    await page.waitForFunction(() => document.getElementById('state')?.dataset['state'] === 'failed', null, {
      timeout: 60_000,
      polling: 250,
    });
    const detail = (await page.locator('#state-detail').textContent()) ?? '';
    expect(detail).toMatch(/No direct network path between you and the rover/);
    expect(detail).toMatch(/no TURN relay\. Ask the operator to configure TURN/);
    expect(detail).toMatch(/Retrying in \d+ s/);
    const statesSeen = await page.evaluate(() => (window as unknown as { statesSeen: string[] }).statesSeen);
    expect(statesSeen).toContain('connecting');
    expect(statesSeen).not.toContain('live');
    // No video frame ever arrived: at most Chrome's 2×2 black placeholder for a track without media.
    expect((await probe(page)).width).toBeLessThanOrEqual(2);
  });

  it('cone NATs without TURN: video plays over a direct path (the topology is fair)', async () => {
    const { stack } = await startLab({ nat: 'cone' }, { turn: false });
    const page = await openViewer(stack.browser, await stack.worker.viewerLink(stack.roverId), '?autoconnect=1');
    await withDiagnostics(stack, page, () => waitForFrames(page, 30, 30_000));
    const path = await waitForPath(page);
    expect(path).toMatchObject({ kind: 'direct' });
    // Through two NATs a direct path can only use addresses learned by STUN (or peer-reflexive ones).
    expect(['srflx', 'prflx']).toContain(path.local);
    expect(await page.locator('#path').textContent()).toBe('Direct');
  });

  it('relay-only on both sides: media goes through TURN even where a direct path exists', async () => {
    const { stack } = await startLab({ nat: 'cone' }, { turn: true, senderArgs: ['--relay-only'] });
    const page = await openViewer(stack.browser, await stack.worker.viewerLink(stack.roverId), '?autoconnect=1&relay=1');
    await withDiagnostics(stack, page, () => waitForFrames(page, 30, 30_000));
    const path = await waitForPath(page);
    expect(path).toMatchObject({ kind: 'relayed', local: 'relay', remote: 'relay' });
    expect(stack.sender.output.join('\n')).toMatch(/starting call.*relayOnly=true/);
    expect(stack.sender.output.join('\n')).toMatch(/call state.*state=connected.*path=relay->relay\//);
  });
});
