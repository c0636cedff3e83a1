import { describe, expect, it } from 'vitest';
import { NO_ICE_SERVERS, parseMessage, PROTOCOL_VERSION, ServerToRover, signalingUrl, ViewerToServer } from '../../protocol/index.js';

describe('signalingUrl', () => {
  it('converts http → ws and https → wss, keeps ws and wss', () => {
    expect(signalingUrl('http://127.0.0.1:8787', 'demo', 'rover')).toBe(`ws://127.0.0.1:8787/rovers/demo/ws?role=rover&v=${PROTOCOL_VERSION}`);
    expect(signalingUrl('https://rovers.example.com', 'demo', 'viewer')).toBe('wss://rovers.example.com/rovers/demo/ws?role=viewer&v=1');
    expect(signalingUrl('ws://localhost:8787', 'r-1', 'rover')).toBe('ws://localhost:8787/rovers/r-1/ws?role=rover&v=1');
    expect(signalingUrl('wss://rovers.example.com', 'r_2', 'viewer')).toBe('wss://rovers.example.com/rovers/r_2/ws?role=viewer&v=1');
  });

  it('appends to an existing base path without doubling slashes', () => {
    expect(signalingUrl('https://example.com/live/', 'demo', 'rover')).toBe('wss://example.com/live/rovers/demo/ws?role=rover&v=1');
    expect(signalingUrl('https://example.com/live//', 'demo', 'rover')).toBe('wss://example.com/live/rovers/demo/ws?role=rover&v=1');
  });

  it('strips an existing query and fragment', () => {
    expect(signalingUrl('https://rovers.example.com/?role=viewer&token=abc', 'demo', 'rover')).toBe(
      'wss://rovers.example.com/rovers/demo/ws?role=rover&v=1',
    );
    // `ws` refuses URLs with a fragment ("The URL contains a fragment identifier").
    expect(signalingUrl('https://rovers.example.com/#/demo', 'demo', 'rover')).toBe('wss://rovers.example.com/rovers/demo/ws?role=rover&v=1');
  });

  it('percent-encodes the rover id', () => {
    expect(signalingUrl('https://x.example', 'a/b?c', 'viewer')).toBe('wss://x.example/rovers/a%2Fb%3Fc/ws?role=viewer&v=1');
  });

  it('rejects other schemes', () => {
    expect(() => signalingUrl('ftp://rovers.example.com', 'demo', 'rover')).toThrow(/server URL must start with ws:\/\/, wss:\/\/, http:\/\/ or https:\/\/ \(got ftp:\/\/\)/);
    expect(() => signalingUrl('not a url', 'demo', 'rover')).toThrow();
  });
});

describe('parseMessage', () => {
  it('parses a valid message', () => {
    const message = { type: 'viewer-join', viewerId: 'v1', cameraId: 'main', ice: NO_ICE_SERVERS };
    expect(parseMessage(ServerToRover, JSON.stringify(message))).toEqual({ ok: true, message });
  });

  it('refuses ICE settings with malformed server URLs', () => {
    const ice = { ...NO_ICE_SERVERS, iceServers: [{ urls: ['http://turn.example.com'] }] };
    const result = parseMessage(ServerToRover, JSON.stringify({ type: 'viewer-join', viewerId: 'v1', cameraId: 'main', ice }));
    expect(result).toMatchObject({ ok: false, code: 'bad-message', error: expect.stringMatching(/ice\.iceServers\.0\.urls\.0: must be a stun:/) });
  });

  it('bad JSON → bad-json, without echoing the input', () => {
    const raw = '{"type":"watch","secret":"hunter2-TOPSECRET"';
    const result = parseMessage(ViewerToServer, raw);
    expect(result).toEqual({ ok: false, code: 'bad-json', error: 'message is not valid JSON' });
  });

  it('schema violations → bad-message, naming the field but never echoing values', () => {
    const secret = 'TOPSECRET-Zx9';
    const cases = [
      { type: secret },
      { type: 'watch', cameraId: `${secret}!` },
      { type: 'answer', callId: `${secret}/..`, sdp: 42 },
      { type: 'candidate', callId: 'c1', candidate: { candidate: 7, mid: secret.repeat(5) } },
      [secret],
      secret,
      null,
    ];
    for (const input of cases) {
      const result = parseMessage(ViewerToServer, JSON.stringify(input));
      expect(result.ok, JSON.stringify(input)).toBe(false);
      if (result.ok) continue;
      expect(result.code).toBe('bad-message');
      expect(result.error.length).toBeGreaterThan(0);
      expect(result.error).not.toContain(secret);
      expect(result.error).not.toContain('TOPSECRET');
    }
    const watch = parseMessage(ViewerToServer, JSON.stringify({ type: 'watch', cameraId: 'Bad Camera' }));
    expect(watch.ok).toBe(false);
    if (!watch.ok) expect(watch.error).toContain('cameraId');
  });

  it('never throws on odd input', () => {
    for (const raw of ['', ' ', 'undefined', '1e999', '"\\ud800"', '{"__proto__":{"type":"pong"}}', '[]', 'true']) {
      expect(() => parseMessage(ServerToRover, raw), raw).not.toThrow();
      expect(parseMessage(ServerToRover, raw).ok, raw).toBe(false);
    }
  });
});
