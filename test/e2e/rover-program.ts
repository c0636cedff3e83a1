/** A stand-in for the rover's own program: a client of the sender's local API (JSON lines on its Unix socket). */
import { connect, type Socket } from 'node:net';

export interface RoverProgram {
  /** Every line the sender wrote, parsed. */
  lines: Record<string, unknown>[];
  /** When each line arrived (Date.now()), by the same index. */
  arrivals: number[];
  publish(message: object): void;
  /** Resolve when a line matching `predicate` has arrived (also one that came before this call). */
  waitFor(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  close(): void;
}

export async function connectRoverProgram(socketPath: string, timeoutMs = 10_000): Promise<RoverProgram> {
  const deadline = Date.now() + timeoutMs;
  let socket: Socket;
  for (;;) {
    try {
      socket = await new Promise<Socket>((resolve, reject) => {
        const candidate = connect(socketPath);
        candidate.once('connect', () => resolve(candidate)).once('error', reject);
      });
      break;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`no local API at ${socketPath}: ${String(error)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  const lines: Record<string, unknown>[] = [];
  const arrivals: number[] = [];
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>);
      arrivals.push(Date.now());
      buffered = buffered.slice(newline + 1);
    }
  });
  socket.on('error', () => undefined);
  return {
    lines,
    arrivals,
    publish: (message) => socket.write(`${JSON.stringify(message)}\n`),
    waitFor: async (predicate, waitMs = 10_000) => {
      const until = Date.now() + waitMs;
      for (;;) {
        const found = lines.find(predicate);
        if (found) return found;
        if (Date.now() > until) throw new Error(`the rover program did not receive the expected line; it got:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    close: () => socket.destroy(),
  };
}
