/**
 * Command line and environment → validated sender configuration. Pure (no I/O), so it is unit-tested.
 * Every flag has an environment variable, so a systemd unit can use an EnvironmentFile.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_CAMERA_ID, isValidRoverId } from '../../protocol/index.js';
import { ENCODER_KINDS, type EncoderPreference } from './encoders.js';
import type { LogLevel } from './log.js';
import { parseSource, SOURCE_HELP, SourceParseError, type SourcePreset, type VideoSettings } from './pipeline.js';

/** One camera: its own source, encoder settings, and the id and label viewers see. */
export interface CameraSpec {
  id: string;
  label: string;
  source: SourcePreset;
  video: VideoSettings;
}

/** Cameras one rover may announce (protocol: RoverStatus.cameras). */
export const MAX_CAMERAS = 16;

export interface ParsedConfig {
  server: string;
  roverId: string;
  /** Every camera, each with its own encoder and track; from --camera, else the single --source camera. */
  cameras: CameraSpec[];
  /** Adapt bitrate/size/rate to the viewers' links (congestion.ts): the floor in kbit/s, or false for a fixed bitrate. */
  adapt: { minKbps: number } | false;
  /** H.264 encoder to use; auto picks hardware when this machine has it (encoders.ts). */
  encoder: EncoderPreference;
  /** This rover's token (JWT from `npm run token -- rover`), sent as Authorization: Bearer. */
  token: string;
  /** Extra STUN/TURN URLs of the operator's own, besides the ones the Worker hands out per call. */
  iceServers: string[];
  /** Send media only through TURN relays (locked-down networks). */
  relayOnly: boolean;
  /** The local API for the rover's program (api.ts): JSON lines on a Unix socket and/or stdin/stdout. */
  api: { socket?: string; stdio: boolean };
  logLevel: LogLevel;
}

function integer(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}.`);
    return n;
  };
}

/** Repeated --camera flags; in ROVER_CAMERAS several specs are separated by ";" or new lines. */
function collectCameras(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(/[;\n]/).map((s) => s.trim()).filter(Boolean)];
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

export function buildProgram(): Command {
  return new Command()
    .name('rover-sender')
    .description('Streams a rover camera to browsers: GStreamer H.264 → WebRTC, signaling via the Rover Live Worker.\nThe sender dials out; the rover needs no open inbound port.')
    .addOption(new Option('-s, --server <url>', 'Worker URL (https://… or ws://127.0.0.1:8787 locally)').env('ROVER_SERVER').makeOptionMandatory())
    .addOption(new Option('-r, --rover <id>', 'this rover\'s id (lowercase a-z, 0-9, "-", "_")').env('ROVER_ID').makeOptionMandatory())
    .addOption(new Option('-c, --source <preset>', 'camera source (see below)').env('ROVER_SOURCE').default('test'))
    .addOption(
      new Option('--camera <spec>', 'a camera (repeat for several; replaces --source/--camera-id/--camera-label): id=source, or id=…,label=…,width=…,height=…,fps=…,bitrate=…,source=… (source last)')
        .env('ROVER_CAMERAS')
        .argParser(collectCameras),
    )
    .addOption(new Option('--camera-id <id>', 'camera id announced to viewers').env('ROVER_CAMERA_ID').default(DEFAULT_CAMERA_ID))
    .addOption(new Option('--camera-label <text>', 'camera name shown to viewers').env('ROVER_CAMERA_LABEL').default('Main camera'))
    .addOption(new Option('-W, --width <px>', 'video width').env('ROVER_WIDTH').default(1280).argParser(integer('width', 16, 7680)))
    .addOption(new Option('-H, --height <px>', 'video height').env('ROVER_HEIGHT').default(720).argParser(integer('height', 16, 4320)))
    .addOption(new Option('-f, --fps <n>', 'frames per second').env('ROVER_FPS').default(30).argParser(integer('fps', 1, 120)))
    .addOption(new Option('-b, --bitrate <kbps>', 'H.264 target bitrate in kbit/s').env('ROVER_BITRATE').default(2000).argParser(integer('bitrate', 50, 50_000)))
    .addOption(new Option('--adapt <on|off>', 'adapt bitrate, picture size and frame rate to the viewers\' links (--bitrate is then the ceiling)').env('ROVER_ADAPT').choices(['on', 'off']).default('on'))
    .addOption(new Option('--min-bitrate <kbps>', 'lowest bitrate adaptation may choose, kbit/s').env('ROVER_MIN_BITRATE').default(150).argParser(integer('min-bitrate', 50, 50_000)))
    .addOption(new Option('--encoder <name>', 'H.264 encoder: auto picks a hardware encoder when present, else x264').env('ROVER_ENCODER').choices(['auto', ...ENCODER_KINDS]).default('auto'))
    .addOption(new Option('--token <token>', 'this rover\'s token (prefer the env var or --token-file: argv is visible to other users)').env('ROVER_TOKEN'))
    .addOption(new Option('--token-file <path>', 'read the rover token from a file (e.g. a systemd credential)').env('ROVER_TOKEN_FILE'))
    .addOption(new Option('--ice-server <url...>', 'extra STUN/TURN URL(s) besides those the server provides, e.g. stun:stun.example.com:3478').env('ROVER_ICE_SERVERS').argParser(collect))
    .addOption(new Option('--relay-only', 'send video only through TURN relays, never directly (env: ROVER_RELAY_ONLY=1)').env('ROVER_RELAY_ONLY'))
    .addOption(new Option('--api-socket <path>', 'local API for the rover\'s program: JSON lines on this Unix socket (telemetry in; control, lease and stop out)').env('ROVER_API_SOCKET'))
    .addOption(new Option('--api-stdio', 'local API on stdin/stdout instead (when your program starts the sender; logs stay on stderr) (env: ROVER_API_STDIO=1)').env('ROVER_API_STDIO'))
    .addOption(new Option('--log-level <level>', 'log verbosity').env('ROVER_LOG_LEVEL').choices(['debug', 'info', 'warn', 'error']).default('info'))
    .addHelpText('after', `\n${SOURCE_HELP}\n\nExamples:\n  rover-sender --server ws://127.0.0.1:8787 --rover demo\n  rover-sender -s https://rovers.example.com -r rover-7 -c v4l2:/dev/video0 -W 1280 -H 720 -f 30 -b 2500`)
    .showHelpAfterError('(run rover-sender --help for usage)')
    .allowExcessArguments(false);
}

