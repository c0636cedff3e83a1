/**
 * Soak: stream through the NAT lab (symmetric NATs, TURN) for a long time with periodic faults, and print
 * the sender's memory, open sockets and live calls, and the viewer's freezes, once a minute. Not in CI.
 * Needs root (network namespaces).
 *
 *   npm run soak                       (30 minutes)
 *   SOAK_MINUTES=5 npm run soak
 *
 * Faults, in turn, every FAULT_EVERY_S seconds (default 120): the rover's link drops for 10 s; the viewer
 * reloads its page; the rover changes address; the viewer's link drops for 10 s.
 * A freeze is a gap of more than 1 s between presented frames outside a fault window (fault + 5 s).
 */
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { createLab, netnsAvailable, type Lab } from '../test/netlab/lab.js';
import { openViewer, waitForFrames } from '../test/e2e/browser.js';
import { startLabStack, type LabStack } from '../test/e2e/lab-stack.js';

const minutes = Number(process.env['SOAK_MINUTES'] ?? 30);
const faultEveryMs = Number(process.env['FAULT_EVERY_S'] ?? 120) * 1000;
const FAULT_GRACE_MS = 5_000;

/** Installs a presented-frame clock in the page: the longest gap, and frames, since the last read. */
const GAP_PROBE = `(() => {
  const video = document.querySelector('video');
  window.soak = { last: null, maxGap: 0, frames: 0 };
  const tick = (now) => {
    const s = window.soak;
    if (s.last !== null) s.maxGap = Math.max(s.maxGap, now - s.last);
    s.last = now;
    s.frames++;
    video.requestVideoFrameCallback(tick);
  };
  video.requestVideoFrameCallback(tick);
})()`;

