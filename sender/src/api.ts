/**
 * The sender's local API for the rover's own program: JSON lines over a Unix socket (`--api-socket`) or
 * over this process's stdin/stdout (`--api-stdio`, when the program starts the sender as a child).
 *
 * Lines in: telemetry (protocol ApiInbound). Lines out, to every connected client: control commands,
 * lease changes, stops, and an `error` line for a line that was refused (that line is dropped; the
 * connection stays). A client never affects another: a slow reader is cut off instead of buffering
 * without bound, a bad line is answered and forgotten.
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { ApiInbound, describeIssues, MAX_TELEMETRY_BYTES, type ApiOutbound } from '../../protocol/index.js';
import type { Logger } from './log.js';

/** A line longer than this is refused (telemetry is small; this bounds memory per client). */
export const MAX_API_LINE_BYTES = MAX_TELEMETRY_BYTES;
/** A client that lets this much output pile up unread is disconnected. */
const MAX_PENDING_OUTPUT_BYTES = 1024 * 1024;

/** The local API could not start (bad path, no permission…): a configuration problem, said plainly. */
export class ApiError extends Error {}

interface Client {
  write(line: string): boolean;
  pending(): number;
  /** Flush what is written, then close. */
  end(): void;
  /** Cut off now. */
  close(): void;
  label: string;
}

export class LocalApi {
  private server: Server | null = null;
  private socketPath: string | null = null;
  private readonly clients = new Set<Client>();
  private nextClientId = 1;

  constructor(
    private readonly log: Logger,
    /** A validated message from the rover's program; a string return refuses it with that reason. */
    private readonly onMessage: (message: ApiInbound) => string | null,
    /** Sent to each client as it connects. */
    private readonly hello: () => ApiOutbound,
  ) {}

  get clientCount(): number {
    return this.clients.size;
  }

  /**
   * Listen on a Unix socket, readable and writable by this user only (0600): whoever can write to it
   * publishes telemetry and reads every command. A stale socket file from a crash is replaced; any other
   * kind of file at that path is an error, never deleted.
   */
  async listen(path: string): Promise<void> {
    let existing;
    try {
      existing = lstatSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new ApiError(`--api-socket ${path}: ${(error as NodeJS.ErrnoException).code}`);
    }
    if (existing && !existing.isSocket()) throw new ApiError(`--api-socket ${path} exists and is not a socket; refusing to replace it`);
    if (existing) unlinkSync(path);
    const server = createServer((socket) => this.attachSocket(socket));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      });
      // Tightened before anyone is told the path exists (the umask may have left it group-writable).
      chmodSync(path, 0o600);
    } catch (error) {
      server.close();
      throw new ApiError(`cannot listen on --api-socket ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
    server.on('error', (error) => this.log.error('local API socket failed', { error: error.message }));
    this.server = server;
    this.socketPath = path;
    this.log.info('local API listening', { socket: path });
  }

  /** Use a pair of streams as one client (stdin/stdout). */
  attachStreams(input: Readable, output: Writable, label = 'stdio'): void {
    const client: Client = {
      label,
      write: (line) => output.write(line),
      pending: () => output.writableLength,
      end: () => input.destroy(),
      close: () => input.destroy(),
    };
    this.readLines(input, client);
  }

  /** Send one message to every client. */
  broadcast(message: ApiOutbound): void {
    const line = `${JSON.stringify(message)}\n`;
    for (const client of [...this.clients]) this.send(client, line);
  }

  async close(): Promise<void> {
    // The last lines (a stop) must reach the program: end gracefully, don't cut off.
    for (const client of [...this.clients]) client.end();
    this.clients.clear();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.socketPath) {
      try {
        unlinkSync(this.socketPath);
      } catch {
        // already gone
      }
    }
  }

  private attachSocket(socket: Socket): void {
    const client: Client = {
      label: `socket#${this.nextClientId++}`,
      write: (line) => socket.write(line),
      pending: () => socket.writableLength,
      end: () => socket.end(),
      close: () => socket.destroy(),
    };
    socket.on('error', () => undefined); // a client that vanishes mid-write is simply gone
    this.readLines(socket, client);
  }

  private readLines(input: Readable, client: Client): void {
    this.clients.add(client);
    this.log.info('local API client connected', { client: client.label, clients: this.clients.size });
    this.send(client, `${JSON.stringify(this.hello())}\n`);
    let buffered = '';
    let discarding = false;
    input.setEncoding('utf8');
    input.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (discarding) {
          discarding = false; // the rest of an over-long line
          continue;
        }
        this.handleLine(client, line);
      }
      if (Buffer.byteLength(buffered) > MAX_API_LINE_BYTES) {
        if (!discarding) this.refuse(client, `line longer than ${MAX_API_LINE_BYTES} bytes: dropped`);
        buffered = '';
        discarding = true;
      }
    });
    const gone = (): void => {
      if (!this.clients.delete(client)) return;
      this.log.info('local API client disconnected', { client: client.label, clients: this.clients.size });
    };
    input.on('close', gone);
    input.on('end', gone);
    input.on('error', gone);
  }

  private handleLine(client: Client, line: string): void {
    const text = line.trim();
    if (text === '') return;
    if (Buffer.byteLength(text) > MAX_API_LINE_BYTES) {
      this.refuse(client, `line longer than ${MAX_API_LINE_BYTES} bytes: dropped`);
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.refuse(client, 'not a JSON line: dropped');
      return;
    }
    const parsed = ApiInbound.safeParse(json);
    if (!parsed.success) {
      this.refuse(client, `invalid message: ${describeIssues(parsed.error)}`);
      return;
    }
    const refusal = this.onMessage(parsed.data);
    if (refusal !== null) this.refuse(client, refusal);
  }

  private refuse(client: Client, message: string): void {
    this.log.debug('local API line refused', { client: client.label, reason: message.slice(0, 120) });
    this.send(client, `${JSON.stringify({ type: 'error', message } satisfies ApiOutbound)}\n`);
  }

  private send(client: Client, line: string): void {
    if (client.pending() > MAX_PENDING_OUTPUT_BYTES) {
      this.log.warn('local API client is not reading its output: disconnected', { client: client.label });
      this.clients.delete(client);
      client.close();
      return;
    }
    try {
      client.write(line);
    } catch {
      this.clients.delete(client);
    }
  }
}
