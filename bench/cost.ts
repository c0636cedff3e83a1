/**
 * Cost per viewer: the sender's CPU (and memory) as viewers are added to one camera, at 1280×720@30,
 * 2000 kbit/s, test-pattern source, against the real local stack (workerd + rover-sender, loopback).
 * One encoder serves every viewer; each extra viewer should only add packet fan-out (SRTP + UDP).
 * Goal: ≤ 3 % of one core per extra viewer.
 *
 *   npm run bench:cost                 (10 s window per step)
 *   WINDOW_S=20 npm run bench:cost     (longer window)
 *   BROWSER=0 npm run bench:cost       (skip the Chromium cross-check)
 *
 * Viewers are added incrementally, 0 → 1 → 2 → 4 → 8, and stay connected: each step waits until every
 * viewer has received a keyframe, lets the sender settle 3 s, then samples over the window the sender's
 * CPU (/proc/<pid>/stat utime+stime), its RSS (/proc/<pid>/status) and the RTP bytes the viewers received.
 * Viewers are light receiving peers (bench/light-viewer.ts: the browser's signaling, node-datachannel
 * receiving, no decoding), because 8 Chromium pages decoding 720p do not fit in 2 cores. As a cross-check,
 * run first on a sender of its own, 0 → 1 → 2 real headless Chromium viewers.
 * The sender's log must show one 'camera streaming' and one 'starting call' per viewer (one shared encoder).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import nodeDataChannel from 'node-datachannel';
import type { Page } from 'playwright-core';
import { startSender, startWorker, type SenderHandle, type WorkerHandle } from '../scripts/local-stack.mjs';
import { launchBrowser, openViewer, waitForFrames, type Browser } from '../test/e2e/browser.js';
import { LightViewer, type ReceiveCounters } from './light-viewer.js';
import { summary } from './summary.js';

const windowS = Number(process.env['WINDOW_S'] ?? 10);
const settleS = Number(process.env['SETTLE_S'] ?? 3);
const withBrowser = process.env['BROWSER'] !== '0';
const LIGHT_STEPS = [0, 1, 2, 4, 8];
const BROWSER_STEPS = [1, 2];
const BITRATE_KBPS = 2000;
const SENDER_ARGS = ['--width', '1280', '--height', '720', '--fps', '30', '--bitrate', String(BITRATE_KBPS)];
const GOAL_PER_VIEWER = 3; // % of one core
const FIRST_VIDEO_TIMEOUT_MS = 15_000;
/** Hard ceiling on the whole run (< 3 min at the default window; more when WINDOW_S asks for it). */
const MEASURED_STEPS = LIGHT_STEPS.length + (withBrowser ? BROWSER_STEPS.length + 1 : 0);
const BUDGET_MS = (40 + (withBrowser ? 10 : 0) + MEASURED_STEPS * (windowS + settleS + 3)) * 1000;

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process (all its threads), in seconds. */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2 (comm) is in parentheses and may hold spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // fields 14 and 15
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** Busy and total jiffies of the whole machine, to tell whether something else competed for the CPU. */
function hostTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (values[3] ?? 0) + (values[4] ?? 0); // idle + iowait
  const total = values.slice(0, 8).reduce((a, b) => a + b, 0); // guest time is already in user
  return { busy: total - idle, total };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Row {
  viewers: number;
  cpu: number;
  rss: number;
  /** Mean RTP kbit/s received per viewer, and the total in Mbit/s. */
  perViewerKbps: number;
  totalMbps: number;
  lost: number;
  keyframes: number;
  /** This process's CPU (it runs the light peers; Chromium runs apart) and the whole machine's busy share, in % of one core. */
  benchCpu: number;
  hostBusy: number;
}

interface Receivers {
  count: number;
  counters(): Promise<ReceiveCounters[]>;
}

