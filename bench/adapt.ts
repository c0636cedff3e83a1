/**
 * Link adaptation ("smart scaling") through a shaped link in the NAT lab (test/netlab, root needed).
 * The rover sends 1280×720@30 from the `meter` source starting at 2.5 Mbit/s; its uplink is then capped to
 * 1 Mbit/s (tc tbf) with 1 % random loss on UDP (iptables statistic), and later uncapped. The viewer is
 * real headless Chromium behind its own NAT; glass-to-glass comes from the viewer's own meter.
 *
 *   npm run bench:adapt                 (adaptive, then the same run with --adapt off for comparison)
 *   ADAPT=on CAP_S=60 npm run bench:adapt
 *
 * Reports, per mode: time to settle under the cap (the sender's target ≤ cap; and the viewer's 1-s
 * glass-to-glass p95 ≤ 300 ms with ≥ 20 fps from then on), fps kept, glass-to-glass p95 while capped,
 * freezes (> 1 s without a new frame), and time to get the bitrate back after the cap lifts.
 * No netem in this kernel: the 50 ms extra delay of the issue is not emulated (tbf's queue adds its own).
 */
import type { Page } from 'playwright-core';
import { createLab, netnsAvailable, type Lab } from '../test/netlab/lab.js';
import { openViewer, readLatency, waitForFrames } from '../test/e2e/browser.js';
import { startLabStack, withDiagnostics, type LabStack } from '../test/e2e/lab-stack.js';
import { distribution } from './summary.js';

const START_KBPS = 2500;
const CAP_KBPS = Number(process.env['CAP_KBPS'] ?? 1000);
const LOSS = Number(process.env['LOSS'] ?? 0.01);
const WARM_S = Number(process.env['WARM_S'] ?? 8);
const CAP_S = Number(process.env['CAP_S'] ?? 30);
const LIFT_S = Number(process.env['LIFT_S'] ?? 30);
const modes = (process.env['ADAPT'] ?? 'both') === 'both' ? ['on', 'off'] : [process.env['ADAPT']!];

interface Target {
  at: number;
  kbps: number;
  size: string;
  fps: number;
}

interface ModeResult {
  mode: string;
  targetUnderCapS: number | null;
  viewerSettledS: number | null;
  fpsCapped: { min: number; median: number };
  g2gCappedP95: number;
  g2gCappedP50: number;
  g2gBeforeP50: number;
  freezes: number;
  longestGapMs: number;
  recoverS: number | null;
  smallestShape: string;
}

async function shapeLink(lab: Lab, on: boolean): Promise<void> {
  if (on) {
    await lab.exec('rover', 'tc', ['qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', `${CAP_KBPS}kbit`, 'burst', '32kbit', 'latency', '50ms']);
    if (LOSS > 0) {
      // Only on the link: the rover's loopback hop (GStreamer → sender) is inside the machine.
      await lab.exec('rover', 'iptables', ['-A', 'OUTPUT', '-o', 'eth0', '-p', 'udp', '-m', 'statistic', '--mode', 'random', '--probability', String(LOSS), '-j', 'DROP']);
    }
  } else {
    await lab.exec('rover', 'tc', ['qdisc', 'del', 'dev', 'eth0', 'root']);
    if (LOSS > 0) await lab.exec('rover', 'iptables', ['-F', 'OUTPUT']);
  }
}

/** Per-second windows: presented frames and glass-to-glass p95. */
function windows(presented: number[], samples: { displayedAt: number; glassToGlassMs: number }[], from: number, to: number) {
  const result: { start: number; fps: number; p95: number | null }[] = [];
  for (let start = from; start + 1000 <= to; start += 1000) {
    const frames = presented.filter((t) => t >= start && t < start + 1000).length;
    const g2g = samples.filter((s) => s.displayedAt >= start && s.displayedAt < start + 1000).map((s) => s.glassToGlassMs);
    result.push({ start, fps: frames, p95: g2g.length ? distribution(g2g).p95 : null });
  }
  return result;
}

/** The browser's own receive counters for the video (inbound-rtp), to see why frames were missing. */
async function receiverCounters(page: Page): Promise<string> {
  return page.evaluate(async () => {
    const pc = (window as unknown as { roverViewer: { peerConnection: RTCPeerConnection | null } }).roverViewer.peerConnection;
    if (!pc) return 'no call';
    const keys = ['packetsReceived', 'packetsLost', 'nackCount', 'pliCount', 'framesReceived', 'framesDecoded', 'framesDropped', 'keyFramesDecoded', 'freezeCount', 'totalFreezesDuration'];
    let line = '';
    (await pc.getStats()).forEach((entry: Record<string, unknown>) => {
      if (entry['type'] === 'inbound-rtp' && entry['kind'] === 'video') line = keys.map((k) => `${k}=${Number(entry[k] ?? 0).toFixed(k === 'totalFreezesDuration' ? 1 : 0)}`).join(' ');
    });
    return line;
  });
}

