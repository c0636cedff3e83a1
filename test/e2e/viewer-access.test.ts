/**
 * The hosted viewer with real access links, in a real browser against local workerd: the token travels in
 * the link's fragment, leaves the address bar, survives a reload, and a refused link is explained in words.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../protocol/auth.js';
import type { SenderHandle, WorkerHandle } from '../../scripts/local-stack.mjs';
import { launchBrowser, openViewer, waitForFrames, type Browser } from './browser.js';
import { startLocalWorker, startRover, uniqueRoverId } from './stack.js';

let worker: WorkerHandle;
let browser: Browser;
let sender: SenderHandle | undefined;
const roverId = uniqueRoverId('access');

beforeAll(async () => {
  [worker, browser] = await Promise.all([startLocalWorker(), launchBrowser()]);
  sender = await startRover(worker, roverId);
});

afterAll(async () => {
  await sender?.stop('SIGKILL');
  await browser?.close();
  await worker?.stop();
});

async function refusal(page: Page): Promise<string> {
  await page.waitForFunction(() => document.getElementById('state')?.dataset['state'] === 'failed', null, { timeout: 15_000 });
  return (await page.locator('#state-detail').textContent()) ?? '';
}

describe('viewer access links', () => {
  it('plays from a link, hides the token from the address bar, and still plays after a reload', async () => {
    const page = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    await waitForFrames(page, 10, 20_000);
    expect(page.url()).not.toContain('access=');
    expect(page.url()).toMatch(new RegExp(`/rovers/${roverId}\\?autoconnect=1$`));
    await page.reload();
    await page.evaluate(`(() => { const v = document.querySelector('video'); window.framesShown = 0; const t = () => { window.framesShown++; v.requestVideoFrameCallback(t); }; v.requestVideoFrameCallback(t); })()`);
    await waitForFrames(page, 10, 20_000);
    await page.close();
  });

  it('the home page lists the rovers this browser has links for, with live presence', async () => {
    const viewer = await openViewer(browser, await worker.viewerLink(roverId), '?autoconnect=1');
    await waitForFrames(viewer, 10, 20_000);
    const home = await browser.context.newPage();
    await home.goto(`${worker.url}/`);
    const card = home.locator(`.rover-card[data-rover="${roverId}"]`);
    await card.waitFor({ timeout: 10_000 });
    expect(await card.getAttribute('data-online')).toBe('true');
    expect(await card.getAttribute('data-cameras')).toBe('1');
    expect(Number(await card.getAttribute('data-viewers'))).toBeGreaterThanOrEqual(1);
    expect(await card.locator('.detail').textContent()).toMatch(/^1 camera · \d+ viewers?$/);
    expect(await home.isVisible('#no-rovers')).toBe(false);
    // The card opens the viewer, which uses the remembered link (no #access needed).
    await card.locator('a').click();
    await home.waitForURL(new RegExp(`/rovers/${roverId}\\?autoconnect=1$`));
    await home.waitForFunction(() => document.getElementById('state')?.dataset['state'] === 'live', null, { timeout: 15_000 });
    await Promise.all([viewer.close(), home.close()]);
  });

  it('the home page labels a link that may drive, and Forget removes a rover from this device', async () => {
    const operatorRover = `${roverId}-op`;
    const operator = await openViewer(browser, await worker.viewerLink(operatorRover, 3600, { control: true }));
    await operator.waitForFunction(() => location.hash === ''); // the token was taken in and remembered
    await operator.close();
    const home = await browser.context.newPage();
    await home.goto(`${worker.url}/`);
    const card = home.locator(`.rover-card[data-rover="${operatorRover}"]`);
    await card.waitFor({ timeout: 10_000 });
    expect(await card.locator('.operator').textContent()).toBe('can drive');
    expect(await home.locator(`.rover-card[data-rover="${roverId}"] .operator`).count()).toBe(0); // a watch-only link
    await home.getByRole('button', { name: `Forget ${operatorRover} on this device` }).click();
    expect(await card.count()).toBe(0);
    expect(await home.evaluate(() => localStorage.getItem('rover-live:links') ?? '')).not.toContain(`"${operatorRover}"`);
    await home.reload();
    await home.locator(`.rover-card[data-rover="${roverId}"]`).waitFor({ timeout: 10_000 });
    expect(await home.locator(`.rover-card[data-rover="${operatorRover}"]`).count()).toBe(0);
    await home.close();
  });

  it('without a link: says a viewer link is needed', async () => {
    const page = await openViewer(browser, `${worker.url}/rovers/${roverId}`, '?autoconnect=1');
    // A first-time visitor: nothing remembered from the tests above.
    await page.evaluate(() => localStorage.clear());
    await page.reload();
    expect(await refusal(page)).toMatch(/needs a viewer link/);
    await page.close();
  });

  it('an expired link: says so, and asks for a new one', async () => {
    const expired = await mintToken('viewer', roverId, worker.secrets.VIEWER_TOKEN_SECRET, 600, Math.floor(Date.now() / 1000) - 3600);
    const page = await openViewer(browser, `${worker.url}/rovers/${roverId}#access=${expired.token}`, '?autoconnect=1');
    expect(await refusal(page)).toMatch(/link has expired\. Ask the rover's operator for a new link/);
    await page.close();
  });

  it("another rover's link: says it is for a different rover", async () => {
    const page = await openViewer(browser, (await worker.viewerLink('some-other-rover')).replace('some-other-rover', roverId), '?autoconnect=1');
    expect(await refusal(page)).toMatch(/for a different rover/);
    await page.close();
  });

  it('a forged link: not valid', async () => {
    const forged = await mintToken('viewer', roverId, 'x'.repeat(40), 600);
    const page = await openViewer(browser, `${worker.url}/rovers/${roverId}#access=${forged.token}`, '?autoconnect=1');
    expect(await refusal(page)).toMatch(/not valid/);
    await page.close();
  });
});
