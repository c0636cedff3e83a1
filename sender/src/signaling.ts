/**
 * The rover's dial-out signaling connection. Reconnects forever with capped exponential backoff and
 * jitter; detects dead links with heartbeats (a rover on cellular often loses its link without a FIN).
 *
 * An attempt made while the link is down sits in TCP SYN retransmission (1 s, 3 s, 7 s…), so it may not
 * notice the link's return for seconds. Opening handshakes therefore time out quickly, and a handshake
 * timeout — the path is down; the server never saw us — is retried promptly without growing the backoff
 * (no herd to spread: no server is being hit). After many timeouts in a row an attempt gets the long
 * timeout, so a link that is merely very slow still gets through.
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import {
  CloseCode,
  parseMessage,
  PING_FRAME,
  ServerToRover,
  type RoverToServer,
} from '../../protocol/index.js';
import { backoffDelay } from './backoff.js';
import { errorSummary, type Logger } from './log.js';

export interface SignalingOptions {
  url: string;
  log: Logger;
  /** Extra upgrade headers (credentials go in a header, never in the logged URL). */
  headers?: Record<string, string>;
  heartbeatMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface SignalingEvents {
  open: [];
  message: [message: ServerToRover];
  close: [code: number, reason: string];
  /** The server refused us in a way retrying will not fix (bad rover id, unsupported version). */
  fatal: [error: Error];
}

/** Opening handshake budget while the path may be down, and for every MAX_QUICK_TIMEOUTS-th attempt. */
export const QUICK_HANDSHAKE_MS = 2_500;
export const SLOW_HANDSHAKE_MS = 10_000;
const MAX_QUICK_TIMEOUTS = 6;

export class SignalingClient extends EventEmitter<SignalingEvents> {
  private socket: WebSocket | null = null;
  private attempt = 0;
  /** Opening handshakes that timed out in a row (reset when one opens). */
  private handshakeTimeouts = 0;
  private lastAttemptTimedOut = false;
  private stopped = true;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastHeard = 0;
  private readonly heartbeatMs: number;

  constructor(private readonly options: SignalingOptions) {
    super();
    this.heartbeatMs = options.heartbeatMs ?? 10_000;
  }

