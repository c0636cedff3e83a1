/**
 * The whole system on the NAT lab (test/netlab): coturn (the production conf and run script from
 * infra/coturn) and the Worker on local workerd in `srv`, the real sender in `rover`, headless Chromium
 * in `viewer`. Shared by the NAT traversal tests and the TURN time-to-first-frame benchmark.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, startSender, startWorker, type SenderHandle, type WorkerHandle } from '../../scripts/local-stack.mjs';
import type { Lab, LabProcess } from '../netlab/lab.js';
import { launchBrowser, type Browser } from './browser.js';

export const LAB_WORKER_PORT = 8787;
export const LAB_TURN_PORT = 3478;
export const LAB_TURNS_PORT = 5349;
/** The lab's "internet": coturn may relay only to it (its conf denies 198.18.0.0/15 as reserved). */
export const LAB_PUBLIC_RANGE = '198.18.0.0-198.18.0.255';
export const LAB_TURN_REALM = 'turn.lab.test';
/** Generated per process: any 16+ characters of the script's alphabet. */
export const LAB_TURN_SECRET = `labsecret${process.pid}x${Date.now().toString(36)}`;

export interface LabStackOptions {
  /** Hand out TURN credentials (coturn runs either way: it is also the lab's STUN server). */
  turn: boolean;
  /** Extra sender flags (e.g. --relay-only). */
  senderArgs?: string[];
  roverId?: string;
  videoArgs?: string[];
  /** Extra Worker vars (e.g. HEARTBEAT_TIMEOUT_SECONDS). */
  workerVars?: Record<string, string>;
  /** Every line the sender logs (its output ring keeps only the latest). */
  onSenderLine?: (line: string) => void;
}

export interface LabStack {
  coturn: LabProcess;
  worker: WorkerHandle;
  sender: SenderHandle;
  browser: Browser;
  /** Base URL of the Worker as the viewer namespace reaches it. */
  baseUrl: string;
  roverId: string;
  stop(): Promise<void>;
}

/** Start coturn in `srv` through infra/coturn/run-coturn.sh, with a self-signed certificate for turns:. */
export async function startLabCoturn(lab: Lab, extraArgs: string[] = []): Promise<LabProcess> {
  const secretFile = join(lab.tempDir, 'turn_secret');
  writeFileSync(secretFile, `${LAB_TURN_SECRET}\n`, { mode: 0o600 });
  const cert = join(lab.tempDir, 'turn-cert.pem');
  const key = join(lab.tempDir, 'turn-key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', `/CN=${LAB_TURN_REALM}`, '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const srv = lab.addresses.srv;
  const coturn = lab.spawn(
    'srv',
    'sh',
    [join(repoRoot, 'infra', 'coturn', 'run-coturn.sh'), `--listening-ip=${srv}`, `--relay-ip=${srv}`, `--allowed-peer-ip=${LAB_PUBLIC_RANGE}`, ...extraArgs],
    {
      env: {
        ...process.env,
        TURN_SECRET_FILE: secretFile,
        TURN_REALM: LAB_TURN_REALM,
        TURN_TLS_CERT: cert,
        TURN_TLS_KEY: key,
        TURN_RUNTIME_DIR: join(lab.tempDir, 'coturn-run'),
      },
    },
  );
  // coturn logs no "listening" line without --verbose: ask the kernel instead.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const sockets = await lab.exec('srv', 'ss', ['-Hlnu', `sport = :${LAB_TURN_PORT}`]);
    if (sockets.includes(`${srv}:${LAB_TURN_PORT}`)) return coturn;
    if (coturn.child.exitCode !== null || Date.now() > deadline) {
      await coturn.stop();
      throw new Error(`coturn did not start listening on ${srv}:${LAB_TURN_PORT}:\n${coturn.lines.join('\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What each part was doing: printed when a lab test fails, since a timeout alone says little. */
export async function labDiagnostics(stack: LabStack, page?: import('playwright-core').Page): Promise<string> {
  const viewer = page
    ? await page
        .evaluate(() => `${document.getElementById('state')?.dataset['state']}: ${document.getElementById('state-detail')?.textContent}`)
        .catch(() => 'page unavailable')
    : 'no page';
  return [
    `viewer: ${viewer}`,
    '--- sender (last 25 lines)',
    ...stack.sender.output.slice(-25),
    '--- worker (last 15 lines, without request lines)',
    ...stack.worker.output.filter((line) => !/GET \/|getaddrinfo/.test(line)).slice(-15),
    '--- coturn (last 10 lines)',
    ...stack.coturn.lines.slice(-10),
  ].join('\n');
}

/** Run a test step; on failure, print the lab's diagnostics before rethrowing. */
export async function withDiagnostics<T>(stack: LabStack, page: import('playwright-core').Page | undefined, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    console.log(await labDiagnostics(stack, page));
    throw error;
  }
}

export async function startLabStack(lab: Lab, options: LabStackOptions): Promise<LabStack> {
  const srv = lab.addresses.srv;
  const roverId = options.roverId ?? `lab-${process.pid}`;
  const started: Array<() => Promise<void>> = [];
  const stopAll = async (): Promise<void> => {
    for (const stop of started.reverse()) await stop().catch(() => {});
  };
  try {
    const coturn = await startLabCoturn(lab);
    started.push(() => coturn.stop());
    const worker = await startWorker({
      ip: srv,
      port: LAB_WORKER_PORT,
      persistDir: join(lab.tempDir, 'wrangler'),
      command: ['ip', 'netns', 'exec', lab.namespaces.srv],
      vars: {
        STUN_URLS: `stun:${srv}:${LAB_TURN_PORT}`,
        TURN_URLS: options.turn ? `turn:${srv}:${LAB_TURN_PORT}?transport=udp turns:${srv}:${LAB_TURNS_PORT}?transport=tcp` : '',
        TURN_SECRET: options.turn ? LAB_TURN_SECRET : '',
        ...options.workerVars,
      },
    });
    started.push(() => worker.stop());
    const baseUrl = `http://${srv}:${LAB_WORKER_PORT}`;
    const sender = await startSender({
      server: baseUrl.replace('http', 'ws'),
      roverId,
      token: await worker.roverToken(roverId),
      command: ['ip', 'netns', 'exec', lab.namespaces.rover],
      ...(options.onSenderLine ? { onLine: options.onSenderLine } : {}),
      args: [...(options.videoArgs ?? ['--width', '640', '--height', '360', '--fps', '30', '--bitrate', '800']), ...(options.senderArgs ?? [])],
    });
    started.push(() => sender.stop());
    const browser = await launchBrowser({ executablePath: lab.chromiumWrapper('viewer') });
    started.push(() => browser.close());
    return { coturn, worker, sender, browser, baseUrl, roverId, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
