/**
 * Helpers for the Worker tests (they run inside workerd): real WebSockets into the RoverRoom Durable
 * Object through the Worker's router, with a message queue per socket.
 */
import { SELF } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { mintToken, type TokenKind } from '../../protocol/auth.js';
import { expect } from 'vitest';
import {
  PING_FRAME,
  PROTOCOL_VERSION,
  ServerToRover,
  ServerToViewer,
  type CameraInfo,
  type ErrorCode,
  type Role,
} from '../../protocol/index.js';

export const ORIGIN = 'http://example.com';

/** Matches the ICE settings the Worker attaches to every call (their content is tested in ice.test.ts). */
export const ANY_ICE = expect.objectContaining({ iceServers: expect.any(Array), iceTransportPolicy: expect.any(String) });

/** How long `next()` waits for a message that should come, and `expectNothing()` for one that should not. */
export const MESSAGE_TIMEOUT_MS = 2_000;
export const QUIET_MS = 150;

let counter = 0;
/** A rover id unique to this test run, so every test gets its own Durable Object. */
export function uniqueRoverId(label: string): string {
  counter += 1;
  return `${label}-${counter}-${crypto.randomUUID().slice(0, 8)}`;
}

export function camera(id: string, overrides: Partial<CameraInfo> = {}): CameraInfo {
  return { id, label: `Camera ${id}`, width: 1280, height: 720, fps: 30, ...overrides };
}

type Frame = { kind: 'text'; text: string } | { kind: 'binary'; bytes: ArrayBuffer };
type Waiter = { resolve: (frame: Frame) => void; reject: (error: Error) => void };
export interface CloseInfo {
  code: number;
  reason: string;
}

interface Schema<M> {
  safeParse(value: unknown): { success: true; data: M } | { success: false; error: unknown };
}

type ServerMessage = ServerToRover | ServerToViewer;

const openPeers = new Set<Peer<ServerMessage>>();

/**
 * One client WebSocket. Every inbound frame is queued; `next()` takes them in order, so a test sees
 * exactly what the server sent and in which order. Inbound messages are validated against the
 * protocol's server→client schema, so a malformed server message fails the test.
 */
export class Peer<M extends ServerMessage> {
  readonly closed: Promise<CloseInfo>;
  private readonly frames: Frame[] = [];
  private readonly waiters: Waiter[] = [];
  private closeInfo: CloseInfo | null = null;

  constructor(
    readonly socket: WebSocket,
    private readonly schema: Schema<M>,
    readonly name: string,
  ) {
    let resolveClosed!: (info: CloseInfo) => void;
    this.closed = new Promise((resolve) => (resolveClosed = resolve));
    socket.addEventListener('message', (event) => {
      const frame: Frame =
        typeof event.data === 'string' ? { kind: 'text', text: event.data } : { kind: 'binary', bytes: event.data as ArrayBuffer };
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(frame);
      else this.frames.push(frame);
    });
    socket.addEventListener('close', (event) => {
      this.closeInfo = { code: event.code, reason: event.reason };
      for (const waiter of this.waiters.splice(0)) {
        waiter.reject(new Error(`${this.name}: socket closed (${event.code} ${event.reason}) while waiting for a message`));
      }
      openPeers.delete(this);
      try {
        socket.close(); // Complete the closing handshake if the runtime has not.
      } catch {
        // Already closed.
      }
      resolveClosed(this.closeInfo);
    });
    socket.accept();
    openPeers.add(this);
  }

  get isClosed(): boolean {
    return this.closeInfo !== null;
  }

  /** Send a message: objects are JSON-encoded, strings and bytes are sent as they are. */
  send(message: object | string | ArrayBuffer | ArrayBufferView): void {
    if (typeof message === 'string' || message instanceof ArrayBuffer || ArrayBuffer.isView(message)) {
      this.socket.send(message);
    } else {
      this.socket.send(JSON.stringify(message));
    }
  }

