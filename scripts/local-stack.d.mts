import type { ChildProcess } from 'node:child_process';

export const repoRoot: string;
export function wranglerEnv(extra?: Record<string, string>): NodeJS.ProcessEnv;
export function freePort(): Promise<number>;

export interface WorkerHandle {
  url: string;
  port: number;
  output: string[];
  process: ChildProcess;
  stop(): Promise<void>;
}
export function startWorker(options?: { port?: number; persistDir?: string; onLine?: (line: string) => void }): Promise<WorkerHandle>;

export interface SenderHandle {
  process: ChildProcess;
  output: string[];
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}
export function startSender(options: {
  server: string;
  roverId: string;
  args?: string[];
  onLine?: (line: string) => void;
  readyTimeoutMs?: number;
}): Promise<SenderHandle>;
