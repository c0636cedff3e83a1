/**
 * A network-namespace NAT lab for end-to-end tests (Linux, root, iproute2 + iptables).
 *
 *            pub (bridge br0 = "the internet", 198.18.0.0/24)
 *        ┌───────────────┼────────────────┐
 *   srv 198.18.0.10   nat1 wan .21      nat2 wan .22
 *                     nat1 lan 10.200.1.1   nat2 lan 10.200.2.1
 *                        │                  │
 *                     rover 10.200.1.2   viewer 10.200.2.2
 *
 * Veths run directly between lab namespaces: nothing is created in the root namespace. Interface names
 * live inside their namespaces, so they are short fixed names; namespace names carry the owning pid
 * (`rl-<pid>-<n>-<role>`), which lets `cleanupStaleLabs()` delete leftovers of dead test runs.
 * The NAT routers have no default route, so nothing (e.g. Chromium's DNS) leaks out of the lab.
 */
import { execFile, execFileSync, spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type NatType = 'symmetric' | 'cone';

export interface LabOptions {
  /** NAT behaviour of both routers: 'symmetric' = MASQUERADE --random-fully, 'cone' = plain MASQUERADE. */
  nat?: NatType;
  /** Overrides `nat` for nat1 (the rover's router). */
  roverNat?: NatType;
  /** Overrides `nat` for nat2 (the viewer's router). */
  viewerNat?: NatType;
}

export type Role = 'pub' | 'srv' | 'nat1' | 'nat2' | 'rover' | 'viewer';
const ROLES: readonly Role[] = ['pub', 'srv', 'nat1', 'nat2', 'rover', 'viewer'];

export const LAB_ADDRESSES = {
  srv: '198.18.0.10',
  nat1Wan: '198.18.0.21',
  nat2Wan: '198.18.0.22',
  nat1Lan: '10.200.1.1',
  nat2Lan: '10.200.2.1',
  rover: '10.200.1.2',
  viewer: '10.200.2.2',
} as const;

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Output lines kept (stdout and stderr together, oldest dropped first). Default 1000. */
  maxLines?: number;
  /** Also print every output line to the console with this prefix (debugging). */
  echo?: string;
}