/** Read and reset the probe; (re)installs it when the page has none (after a reload, or if it failed). */
async function readGap(page: Page): Promise<{ maxGap: number; frames: number }> {
  const result = (await page.evaluate(
    `(() => { const s = window.soak; if (!s) return null; const r = { maxGap: s.maxGap, frames: s.frames }; s.maxGap = 0; s.frames = 0; return r; })()`,
  )) as { maxGap: number; frames: number } | null;
  if (result === null) await page.evaluate(`document.querySelector('video') && ${GAP_PROBE}`);
  return result ?? { maxGap: 0, frames: 0 };
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

async function sockets(lab: Lab, pid: number): Promise<number> {
  const out = await lab.exec('rover', 'ss', ['-Htunap']);
  return out.split('\n').filter((line) => line.includes(`pid=${pid},`)).length;
}

const available = await netnsAvailable();
if (!available.ok) {
  console.error(`cannot run: ${available.reason}`);
  process.exit(1);
}

const lab = await createLab({ nat: 'symmetric' });
let stack: LabStack | undefined;
try {
  // The sender's output ring holds 400 lines; count calls from its log as they come.
  let started = 0;
  let ended = 0;
  stack = await startLabStack(lab, { turn: true });
  const senderPid = stack.sender.process.pid!;
  const link = await stack.worker.viewerLink(stack.roverId, 24 * 3600);
  const page = await openViewer(stack.browser, link, '?autoconnect=1');
  await waitForFrames(page, 30, 30_000);
  await page.evaluate(GAP_PROBE);
  started = stack.sender.output.filter((line) => /starting call/.test(line)).length;
  ended = stack.sender.output.filter((line) => /call ended/.test(line)).length;
  // The sender logs to stderr (stdout too, in case that ever changes).
  const countCalls = (chunk: Buffer): void => {
    const text = chunk.toString();
    started += (text.match(/starting call/g) ?? []).length;
    ended += (text.match(/call ended/g) ?? []).length;
  };
  stack.sender.process.stdout?.on('data', countCalls);
  stack.sender.process.stderr?.on('data', countCalls);

  const faults = [
    { name: 'rover link down 10 s', run: async () => {
      await lab.exec('nat1', 'iptables', ['-I', 'FORWARD', '1', '-j', 'DROP']);
      await new Promise((r) => setTimeout(r, 10_000));
      await lab.exec('nat1', 'iptables', ['-D', 'FORWARD', '-j', 'DROP']);
    } },
    { name: 'viewer reload', run: async () => {
      await page.reload();
      // The reloaded page has none of our probes yet: wait for the app to say it is live, then reinstall.
      await page.waitForFunction(() => document.getElementById('state')?.dataset['state'] === 'live', null, { timeout: 30_000 }).catch(() => {});
      // readGap reinstalls the probe on its next read.
    } },
    { name: 'rover address change', run: async () => {
      const next = (await lab.exec('rover', 'ip', ['-4', 'addr', 'show', 'dev', 'eth0'])).includes('10.200.1.3') ? '10.200.1.2' : '10.200.1.3';
      await lab.exec('rover', 'ip', ['addr', 'flush', 'dev', 'eth0']);
      await lab.exec('rover', 'ip', ['addr', 'add', `${next}/24`, 'dev', 'eth0']);
      await lab.exec('rover', 'ip', ['route', 'replace', 'default', 'via', lab.addresses.nat1Lan]);
    } },
    { name: 'viewer link down 10 s', run: async () => {
      await lab.exec('nat2', 'iptables', ['-I', 'FORWARD', '1', '-j', 'DROP']);
      await new Promise((r) => setTimeout(r, 10_000));
      await lab.exec('nat2', 'iptables', ['-D', 'FORWARD', '-j', 'DROP']);
    } },
  ];

  const start = Date.now();
  const end = start + minutes * 60_000;
  let nextFault = start + faultEveryMs;
  let faultIndex = 0;
  let faultWindowUntil = 0;
  let freezes = 0;
  let worstGap = 0;
  let frames = 0;
  const rssSeries: number[] = [];
  console.log('minute  rss_MiB  sockets  live_calls  calls_started  frames  worst_gap_ms  freezes  fault');
  for (let minute = 1; Date.now() < end; minute++) {
    let faultName = '';
    const minuteEnd = Math.min(end, start + minute * 60_000);
    while (Date.now() < minuteEnd) {
      if (Date.now() >= nextFault) {
        const fault = faults[faultIndex++ % faults.length]!;
        faultName = fault.name;
        const faultStart = Date.now();
        await fault.run();
        faultWindowUntil = Date.now() + FAULT_GRACE_MS;
        nextFault = faultStart + faultEveryMs;
      }
      await new Promise((r) => setTimeout(r, 1_000));
      const gap = await readGap(page).catch(() => ({ maxGap: 0, frames: 0 }));
      frames += gap.frames;
      if (Date.now() > faultWindowUntil) {
        if (gap.maxGap > 1_000) freezes += 1;
        worstGap = Math.max(worstGap, gap.maxGap);
      }
    }
    const rss = rssMiB(senderPid);
    rssSeries.push(rss);
    console.log(
      `${String(minute).padStart(6)}  ${rss.toFixed(1).padStart(7)}  ${String(await sockets(lab, senderPid)).padStart(7)}  ` +
        `${String(started - ended).padStart(10)}  ${String(started).padStart(13)}  ${String(frames).padStart(6)}  ` +
        `${worstGap.toFixed(0).padStart(12)}  ${String(freezes).padStart(7)}  ${faultName}`,
    );
    frames = 0;
    worstGap = 0;
  }
  const first = rssSeries[0] ?? 0;
  const last = rssSeries.at(-1) ?? 0;
  console.log(
    `\nsoak: ${minutes} min, ${faultIndex} faults; sender RSS ${first.toFixed(1)} → ${last.toFixed(1)} MiB (max ${Math.max(...rssSeries).toFixed(1)}); ` +
      `calls started ${started}, ended ${ended}, live at end ${started - ended}; freezes outside fault windows: ${freezes}`,
  );
} finally {
  await stack?.stop();
  await lab.destroy();
}