/** Sample the sender and the receivers over one window. */
async function measure(senderPid: number, receivers: Receivers): Promise<Row> {
  const before = await receivers.counters();
  const cpu0 = processCpuSeconds(senderPid);
  const own0 = process.cpuUsage();
  const host0 = hostTicks();
  const t0 = performance.now();
  await sleep(windowS * 1000);
  const after = await receivers.counters();
  const cpu1 = processCpuSeconds(senderPid);
  const own1 = process.cpuUsage(own0);
  const host1 = hostTicks();
  const elapsed = (performance.now() - t0) / 1000;
  let bytes = 0;
  let lost = 0;
  let keyframes = 0;
  after.forEach((end, i) => {
    const start = before[i]!;
    bytes += end.bytes - start.bytes;
    lost += end.lost - start.lost;
    keyframes += end.keyframes - start.keyframes;
  });
  const totalKbps = (bytes * 8) / 1000 / elapsed;
  return {
    viewers: receivers.count,
    cpu: ((cpu1 - cpu0) / elapsed) * 100,
    rss: rssMiB(senderPid),
    perViewerKbps: receivers.count > 0 ? totalKbps / receivers.count : 0,
    totalMbps: totalKbps / 1000,
    lost,
    keyframes,
    benchCpu: ((own1.user + own1.system) / 1e6 / elapsed) * 100,
    hostBusy: ((host1.busy - host0.busy) / (host1.total - host0.total)) * cpus().length * 100,
  };
}

const HEADER = '| viewers | sender CPU (% of a core) | Δ vs previous | Δ per added viewer | RSS MiB | kbit/s per viewer | total Mbit/s | lost pkts | keyframes/viewer | bench CPU % (light peers) | host busy % |';
const RULE = '|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|';

function formatRow(row: Row, previous: Row | undefined): string {
  const delta = previous ? row.cpu - previous.cpu : null;
  const added = previous ? row.viewers - previous.viewers : 0;
  const signed = (value: number): string => `${value >= 0 ? '+' : ''}${value.toFixed(2)}`;
  return [
    '',
    row.viewers,
    row.cpu.toFixed(1),
    delta === null ? '—' : signed(delta),
    delta === null || added <= 0 ? '—' : signed(delta / added),
    row.rss.toFixed(1),
    row.viewers > 0 ? row.perViewerKbps.toFixed(0) : '—',
    row.totalMbps.toFixed(2),
    row.lost,
    row.viewers > 0 ? (row.keyframes / row.viewers).toFixed(1) : '—',
    row.benchCpu.toFixed(1),
    row.hostBusy.toFixed(0),
    '',
  ].join(' | ').trim();
}

function table(rows: Row[]): string {
  return [HEADER, RULE, ...rows.map((row, i) => formatRow(row, rows[i - 1]))].join('\n');
}

/** Counts the sender's log lines that prove one encoder fans out to every call. */
interface SenderLog {
  onLine: (line: string) => void;
  streaming: number;
  calls: number;
  ended: number;
  /** Picture size/rate changes by the sender's congestion control (bitrate-only changes log at debug). */
  reshaped: number;
  /** The 'camera streaming' line (which encoder, what size), without its timestamp. */
  streamingLine: string;
}

function senderLogCounter(): SenderLog {
  const counts: SenderLog = {
    streaming: 0,
    calls: 0,
    ended: 0,
    reshaped: 0,
    streamingLine: '',
    onLine: (line: string): void => {
      if (/camera streaming/.test(line)) {
        counts.streaming++;
        counts.streamingLine = line.replace(/^\S+\s+/, '');
      }
      if (/starting call/.test(line)) counts.calls++;
      if (/call ended/.test(line)) counts.ended++;
      if (/adapting video/.test(line)) counts.reshaped++;
    },
  };
  return counts;
}

function checkOneEncoder(label: string, log: SenderLog, viewers: number): string {
  const ok = log.streaming === 1 && log.calls === viewers && log.ended === 0;
  const line =
    `${label}: sender log says ${log.streaming}× 'camera streaming', ${log.calls}× 'starting call', ${log.ended}× 'call ended' ` +
    `with ${viewers} viewer(s) — ${ok ? 'one encoder for all, OK' : 'UNEXPECTED'}; picture reshaped by congestion control ${log.reshaped}×`;
  if (!ok) problems.push(line);
  return line;
}