export interface LabProcess {
  readonly child: ChildProcess;
  /** pid of the program itself (`ip netns exec` execs it). */
  readonly pid: number;
  /** The last `maxLines` output lines, stdout and stderr interleaved. */
  readonly lines: readonly string[];
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** First line (already seen or future) matching `pattern`; rejects on timeout or exit. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM to the process group, SIGKILL after `graceMs` (default 2000). Resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface ExecOptions {
  /** Written to the command's stdin. */
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface Lab {
  /** Actual namespace names, e.g. `rl-4242-1-rover`. */
  readonly namespaces: Readonly<Record<Role, string>>;
  readonly addresses: typeof LAB_ADDRESSES;
  readonly nat: { readonly nat1: NatType; readonly nat2: NatType };
  /** Private temp dir of this lab (removed by destroy()). */
  readonly tempDir: string;
  /** Milliseconds createLab took. */
  readonly setupMs: number;
  /** Long-running process inside a lab namespace, in its own process group. */
  spawn(ns: Role, command: string, args?: readonly string[], options?: SpawnOptions): LabProcess;
  /** Short command inside a lab namespace; resolves to stdout, rejects with stderr on failure. */
  exec(ns: Role, command: string, args?: readonly string[], options?: ExecOptions): Promise<string>;
  /** Executable script that runs Chromium inside `ns`; use as playwright's `executablePath`. */
  chromiumWrapper(ns: Role, chromiumPath?: string): string;
  /** Kill every process in the lab namespaces, delete them and the temp dir. Idempotent, never throws. */
  destroy(): Promise<void>;
}

const NAME_RE = /^rl-(\d+)-(\d+)-(pub|srv|nat1|nat2|rover|viewer)$/;
const PROBE_RE = /^rlprobe-(\d+)-\d+$/;
let labCounter = 0;
const liveLabs = new Set<LabState>();

interface LabState {
  names: Record<Role, string>;
  tempDir: string;
  processes: Set<LabProcess>;
  destroyed: boolean;
}

function run(command: string, args: readonly string[], options: ExecOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args as string[],
      { timeout: options.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024, env: options.env ?? process.env },
      (error, stdout, stderr) => {
        if (error) {
          const detail = String(stderr).trim() || error.message;
          reject(new Error(`${command} ${args.join(' ')} failed: ${detail}`, { cause: error }));
        } else {
          resolve(String(stdout));
        }
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

const ip = (...args: string[]): Promise<string> => run('ip', args);

/** True if `pid` runs (a zombie waiting for its parent to reap it counts as dead). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..." — the state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function listNamespacesSync(): string[] {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .map((line) => line.trim().split(/\s+/)[0] ?? '')
      .filter(Boolean);
  } catch {
    return [];
  }
}

function pidsInNamespaceSync(ns: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter((n) => Number.isInteger(n) && n > 0 && n !== process.pid);
  } catch {
    return [];
  }
}

function killAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Synchronous teardown: used by the exit/signal safety net and for stale labs. */
function teardownSync(names: readonly string[], tempDir?: string): void {
  for (const ns of names) killAll(pidsInNamespaceSync(ns), 'SIGKILL');
  for (const ns of names) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // not there
    }
  }
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
}

/** Delete namespaces left by lab owners that are no longer running. Returns the names deleted. */
export function cleanupStaleLabs(): string[] {
  const stale = listNamespacesSync().filter((name) => {
    const match = NAME_RE.exec(name) ?? PROBE_RE.exec(name);
    return match !== null && !isAlive(Number(match[1]));
  });
  teardownSync(stale);
  return stale;
}

/** Names of namespaces that look like lab namespaces (any owner). */
export function listLabNamespaces(): string[] {
  return listNamespacesSync().filter((name) => NAME_RE.test(name));
}

// ---- safety net: a crashing or interrupted test run must not leave namespaces behind ----
let safetyNetInstalled = false;
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function emergencyTeardown(): void {
  for (const lab of liveLabs) {
    lab.destroyed = true;
    teardownSync(Object.values(lab.names), lab.tempDir);
  }
  liveLabs.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  emergencyTeardown();
  // Only we listened: restore the default action (terminate) by re-raising.
  if (process.listenerCount(signal) === 1) {
    uninstallSafetyNet();
    process.kill(process.pid, signal);
  }
}

function installSafetyNet(): void {
  if (safetyNetInstalled) return;
  safetyNetInstalled = true;
  process.on('exit', emergencyTeardown);
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

function uninstallSafetyNet(): void {
  if (!safetyNetInstalled) return;
  safetyNetInstalled = false;
  process.off('exit', emergencyTeardown);
  for (const signal of SIGNALS) process.off(signal, onSignal);
}

// ---- availability ----
export async function netnsAvailable(): Promise<{ ok: true } | { ok: false; reason: string }> {
  if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'network namespaces need root (run the tests as root)' };
  const probe = `rlprobe-${process.pid}-${Date.now() % 100000}`;
  try {
    await ip('netns', 'add', probe);
  } catch (error) {
    return { ok: false, reason: `cannot create a network namespace: ${(error as Error).message}` };
  }
  try {
    await run('ip', ['netns', 'exec', probe, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'lo', '-j', 'MASQUERADE', '--random-fully']);
    await run('ip', ['netns', 'exec', probe, 'iptables', '-A', 'FORWARD', '-m', 'conntrack', '--ctstate', 'ESTABLISHED', '-j', 'ACCEPT']);
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: `iptables (NAT/conntrack) unusable inside a namespace: ${(error as Error).message}` };
  } finally {
    await ip('netns', 'del', probe).catch(() => undefined);
  }
}

function routerRules(nat: NatType): string {
  return [
    '*filter',
    ':INPUT DROP [0:0]',
    ':FORWARD DROP [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    '-A INPUT -i lo -j ACCEPT',
    '-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
    '-A FORWARD -i lan -o wan -m conntrack --ctstate NEW,ESTABLISHED,RELATED -j ACCEPT',
    '-A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
    'COMMIT',
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    `-A POSTROUTING -o wan -j MASQUERADE${nat === 'symmetric' ? ' --random-fully' : ''}`,
    'COMMIT',
    '',
  ].join('\n');
}

/**
 * For test files: true when the lab can run. Otherwise the suite is skipped with a loud warning, or, with
 * REQUIRE_NETNS=1 (CI on machines that have namespaces), fails: a lab that silently never runs proves nothing.
 */
export async function netnsForTests(suite: string): Promise<boolean> {
  const available = await netnsAvailable();
  if (available.ok) return true;
  if (process.env['REQUIRE_NETNS'] === '1') throw new Error(`${suite} need network namespaces: ${available.reason}`);
  console.warn(`\nSKIPPING ${suite}: ${available.reason} (set REQUIRE_NETNS=1 to make this an error)\n`);
  return false;
}

export async function createLab(options: LabOptions = {}): Promise<Lab> {
  const started = performance.now();
  cleanupStaleLabs();
  const nat = {
    nat1: options.roverNat ?? options.nat ?? 'symmetric',
    nat2: options.viewerNat ?? options.nat ?? 'symmetric',
  } as const;
  const id = `rl-${process.pid}-${++labCounter}`;
  const names = Object.fromEntries(ROLES.map((role) => [role, `${id}-${role}`])) as Record<Role, string>;
  const state: LabState = {
    names,
    tempDir: mkdtempSync(join(tmpdir(), `${id}-`)),
    processes: new Set(),
    destroyed: false,
  };
  liveLabs.add(state);
  installSafetyNet();

  const A = LAB_ADDRESSES;
  const nsExec = (role: Role, command: string, args: string[], input?: string): Promise<string> =>
    run('ip', ['netns', 'exec', names[role], command, ...args], input === undefined ? {} : { input });
  const n = (role: Role, ...args: string[]): Promise<string> => ip('-n', names[role], ...args);

  try {
    for (const role of ROLES) await ip('netns', 'add', names[role]);
    // IPv4 only (no link-local v6 paths around the routers), loopback up everywhere.
    await Promise.all(
      ROLES.map(async (role) => {
        await nsExec(role, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
        await n(role, 'link', 'set', 'lo', 'up');
      }),
    );
    await n('pub', 'link', 'add', 'br0', 'type', 'bridge');
    // Public side: each host's veth end is named after the host inside `pub`.
    await n('srv', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'srv', 'netns', names.pub);
    await n('nat1', 'link', 'add', 'wan', 'type', 'veth', 'peer', 'name', 'nat1', 'netns', names.pub);
    await n('nat2', 'link', 'add', 'wan', 'type', 'veth', 'peer', 'name', 'nat2', 'netns', names.pub);
    // Private side: host eth0 <-> router lan.
    await n('rover', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'lan', 'netns', names.nat1);
    await n('viewer', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'lan', 'netns', names.nat2);

    await Promise.all([
      (async () => {
        await n('pub', 'link', 'set', 'br0', 'up');
        for (const port of ['srv', 'nat1', 'nat2']) await n('pub', 'link', 'set', port, 'master', 'br0', 'up');
      })(),
      (async () => {
        await n('srv', 'addr', 'add', `${A.srv}/24`, 'dev', 'eth0');
        await n('srv', 'link', 'set', 'eth0', 'up');
      })(),
      ...(['nat1', 'nat2'] as const).map(async (router) => {
        const wan = router === 'nat1' ? A.nat1Wan : A.nat2Wan;
        const lan = router === 'nat1' ? A.nat1Lan : A.nat2Lan;
        await n(router, 'addr', 'add', `${wan}/24`, 'dev', 'wan');
        await n(router, 'addr', 'add', `${lan}/24`, 'dev', 'lan');
        await n(router, 'link', 'set', 'wan', 'up');
        await n(router, 'link', 'set', 'lan', 'up');
        await nsExec(router, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
        await nsExec(router, 'iptables-restore', [], routerRules(nat[router]));
      }),
      ...(['rover', 'viewer'] as const).map(async (host) => {
        const addr = host === 'rover' ? A.rover : A.viewer;
        const gateway = host === 'rover' ? A.nat1Lan : A.nat2Lan;
        await n(host, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
        await n(host, 'link', 'set', 'eth0', 'up');
        await n(host, 'route', 'add', 'default', 'via', gateway);
      }),
    ]);
  } catch (error) {
    liveLabs.delete(state);
    teardownSync(Object.values(names), state.tempDir);
    throw error;
  }

  const setupMs = performance.now() - started;

  const lab: Lab = {
    namespaces: names,
    addresses: LAB_ADDRESSES,
    nat,
    tempDir: state.tempDir,
    setupMs,
    spawn: (ns, command, args = [], opts = {}) => spawnInNamespace(state, names[ns], command, args, opts),
    exec: (ns, command, args = [], opts = {}) => run('ip', ['netns', 'exec', names[ns], command, ...args], opts),
    chromiumWrapper: (ns, chromiumPath = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium') => {
      const path = join(state.tempDir, `chromium-${ns}.sh`);
      writeFileSync(path, `#!/bin/sh\nexec ip netns exec '${names[ns]}' '${chromiumPath}' "$@"\n`);
      chmodSync(path, 0o755);
      return path;
    },
    destroy: () => destroyLab(state),
  };
  return lab;
}

async function destroyLab(state: LabState): Promise<void> {
  if (state.destroyed) return;
  state.destroyed = true;
  try {
    await Promise.all([...state.processes].map((p) => p.stop(500).catch(() => undefined)));
    const names = Object.values(state.names);
    // Anything else still living in the lab (browsers, grandchildren): TERM, short grace, then KILL.
    let pids = names.flatMap(pidsInNamespaceSync);
    if (pids.length > 0) {
      killAll(pids, 'SIGTERM');
      const deadline = Date.now() + 500;
      while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      pids = names.flatMap(pidsInNamespaceSync);
      killAll(pids, 'SIGKILL');
    }
    await Promise.all(names.map((ns) => ip('netns', 'del', ns).catch(() => undefined)));
    rmSync(state.tempDir, { recursive: true, force: true });
  } catch {
    // never throw from teardown; the sync path below is the last resort
    teardownSync(Object.values(state.names), state.tempDir);
  } finally {
    liveLabs.delete(state);
    if (liveLabs.size === 0) uninstallSafetyNet();
  }
}

function spawnInNamespace(
  state: LabState,
  ns: string,
  command: string,
  args: readonly string[],
  opts: SpawnOptions,
): LabProcess {
  if (state.destroyed) throw new Error('lab already destroyed');
  const maxLines = opts.maxLines ?? 1000;
  // detached: the program (which `ip netns exec` execs into) leads its own process group.
  const child = spawnChild('ip', ['netns', 'exec', ns, command, ...args], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null }));
  });
  let done = false;
  void exited.then(() => {
    done = true;
  });