export class ConfigError extends Error {}

/** Validate parsed options into a config; throws ConfigError with a message fit for a person. */
export function toConfig(options: Record<string, unknown>): ParsedConfig {
  const server = String(options['server']);
  try {
    const url = new URL(server);
    if (!['ws:', 'wss:', 'http:', 'https:'].includes(url.protocol)) throw new Error();
  } catch {
    throw new ConfigError(`--server must be a URL starting with https://, wss://, http:// or ws:// (got "${server}")`);
  }
  const roverId = String(options['rover']);
  if (!isValidRoverId(roverId)) {
    throw new ConfigError(`--rover "${roverId}" is not a valid rover id: use 1-64 of lowercase a-z, 0-9, "-", "_", starting with a letter or digit`);
  }
  const width = Number(options['width']);
  const height = Number(options['height']);
  if (width % 2 !== 0 || height % 2 !== 0) throw new ConfigError('--width and --height must be even numbers (H.264 4:2:0)');
  const defaults: VideoSettings = { width, height, fps: Number(options['fps']), bitrateKbps: Number(options['bitrate']) };
  const specs = (options['camera'] as string[] | undefined) ?? [];
  const cameras =
    specs.length > 0
      ? specs.map((spec) => parseCameraSpec(spec, defaults))
      : [
          {
            id: checkCameraId(String(options['cameraId']), '--camera-id'),
            label: String(options['cameraLabel']).slice(0, 64),
            source: sourceOrConfigError(String(options['source'])),
            video: defaults,
          },
        ];
  if (cameras.length > MAX_CAMERAS) throw new ConfigError(`at most ${MAX_CAMERAS} cameras per rover (got ${cameras.length})`);
  const ids = new Set<string>();
  for (const camera of cameras) {
    if (ids.has(camera.id)) throw new ConfigError(`two cameras are named "${camera.id}": camera ids must differ`);
    ids.add(camera.id);
  }
  const token = typeof options['token'] === 'string' ? options['token'].trim() : '';
  if (!token) {
    throw new ConfigError(
      `a rover token is required: set ROVER_TOKEN, --token-file or --token (mint one with: npm run token -- rover --rover ${roverId})`,
    );
  }
  // A JWT is three base64url parts: catch a pasted secret, URL or viewer link early.
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) {
    throw new ConfigError('the rover token is malformed: expected the token printed by `npm run token -- rover` (xxxxx.yyyyy.zzzzz)');
  }
  const iceServers = (options['iceServer'] as string[] | undefined) ?? [];
  for (const url of iceServers) {
    if (!/^(stun|turns?):/.test(url)) throw new ConfigError(`--ice-server "${url.slice(0, 80)}" must start with stun:, turn: or turns:`);
  }
  const apiSocket = typeof options['apiSocket'] === 'string' ? options['apiSocket'].trim() : '';
  // Linux limits a Unix socket path to 107 bytes: say so now, not as EINVAL at listen time.
  if (Buffer.byteLength(apiSocket) > 107) throw new ConfigError('--api-socket path is too long (Unix sockets allow at most 107 bytes)');
  return {
    server,
    roverId,
    cameras,
    encoder: (options['encoder'] as EncoderPreference | undefined) ?? 'auto',
    adapt: options['adapt'] === 'off' ? false : { minKbps: Math.min(Number(options['minBitrate'] ?? 150), Number(options['bitrate'])) },
    token,
    iceServers,
    relayOnly: options['relayOnly'] === true,
    api: { ...(apiSocket ? { socket: apiSocket } : {}), stdio: options['apiStdio'] === true || options['apiStdio'] === '1' },
    logLevel: options['logLevel'] as LogLevel,
  };
}