  /** Ping now; true if the server says anything within `timeoutMs` (the link works end to end). */
  probe(timeoutMs: number): Promise<boolean> {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return Promise.resolve(false);
    const sentAt = Date.now();
    socket.send(PING_FRAME);
    return new Promise((resolve) => {
      const check = setInterval(() => {
        if (this.lastHeard >= sentAt) {
          clearInterval(check);
          resolve(true);
        } else if (Date.now() - sentAt >= timeoutMs) {
          clearInterval(check);
          resolve(false);
        }
      }, 50);
    });
  }

  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  send(message: RoverToServer): boolean {
    if (this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  /**
   * Drop the current connection and dial again now (e.g. the rover's address changed, so the old TCP
   * connection is dead even if it looks open).
   */
  reconnectNow(): void {
    if (this.stopped) return;
    this.attempt = 0;
    const socket = this.socket;
    if (socket) {
      socket.terminate(); // its 'close' handler schedules the reconnect (first attempt: short delay)
    } else {
      clearTimeout(this.reconnectTimer);
      this.connect();
    }
  }

  /** Close for good; resolves when the socket is closed (or after a short grace period). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeatTimer);
    const socket = this.socket;
    this.socket = null;
    if (!socket || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        socket.terminate();
        resolve();
      }, 500);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
      else socket.close(1000, 'rover shutting down');
    });
  }

  private connect(): void {
    const { log } = this.options;
    this.lastAttemptTimedOut = false;
    const quick = this.handshakeTimeouts % MAX_QUICK_TIMEOUTS !== MAX_QUICK_TIMEOUTS - 1;
    const socket = new WebSocket(this.options.url, {
      headers: this.options.headers,
      handshakeTimeout: quick ? QUICK_HANDSHAKE_MS : SLOW_HANDSHAKE_MS,
      maxPayload: 256 * 1024,
    });
    this.socket = socket;
    let refused = false;

    socket.on('open', () => {
      this.handshakeTimeouts = 0;
      log.info('connected to signaling server', { server: redactUrl(this.options.url) });
      this.lastHeard = Date.now();
      this.startHeartbeat(socket);
      this.emit('open');
    });
    socket.on('message', (data, isBinary) => {
      this.lastHeard = Date.now();
      if (isBinary) {
        log.debug('ignoring a binary frame from the server');
        return;
      }
      const parsed = parseMessage(ServerToRover, data.toString());
      if (!parsed.ok) {
        log.warn('ignoring invalid message from server', { error: parsed.error });
        return;
      }
      if (parsed.message.type === 'welcome') this.attempt = 0;
      if (parsed.message.type === 'pong') return;
      try {
        this.emit('message', parsed.message);
      } catch (error) {
        // A throwing handler would surface inside ws's socket callback and crash the process: a
        // message from the network must never do that. Log it (without its content) and go on.
        log.error('failed to handle a message from the server', { type: parsed.message.type, error: errorSummary(error) });
      }
    });
    socket.on('unexpected-response', (_request, response) => {
      refused = true;
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk.slice(0, 500)));
      response.on('end', () => {
        const status = response.statusCode ?? 0;
        let detail = `server refused the connection: HTTP ${status} ${body.trim()}`;
        if (status === 401) detail += ' — check this rover\'s token (ROVER_TOKEN): mint a new one with `npm run token -- rover`';
        else if (status === 403) detail += ' — the token is for another rover id, or this origin is not allowed';
        socket.terminate();
        if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
          this.emit('fatal', new Error(detail));
        } else {
          log.warn(detail);
        }
      });
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (refused) return;
      // ws reports its handshake timer this way; nothing else carries this message.
      if (/handshake has timed out/i.test(error.message)) {
        this.handshakeTimeouts++;
        this.lastAttemptTimedOut = true;
      }
      log.warn('cannot reach signaling server', { server: redactUrl(this.options.url), error: error.code ?? error.message });
    });
    socket.on('close', (code, reasonBuffer) => {
      if (this.socket === socket) this.socket = null;
      clearInterval(this.heartbeatTimer);
      const reason = reasonBuffer.toString();
      if (code === CloseCode.Superseded) {
        log.error('another sender connected as this rover and took over; retrying later', { reason });
        this.attempt = Math.max(this.attempt, 10);
      }
      this.emit('close', code, reason);
      if (!this.stopped) this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.lastAttemptTimedOut) {
      // Unreachable, not refused: try again soon, and keep the backoff where it was.
      const delay = backoffDelay(0, { minMs: 500, maxMs: 500 });
      this.options.log.info('reconnecting', { inMs: delay, attempt: this.attempt, after: 'handshake timeout' });
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = setTimeout(() => !this.stopped && this.connect(), delay);
      return;
    }
    const delay = backoffDelay(this.attempt++, {
      minMs: this.options.minBackoffMs ?? 500,
      maxMs: this.options.maxBackoffMs ?? 30_000,
    });
    this.options.log.info('reconnecting', { inMs: delay, attempt: this.attempt });
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => !this.stopped && this.connect(), delay);
  }

  private startHeartbeat(socket: WebSocket): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => {
      if (Date.now() - this.lastHeard > this.heartbeatMs * 2.5) {
        this.options.log.warn('signaling link silent, reconnecting');
        socket.terminate();
        return;
      }
      if (socket.readyState === WebSocket.OPEN) socket.send(PING_FRAME);
    }, this.heartbeatMs);
  }
}

/** Log-safe form of a URL: no query string or userinfo (they may carry credentials). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '<invalid url>';
  }
}
