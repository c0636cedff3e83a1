import { describe, expect, it } from 'vitest';
import { createLogger, type LogLevel } from '../../sender/src/log.js';
import { redactUrl } from '../../sender/src/signaling.js';

const LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO |WARN |ERROR) /;

function capture(level: LogLevel, base = {}): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger(level, base, (line) => lines.push(line)) };
}

describe('createLogger', () => {
  it('drops messages below the level', () => {
    const { lines, log } = capture('warn');
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(LINE);
    expect(lines[0]!.replace(LINE, '$1|')).toBe('WARN |w');
    expect(lines[1]!.replace(LINE, '$1|')).toBe('ERROR|e');
  });

  it('debug level lets everything through', () => {
    const { lines, log } = capture('debug');
    log.debug('a');
    log.info('b');
    expect(lines.map((l) => l.replace(LINE, '$1'))).toEqual(['DEBUGa', 'INFO b']);
  });

  it('renders key=value fields, quotes values with whitespace and skips undefined', () => {
    const { lines, log } = capture('info');
    log.info('connected', { server: 'wss://x.example/rovers/a/ws', attempt: 3, ok: true, missing: undefined, reason: 'going away\nnow' });
    expect(lines[0]!.replace(LINE, '')).toBe('connected server=wss://x.example/rovers/a/ws attempt=3 ok=true reason="going away\\nnow"');
    log.info('bare');
    expect(lines[1]!.replace(LINE, '')).toBe('bare');
  });

  it('child loggers add fields and keep the level and writer', () => {
    const { lines, log } = capture('info', { rover: 'demo' });
    const child = log.child({ camera: 'main' });
    child.debug('hidden');
    child.info('hello', { camera: 'rear', viewer: 'v1' });
    expect(lines.map((l) => l.replace(LINE, ''))).toEqual(['hello rover=demo camera=rear viewer=v1']);
  });
});

describe('redactUrl', () => {
  it('drops query, fragment and userinfo', () => {
    expect(redactUrl('wss://user:pass@rovers.example.com:8443/rovers/demo/ws?role=rover&token=abc#x')).toBe('wss://rovers.example.com:8443/rovers/demo/ws');
    expect(redactUrl('ws://127.0.0.1:8787/rovers/demo/ws?role=rover&v=1')).toBe('ws://127.0.0.1:8787/rovers/demo/ws');
  });

  it('does not echo an invalid URL', () => {
    expect(redactUrl('not a url with secret')).toBe('<invalid url>');
  });
});