async function startBenchSender(worker: WorkerHandle, roverId: string, log: { onLine: (line: string) => void }): Promise<SenderHandle> {
  return startSender({
    server: worker.url.replace('http', 'ws'),
    roverId,
    token: await worker.roverToken(roverId),
    args: SENDER_ARGS,
    onLine: log.onLine,
  });
}

/** The Chromium page's inbound video counters (getStats), as ReceiveCounters. */
async function pageCounters(page: Page): Promise<ReceiveCounters> {
  // A string, not a function: tsx/esbuild may inject helpers that do not exist in the page.
  return (await page.evaluate(`(async () => {
    const pc = window.roverViewer && window.roverViewer.peerConnection;
    const out = { bytes: 0, packets: 0, lost: 0, keyframes: 0 };
    if (!pc) return out;
    (await pc.getStats()).forEach((s) => {
      if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
      // bytesReceived counts payload only; add the 12-byte RTP header per packet to match the light viewers.
      out.bytes = (s.bytesReceived || 0) + (s.headerBytesReceived || 12 * (s.packetsReceived || 0));
      out.packets = s.packetsReceived || 0;
      out.lost = Math.max(0, s.packetsLost || 0);
      out.keyframes = s.keyFramesDecoded || 0;
    });
    return out;
  })()`)) as ReceiveCounters;
}

/**
 * A loaded viewer page, not yet watching (it observes the rover: state "waiting"). Every page is loaded
 * before any measurement: `wrangler dev` rebuilds viewer/dist when viewer sources change or another local
 * stack starts in this tree, and serves no pages for a while after that; a loaded page no longer cares.
 */
async function openIdlePage(browser: Browser, link: string, keep: readonly Page[]): Promise<Page> {
  for (let attempt = 1; ; attempt++) {
    try {
      const page = await openViewer(browser, link);
      await page.waitForFunction(() => document.getElementById('state')?.dataset['state'] === 'waiting', null, { timeout: 10_000 });
      return page;
    } catch (error) {
      // openViewer may have failed after opening its page: close every page not in use.
      for (const stray of browser.context.pages()) if (!keep.includes(stray)) await stray.close().catch(() => {});
      if (attempt >= 3) throw error;
      console.error(`viewer page not ready (attempt ${attempt}): ${error instanceof Error ? error.message.split('\n')[0] : String(error)}; retrying`);
      await sleep(3_000);
    }
  }
}

/**
 * 1 and 2 real headless Chromium viewers (which also send NACK, PLI and transport feedback) on their own
 * sender, so its log and memory start from scratch. Pages join by clicking Connect, as a person does.
 */
async function crossCheckWithChromium(worker: WorkerHandle): Promise<void> {
  const roverId = `bench-cost-chromium-${process.pid}`;
  const log = senderLogCounter();
  sender = await startBenchSender(worker, roverId, log);
  const pid = sender.process.pid!;
  browser = await launchBrowser();
  const idle: Page[] = [];
  while (idle.length < Math.max(...BROWSER_STEPS)) idle.push(await openIdlePage(browser, await worker.viewerLink(roverId), idle));
  console.log(`Cross-check, headless Chromium viewers (decoding; sender pid ${pid}):`);
  console.log(HEADER);
  console.log(RULE);
  const pageReceivers: Receivers = {
    get count() {
      return pages.length;
    },
    counters: async () => Promise.all(pages.map((page) => pageCounters(page))),
  };
  // The light steps start at zero viewers too: take the baseline from this sender.
  await sleep(settleS * 1000);
  browserRows.push(await measure(pid, pageReceivers));
  console.log(formatRow(browserRows[0]!, undefined));
  for (const target of BROWSER_STEPS) {
    while (pages.length < target) {
      const page = idle.shift()!;
      pages.push(page);
      await page.evaluate(() => document.getElementById('connect')!.click());
      await waitForFrames(page, 5, FIRST_VIDEO_TIMEOUT_MS);
    }
    await sleep(settleS * 1000);
    const row = await measure(pid, pageReceivers);
    browserRows.push(row);
    console.log(formatRow(row, browserRows.at(-2)));
  }
  verification.push(checkOneEncoder('chromium viewers', log, pages.length));
}