  /** The raw next frame (text or binary). */
  nextFrame(timeoutMs = MESSAGE_TIMEOUT_MS): Promise<Frame> {
    const queued = this.frames.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closeInfo) {
      return Promise.reject(new Error(`${this.name}: socket is closed (${this.closeInfo.code}); no more messages`));
    }
    return new Promise<Frame>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (frame) => {
          clearTimeout(timer);
          resolve(frame);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(new Error(`${this.name}: no message within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /**
   * The next message, parsed and schema-checked. With `type`, the next message must be of that type
   * (it is not skipped over: an unexpected message in between fails the test).
   */
  async next(timeoutMs?: number): Promise<M>;
  async next<K extends M['type']>(type: K, timeoutMs?: number): Promise<Extract<M, { type: K }>>;
  async next(typeOrTimeout?: string | number, maybeTimeout?: number): Promise<M> {
    const type = typeof typeOrTimeout === 'string' ? typeOrTimeout : undefined;
    const timeoutMs = typeof typeOrTimeout === 'number' ? typeOrTimeout : (maybeTimeout ?? MESSAGE_TIMEOUT_MS);
    const frame = await this.nextFrame(timeoutMs);
    if (frame.kind !== 'text') throw new Error(`${this.name}: expected a text frame, got ${frame.bytes.byteLength} binary bytes`);
    const json: unknown = JSON.parse(frame.text);
    const parsed = this.schema.safeParse(json);
    if (!parsed.success) throw new Error(`${this.name}: server sent a message outside the protocol: ${frame.text.slice(0, 300)}`);
    if (type !== undefined && parsed.data.type !== type) {
      throw new Error(`${this.name}: expected a "${type}" message, got ${frame.text.slice(0, 300)}`);
    }
    return parsed.data;
  }

  /** Asserts that the next message is an `error` with this code, and returns it. */
  async nextError(code: ErrorCode, timeoutMs?: number): Promise<{ code: ErrorCode; message: string }> {
    const message: ServerMessage = await this.next(timeoutMs);
    if (message.type !== 'error') throw new Error(`${this.name}: expected an "error" message, got ${JSON.stringify(message)}`);
    expect(message.code, `${this.name}: error message was ${JSON.stringify(message)}`).toBe(code);
    expect(message.message.length).toBeGreaterThan(0);
    return message;
  }

  /** Asserts that nothing arrives for `ms` milliseconds (and nothing is already queued). */
  async expectNothing(ms = QUIET_MS): Promise<void> {
    await sleep(ms);
    if (this.frames.length > 0) {
      const first = this.frames[0];
      const shown = first?.kind === 'text' ? first.text.slice(0, 300) : `${first?.bytes.byteLength} binary bytes`;
      throw new Error(`${this.name}: expected no message, got ${this.frames.length}, the first: ${shown}`);
    }
  }

  /** Round trip through the server: proves the socket is still open and everything sent before was handled. */
  async ping(): Promise<void> {
    this.send(PING_FRAME);
    const message: ServerMessage = await this.next();
    if (message.type !== 'pong') throw new Error(`${this.name}: expected "pong", got ${JSON.stringify(message)}`);
  }

  /**
   * Round trip through the Durable Object's message handler (unlike `ping`, which the runtime answers
   * by itself): once this resolves, everything this socket sent before has been handled.
   */
  async sync(): Promise<void> {
    this.send({ type: 'test-sync' });
    const error = await this.nextError('bad-message');
    expect(error.message).toContain('test-sync');
  }

  close(code = 1000, reason = 'test done'): void {
    if (this.closeInfo) return;
    try {
      this.socket.close(code, reason);
    } catch {
      // Already closing.
    }
  }
}

export type RoverPeer = Peer<ServerToRover>;
export type ViewerPeer = Peer<ServerToViewer>;

/** The WebSocket upgrade through the Worker's router, exactly as a client would do it. */
export function upgrade(roverId: string, query: string, headers: Record<string, string> = { Upgrade: 'websocket' }): Promise<Response> {
  return SELF.fetch(`${ORIGIN}/rovers/${roverId}/ws${query}`, { headers });
}

/** A valid token of `kind` for `roverId`, minted with this test Worker's secret. */
export async function tokenFor(kind: TokenKind, roverId: string, ttlSeconds = 600, options: { control?: boolean } = {}): Promise<string> {
  const secret = kind === 'rover' ? env.ROVER_TOKEN_SECRET : env.VIEWER_TOKEN_SECRET;
  return (await mintToken(kind, roverId, secret ?? '', ttlSeconds, undefined, options)).token;
}

/** Viewer options: `control` mints a token that may take the control lease; `headers` are added to the upgrade. */
export interface ViewerOptions {
  control?: boolean;
  headers?: Record<string, string>;
}

async function open(roverId: string, role: Role, options: ViewerOptions = {}): Promise<WebSocket> {
  const token = await tokenFor(role, roverId, 600, { control: options.control });
  const response = await upgrade(roverId, `?role=${role}&v=${PROTOCOL_VERSION}`, {
    ...options.headers,
    Upgrade: 'websocket',
    Authorization: `Bearer ${token}`,
  });
  expect(response.status, await describeFailure(response)).toBe(101);
  const socket = response.webSocket;
  if (!socket) throw new Error('upgrade response carries no webSocket');
  return socket;
}

async function describeFailure(response: Response): Promise<string> {
  return response.status === 101 ? '' : `upgrade failed: ${response.status} ${await response.text()}`;
}

/** Connects a rover; does not consume its `welcome`. */
export async function connectRover(roverId: string, name = 'rover'): Promise<RoverPeer> {
  return new Peer<ServerToRover>(await open(roverId, 'rover'), ServerToRover, name);
}

/** Connects a viewer; does not consume its `welcome`. */
export async function connectViewer(roverId: string, name = 'viewer', options: ViewerOptions = {}): Promise<ViewerPeer> {
  return new Peer<ServerToViewer>(await open(roverId, 'viewer', options), ServerToViewer, name);
}

/** Connects a rover, checks its welcome and (unless `cameras` is empty) announces cameras and waits until that is handled. */
export async function onlineRover(
  roverId: string,
  cameras: CameraInfo[] = [camera('main')],
  name = 'rover',
): Promise<{ rover: RoverPeer; welcome: Extract<ServerToRover, { type: 'welcome' }> }> {
  const rover = await connectRover(roverId, name);
  const welcome = await rover.next('welcome');
  expect(welcome).toMatchObject({ role: 'rover', protocolVersion: PROTOCOL_VERSION });
  if (cameras.length > 0) {
    rover.send({ type: 'announce', cameras });
    await rover.sync();
  }
  return { rover, welcome };
}

/** Connects a viewer and consumes its welcome; returns the viewer id the server assigned. */
export async function joinedViewer(
  roverId: string,
  name = 'viewer',
  options: ViewerOptions = {},
): Promise<{ viewer: ViewerPeer; viewerId: string; welcome: Extract<ServerToViewer, { type: 'welcome' }> }> {
  const viewer = await connectViewer(roverId, name, options);
  const welcome = await viewer.next('welcome');
  expect(welcome).toMatchObject({ role: 'viewer', protocolVersion: PROTOCOL_VERSION });
  return { viewer, viewerId: welcome.viewerId, welcome };
}

/** Close every socket a test left open (call from afterEach), and wait until the server has seen it. */
export async function closeAllPeers(): Promise<void> {
  const peers = [...openPeers];
  openPeers.clear();
  for (const peer of peers) peer.close();
  await Promise.all(peers.map((peer) => Promise.race([peer.closed, sleep(1_000)])));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