  const attach = (stream: NodeJS.ReadableStream | null): void => {
    let partial = '';
    stream?.setEncoding('utf8');
    const push = (line: string): void => {
      lines.push(line);
      if (lines.length > maxLines) lines.shift();
      if (opts.echo !== undefined) console.log(`${opts.echo}${line}`);
      for (const listener of listeners) listener(line);
    };
    stream?.on('data', (chunk: string) => {
      partial += chunk;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) push(line.replace(/\r$/, ''));
    });
    stream?.on('end', () => {
      if (partial) push(partial);
      partial = '';
    });
  };
  attach(child.stdout);
  attach(child.stderr);

  const handle: LabProcess = {
    child,
    pid: child.pid ?? -1,
    lines,
    exited,
    waitForLine(pattern, timeoutMs = 10_000) {
      for (const line of lines) {
        const match = line.match(pattern);
        if (match) return Promise.resolve(match);
      }
      return new Promise((resolve, reject) => {
        const finish = (): void => {
          clearTimeout(timer);
          listeners.delete(onLine);
        };
        const onLine = (line: string): void => {
          const match = line.match(pattern);
          if (match) {
            finish();
            resolve(match);
          }
        };
        const tail = (): string => lines.slice(-20).join('\n');
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${pattern} from ${command}; last output:\n${tail()}`));
        }, timeoutMs);
        listeners.add(onLine);
        void exited.then(({ code, signal }) => {
          if (!listeners.has(onLine)) return;
          // Let buffered output arrive before giving up.
          setTimeout(() => {
            if (!listeners.has(onLine)) return;
            finish();
            reject(new Error(`${command} exited (code ${code}, signal ${signal}) before printing ${pattern}; last output:\n${tail()}`));
          }, 50);
        });
      });
    },
    async stop(graceMs = 2000) {
      if (done || child.pid === undefined) return;
      const signalGroup = (signal: NodeJS.Signals): void => {
        try {
          process.kill(-child.pid!, signal);
        } catch {
          // group gone
        }
      };
      signalGroup('SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      // Stragglers that stayed in the group after the leader exited.
      signalGroup('SIGKILL');
    },
  };
  state.processes.add(handle);
  void exited.then(() => state.processes.delete(handle));
  return handle;
}

/** createLab, run `fn`, always destroy. */
export async function withLab<T>(options: LabOptions, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await createLab(options);
  try {
    return await fn(lab);
  } finally {
    await lab.destroy();
  }
}
