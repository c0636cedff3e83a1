import type { ChildProcess } from 'node:child_process';

export const repoRoot: string;
export function wranglerEnv(extra?: Record<string, string>): NodeJS.ProcessEnv;
export function freePort(): Promise<number>;

export interface WorkerSecrets {
  ROVER_TOKEN_SECRET: string;
  VIEWER_TOKEN_SECRET: string;
  ADMIN_TOKEN: string;
}
export function generateSecrets(): WorkerSecrets;
export function devSecrets(): WorkerSecrets;

export interface WorkerHandle {
  url: string;
  port: number;
  output: string[];
  process: ChildProcess;
  secrets: WorkerSecrets;
  roverToken(roverId: string, ttlSeconds?: number): Promise<string>;
  /** `control`: the token may also take the control lease and drive. */
  viewerToken(roverId: string, ttlSeconds?: number, options?: { control?: boolean }): Promise<string>;
  /** `<url>/rovers/<id>#access=<viewer token>` */
  viewerLink(roverId: string, ttlSeconds?: number, options?: { control?: boolean }): Promise<string>;
  stop(): Promise<void>;
}
export const LOCAL_WORKER_VARS: Record<string, string>;
export function startWorker(options?: {
  port?: number;
  /** Address to listen on (default 127.0.0.1). */
  ip?: string;
  persistDir?: string;
  onLine?: (line: string) => void;
  /** Override wrangler.toml [vars] (and secrets); STUN_URLS defaults to "none" locally. */
  vars?: Record<string, string>;
  /** Command prefix, e.g. ['ip', 'netns', 'exec', 'ns1']. */
  command?: string[];
  /** Token secrets (default: fresh random ones). */
  secrets?: WorkerSecrets;
}): Promise<WorkerHandle>;

export interface SenderHandle {
  process: ChildProcess;
  output: string[];
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}
export function startSender(options: {
  server: string;
  roverId: string;
  /** Rover token (ROVER_TOKEN in the sender's environment). */
  token?: string;
  args?: string[];
  onLine?: (line: string) => void;
  readyTimeoutMs?: number;
  /** Command prefix, e.g. ['ip', 'netns', 'exec', 'ns1']. */
  command?: string[];
  env?: Record<string, string>;
}): Promise<SenderHandle>;
