/**
 * Signaling round trips through the Durable Object, on local workerd (`wrangler dev`), loopback only.
 *
 *   npm run bench:signaling              (SAMPLES=1000 relay + 1000 ping samples per scenario)
 *   SAMPLES=200 RATE=5 npm run bench:signaling
 *
 * Scenarios: 1 rover × 8 viewers, and 50 rovers × 2 viewers (50 Durable Objects at once).
 * A fake rover announces a camera and answers every `viewer-join` with an `offer` (fresh callId). Then:
 *  - relay RTT: a viewer sends a `candidate` (its sequence number in the candidate line); the rover echoes it
 *    back as a `candidate` for that viewer: viewer → DO → rover → DO → viewer, timed by the viewer.
 *  - ping RTT: PING_FRAME → PONG_FRAME, answered by the runtime's auto-response (no DO code runs): the floor.
 *  - watch→offer: `watch` → `viewer-join` at the rover → `offer` back at the viewer (once per viewer, after every
 *    client is connected; the watches are spread over one second).
 * Each viewer sends RATE candidates and RATE pings per second (default 10 + 10), well under its limits
 * (20 msg/s burst 100 per socket; pings are not counted). A few warm-up round trips per viewer are not recorded.
 *
 * Upgrades are limited to 60 a minute per CF-Connecting-IP; this bench opens 159 sockets. Local workerd keeps a
 * CF-Connecting-IP header the client sends (Cloudflare's edge replaces it), so each fake client presents its
 * own address from 198.19.0.0/16 (in 198.18.0.0/15, RFC 2544's benchmarking range; the NAT lab uses 198.18.0.0/24):
 * the production limits stay as they are, and every client is measured within its own budgets. The addresses
 * are only header values: no traffic goes anywhere but 127.0.0.1.
 *
 * Caveats: locally every Durable Object and the Worker share one workerd process, and all clients share this
 * Node process, so the numbers include both processes' scheduling (on a busy machine, expect noise).
 * Exit code: 1 on any error (refused upgrade, error message, unexpected close, lost reply), 2 when the goal
 * (relay RTT p99 ≤ 15 ms in every scenario) is missed.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import {
  parseMessage,
  PING_FRAME,
  ServerToRover,
  ServerToViewer,
  signalingUrl,
  SUBPROTOCOL,
  TOKEN_SUBPROTOCOL_PREFIX,
  type RoverToServer,
  type ViewerToServer,
} from '../protocol/index.js';
import { repoRoot, startWorker, type WorkerHandle } from '../scripts/local-stack.mjs';

const SAMPLES = positiveInt('SAMPLES', 1000);
const RATE = positiveNumber('RATE', 10);
const WARMUP = 3;
const GOAL_P99_MS = 15;
const CAMERA = { id: 'main', label: 'bench', width: 1280, height: 720, fps: 30 };
const REPLY_TIMEOUT_MS = 5_000;

const SCENARIOS = [
  { name: '1 rover × 8 viewers', rovers: 1, viewersPerRover: 8 },
  { name: '50 rovers × 2 viewers', rovers: 50, viewersPerRover: 2 },
] as const;

function positiveInt(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
}

function positiveNumber(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  // Viewer sockets may send 20 messages/s (pings aside): stay clearly under it.
  if (!Number.isFinite(value) || value <= 0 || value > 15) throw new Error(`${name} must be a number in (0, 15]`);
  return value;
}

// ------------------------------------------------------------------ statistics

interface Stats {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles. */
function stats(values: number[]): Stats | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const pick = (q: number): number => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
  return { n: sorted.length, p50: pick(0.5), p95: pick(0.95), p99: pick(0.99), max: sorted[sorted.length - 1]! };
}

const ms = (value: number): string => value.toFixed(2);

function statsLine(label: string, s: Stats | null): string {
  if (!s) return `  ${label.padEnd(40)} no samples`;
  return `  ${label.padEnd(40)} n=${String(s.n).padEnd(5)} p50=${ms(s.p50)} ms  p95=${ms(s.p95)} ms  p99=${ms(s.p99)} ms  max=${ms(s.max)} ms`;
}

// ------------------------------------------------------------------ clients

const sleep = (delayMs: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, delayMs)));

/** Every problem seen anywhere; any entry makes the run fail. */
const problems: string[] = [];
const problem = (text: string): void => {
  if (problems.length < 200) problems.push(text);
};

/** Distinct client addresses, 198.19.0.0/16 (see the header comment). */
let nextAddress = 0;
function clientAddress(): string {
  const n = nextAddress++;
  return `198.19.${Math.floor(n / 250) % 256}.${(n % 250) + 1}`;
}

type Message = { type: string };

