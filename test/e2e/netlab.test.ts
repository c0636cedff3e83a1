/**
 * The NAT lab proves itself with real traffic: NAT mapping and filtering as claimed, no way out of the
 * lab, full teardown (also after a throw, a crash and a kill), and Chromium really running inside a namespace.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './browser.js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  cleanupStaleLabs,
  createLab,
  isAlive,
  listLabNamespaces,
  netnsForTests,
  withLab,
  type Lab,
  type LabProcess,
  type Role,
} from '../netlab/lab.js';

const labAvailable = await netnsForTests('network-namespace lab tests');

const LAB_TS = fileURLToPath(new URL('../netlab/lab.ts', import.meta.url));
const PROBE = fileURLToPath(new URL('../netlab/udp-probe.mjs', import.meta.url));
const NODE = process.execPath;
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Reply {
  id: number;
  seenFrom: string;
  seenPort: number;
  via: number;
}
interface ClientResult {
  localPort: number;
  replies: (Reply | null)[];
  unsolicited: { id: number; via: number; from: string; fromPort: number }[];
  errors: string[];
}

async function udpClient(
  lab: Lab,
  ns: Role,
  targets: { host: string; port: number; pokeFrom?: number }[],
  waitMs = 400,
): Promise<ClientResult> {
  const out = await lab.exec(ns, NODE, [PROBE, 'client', JSON.stringify({ targets, waitMs })]);
  return JSON.parse(out.trim().split('\n').pop()!) as ClientResult;
}

async function udpServer(lab: Lab, ns: Role, host: string, ports: number[]): Promise<LabProcess> {
  const server = lab.spawn(ns, NODE, [PROBE, 'server', host, ports.join(',')]);
  await server.waitForLine(/"ready":true/, 5000);
  return server;
}

const pidAlive = isAlive;

describe.skipIf(!labAvailable)('netlab: symmetric NAT on both sides', () => {
  let lab: Lab;
  let srvUdp: LabProcess;
  const SRV = '198.18.0.10';

  beforeAll(async () => {
    lab = await createLab({ nat: 'symmetric' });
    console.log(`[netlab] symmetric lab set up in ${lab.setupMs.toFixed(0)} ms`);
    srvUdp = await udpServer(lab, 'srv', SRV, [4001, 4002]);
  });
  afterAll(async () => {
    const started = performance.now();
    await lab?.destroy();
    console.log(`[netlab] symmetric lab destroyed in ${(performance.now() - started).toFixed(0)} ms`);
  });

  test('setup is quick and the topology has no link to the root namespace', async () => {
    expect(lab.setupMs).toBeLessThan(2000);
    const expected: Record<Role, string[]> = {
      pub: ['br0', 'nat1', 'nat2', 'srv'],
      srv: ['eth0'],
      nat1: ['lan', 'wan'],
      nat2: ['lan', 'wan'],
      rover: ['eth0'],
      viewer: ['eth0'],
    };
    const labNames = new Set(Object.values(lab.namespaces));
    for (const role of Object.keys(expected) as Role[]) {
      const links = (await lab.exec(role, 'ip', ['-o', 'link', 'show'])).trim().split('\n');
      const names = links.map((l) => l.split(':')[1]!.trim().split('@')[0]!).filter((n) => n !== 'lo');
      expect(names.sort(), role).toEqual(expected[role]);
      for (const line of links.filter((l) => l.includes('@'))) {
        // Every veth's other end lives in a lab namespace, never in the root namespace.
        const peer = /link-netns (\S+)/.exec(line)?.[1];
        expect(peer && labNames.has(peer), `${role}: ${line}`).toBe(true);
      }
    }
  });

  test('rover reaches srv over UDP and srv sees the NAT WAN address; the private side is unreachable', async () => {
    const fromRover = await udpClient(lab, 'rover', [{ host: SRV, port: 4001 }]);
    expect(fromRover.errors).toEqual([]);
    expect(fromRover.replies[0]?.seenFrom).toBe('198.18.0.21');
    const fromViewer = await udpClient(lab, 'viewer', [{ host: SRV, port: 4001 }]);
    expect(fromViewer.replies[0]?.seenFrom).toBe('198.18.0.22');

    const roverUdp = await udpServer(lab, 'rover', '10.200.1.2', [5001]);
    try {
      // srv has no route to the private network at all...
      const direct = await udpClient(lab, 'srv', [{ host: '10.200.1.2', port: 5001 }], 200);
      expect(direct.replies[0]).toBeNull();
      expect(direct.errors.join(' ')).toMatch(/ENETUNREACH/);
      // ...and even with a route via nat1's WAN (a neighbour on the "internet" trying), the router drops it.
      await lab.exec('srv', 'ip', ['route', 'add', '10.200.1.0/24', 'via', '198.18.0.21']);
      try {
        const routed = await udpClient(lab, 'srv', [{ host: '10.200.1.2', port: 5001 }], 300);
        expect(routed.replies[0]).toBeNull();
        expect(routed.errors).toEqual([]);
      } finally {
        await lab.exec('srv', 'ip', ['route', 'del', '10.200.1.0/24']);
      }
      expect(roverUdp.lines.filter((l) => l.includes('"recv"'))).toEqual([]);
      // Control: the rover's own server works from its own LAN side.
      const local = await udpClient(lab, 'rover', [{ host: '10.200.1.2', port: 5001 }], 100);
      expect(local.replies[0]?.seenFrom).toBe('10.200.1.2');
    } finally {
      await roverUdp.stop();
    }
  });

  test('symmetric mapping: one socket, two destinations, two different external ports', async () => {
    const result = await udpClient(lab, 'rover', [
      { host: SRV, port: 4001 },
      { host: SRV, port: 4002 },
    ]);
    const [a, b] = result.replies;
    expect(a?.seenFrom).toBe('198.18.0.21');
    expect(b?.seenFrom).toBe('198.18.0.21');
    expect(a!.seenPort).not.toBe(b!.seenPort);
    console.log(`[netlab] symmetric: local port ${result.localPort} -> ${a!.seenPort} (to :4001), ${b!.seenPort} (to :4002)`);
  });

  test('filtering: an unsolicited packet to the mapped port from another srv port is dropped', async () => {
    // Control without NAT: the poke mechanism delivers when nothing filters (client on srv itself).
    const control = await udpClient(lab, 'srv', [{ host: SRV, port: 4001, pokeFrom: 4002 }]);
    expect(control.unsolicited.length).toBeGreaterThan(0);

    const result = await udpClient(lab, 'rover', [{ host: SRV, port: 4001, pokeFrom: 4002 }], 600);
    expect(result.replies[0]?.seenFrom).toBe('198.18.0.21'); // the solicited reply gets through
    expect(result.unsolicited).toEqual([]); // the poke from :4002 to the same mapping does not
    const mapped = result.replies[0]!.seenPort;
    expect(srvUdp.lines.some((l) => l.includes('"pokeFrom":4002') && l.includes(`"fromPort":${mapped}`))).toBe(true);
  });

  test('no way out: hosts route only to their router, routers and srv have no route beyond the lab', async () => {
    const resolver = /^nameserver\s+(\d+\.\d+\.\d+\.\d+)/m.exec(readFileSync('/etc/resolv.conf', 'utf8'))?.[1];
    const outside = ['1.1.1.1', ...(resolver ? [resolver] : [])];
    for (const address of outside) {
      expect(await lab.exec('viewer', 'ip', ['route', 'get', address])).toMatch(/via 10\.200\.2\.1 dev eth0/);
      expect(await lab.exec('rover', 'ip', ['route', 'get', address])).toMatch(/via 10\.200\.1\.1 dev eth0/);
      for (const ns of ['nat1', 'nat2', 'srv', 'pub'] as const) {
        await expect(lab.exec(ns, 'ip', ['route', 'get', address]), `${ns} -> ${address}`).rejects.toThrow(
          /Network is unreachable/,
        );
      }
    }
    expect(await lab.exec('nat2', 'ip', ['route', 'get', '198.18.0.10'])).toMatch(/dev wan/);
  });

  test('Chromium launched through chromiumWrapper(viewer) lives in the viewer namespace', async () => {
    const http = lab.spawn('srv', NODE, [
      '-e',
      `require('http').createServer((q, s) => { s.setHeader('content-type', 'text/html');
         s.end('<p id="remote">' + q.socket.remoteAddress + '</p>'); })
       .listen(8080, '198.18.0.10', () => console.log('listening'));`,
    ]);
    // A server in the root namespace on loopback: a browser inside the lab must NOT reach it.
    const rootServer = createServer((_q, s) => s.end('root namespace'));
    await new Promise<void>((resolve) => rootServer.listen(0, '127.0.0.1', resolve));
    const rootPort = (rootServer.address() as { port: number }).port;
    const profile = mkdtempSync(join(tmpdir(), 'netlab-chromium-'));
    try {
      await http.waitForLine(/listening/, 5000);
      const context = await chromium.launchPersistentContext(profile, {
        executablePath: lab.chromiumWrapper('viewer'),
        headless: true,
        args: CHROMIUM_ARGS,
      });
      try {
        const page = await context.newPage();
        await page.goto('http://198.18.0.10:8080/');
        expect(await page.textContent('#remote')).toBe('198.18.0.22');
        await expect(page.goto(`http://127.0.0.1:${rootPort}/`)).rejects.toThrow(/ERR_CONNECTION_REFUSED/);
        const pids = (await lab.exec('srv', 'ip', ['netns', 'pids', lab.namespaces.viewer])).trim().split('\n');
        const comms = pids.map((pid) => {
          try {
            return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
          } catch {
            return '';
          }
        });
        expect(comms).toContain('chromium');
      } finally {
        await context.close();
      }
      // Playwright's close ended the browser across the wrapper: nothing left in the viewer namespace.
      expect((await lab.exec('srv', 'ip', ['netns', 'pids', lab.namespaces.viewer])).trim()).toBe('');
    } finally {
      rootServer.close();
      await http.stop();
      rmSync(profile, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!labAvailable)('netlab: cone NAT', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await createLab({ nat: 'cone' });
    console.log(`[netlab] cone lab set up in ${lab.setupMs.toFixed(0)} ms`);
    await udpServer(lab, 'srv', '198.18.0.10', [4001, 4002]);
  });
  afterAll(async () => lab?.destroy());

  test('cone mapping: one socket, two destinations, the same external port', async () => {
    const result = await udpClient(lab, 'viewer', [
      { host: '198.18.0.10', port: 4001 },
      { host: '198.18.0.10', port: 4002 },
    ]);
    const [a, b] = result.replies;
    expect(a?.seenFrom).toBe('198.18.0.22');
    expect(a!.seenPort).toBe(b!.seenPort);
  });

  test('cone (Linux MASQUERADE) still filters per remote port: port-restricted cone', async () => {
    const result = await udpClient(lab, 'rover', [{ host: '198.18.0.10', port: 4001, pokeFrom: 4002 }], 500);
    expect(result.replies[0]?.seenFrom).toBe('198.18.0.21');
    expect(result.unsolicited).toEqual([]);
  });

  test('mixed NAT types per side', async () => {
    await withLab({ roverNat: 'cone', viewerNat: 'symmetric' }, async (mixed) => {
      expect(mixed.nat).toEqual({ nat1: 'cone', nat2: 'symmetric' });
      expect(await mixed.exec('nat1', 'iptables', ['-t', 'nat', '-S', 'POSTROUTING'])).not.toMatch(/random-fully/);
      expect(await mixed.exec('nat2', 'iptables', ['-t', 'nat', '-S', 'POSTROUTING'])).toMatch(/random-fully/);
    });
  });
});

describe.skipIf(!labAvailable)('netlab: teardown', () => {
  /** Killed processes may take a moment to be reaped: poll briefly before asserting. */
  async function assertGone(names: readonly string[], pids: readonly number[]): Promise<void> {
    const deadline = Date.now() + 1000;
    while (pids.some(pidAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const left = listLabNamespaces();
    for (const name of names) expect(left).not.toContain(name);
    for (const pid of pids) expect(pidAlive(pid), `pid ${pid}`).toBe(false);
  }

  test('destroy() kills tracked, untracked and TERM-ignoring processes, deletes everything, is idempotent', async () => {
    const lab = await createLab({ nat: 'symmetric' });
    const names = Object.values(lab.namespaces);
    const sleeper = lab.spawn('rover', 'sleep', ['1000']);
    const stubborn = lab.spawn('srv', 'sh', ['-c', 'trap "" TERM; echo armed; while :; do sleep 1; done']);
    await stubborn.waitForLine(/armed/);
    // A daemonised process no handle knows about.
    const daemonPid = Number(
      (await lab.exec('viewer', 'sh', ['-c', 'sleep 1000 >/dev/null 2>&1 </dev/null & echo $!'])).trim(),
    );
    expect(pidAlive(daemonPid)).toBe(true);
    const wrapper = lab.chromiumWrapper('viewer');
    const started = performance.now();
    await lab.destroy();
    console.log(`[netlab] destroy with 3 live processes: ${(performance.now() - started).toFixed(0)} ms`);
    await assertGone(names, [sleeper.pid, stubborn.pid, daemonPid]);
    expect(existsSync(lab.tempDir) || existsSync(wrapper)).toBe(false);
    await expect(lab.destroy()).resolves.toBeUndefined();
  });

  test('stop() kills the inner program (ip netns exec execs it), not just a wrapper', async () => {
    const lab = await createLab({});
    try {
      const proc = lab.spawn('rover', 'sleep', ['1000']);
      await new Promise((r) => setTimeout(r, 100));
      expect(readFileSync(`/proc/${proc.pid}/comm`, 'utf8').trim()).toBe('sleep');
      await proc.stop();
      expect(pidAlive(proc.pid)).toBe(false);
      expect((await lab.exec('srv', 'ip', ['netns', 'pids', lab.namespaces.rover])).trim()).toBe('');
    } finally {
      await lab.destroy();
    }
  });

  test('a test that throws midway still tears down (withLab)', async () => {
    let names: string[] = [];
    let pid = -1;
    await expect(
      withLab({ nat: 'cone' }, async (lab) => {
        names = Object.values(lab.namespaces);
        pid = lab.spawn('nat1', 'sleep', ['1000']).pid;
        throw new Error('boom midway');
      }),
    ).rejects.toThrow('boom midway');
    await assertGone(names, [pid]);
  });

  // A separate Node process owns a lab, then crashes / is terminated / is killed outright.
  async function childOwningLab(
    ending: 'throw' | 'sigterm' | 'sigkill',
  ): Promise<{ names: string[]; sleeper: number; ownerPid: number }> {
    const dir = mkdtempSync(join(tmpdir(), 'netlab-child-'));
    const script = join(dir, 'owner.mts');
    writeFileSync(
      script,
      `import { createLab } from ${JSON.stringify(pathToFileURL(LAB_TS).href)};
       const lab = await createLab({ nat: 'symmetric' });
       const sleeper = lab.spawn('rover', 'sleep', ['1000']);
       console.log(JSON.stringify({ names: Object.values(lab.namespaces), sleeper: sleeper.pid }));
       if (process.argv[2] === 'throw') setTimeout(() => { throw new Error('crash'); }, 50);
       else setInterval(() => {}, 1000);`,
    );
    const child = spawn(NODE, ['--import', 'tsx', script, ending], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      const info = await new Promise<{ names: string[]; sleeper: number }>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += String(d);
          const line = out.split('\n').find((l) => l.startsWith('{'));
          if (line) resolve(JSON.parse(line) as { names: string[]; sleeper: number });
        });
        child.once('exit', (code) => reject(new Error(`owner exited early (${code})`)));
      });
      for (const name of info.names) expect(listLabNamespaces()).toContain(name);
      if (ending === 'sigterm') child.kill('SIGTERM');
      if (ending === 'sigkill') child.kill('SIGKILL');
      await exited;
      return { ...info, ownerPid: child.pid! };
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test('an owner that crashes with an uncaught exception leaves nothing behind (exit safety net)', async () => {
    const { names, sleeper } = await childOwningLab('throw');
    await assertGone(names, [sleeper]);
  });

  test('an owner terminated by SIGTERM leaves nothing behind (signal safety net)', async () => {
    const { names, sleeper } = await childOwningLab('sigterm');
    await assertGone(names, [sleeper]);
  });

  test('after SIGKILL, cleanupStaleLabs() removes the dead owner’s namespaces and processes', async () => {
    const { names, sleeper } = await childOwningLab('sigkill');
    expect(listLabNamespaces()).toEqual(expect.arrayContaining(names));
    expect(pidAlive(sleeper)).toBe(true);
    const removed = cleanupStaleLabs();
    expect(removed).toEqual(expect.arrayContaining(names));
    await new Promise((r) => setTimeout(r, 50));
    await assertGone(names, [sleeper]);
  });
});