/** End the Chromium part: its pages, browser and sender (also after a failure). */
async function endChromium(): Promise<void> {
  await Promise.all(pages.splice(0).map((page) => page.close().catch(() => {})));
  await browser?.close().catch(() => {});
  browser = undefined;
  await sender?.stop();
  sender = undefined;
}

const problems: string[] = [];
let worker: WorkerHandle | undefined;
let sender: SenderHandle | undefined;
let browser: Browser | undefined;
const lightViewers: LightViewer[] = [];
const pages: Page[] = [];

let cleaned: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaned ??= (async () => {
    for (const viewer of lightViewers) viewer.close();
    await endChromium();
    await worker?.stop();
    nodeDataChannel.cleanup();
  })();
  return cleaned;
}

const watchdog = setTimeout(() => {
  console.error(`\nbench:cost: over its ${Math.round(BUDGET_MS / 1000)} s budget, stopping`);
  void cleanup().finally(() => process.exit(1));
}, BUDGET_MS);

const lightRows: Row[] = [];
const browserRows: Row[] = [];
const verification: string[] = [];
let exitCode = 0;
const startedAt = performance.now();
try {
  worker = await startWorker();
  console.log(
    `Cost per viewer: 1280x720@30, ${BITRATE_KBPS} kbit/s, test pattern; local workerd + rover-sender on ${cpus().length} cores; ` +
      `viewers added incrementally and kept; settle ${settleS} s, window ${windowS} s per step.\n`,
  );

  // Chromium first: its pages must load while viewer/dist is known good (just built by this Worker).
  if (withBrowser) {
    try {
      await crossCheckWithChromium(worker);
    } catch (error) {
      problems.push(`Chromium cross-check failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
    }
    await endChromium();
  }

  const roverId = `bench-cost-${process.pid}`;
  const log = senderLogCounter();
  sender = await startBenchSender(worker, roverId, log);
  const pid = sender.process.pid!;
  console.log(`\nLight receiving peers (node-datachannel, no decoding; sender pid ${pid}):`);
  console.log(`sender: ${log.streamingLine}`);
  console.log(HEADER);
  console.log(RULE);
  const lightReceivers: Receivers = {
    get count() {
      return lightViewers.length;
    },
    counters: async () => lightViewers.map((viewer) => viewer.counters()),
  };
  const viewerToken = await worker.viewerToken(roverId);
  for (const target of LIGHT_STEPS) {
    const joining: LightViewer[] = [];
    while (lightViewers.length < target) {
      const viewer = new LightViewer({ server: worker.url, roverId, token: viewerToken, name: `light-${lightViewers.length + 1}` });
      lightViewers.push(viewer);
      joining.push(viewer);
    }
    await Promise.all(joining.map((viewer) => viewer.connect()));
    await Promise.all(joining.map((viewer) => viewer.waitForKeyframe(FIRST_VIDEO_TIMEOUT_MS)));
    await sleep(settleS * 1000);
    const row = await measure(pid, lightReceivers);
    lightRows.push(row);
    console.log(formatRow(row, lightRows.at(-2)));
  }
  verification.unshift(checkOneEncoder('light viewers', log, lightViewers.length));
  const joinTimes = lightViewers.map((viewer) => viewer.firstKeyframeAt! - viewer.connectStartedAt!);
  verification.push(summary('light viewers, connect→keyframe', joinTimes).trim());
  const restarted = lightViewers.filter((viewer) => viewer.offers !== 1 || viewer.hangups.length > 0 || viewer.errors.length > 0);
  if (restarted.length > 0) {
    const detail = restarted.map((v) => `${v.name}: ${v.offers} offers, hangups [${v.hangups.join('; ')}], errors [${v.errors.join('; ')}]`).join('\n  ');
    problems.push(`light viewers with restarts or errors:\n  ${detail}`);
  }
  const invalid = lightViewers.reduce((sum, viewer) => sum + viewer.invalidMessages, 0);
  verification.push(`light viewers: every server message validated against ServerToViewer (${invalid} invalid)`);
  for (const viewer of lightViewers.splice(0)) viewer.close();

  // ---------------------------------------------------------------- summary
  const at = (rows: Row[], n: number): Row | undefined => rows.find((row) => row.viewers === n);
  const one = at(lightRows, 1)!;
  const eight = at(lightRows, 8)!;
  const slope = (eight.cpu - one.cpu) / 7;
  console.log(`\n## Sender cost per viewer (1280×720@30, ${BITRATE_KBPS} kbit/s, test pattern, loopback)\n`);
  console.log(`Light receiving peers (bench/light-viewer.ts), added incrementally and kept connected; ${windowS} s window per step.\n`);
  console.log(table(lightRows));
  if (browserRows.length > 0) {
    console.log(`\nCross-check with headless Chromium viewers (their own sender; pages join by clicking Connect):\n`);
    console.log(table(browserRows));
  }
  console.log('');
  const encoderOnly = at(lightRows, 0);
  if (encoderOnly) console.log(`- Encoder alone (0 viewers): ${encoderOnly.cpu.toFixed(1)} % of a core, RSS ${encoderOnly.rss.toFixed(1)} MiB.`);
  const steps = lightRows
    .filter((row) => row.viewers > 0)
    .map((row, i, rows) => (i === 0 ? null : `${rows[i - 1]!.viewers}→${row.viewers}: ${((row.cpu - rows[i - 1]!.cpu) / (row.viewers - rows[i - 1]!.viewers)).toFixed(2)}`))
    .filter((step) => step !== null);
  console.log(`- Per-step cost per added viewer (% of a core): ${steps.join(', ')}.`);
  console.log(
    `- Slope (cpu@8 − cpu@1)/7 = (${eight.cpu.toFixed(1)} − ${one.cpu.toFixed(1)})/7 = ${slope.toFixed(2)} % of one core per extra viewer; ` +
      `goal ≤ ${GOAL_PER_VIEWER} %: ${slope <= GOAL_PER_VIEWER ? 'MET' : 'NOT MET'}.`,
  );
  // Every point, not just two: the encoder's own CPU wanders by about ±1 % of a core between windows.
  const fitted = lightRows.filter((row) => row.viewers > 0);
  const meanX = fitted.reduce((sum, row) => sum + row.viewers, 0) / fitted.length;
  const meanY = fitted.reduce((sum, row) => sum + row.cpu, 0) / fitted.length;
  const leastSquares =
    fitted.reduce((sum, row) => sum + (row.viewers - meanX) * (row.cpu - meanY), 0) /
    fitted.reduce((sum, row) => sum + (row.viewers - meanX) ** 2, 0);
  console.log(`- Least-squares slope over ${fitted.map((row) => row.viewers).join(', ')} viewers: ${leastSquares.toFixed(2)} % of one core per viewer.`);
  console.log(`- RSS per extra viewer: ${((eight.rss - one.rss) / 7).toFixed(2)} MiB (${one.rss.toFixed(1)} → ${eight.rss.toFixed(1)} MiB).`);
  const chromiumOne = at(browserRows, 1);
  const chromiumTwo = at(browserRows, 2);
  const lightTwo = at(lightRows, 2);
  if (chromiumOne && chromiumTwo && lightTwo) {
    console.log(
      `- Chromium cross-check: 1→2 viewers ${(chromiumTwo.cpu - chromiumOne.cpu).toFixed(2)} % (light peers: ${(lightTwo.cpu - one.cpu).toFixed(2)} %); ` +
        `sender at 1 viewer ${chromiumOne.cpu.toFixed(1)} % (light ${one.cpu.toFixed(1)} %), at 2 viewers ${chromiumTwo.cpu.toFixed(1)} % (light ${lightTwo.cpu.toFixed(1)} %).`,
    );
  }
  for (const line of verification) console.log(`- ${line}`);
  if (problems.length > 0) {
    exitCode = 1;
    console.log(`\nProblems:\n${problems.map((p) => `- ${p}`).join('\n')}`);
  }
  console.log(`\n(run took ${((performance.now() - startedAt) / 1000).toFixed(0)} s)`);
} catch (error) {
  exitCode = 1;
  console.error(error);
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
process.exit(exitCode);
