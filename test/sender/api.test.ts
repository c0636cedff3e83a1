/** The local API on a real Unix socket: JSON lines in and out, bad input answered, never a crash, owner-only access. */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ApiInbound } from '../../protocol/index.js';
import { ApiError, LocalApi, MAX_API_LINE_BYTES } from '../../sender/src/api.js';
import { createLogger } from '../../sender/src/log.js';

const log = createLogger('error');
let dir: string;
let api: LocalApi;
let received: ApiInbound[];

/** A client that collects the lines it reads. */
async function client(path: string): Promise<{ socket: Socket; lines: unknown[]; next: () => Promise<unknown> }> {
  const socket = connect(path);
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const lines: unknown[] = [];
  let buffered = '';
  const waiters: (() => void)[] = [];
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buffered.slice(0, newline)));
      buffered = buffered.slice(newline + 1);
      waiters.shift()?.();
    }
  });
  let read = 0;
  const next = async (): Promise<unknown> => {
    const deadline = Date.now() + 2_000;
    while (lines.length <= read) {
      if (Date.now() > deadline) throw new Error('no line from the API within 2 s');
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return lines[read++];
  };
  return { socket, lines, next };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rover-api-'));
  received = [];
  api = new LocalApi(
    log,
    (message) => {
      received.push(message);
      return message.camera === 'nope' ? 'no camera "nope"' : null;
    },
    () => ({ type: 'hello', roverId: 'demo', cameras: ['main'] }),
  );
});

afterEach(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('LocalApi on a Unix socket', () => {
  it('greets, takes telemetry lines, and broadcasts to every client; the socket is owner-only', async () => {
    const path = join(dir, 'api.sock');
    await api.listen(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const a = await client(path);
    const b = await client(path);
    expect(await a.next()).toEqual({ type: 'hello', roverId: 'demo', cameras: ['main'] });
    expect(await b.next()).toMatchObject({ type: 'hello' });

    // Two messages in one write, and one split across writes.
    a.socket.write('{"type":"telemetry","status":{"battery":0.8}}\n{"type":"telemetry","camera":"main","detections":[{"label":"person","score":0.9,"box":[0.1,0.2,0.3,0.4]}]}\n{"type":"tele');
    a.socket.write('metry","status":{"speed":1.5}}\n');
    await expect.poll(() => received.length).toBe(3);
    expect(received[1]).toEqual({ type: 'telemetry', camera: 'main', detections: [{ label: 'person', score: 0.9, box: [0.1, 0.2, 0.3, 0.4] }] });

    api.broadcast({ type: 'stop', reason: 'lease-lapsed' });
    expect(await a.next()).toEqual({ type: 'stop', reason: 'lease-lapsed' });
    expect(await b.next()).toEqual({ type: 'stop', reason: 'lease-lapsed' });
  });

  it('answers bad lines with an error line, drops them, and keeps serving that client and the others', async () => {
    const path = join(dir, 'api.sock');
    await api.listen(path);
    const bad = await client(path);
    const good = await client(path);
    await bad.next();
    await good.next();
    bad.socket.write('not json\n');
    expect(await bad.next()).toMatchObject({ type: 'error', message: expect.stringMatching(/not a JSON line/) });
    bad.socket.write('{"type":"telemetry","detections":[{"label":"x","score":7,"box":[0,0,1,1]}]}\n');
    expect(await bad.next()).toMatchObject({ type: 'error', message: expect.stringMatching(/invalid message: detections/) });
    bad.socket.write('{"type":"drive"}\n');
    expect(await bad.next()).toMatchObject({ type: 'error' });
    bad.socket.write('{"type":"telemetry","camera":"nope"}\n');
    expect(await bad.next()).toEqual({ type: 'error', message: 'no camera "nope"' });
    // An endless line is cut off and dropped, not buffered.
    bad.socket.write('{"type":"telemetry","status":{"x":"' + 'y'.repeat(MAX_API_LINE_BYTES * 2));
    expect(await bad.next()).toMatchObject({ type: 'error', message: expect.stringMatching(/longer than/) });
    bad.socket.write('"}}\n{"type":"telemetry","status":{"ok":true}}\n');
    await expect.poll(() => received.at(-1)).toEqual({ type: 'telemetry', status: { ok: true } });

    good.socket.write('{"type":"telemetry","status":{"from":"good"}}\n');
    await expect.poll(() => received.at(-1)).toEqual({ type: 'telemetry', status: { from: 'good' } });
    expect(good.lines).toHaveLength(1); // only its hello: the other client's errors are not its business
  });

  it('replaces a stale socket file from a crash, but never deletes another kind of file', async () => {
    const stale = join(dir, 'stale.sock');
    const first = new LocalApi(log, () => null, () => ({ type: 'hello', roverId: 'demo', cameras: [] }));
    await first.listen(stale);
    // Simulate a crash: the server goes away without unlinking.
    (first as unknown as { socketPath: string | null }).socketPath = null;
    await first.close();
    await api.listen(stale);
    expect((await (await client(stale)).next())).toMatchObject({ type: 'hello' });

    const regular = join(dir, 'notes.txt');
    writeFileSync(regular, 'keep me');
    const other = new LocalApi(log, () => null, () => ({ type: 'hello', roverId: 'demo', cameras: [] }));
    await expect(other.listen(regular)).rejects.toThrow(ApiError);
    await expect(other.listen(join(dir, 'missing-dir', 'api.sock'))).rejects.toThrow(/cannot listen/);
    expect(statSync(regular).isFile()).toBe(true);
  });

  it('works over a pair of streams (stdin/stdout mode)', async () => {
    const { PassThrough } = await import('node:stream');
    const input = new PassThrough();
    const output = new PassThrough();
    api.attachStreams(input, output);
    const out: string[] = [];
    output.setEncoding('utf8');
    output.on('data', (chunk: string) => out.push(chunk));
    input.write('{"type":"telemetry","status":{"mode":"auto"}}\n');
    await expect.poll(() => received.length).toBe(1);
    api.broadcast({ type: 'lease', viewer: 'ab12cd34' });
    await expect.poll(() => out.join('')).toContain('{"type":"lease","viewer":"ab12cd34"}\n');
    expect(out.join('')).toMatch(/^\{"type":"hello"/);
  });
});
