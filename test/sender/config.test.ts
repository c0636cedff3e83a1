import { CommanderError } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildProgram, ConfigError, parseArgs, toConfig, type ParsedConfig } from '../../sender/src/config.js';

const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJyb3Zlci03In0.c2lnbmF0dXJl';
const REQUIRED = ['--server', 'wss://rovers.example.com', '--rover', 'rover-7', '--token', TOKEN];

function parse(argv: string[]): ParsedConfig {
  const program = buildProgram()
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} });
  program.parse(argv, { from: 'user' });
  return toConfig(program.opts());
}

function commanderError(argv: string[]): CommanderError {
  try {
    parse(argv);
  } catch (error) {
    expect(error).toBeInstanceOf(CommanderError);
    return error as CommanderError;
  }
  throw new Error(`expected a commander error for ${argv.join(' ')}`);
}

function configError(argv: string[]): ConfigError {
  try {
    parse(argv);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`expected a ConfigError for ${argv.join(' ')}`);
}

let savedEnv: NodeJS.ProcessEnv;
beforeEach(() => {
  savedEnv = { ...process.env };
  for (const key of Object.keys(process.env)) if (key.startsWith('ROVER_')) delete process.env[key];
});
afterEach(() => {
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

describe('sender config', () => {
  it('defaults', () => {
    expect(parse(REQUIRED)).toEqual({
      server: 'wss://rovers.example.com',
      roverId: 'rover-7',
      cameras: [{ id: 'main', label: 'Main camera', source: { kind: 'test', pattern: 'smpte' }, video: { width: 1280, height: 720, fps: 30, bitrateKbps: 2000 } }],
      encoder: 'auto',
      token: TOKEN,
      iceServers: [],
      relayOnly: false,
      adapt: { minKbps: 150 },
      api: { stdio: false },
      logLevel: 'info',
    });
  });

  it('every flag, long form', () => {
    const config = parse([
      '--server', 'http://127.0.0.1:8787',
      '--rover', 'demo_2',
      '--source', 'v4l2:/dev/video1',
      '--camera-id', 'front',
      '--camera-label', 'Front camera',
      '--width', '640',
      '--height', '480',
      '--fps', '15',
      '--bitrate', '800',
      '--encoder', 'vaapi',
      '--token', 'a.b.c',
      '--ice-server', 'stun:stun.example.com:3478',
      '--ice-server', 'turn:turn.example.com:3478,turns:turn.example.com:5349',
      '--relay-only',
      '--min-bitrate', '200',
      '--api-socket', '/run/rover-sender/api.sock',
      '--api-stdio',
      '--log-level', 'debug',
    ]);
    expect(config).toEqual({
      server: 'http://127.0.0.1:8787',
      roverId: 'demo_2',
      cameras: [{ id: 'front', label: 'Front camera', source: { kind: 'v4l2', device: '/dev/video1' }, video: { width: 640, height: 480, fps: 15, bitrateKbps: 800 } }],
      encoder: 'vaapi',
      token: 'a.b.c',
      iceServers: ['stun:stun.example.com:3478', 'turn:turn.example.com:3478', 'turns:turn.example.com:5349'],
      relayOnly: true,
      adapt: { minKbps: 200 },
      api: { socket: '/run/rover-sender/api.sock', stdio: true },
      logLevel: 'debug',
    });
  });

  it('short flags', () => {
    const config = parse(['-s', 'ws://localhost:8787', '-r', 'r1', '-c', 'test:ball', '-W', '320', '-H', '240', '-f', '10', '-b', '300', '--token', TOKEN]);
    expect(config.server).toBe('ws://localhost:8787');
    expect(config.roverId).toBe('r1');
    expect(config.cameras[0]!.source).toEqual({ kind: 'test', pattern: 'ball' });
    expect(config.cameras[0]!.video).toEqual({ width: 320, height: 240, fps: 10, bitrateKbps: 300 });
  });

  it('refuses an --api-socket path longer than a Unix socket allows', () => {
    expect(configError([...REQUIRED, '--api-socket', `/tmp/${'x'.repeat(120)}.sock`]).message).toMatch(/--api-socket path is too long/);
  });

  it('a variadic --ice-server takes several URLs', () => {
    expect(parse([...REQUIRED, '--ice-server', 'stun:a.example', 'stun:b.example']).iceServers).toEqual(['stun:a.example', 'stun:b.example']);
  });

  it('refuses --ice-server entries that are not STUN/TURN URLs', () => {
    expect(configError([...REQUIRED, '--ice-server', 'http://stun.example.com']).message).toMatch(/must start with stun:, turn: or turns:/);
  });

  it('the camera label is cut to 64 characters', () => {
    expect(parse([...REQUIRED, '--camera-label', 'x'.repeat(100)]).cameras[0]!.label).toBe('x'.repeat(64));
  });

  it('--token-file reads the token (a systemd credential or docker secret); a missing file is a ConfigError', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rover-token-'));
    try {
      const file = join(dir, 'token');
      writeFileSync(file, `${TOKEN}\n`);
      const base = ['--server', 'wss://rovers.example.com', '--rover', 'rover-7'];
      expect(parseArgs([...base, '--token-file', file]).token).toBe(TOKEN);
      expect(() => parseArgs([...base, '--token-file', join(dir, 'missing')])).toThrow(/cannot read --token-file .*ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a rover token is required, and must look like one', () => {
    const base = ['--server', 'wss://rovers.example.com', '--rover', 'rover-7'];
    expect(configError(base).message).toMatch(/a rover token is required: set ROVER_TOKEN.*npm run token -- rover --rover rover-7/);
    expect(configError([...base, '--token', '']).message).toMatch(/a rover token is required/);
    expect(configError([...base, '--token', 'https://rovers.example.com/rovers/x#access=abc']).message).toMatch(/malformed/);
  });

  it('environment variables', () => {
    Object.assign(process.env, {
      ROVER_SERVER: 'https://rovers.example.com',
      ROVER_ID: 'env-rover',
      ROVER_SOURCE: 'rtsp:rtsp://192.0.2.10/stream',
      ROVER_CAMERA_ID: 'rear',
      ROVER_CAMERA_LABEL: 'Rear',
      ROVER_WIDTH: '1920',
      ROVER_HEIGHT: '1080',
      ROVER_FPS: '25',
      ROVER_BITRATE: '4000',
      ROVER_ENCODER: 'v4l2',
      ROVER_TOKEN: 'x.y.z',
      ROVER_RELAY_ONLY: '1',
      ROVER_ICE_SERVERS: 'stun:a.example, stun:b.example',
      ROVER_LOG_LEVEL: 'warn',
      ROVER_MIN_BITRATE: '500',
      ROVER_API_SOCKET: '/run/rover-sender/api.sock',
    });
    expect(parse([])).toEqual({
      server: 'https://rovers.example.com',
      roverId: 'env-rover',
      cameras: [{ id: 'rear', label: 'Rear', source: { kind: 'rtsp', url: 'rtsp://192.0.2.10/stream' }, video: { width: 1920, height: 1080, fps: 25, bitrateKbps: 4000 } }],
      encoder: 'v4l2',
      token: 'x.y.z',
      iceServers: ['stun:a.example', 'stun:b.example'],
      relayOnly: true,
      adapt: { minKbps: 500 },
      api: { socket: '/run/rover-sender/api.sock', stdio: false },
      logLevel: 'warn',
    });
  });

  it('flags override environment variables', () => {
    process.env['ROVER_ID'] = 'from-env';
    process.env['ROVER_BITRATE'] = '4000';
    process.env['ROVER_TOKEN'] = 'from.env.token';
    const config = parse(['--server', 'ws://x.example', '--rover', 'from-flag', '-b', '900', '--token', TOKEN]);
    expect(config.token).toBe(TOKEN);
    expect(config.roverId).toBe('from-flag');
    expect(config.cameras[0]!.video.bitrateKbps).toBe(900);
  });

  it('missing --server or --rover is a commander error', () => {
    expect(commanderError(['--rover', 'r1']).code).toBe('commander.missingMandatoryOptionValue');
    const error = commanderError(['--server', 'wss://x.example']);
    expect(error.code).toBe('commander.missingMandatoryOptionValue');
    expect(error.message).toContain('--rover');
  });

  it('bad numbers are commander errors naming the range', () => {
    for (const argv of [
      ['--width', 'wide'],
      ['--width', '8'],
      ['--height', '1080.5'],
      ['--fps', '0'],
      ['--fps', '121'],
      ['--bitrate', '10'],
      ['--bitrate', '2e9'],
    ]) {
      const error = commanderError([...REQUIRED, ...argv]);
      expect(error.code, argv.join(' ')).toBe('commander.invalidArgument');
      expect(error.message).toMatch(/must be a whole number from \d+ to \d+/);
    }
    process.env['ROVER_FPS'] = 'fast';
    expect(commanderError(REQUIRED).code).toBe('commander.invalidArgument');
  });

  it('unknown flags, extra arguments and bad log levels are commander errors', () => {
    expect(commanderError([...REQUIRED, '--frobnicate']).code).toBe('commander.unknownOption');
    expect(commanderError([...REQUIRED, 'extra']).code).toBe('commander.excessArguments');
    expect(commanderError([...REQUIRED, '--log-level', 'verbose']).code).toBe('commander.invalidArgument');
  });

  it('--encoder takes auto or an encoder kind (env ROVER_ENCODER); a flag beats the env var', () => {
    for (const encoder of ['auto', 'x264', 'v4l2', 'vaapi', 'nvh264', 'vtenc']) {
      expect(parse([...REQUIRED, '--encoder', encoder]).encoder).toBe(encoder);
    }
    process.env['ROVER_ENCODER'] = 'nvh264';
    expect(parse(REQUIRED).encoder).toBe('nvh264');
    expect(parse([...REQUIRED, '--encoder', 'x264']).encoder).toBe('x264');
  });

  it('an unknown --encoder or ROVER_ENCODER is a commander error listing the choices', () => {
    const error = commanderError([...REQUIRED, '--encoder', 'x265']);
    expect(error.code).toBe('commander.invalidArgument');
    expect(error.message).toContain('auto, x264, v4l2, vaapi, nvh264, vtenc');
    expect(commanderError([...REQUIRED, '--encoder', 'X264']).code).toBe('commander.invalidArgument');
    process.env['ROVER_ENCODER'] = 'nvenc';
    expect(commanderError(REQUIRED).code).toBe('commander.invalidArgument');
  });

  it('odd width or height is a ConfigError', () => {
    expect(configError([...REQUIRED, '--width', '1279']).message).toBe('--width and --height must be even numbers (H.264 4:2:0)');
    expect(configError([...REQUIRED, '--height', '721']).message).toContain('even');
  });

  it('invalid rover ids are ConfigErrors naming the problem', () => {
    for (const id of ['Demo', 'a/b', '-leading-dash', 'x'.repeat(65), 'has space']) {
      const message = configError(['--server', 'wss://x.example', '--rover', id]).message;
      expect(message, id).toContain(`--rover "${id}" is not a valid rover id`);
      expect(message).toContain('lowercase');
    }
    expect(parse(['--server', 'wss://x.example', '--rover', 'x'.repeat(64), '--token', TOKEN]).roverId).toHaveLength(64);
  });

  it('bad server URLs are ConfigErrors', () => {
    expect(configError(['--server', 'ftp://rovers.example.com', '--rover', 'r1']).message).toBe(
      '--server must be a URL starting with https://, wss://, http:// or ws:// (got "ftp://rovers.example.com")',
    );
    expect(configError(['--server', 'rovers.example.com', '--rover', 'r1']).message).toContain('--server must be a URL');
  });

  it('bad sources and camera ids are ConfigErrors', () => {
    expect(configError([...REQUIRED, '--source', 'v4l2:/dev/x;rm']).message).toContain('v4l2 needs a device path');
    expect(configError([...REQUIRED, '--source', 'nope']).message).toContain('unknown camera source "nope"');
    expect(configError([...REQUIRED, '--camera-id', 'Front']).message).toContain('--camera-id "Front"');
  });

  it('--help shows the source presets', () => {
    let out = '';
    const program = buildProgram()
      .exitOverride()
      .configureOutput({ writeOut: (text) => (out += text), writeErr: () => {} });
    let error: unknown;
    try {
      program.parse(['--help'], { from: 'user' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CommanderError);
    expect((error as CommanderError).code).toBe('commander.helpDisplayed');
    for (const text of ['--server <url>', '--rover <id>', 'Camera source presets:', 'test:<pattern>', 'v4l2:/dev/videoN', 'libcamera[:<name>]', 'rtsp:<url>', 'avf[:<index>]', 'pipeline:<fragment>', 'ROVER_SERVER']) {
      expect(out, text).toContain(text);
    }
  });

  it('adapts to the links by default, with a floor; --adapt off keeps the bitrate fixed', () => {
    expect(parse([...REQUIRED, '--min-bitrate', '300']).adapt).toEqual({ minKbps: 300 });
    expect(parse([...REQUIRED, '--adapt', 'off']).adapt).toBe(false);
    process.env['ROVER_ADAPT'] = 'off';
    expect(parse(REQUIRED).adapt).toBe(false);
    delete process.env['ROVER_ADAPT'];
    // A floor above the ceiling is the ceiling.
    expect(parse([...REQUIRED, '--bitrate', '200', '--min-bitrate', '400']).adapt).toEqual({ minKbps: 200 });
    expect(commanderError([...REQUIRED, '--adapt', 'maybe']).code).toBe('commander.invalidArgument');
    expect(commanderError([...REQUIRED, '--min-bitrate', '10']).code).toBe('commander.invalidArgument');
  });

  it('several cameras: --camera id=source, or key=value pairs with the source last; each with its own settings', () => {
    const config = parse([
      ...REQUIRED,
      '-W', '640', '-H', '360',
      '--camera', 'front=test:ball',
      '--camera', 'id=rear,label=Rear view,width=320,height=240,fps=15,bitrate=300,source=pipeline:videotestsrc is-live=true ! video/x-raw,width=320,height=240',
    ]);
    expect(config.cameras).toEqual([
      { id: 'front', label: 'front', source: { kind: 'test', pattern: 'ball' }, video: { width: 640, height: 360, fps: 30, bitrateKbps: 2000 } },
      {
        id: 'rear',
        label: 'Rear view',
        source: { kind: 'pipeline', fragment: 'videotestsrc is-live=true ! video/x-raw,width=320,height=240' },
        video: { width: 320, height: 240, fps: 15, bitrateKbps: 300 },
      },
    ]);
    process.env['ROVER_CAMERAS'] = 'a=test; b=meter';
    expect(parse(REQUIRED).cameras.map((c) => [c.id, c.source.kind])).toEqual([['a', 'test'], ['b', 'meter']]);
  });

  it('bad --camera specs are ConfigErrors that say what is wrong', () => {
    expect(configError([...REQUIRED, '--camera', 'front']).message).toMatch(/must be id=source/);
    expect(configError([...REQUIRED, '--camera', 'Front=test']).message).toMatch(/--camera id "Front" must be 1-32/);
    expect(configError([...REQUIRED, '--camera', 'a=test', '--camera', 'a=test:ball']).message).toMatch(/two cameras are named "a"/);
    expect(configError([...REQUIRED, '--camera', 'id=a,speed=3,source=test']).message).toMatch(/unknown key "speed"/);
    expect(configError([...REQUIRED, '--camera', 'id=a,width=641,source=test']).message).toMatch(/a: width and height must be even/);
    expect(configError([...REQUIRED, '--camera', 'id=a,fps=0,source=test']).message).toMatch(/fps must be a whole number from 1 to 120/);
    expect(configError([...REQUIRED, '--camera', 'x=nosuchsource']).message).toMatch(/unknown camera source/);
    const many = Array.from({ length: 17 }, (_, i) => ['--camera', `c${i}=test`]).flat();
    expect(configError([...REQUIRED, ...many]).message).toMatch(/at most 16 cameras/);
  });
});