/** A signaling client: awaits messages by type; `handler` gets what nobody awaits (timestamped on arrival). */
class Client<T extends Message> {
  readonly socket: WebSocket;
  handler: ((message: T, receivedAt: number) => void) | null = null;
  private readonly buffered: T[] = [];
  private readonly waiters: { type: string; resolve: (message: T) => void }[] = [];
  private closing = false;
  readonly closed: Promise<void>;
  readonly opened: Promise<void>;

  constructor(
    readonly name: string,
    url: string,
    schema: typeof ServerToRover | typeof ServerToViewer,
    options: { protocols?: string[]; headers: Record<string, string> },
  ) {
    this.socket = new WebSocket(url, options.protocols ?? [], { headers: options.headers, handshakeTimeout: 10_000, perMessageDeflate: false });
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('unexpected-response', (_request, response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk.slice(0, 300)));
        response.on('end', () => {
          this.socket.terminate();
          reject(new Error(`${name}: upgrade refused: HTTP ${response.statusCode} ${body.trim()}`));
        });
      });
      this.socket.once('error', (error) => reject(new Error(`${name}: ${error.message}`)));
    });
    this.opened.catch(() => {});
    this.socket.on('error', () => {}); // reported through `opened` or `close`
    this.closed = new Promise((resolve) => {
      this.socket.once('close', (code, reason) => {
        if (!this.closing) problem(`${name}: closed unexpectedly (${code} ${reason.toString()})`);
        resolve();
      });
    });
    this.socket.on('message', (data, isBinary) => {
      const receivedAt = performance.now();
      if (isBinary) return problem(`${name}: unexpected binary frame`);
      const parsed = parseMessage(schema, data.toString());
      if (!parsed.ok) return problem(`${name}: invalid message from server: ${parsed.error}`);
      const message = parsed.message as T;
      if (message.type === 'error') {
        const { code, message: text } = message as unknown as { code: string; message: string };
        return problem(`${name}: server error ${code}: ${text}`);
      }
      const waiter = this.waiters.findIndex((w) => w.type === message.type);
      if (waiter >= 0) return this.waiters.splice(waiter, 1)[0]!.resolve(message);
      if (this.handler) return this.handler(message, receivedAt);
      this.buffered.push(message);
    });
  }

  next<K extends T['type']>(type: K, timeoutMs = 10_000): Promise<Extract<T, { type: K }>> {
    const index = this.buffered.findIndex((m) => m.type === type);
    if (index >= 0) return Promise.resolve(this.buffered.splice(index, 1)[0] as Extract<T, { type: K }>);
    return new Promise((resolve, reject) => {
      const waiter = {
        type,
        resolve: (message: T) => {
          clearTimeout(timer);
          resolve(message as Extract<T, { type: K }>);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`${this.name}: no "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  sendRaw(text: string): void {
    this.socket.send(text);
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.socket.readyState === WebSocket.CLOSED) return;
    this.socket.close(1000, 'bench done');
    const timer = setTimeout(() => this.socket.terminate(), 2_000);
    await this.closed;
    clearTimeout(timer);
  }
}

type RoverClient = Client<ServerToRover>;
type ViewerClient = Client<ServerToViewer>;

/** A fake rover: one camera; offers every joining viewer a call; echoes every candidate back to its viewer. */
async function connectRover(worker: WorkerHandle, roverId: string): Promise<RoverClient> {
  const token = await worker.roverToken(roverId);
  const rover: RoverClient = new Client(`rover ${roverId}`, signalingUrl(worker.url, roverId, 'rover'), ServerToRover, {
    headers: { authorization: `Bearer ${token}`, 'cf-connecting-ip': clientAddress() },
  });
  await rover.opened;
  await rover.next('welcome');
  const send = (message: RoverToServer): void => rover.sendRaw(JSON.stringify(message));
  send({ type: 'announce', cameras: [CAMERA] });
  let calls = 0;
  rover.handler = (message) => {
    switch (message.type) {
      case 'viewer-join':
        send({ type: 'offer', viewerId: message.viewerId, callId: `call-${++calls}`, cameraId: message.cameraId, sdp: 'v=0\r\n' });
        return;
      case 'candidate':
        send({ type: 'candidate', viewerId: message.viewerId, callId: message.callId, candidate: message.candidate });
        return;
      case 'viewer-leave':
      case 'pong':
        return;
      default:
        problem(`${rover.name}: unexpected "${message.type}"`);
    }
  };
  return rover;
}

interface Viewer {
  client: ViewerClient;
  callId: string;
  /** watch → offer, ms */
  joinMs: number;
}

async function connectViewer(worker: WorkerHandle, roverId: string, token: string, index: number): Promise<ViewerClient> {
  const client: ViewerClient = new Client(`viewer ${index} of ${roverId}`, signalingUrl(worker.url, roverId, 'viewer'), ServerToViewer, {
    protocols: [SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + token],
    headers: { 'cf-connecting-ip': clientAddress() },
  });
  await client.opened;
  if (client.socket.protocol !== SUBPROTOCOL) problem(`${client.name}: server chose subprotocol "${client.socket.protocol}"`);
  const welcome = await client.next('welcome');
  if (!welcome.rover.online) problem(`${client.name}: rover offline at welcome`);
  client.handler = (message) => {
    if (message.type !== 'rover-status') problem(`${client.name}: unexpected "${message.type}" before the measurement`);
  };
  return client;
}

/** `watch` after a random delay within a second; the rover's offer brings the callId. */
async function watch(client: ViewerClient): Promise<Viewer> {
  await sleep(Math.random() * 1000);
  const watchedAt = performance.now();
  client.sendRaw(JSON.stringify({ type: 'watch', cameraId: CAMERA.id } satisfies ViewerToServer));
  const offer = await client.next('offer');
  return { client, callId: offer.callId, joinMs: performance.now() - watchedAt };
}

// ------------------------------------------------------------------ measurement

const CANDIDATE_SEQ = /^candidate:(\d+) /;

/**
 * Paced round trips on one viewer: `count` candidates and `count` pings, RATE of each per second, interleaved
 * half a period apart, starting at a random phase. The first WARMUP of each (sent one at a time) are not recorded.
 */
async function measureViewer(viewer: Viewer, count: number, relay: number[], ping: number[]): Promise<void> {
  const { client, callId } = viewer;
  const sentCandidates = new Map<number, number>();
  const sentPings: number[] = [];
  let record = false;
  let drained: (() => void) | null = null;
  client.handler = (message, receivedAt) => {
    if (message.type === 'candidate') {
      const seq = Number(CANDIDATE_SEQ.exec(message.candidate.candidate)?.[1]);
      const sentAt = sentCandidates.get(seq);
      if (sentAt === undefined || message.callId !== callId) return problem(`${client.name}: unexpected candidate echo`);
      sentCandidates.delete(seq);
      if (record) relay.push(receivedAt - sentAt);
    } else if (message.type === 'pong') {
      const sentAt = sentPings.shift();
      if (sentAt === undefined) return problem(`${client.name}: pong without a ping`);
      if (record) ping.push(receivedAt - sentAt);
    } else if (message.type !== 'rover-status') {
      return problem(`${client.name}: unexpected "${message.type}"`);
    }
    if (drained && sentCandidates.size === 0 && sentPings.length === 0) drained();
  };
  let seq = 0;
  const sendCandidate = (): void => {
    const n = seq++;
    const message: ViewerToServer = { type: 'candidate', callId, candidate: { candidate: `candidate:${n} 1 udp 1 127.0.0.1 9 typ host`, mid: '0' } };
    const text = JSON.stringify(message);
    sentCandidates.set(n, performance.now());
    client.sendRaw(text);
  };
  const sendPing = (): void => {
    sentPings.push(performance.now());
    client.sendRaw(PING_FRAME);
  };
  const settle = async (): Promise<boolean> => {
    if (sentCandidates.size === 0 && sentPings.length === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      new Promise<boolean>((resolve) => (drained = () => resolve(true))),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), REPLY_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    drained = null;
    return done;
  };

  const periodMs = 1000 / RATE;
  for (let i = 0; i < WARMUP; i++) {
    sendCandidate();
    sendPing();
    if (!(await settle())) return problem(`${client.name}: no reply to a warm-up round trip`);
    await sleep(periodMs);
  }
  record = true;
  const start = performance.now() + Math.random() * periodMs;
  for (let i = 0; i < count; i++) {
    await sleep(start + i * periodMs - performance.now());
    sendCandidate();
    await sleep(start + (i + 0.5) * periodMs - performance.now());
    sendPing();
  }
  if (!(await settle())) {
    problem(`${client.name}: ${sentCandidates.size} candidate echo(es) and ${sentPings.length} pong(s) lost`);
  }
  client.handler = null;
}

/** Run `task` over `items`, at most `limit` at a time (keeps the upgrade burst on local workerd modest). */
async function mapLimit<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return results;
}

interface ScenarioResult {
  name: string;
  relay: Stats | null;
  ping: Stats | null;
  join: Stats | null;
  setupMs: number;
  measureMs: number;
}

async function runScenario(worker: WorkerHandle, scenario: (typeof SCENARIOS)[number], tag: string): Promise<ScenarioResult> {
  const roverIds = Array.from({ length: scenario.rovers }, (_, i) => `bench-sig-${tag}-${i}`);
  const rovers: RoverClient[] = [];
  const clients: ViewerClient[] = [];
  const setupStart = performance.now();
  try {
    await mapLimit(roverIds, 10, async (roverId) => {
      rovers.push(await connectRover(worker, roverId));
    });
    const slots = roverIds.flatMap((roverId) => Array.from({ length: scenario.viewersPerRover }, (_, i) => ({ roverId, i })));
    const tokens = new Map<string, string>();
    for (const roverId of roverIds) tokens.set(roverId, await worker.viewerToken(roverId));
    await mapLimit(slots, 10, async ({ roverId, i }) => {
      clients.push(await connectViewer(worker, roverId, tokens.get(roverId)!, i));
    });
    const viewers = await Promise.all(clients.map(watch));
    const setupMs = performance.now() - setupStart;

    const perViewer = Math.ceil(SAMPLES / viewers.length);
    const relay: number[] = [];
    const ping: number[] = [];
    const measureStart = performance.now();
    await Promise.all(viewers.map((viewer) => measureViewer(viewer, perViewer, relay, ping)));
    const measureMs = performance.now() - measureStart;
    return { name: scenario.name, relay: stats(relay), ping: stats(ping), join: stats(viewers.map((v) => v.joinMs)), setupMs, measureMs };
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all(rovers.map((rover) => rover.close()));
  }
}

// ------------------------------------------------------------------ main

mkdirSync(join(repoRoot, '.state', 'tmp'), { recursive: true });
const persistDir = mkdtempSync(join(repoRoot, '.state', 'tmp', 'bench-signaling-'));
let worker: WorkerHandle | null = null;
let exitCode = 0;
const stopAll = async (): Promise<void> => {
  const running = worker;
  worker = null;
  await running?.stop();
  rmSync(persistDir, { recursive: true, force: true });
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // The worker runs in its own process group: a terminal's Ctrl-C does not reach it.
    void stopAll().finally(() => process.exit(130));
  });
}

try {
  const bootStart = performance.now();
  worker = await startWorker({ persistDir });
  console.log(
    `Signaling round trips through the Durable Object: local workerd (wrangler dev, ${(performance.now() - bootStart).toFixed(0)} ms to start), ` +
      `loopback, Node ${process.version}, ${cpus().length} CPU(s)`,
  );
  console.log(`${SAMPLES} relay + ${SAMPLES} ping samples per scenario; each viewer sends ${RATE} candidates/s + ${RATE} pings/s; ${WARMUP} warm-up round trips per viewer not recorded\n`);

  const results: ScenarioResult[] = [];
  const tag = process.pid.toString(36);
  for (const [index, scenario] of SCENARIOS.entries()) {
    const result = await runScenario(worker, scenario, `${tag}-${index}`);
    results.push(result);
    console.log(`${result.name}  (setup ${(result.setupMs / 1000).toFixed(1)} s, measured ${(result.measureMs / 1000).toFixed(1)} s)`);
    console.log(statsLine('relay RTT viewer→DO→rover→DO→viewer', result.relay));
    console.log(statsLine('ping RTT (auto-response, no DO code)', result.ping));
    console.log(statsLine('watch→viewer-join→offer (once/viewer)', result.join));
    console.log('');
  }

  console.log('| scenario | metric | n | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |');
  console.log('|---|---|--:|--:|--:|--:|--:|');
  for (const result of results) {
    for (const [metric, s] of [
      ['relay RTT', result.relay],
      ['ping RTT', result.ping],
      ['watch→offer', result.join],
    ] as const) {
      if (s) console.log(`| ${result.name} | ${metric} | ${s.n} | ${ms(s.p50)} | ${ms(s.p95)} | ${ms(s.p99)} | ${ms(s.max)} |`);
      else console.log(`| ${result.name} | ${metric} | 0 | – | – | – | – |`);
    }
  }

  const worst = Math.max(...results.map((r) => r.relay?.p99 ?? Infinity));
  const met = worst <= GOAL_P99_MS;
  console.log(`\nGoal: DO relay round trip p99 ≤ ${GOAL_P99_MS} ms in every scenario: ${met ? 'met' : 'NOT met'} (worst p99 ${ms(worst)} ms)`);
  if (!met) exitCode = 2;
} catch (error) {
  problem(error instanceof Error ? error.message : String(error));
} finally {
  const output = worker?.output ?? [];
  await stopAll();
  if (problems.length > 0) {
    exitCode = 1;
    console.error(`\n${problems.length} problem(s):`);
    for (const text of problems.slice(0, 20)) console.error(`  ${text}`);
    if (output.length > 0) console.error(`\nlast worker output:\n${output.slice(-30).join('\n')}`);
  }
}
process.exit(exitCode);
