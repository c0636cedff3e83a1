/** Per-suite fixtures: one local Worker on workerd, senders started per test. */
import { startSender, startWorker, type SenderHandle, type WorkerHandle } from '../../scripts/local-stack.mjs';

export const VIDEO_ARGS = ['--width', '640', '--height', '360', '--fps', '30', '--bitrate', '800'];

let roverCounter = 0;
/** A fresh rover id per test keeps tests independent inside one Worker. */
export function uniqueRoverId(prefix: string): string {
  return `${prefix}-${process.pid}-${++roverCounter}`;
}

/** `options.vars` override the Worker's vars, e.g. ALLOWED_ORIGINS for pages on other origins. */
export async function startLocalWorker(options: Parameters<typeof startWorker>[0] = {}): Promise<WorkerHandle> {
  return startWorker(options);
}

export async function startRover(worker: WorkerHandle, roverId: string, extraArgs: string[] = []): Promise<SenderHandle> {
  return startSender({
    server: worker.url.replace('http', 'ws'),
    roverId,
    token: await worker.roverToken(roverId),
    args: [...VIDEO_ARGS, ...extraArgs],
  });
}