async function runMode(mode: string): Promise<ModeResult> {
  const lab = await createLab({ nat: 'cone' });
  let stack: LabStack | undefined;
  const targets: Target[] = [];
  let capAt: number | undefined;
  try {
    stack = await startLabStack(lab, {
      turn: false,
      videoArgs: ['--source', 'meter', '--width', '1280', '--height', '720', '--fps', '30', '--bitrate', String(START_KBPS)],
      senderArgs: ['--adapt', mode, '--log-level', 'debug'],
      onSenderLine: (line) => {
        if (process.env['ECHO'] && new RegExp(process.env['ECHO']).test(line)) console.log(`  | ${line.slice(25, 220)}`);
        if (!line.includes('adapting video')) return;
        if (process.env['VERBOSE']) console.log(`  ${((Date.now() - (capAt ?? Date.now())) / 1000).toFixed(1)}s ${line.replace(/^.*adapting video[^ ]* links' /, '')}`);
        const kbps = /kbps=(\d+)/.exec(line);
        const size = /size=(\d+x\d+)/.exec(line);
        const fps = /fps=(\d+)/.exec(line);
        if (kbps) targets.push({ at: Date.now(), kbps: Number(kbps[1]), size: size?.[1] ?? '?', fps: Number(fps?.[1] ?? 0) });
      },
    });
    const running = stack;
    const link = await running.worker.viewerLink(running.roverId, 3600);
    const page: Page = await openViewer(running.browser, link, '?autoconnect=1');
    await withDiagnostics(running, page, () => waitForFrames(page, 60, 30_000));
    await readLatency(page, true);

    const t0 = Date.now();
    await sleep(WARM_S * 1000);
    const cappedAt = Date.now();
    capAt = cappedAt;
    await shapeLink(lab, true);
    await sleep(CAP_S * 1000);
    const liftAt = Date.now();
    const countersCapped = await receiverCounters(page);
    await shapeLink(lab, false);
    await sleep(LIFT_S * 1000);
    const end = Date.now();
    console.log(`[adapt ${mode}] browser counters at the lift: ${countersCapped}`);
    console.log(`[adapt ${mode}] browser counters at the end:  ${await receiverCounters(page)}`);

    // Every presented frame the viewer's meter read: when it was shown and its latency (server clock,
    // which on this one machine is the local clock within the sync's error).
    const samples = (await page.evaluate('window.roverLatency.samples')) as { capturedAt: number; displayedAt: number; glassToGlassMs: number }[];
    const unreadable = (await page.evaluate('window.roverLatency.unreadable')) as number;
    const presented = samples.map((s) => s.displayedAt);
    const before = samples.filter((s) => s.capturedAt >= t0 && s.capturedAt < cappedAt).map((s) => s.glassToGlassMs);
    const capped = samples.filter((s) => s.capturedAt >= cappedAt && s.capturedAt < liftAt).map((s) => s.glassToGlassMs);
    const cappedWindows = windows(presented, samples, cappedAt, liftAt);

    // Settled: from this window on, every window has ≥ 20 fps and p95 ≤ 300 ms.
    let settledIndex: number | null = null;
    for (let i = cappedWindows.length - 1; i >= 0; i--) {
      const w = cappedWindows[i]!;
      if (w.fps >= 20 && w.p95 !== null && w.p95 <= 300) settledIndex = i;
      else break;
    }
    const underCap = targets.find((t) => t.at >= cappedAt && t.kbps <= CAP_KBPS);
    const recovered = targets.find((t) => t.at >= liftAt && t.kbps >= START_KBPS * 0.9);
    let longestGap = 0;
    let freezes = 0;
    const during = presented.filter((t) => t >= t0 && t <= end);
    for (let i = 1; i < during.length; i++) {
      const gap = during[i]! - during[i - 1]!;
      longestGap = Math.max(longestGap, gap);
      if (gap > 1000) freezes++;
    }
    const fpsValues = cappedWindows.map((w) => w.fps).sort((a, b) => a - b);
    const shapes = targets.filter((t) => t.at >= cappedAt).map((t) => t.size);
    const smallest = shapes.sort((a, b) => Number(a.split('x')[0]) - Number(b.split('x')[0]))[0] ?? '1280x720';

    console.log(`\n[adapt ${mode}] per second while capped (fps / glass-to-glass p95 ms):`);
    console.log(cappedWindows.map((w) => `${w.fps}/${w.p95 === null ? '-' : w.p95.toFixed(0)}`).join(' '));
    if (unreadable > 0) console.log(`[adapt ${mode}] ${unreadable} presented frames had an unreadable code (counted as missing)`);
    console.log(`[adapt ${mode}] encoder targets: ${targets.map((t) => `${((t.at - cappedAt) / 1000).toFixed(1)}s:${t.kbps}${t.size !== '1280x720' ? `@${t.size}` : ''}`).join(' ')}`);
    return {
      mode,
      targetUnderCapS: underCap ? (underCap.at - cappedAt) / 1000 : null,
      viewerSettledS: settledIndex === null ? null : settledIndex,
      fpsCapped: { min: fpsValues[0] ?? 0, median: fpsValues[Math.floor(fpsValues.length / 2)] ?? 0 },
      g2gCappedP95: capped.length ? distribution(capped).p95 : NaN,
      g2gCappedP50: capped.length ? distribution(capped).p50 : NaN,
      g2gBeforeP50: before.length ? distribution(before).p50 : NaN,
      freezes,
      longestGapMs: longestGap,
      recoverS: recovered ? (recovered.at - liftAt) / 1000 : null,
      smallestShape: smallest,
    };
  } finally {
    await stack?.stop();
    await lab.destroy();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const available = await netnsAvailable();
if (!available.ok) {
  console.error(`cannot run: ${available.reason}`);
  process.exit(1);
}
const results: ModeResult[] = [];
for (const mode of modes) results.push(await runMode(mode));

const fmt = (value: number | null, unit = ' s'): string => (value === null || Number.isNaN(value) ? 'never' : `${value.toFixed(1)}${unit}`);
console.log(`\nLink adaptation: 1280x720@30 meter source from ${START_KBPS} kbit/s; rover uplink capped to ${CAP_KBPS} kbit/s + ${(LOSS * 100).toFixed(0)} % loss for ${CAP_S} s, then lifted (${LIFT_S} s). NAT lab, direct path, headless Chromium.`);
console.log('| mode | target ≤ cap after | viewer settled after (goal ≤ 5 s) | fps capped min/median (goal ≥ 20) | g2g capped p50 / p95 (goal p95 ≤ 300 ms) | freezes > 1 s (goal 0) | longest gap | bitrate back after lift | smallest picture |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(
    `| adapt ${r.mode} | ${fmt(r.targetUnderCapS)} | ${fmt(r.viewerSettledS)} | ${r.fpsCapped.min} / ${r.fpsCapped.median} | ${r.g2gCappedP50.toFixed(0)} / ${r.g2gCappedP95.toFixed(0)} ms | ${r.freezes} | ${r.longestGapMs.toFixed(0)} ms | ${r.mode === 'on' ? fmt(r.recoverS) : 'n/a'} | ${r.smallestShape} |`,
  );
}
console.log(`(glass-to-glass before the cap, p50: ${results.map((r) => `${r.mode} ${r.g2gBeforeP50.toFixed(0)} ms`).join(', ')})`);
const adaptive = results.find((r) => r.mode === 'on');
if (adaptive) {
  const met = (ok: boolean): string => (ok ? 'met' : 'MISSED');
  console.log(`goal settle ≤ 5 s: ${met(adaptive.viewerSettledS !== null && adaptive.viewerSettledS <= 5)} (${fmt(adaptive.viewerSettledS)})`);
  console.log(`goal ≥ 20 fps while capped: ${met(adaptive.fpsCapped.median >= 20)} (median ${adaptive.fpsCapped.median} fps; worst second ${adaptive.fpsCapped.min} fps, while the queue drains)`);
  console.log(`goal glass-to-glass p95 ≤ 300 ms while capped: ${met(adaptive.g2gCappedP95 <= 300)} (${adaptive.g2gCappedP95.toFixed(0)} ms)`);
  console.log(`goal 0 freezes > 1 s: ${met(adaptive.freezes === 0)} (${adaptive.freezes}; longest gap ${adaptive.longestGapMs.toFixed(0)} ms); bitrate back ${fmt(adaptive.recoverS)} after the lift`);
}
