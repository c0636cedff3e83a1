// Starts the real parts of the local stack as child processes: workerd (via `wrangler dev`) and the
// rover sender. Shared by `npm start` and the end-to-end tests, so both run exactly the same thing.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The token module (TypeScript, shared with the Worker): minting here is exactly what the Worker verifies. */
const auth = await tsImport('../protocol/auth.ts', import.meta.url);

/** Fresh random secrets for a local Worker: auth is on in every mode, local ones included. */
export function generateSecrets() {
  const secret = () => randomBytes(32).toString('base64url');
  return { ROVER_TOKEN_SECRET: secret(), VIEWER_TOKEN_SECRET: secret(), ADMIN_TOKEN: secret() };
}

/**
 * Secrets of the `npm start` stack, kept in .state/dev-secrets.json (mode 0600) so printed viewer links
 * survive a restart. Delete the file to revoke every link and token it signed.
 */
export function devSecrets() {
  const file = join(repoRoot, '.state', 'dev-secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  mkdirSync(dirname(file), { recursive: true });
  const secrets = generateSecrets();
  writeFileSync(file, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 });
  return secrets;
}

/** Wrangler keeps its state inside the repo, sends no metrics and needs no login. */
export function wranglerEnv(extra = {}) {
  const state = join(repoRoot, '.state');
  mkdirSync(join(state, 'xdg'), { recursive: true });
  mkdirSync(join(state, 'tmp'), { recursive: true });
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: 'false',
    XDG_CONFIG_HOME: join(state, 'xdg'),
    TMPDIR: join(state, 'tmp'),
    CI: process.env.CI ?? '',
    ...extra,
  };
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function collectOutput(child, sink) {
  const lines = [];
  const onData = (chunk) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      lines.push(line);
      if (lines.length > 400) lines.shift();
      sink?.(line);
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  return lines;
}

function stopProcessGroup(child, signal = 'SIGTERM', graceMs = 3000) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      process.kill(-child.pid, signal);
    } catch {
      resolve();
    }
  });
}

/**
 * Worker vars for a local stack. Loopback needs no STUN, and the default (Cloudflare's public STUN)
 * would send packets off this machine: local runs list none unless the caller says otherwise.
 */
export const LOCAL_WORKER_VARS = { STUN_URLS: 'none' };

/**
 * Start the Worker on local workerd. Resolves when it answers HTTP.
 * `vars` override wrangler.toml [vars] (and may carry secrets such as TURN_SECRET, as `wrangler dev` allows).
 * `command` prefixes the process (e.g. `['ip', 'netns', 'exec', ns]`); the root namespace cannot reach into
 * another namespace, so readiness is then taken from wrangler's "Ready on" line instead of an HTTP probe.
 */
export async function startWorker({ port, ip = '127.0.0.1', persistDir, onLine, vars = {}, command = [], secrets = generateSecrets() } = {}) {
  const listenPort = port ?? (await freePort());
  // Vars and secrets go through an env file (mode 0600), not argv: command lines are world-readable.
  mkdirSync(join(repoRoot, '.state', 'tmp'), { recursive: true });
  const envDir = mkdtempSync(join(repoRoot, '.state', 'tmp', 'worker-env-'));
  const envFile = join(envDir, '.env');
  const settings = { ...LOCAL_WORKER_VARS, ...secrets, ...vars };
  writeFileSync(envFile, Object.entries(settings).map(([name, value]) => `${name}=${JSON.stringify(String(value))}`).join('\n') + '\n', { mode: 0o600 });
  const args = [
    join(repoRoot, 'node_modules', 'wrangler', 'bin', 'wrangler.js'),
    'dev',
    '--port', String(listenPort),
    '--ip', ip,
    '--persist-to', persistDir ?? join(repoRoot, '.state', 'wrangler'),
    '--show-interactive-dev-session=false',
    '--env-file', envFile,
  ];
  const [program, ...prefix] = command.length > 0 ? [...command, process.execPath] : [process.execPath];
  let readyLine = false;
  const child = spawn(program, [...prefix, ...args], { cwd: repoRoot, env: wranglerEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collectOutput(child, (line) => {
    if (/Ready on http/.test(line)) readyLine = true;
    onLine?.(line);
  });
  const url = `http://${ip}:${listenPort}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}):\n${output.join('\n')}`);
    const handle = {
      url,
      port: listenPort,
      output,
      process: child,
      secrets,
      roverToken: async (roverId, ttlSeconds = 3600) => (await auth.mintToken('rover', roverId, secrets.ROVER_TOKEN_SECRET, ttlSeconds)).token,
      viewerToken: async (roverId, ttlSeconds = 3600, options = {}) =>
        (await auth.mintToken('viewer', roverId, secrets.VIEWER_TOKEN_SECRET, ttlSeconds, undefined, options)).token,
      /** The link an operator opens: the token rides in the fragment, which browsers never send to servers. */
      viewerLink: async (roverId, ttlSeconds = 3600, options = {}) =>
        `${url}/rovers/${roverId}#access=${(await auth.mintToken('viewer', roverId, secrets.VIEWER_TOKEN_SECRET, ttlSeconds, undefined, options)).token}`,
      stop: async () => {
        await stopProcessGroup(child);
        rmSync(envDir, { recursive: true, force: true });
      },
    };
    if (command.length > 0) {
      if (readyLine) return handle;
    } else {
      try {
        const response = await fetch(url + '/', { signal: AbortSignal.timeout(1000) });
        if (response.ok) return handle;
      } catch {}
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await stopProcessGroup(child, 'SIGKILL');
  rmSync(envDir, { recursive: true, force: true });
  throw new Error(`wrangler dev did not answer on ${url} within 60 s:\n${output.join('\n')}`);
}

/** Start the real rover sender. Resolves once it is connected to the signaling server. */
/** `token`: the rover token, passed in the environment (ROVER_TOKEN), not argv. */
export async function startSender({ server, roverId, token, args = [], onLine, readyTimeoutMs = 30_000, command = [], env = {} }) {
  const senderArgs = [join(repoRoot, 'sender', 'bin', 'rover-sender.mjs'), '--server', server, '--rover', roverId, ...args];
  const [program, ...prefix] = command.length > 0 ? [...command, process.execPath] : [process.execPath];
  const child = spawn(program, [...prefix, ...senderArgs], {
    cwd: repoRoot,
    env: { ...process.env, ...(token ? { ROVER_TOKEN: token } : {}), ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let resolveReady;
  const ready = new Promise((resolve) => (resolveReady = resolve));
  const output = collectOutput(child, (line) => {
    if (line.includes('connected to signaling server')) resolveReady(true);
    onLine?.(line);
  });
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  const result = await Promise.race([
    ready,
    exited.then((code) => new Error(`rover-sender exited with code ${code}:\n${output.join('\n')}`)),
    new Promise((resolve) => setTimeout(() => resolve(new Error(`rover-sender not connected within ${readyTimeoutMs} ms:\n${output.join('\n')}`)), readyTimeoutMs)),
  ]);
  const handle = { process: child, output, exited, stop: (signal = 'SIGTERM') => stopProcessGroup(child, signal) };
  if (result instanceof Error) {
    await handle.stop('SIGKILL');
    throw result;
  }
  return handle;
}