function checkCameraId(id: string, what: string): string {
  if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(id)) throw new ConfigError(`${what} "${id.slice(0, 40)}" must be 1-32 of a-z 0-9 - _`);
  return id;
}

function sourceOrConfigError(spec: string): SourcePreset {
  try {
    return parseSource(spec);
  } catch (error) {
    if (error instanceof SourceParseError) throw new ConfigError(error.message);
    throw error;
  }
}

const CAMERA_KEYS = new Set(['id', 'label', 'width', 'height', 'fps', 'bitrate']);
const CAMERA_NUMBER_RANGES: Record<string, [number, number]> = { width: [16, 7680], height: [16, 4320], fps: [1, 120], bitrate: [50, 50_000] };

/**
 * One --camera spec: `front=v4l2:/dev/video0` (global size, rate and bitrate), or key=value pairs with the
 * source last (a GStreamer fragment may contain commas): `id=rear,label=Rear,width=640,height=360,source=test:ball`.
 */
export function parseCameraSpec(spec: string, defaults: VideoSettings): CameraSpec {
  const sourceAt = spec.search(/(^|,)source=/);
  if (sourceAt === -1) {
    const equals = spec.indexOf('=');
    if (equals === -1) throw new ConfigError(`--camera "${spec.slice(0, 60)}" must be id=source or id=…,source=… (e.g. front=v4l2:/dev/video0)`);
    const id = checkCameraId(spec.slice(0, equals).trim(), '--camera id');
    return { id, label: id, source: sourceOrConfigError(spec.slice(equals + 1)), video: { ...defaults } };
  }
  const sourceStart = spec.indexOf('source=', sourceAt) + 'source='.length;
  const fields = new Map<string, string>();
  for (const pair of spec.slice(0, sourceAt).split(',').filter(Boolean)) {
    const equals = pair.indexOf('=');
    const key = equals === -1 ? pair : pair.slice(0, equals).trim();
    if (!CAMERA_KEYS.has(key)) throw new ConfigError(`--camera: unknown key "${key.slice(0, 20)}" (use id, label, width, height, fps, bitrate, source)`);
    fields.set(key, equals === -1 ? '' : pair.slice(equals + 1).trim());
  }
  const id = checkCameraId(fields.get('id') ?? '', '--camera id');
  const video = { ...defaults };
  for (const [key, [min, max]] of Object.entries(CAMERA_NUMBER_RANGES)) {
    const raw = fields.get(key);
    if (raw === undefined) continue;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) throw new ConfigError(`--camera ${id}: ${key} must be a whole number from ${min} to ${max}`);
    if (key === 'bitrate') video.bitrateKbps = value;
    else video[key as 'width' | 'height' | 'fps'] = value;
  }
  if (video.width % 2 !== 0 || video.height % 2 !== 0) throw new ConfigError(`--camera ${id}: width and height must be even numbers (H.264 4:2:0)`);
  return { id, label: (fields.get('label') || id).slice(0, 64), source: sourceOrConfigError(spec.slice(sourceStart)), video };
}

/** Parse argv (without node and script) + env. Commander prints help/errors and exits on bad flags. */
export function parseArgs(argv: string[]): ParsedConfig {
  const program = buildProgram();
  program.parse(argv, { from: 'user' });
  const options = program.opts();
  if (!options['token'] && typeof options['tokenFile'] === 'string') {
    try {
      options['token'] = readFileSync(options['tokenFile'], 'utf8');
    } catch (error) {
      throw new ConfigError(`cannot read --token-file ${options['tokenFile']}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  }
  return toConfig(options);
}
