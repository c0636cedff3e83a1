/**
 * H.264 encoder profiles: which GStreamer encoder to use on this machine, and how to configure it for
 * low latency. Pure (no GStreamer calls), except detectEncoders(), which asks gst-inspect-1.0 once at start.
 *
 * Every profile produces the same kind of stream: no B-frames (nothing waits for a later frame), no
 * lookahead, constant-bitrate rate control, an IDR every 2 seconds, and a baseline-profile H.264 that
 * browsers decode (constrained-baseline wherever the encoder's caps can say so). Each fragment starts
 * right after the pipeline's I420 queue and ends with the H.264 caps that the RTP payloader takes.
 *
 * Property names, units and enum values were checked against the GStreamer sources (x264enc also
 * with gst-inspect-1.0 on this machine): gst-plugins-good sys/v4l2 (v4l2h264enc), gstreamer-vaapi
 * (vaapih264enc), gst-plugins-bad sys/nvcodec gstnvbaseenc.c/gstnvh264enc.c (nvh264enc) and
 * sys/applemedia/vtenc.c (vtenc_h264). Only properties that exist in every build are used: the pipeline
 * parser rejects an unknown property, and e.g. nvh264enc's "bframes" only exists on GPUs that can do
 * B-frames (its default is 0 anyway).
 */
import { spawnSync } from 'node:child_process';
import type { Logger } from './log.js';
import type { VideoSettings } from './pipeline.js';

export type EncoderKind = 'x264' | 'v4l2' | 'vaapi' | 'nvh264' | 'vtenc';
export type EncoderPreference = EncoderKind | 'auto';

/** In --encoder order (x264 first: the default when nothing else is asked for). */
export const ENCODER_KINDS: readonly EncoderKind[] = ['x264', 'v4l2', 'vaapi', 'nvh264', 'vtenc'];

/** How the sender changes the target bitrate of a running encoder (H264Encoder.setBitrate). */
export interface BitrateControl {
  /** Element property that carries the bitrate. */
  property: string;
  /** Unit of the value that property takes. */
  unit: 'kbit/s' | 'bit/s';
  /** Whether the sender can change it while the pipeline plays; if not, the stream keeps its start bitrate. */
  runtime: boolean;
  /** Why, for people reading logs and docs. */
  note: string;
}

export interface EncoderProfile {
  kind: EncoderKind;
  /** GStreamer element name (what gst-inspect-1.0 --exists looks for). */
  element: string;
  hardware: boolean;
  /** For logs: "x264enc (software)". */
  label: string;
  /** Debian/Ubuntu (or macOS) package that provides the element. */
  package: string;
  /** What to install or check when the element is missing. */
  installHint: string;
  /** Platforms where the element can exist at all. */
  platforms: readonly NodeJS.Platform[];
  /** Raw video format the encoder takes; the fragment converts the pipeline's I420 to it if needed. */
  inputFormat: 'I420' | 'NV12';
  /**
   * Pipeline text from after the raw-video queue up to and including the H.264 caps: any conversion the
   * encoder needs, the encoder itself (named `name`, so run-time changes find it), its output caps.
   */
  fragment(video: VideoSettings, name: string): string;
  bitrate: BitrateControl;
}

/** IDR interval in frames: 2 seconds, so a viewer joining or recovering from loss waits at most that long. */
export function gopFrames(fps: number): number {
  return Math.max(1, Math.round(fps * 2));
}

/** A VBV buffer of about 3 frames keeps frame sizes even (fewer bursts, less jitter) without starving keyframes. */
export function vbvMillis(fps: number): number {
  return Math.max(100, Math.round((3 * 1000) / fps));
}

interface H264Level {
  /** As in GStreamer caps: "3.1", "4". */
  name: string;
  /** V4L2_MPEG_VIDEO_H264_LEVEL_* (linux/v4l2-controls.h). */
  v4l2: number;
  maxMacroblocksPerSecond: number;
  maxFrameMacroblocks: number;
  /** Baseline-profile MaxBR, kbit/s. */
  maxKbps: number;
}

// H.264 Table A-1, from 3.1 up: 3.1 is what WebRTC offers by default (profile-level-id 42e01f).
const H264_LEVELS: readonly H264Level[] = [
  { name: '3.1', v4l2: 9, maxMacroblocksPerSecond: 108_000, maxFrameMacroblocks: 3_600, maxKbps: 14_000 },
  { name: '3.2', v4l2: 10, maxMacroblocksPerSecond: 216_000, maxFrameMacroblocks: 5_120, maxKbps: 20_000 },
  { name: '4', v4l2: 11, maxMacroblocksPerSecond: 245_760, maxFrameMacroblocks: 8_192, maxKbps: 20_000 },
  { name: '4.1', v4l2: 12, maxMacroblocksPerSecond: 245_760, maxFrameMacroblocks: 8_192, maxKbps: 50_000 },
  { name: '4.2', v4l2: 13, maxMacroblocksPerSecond: 522_240, maxFrameMacroblocks: 8_704, maxKbps: 50_000 },
  { name: '5', v4l2: 14, maxMacroblocksPerSecond: 589_824, maxFrameMacroblocks: 22_080, maxKbps: 135_000 },
  { name: '5.1', v4l2: 15, maxMacroblocksPerSecond: 983_040, maxFrameMacroblocks: 36_864, maxKbps: 240_000 },
  { name: '5.2', v4l2: 16, maxMacroblocksPerSecond: 2_073_600, maxFrameMacroblocks: 36_864, maxKbps: 240_000 },
];

/** The lowest H.264 level (3.1 or higher) that allows this size, rate and bitrate. */
export function h264Level(video: VideoSettings): H264Level {
  const widthMbs = Math.ceil(video.width / 16);
  const heightMbs = Math.ceil(video.height / 16);
  const frameMbs = widthMbs * heightMbs;
  const fits = (level: H264Level): boolean =>
    frameMbs <= level.maxFrameMacroblocks &&
    // Neither side may exceed sqrt(8 * MaxFS) macroblocks (A.3.1 f/g).
    widthMbs * widthMbs <= 8 * level.maxFrameMacroblocks &&
    heightMbs * heightMbs <= 8 * level.maxFrameMacroblocks &&
    frameMbs * video.fps <= level.maxMacroblocksPerSecond &&
    video.bitrateKbps <= level.maxKbps;
  return H264_LEVELS.find(fits) ?? H264_LEVELS[H264_LEVELS.length - 1]!;
}

/** NV12 encoders get it from the pipeline's I420 with one software conversion. */
const TO_NV12 = 'videoconvert ! video/x-raw,format=NV12';

const KBPS_RUNTIME = (note: string): BitrateControl => ({ property: 'bitrate', unit: 'kbit/s', runtime: true, note });

export const ENCODER_PROFILES: Readonly<Record<EncoderKind, EncoderProfile>> = {
  x264: {
    kind: 'x264',
    element: 'x264enc',
    hardware: false,
    label: 'x264enc (software)',
    package: 'gstreamer1.0-plugins-ugly',
    installHint: 'sudo apt-get install gstreamer1.0-plugins-ugly (macOS: brew install gstreamer)',
    platforms: ['linux', 'darwin', 'win32', 'freebsd'],
    inputFormat: 'I420',
    fragment: (video, name) =>
      [
        `x264enc name=${name} tune=zerolatency speed-preset=ultrafast bitrate=${video.bitrateKbps} vbv-buf-capacity=${vbvMillis(video.fps)} key-int-max=${gopFrames(video.fps)} bframes=0 b-adapt=false rc-lookahead=0 sliced-threads=true`,
        'video/x-h264,profile=constrained-baseline,stream-format=byte-stream',
      ].join(' ! '),
    bitrate: KBPS_RUNTIME('x264enc applies a new bitrate within about a second (changeable in PLAYING)'),
  },

  v4l2: {
    kind: 'v4l2',
    element: 'v4l2h264enc',
    hardware: true,
    label: 'v4l2h264enc (hardware, V4L2 memory-to-memory, e.g. Raspberry Pi 4)',
    package: 'gstreamer1.0-plugins-good',
    installHint:
      'sudo apt-get install gstreamer1.0-plugins-good; the element only appears when the kernel has an H.264 encoder device (Raspberry Pi 4: bcm2835-codec, /dev/video11). The Raspberry Pi 5 has none: use x264',
    platforms: ['linux'],
    inputFormat: 'I420',
    fragment: (video, name) => {
      const level = h264Level(video);
      // Control names are the driver's, lowercased with "_" (what v4l2-ctl --list-ctrls shows). Profile 1 is
      // V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE, bitrate mode 1 is CBR. The caps repeat profile and
      // level: v4l2videoenc negotiates them from downstream caps, and the Pi encoder fails to negotiate
      // without a level there.
      const controls = [
        'controls',
        'video_bitrate_mode=1',
        `video_bitrate=${Math.round(video.bitrateKbps * 1000)}`,
        `h264_i_frame_period=${gopFrames(video.fps)}`,
        'repeat_sequence_header=1',
        'h264_profile=1',
        `h264_level=${level.v4l2}`,
      ].join(',');
      return [
        `v4l2h264enc name=${name} extra-controls="${controls}"`,
        `video/x-h264,profile=constrained-baseline,level=(string)${level.name},stream-format=byte-stream,alignment=au`,
      ].join(' ! ');
    },
    bitrate: {
      property: 'extra-controls',
      unit: 'bit/s',
      runtime: false,
      note:
        'v4l2h264enc takes its bitrate in extra-controls, a GstStructure; gstreamer-superficial can only set strings, numbers and booleans (GLib refuses a string for a GstStructure property), so the stream keeps its start bitrate',
    },
  },

  vaapi: {
    kind: 'vaapi',
    element: 'vaapih264enc',
    hardware: true,
    label: 'vaapih264enc (hardware, VA-API: Intel/AMD)',
    package: 'gstreamer1.0-vaapi',
    installHint:
      'sudo apt-get install gstreamer1.0-vaapi plus a VA-API driver that can encode H.264 (intel-media-va-driver-non-free or mesa-va-drivers; vainfo lists what the GPU encodes)',
    platforms: ['linux'],
    inputFormat: 'NV12',
    // No B-frames, CAVLC and no 8x8 transform keep it inside constrained baseline; quality-level 7 is the
    // fastest (lowest-latency) preset; the CPB is as short as x264's VBV.
    fragment: (video, name) =>
      [
        TO_NV12,
        `vaapih264enc name=${name} rate-control=cbr bitrate=${video.bitrateKbps} cpb-length=${vbvMillis(video.fps)} keyframe-period=${gopFrames(video.fps)} max-bframes=0 cabac=false dct8x8=false quality-level=7`,
        'video/x-h264,profile=constrained-baseline,stream-format=byte-stream',
      ].join(' ! '),
    bitrate: KBPS_RUNTIME('vaapih264enc reconfigures the VA encoder when "bitrate" changes while it runs'),
  },

  nvh264: {
    kind: 'nvh264',
    element: 'nvh264enc',
    hardware: true,
    label: 'nvh264enc (hardware, NVIDIA NVENC)',
    package: 'gstreamer1.0-plugins-bad',
    installHint:
      'sudo apt-get install gstreamer1.0-plugins-bad plus the NVIDIA driver and its NVENC library (libnvidia-encode); the element only appears when a CUDA GPU is usable',
    platforms: ['linux', 'win32'],
    inputFormat: 'NV12',
    // The element's caps list "baseline", never "constrained-baseline" (NVENC's baseline has none of the
    // tools the constrained variant forbids). B-frames are off by default and only configurable on GPUs
    // that have them, so "bframes" is not set; zerolatency turns off reordering delay.
    fragment: (video, name) =>
      [
        TO_NV12,
        `nvh264enc name=${name} preset=low-latency-hq rc-mode=cbr zerolatency=true bitrate=${video.bitrateKbps} gop-size=${gopFrames(video.fps)}`,
        'video/x-h264,profile=baseline,stream-format=byte-stream',
      ].join(' ! '),
    bitrate: KBPS_RUNTIME('nvh264enc reconfigures NVENC when "bitrate" changes while it runs (changeable in PLAYING)'),
  },

  vtenc: {
    kind: 'vtenc',
    element: 'vtenc_h264',
    hardware: true,
    label: 'vtenc_h264 (hardware, Apple VideoToolbox)',
    package: 'gst-plugins-bad (macOS: brew install gstreamer)',
    installHint: 'brew install gstreamer (vtenc_h264 is in its applemedia plugin)',
    platforms: ['darwin'],
    inputFormat: 'NV12',
    // allow-frame-reordering=false is VideoToolbox's "no B-frames". vtenc only outputs avc (rtph264pay takes
    // it) and reports profile_idc 66 as "baseline", whichever baseline was asked for.
    fragment: (video, name) =>
      [
        TO_NV12,
        `vtenc_h264 name=${name} realtime=true allow-frame-reordering=false bitrate=${video.bitrateKbps} max-keyframe-interval=${gopFrames(video.fps)} max-keyframe-interval-duration=2000000000`,
        'video/x-h264,profile=baseline,stream-format=avc,alignment=au',
      ].join(' ! '),
    bitrate: KBPS_RUNTIME('vtenc_h264 passes a new "bitrate" to the running VideoToolbox session'),
  },
};

/** The default when no profile is given: what the sender always used. */
export const X264_PROFILE: EncoderProfile = ENCODER_PROFILES.x264;

/** What to write to the encoder's bitrate property for `kbps`, or null when it cannot change while running. */
export function runtimeBitrateValue(profile: EncoderProfile, kbps: number): number | null {
  if (!profile.bitrate.runtime) return null;
  const rounded = Math.max(1, Math.round(kbps));
  return profile.bitrate.unit === 'kbit/s' ? rounded : rounded * 1000;
}

/** Auto order: hardware first, x264 last; each only on the platforms where it can exist. */
export function autoOrder(platform: NodeJS.Platform): EncoderProfile[] {
  const order: EncoderKind[] = ['vtenc', 'v4l2', 'nvh264', 'vaapi', 'x264'];
  return order.map((kind) => ENCODER_PROFILES[kind]).filter((profile) => profile.platforms.includes(platform));
}

/** The elements worth asking gst-inspect about for this preference on this platform. */
export function candidateElements(preference: EncoderPreference, platform: NodeJS.Platform): string[] {
  return preference === 'auto' ? autoOrder(platform).map((profile) => profile.element) : [ENCODER_PROFILES[preference].element];
}

export class EncoderSelectionError extends Error {}

const PLATFORM_NAMES: Partial<Record<NodeJS.Platform, string>> = { linux: 'Linux', darwin: 'macOS', win32: 'Windows', freebsd: 'FreeBSD' };
const platformName = (platform: NodeJS.Platform): string => PLATFORM_NAMES[platform] ?? platform;

/**
 * Pick the encoder. `available` holds the element names that exist (detectEncoders()). An explicitly
 * requested encoder that is missing is an error naming what to install; auto takes the first available
 * hardware encoder, else x264enc.
 */
export function chooseEncoder(available: ReadonlySet<string>, preference: EncoderPreference, platform: NodeJS.Platform): EncoderProfile {
  if (preference !== 'auto') {
    const profile = ENCODER_PROFILES[preference];
    if (!profile.platforms.includes(platform)) {
      throw new EncoderSelectionError(
        `--encoder ${preference} (${profile.element}) is not available on ${platformName(platform)}: it exists only on ${profile.platforms.map(platformName).join(', ')}`,
      );
    }
    if (!available.has(profile.element)) {
      throw new EncoderSelectionError(
        `--encoder ${preference} needs the GStreamer element ${profile.element}, which is not installed or has no usable hardware. Install it with: ${profile.installHint}. Check with: gst-inspect-1.0 ${profile.element}`,
      );
    }
    return profile;
  }
  const order = autoOrder(platform);
  const found = order.find((profile) => available.has(profile.element));
  if (found) return found;
  throw new EncoderSelectionError(
    `no H.264 encoder found (looked for ${order.map((profile) => profile.element).join(', ')}). Install the software encoder with: ${X264_PROFILE.installHint}`,
  );
}

export interface DetectOptions {
  /** The inspector to run (tests point it elsewhere). */
  command?: string;
  timeoutMs?: number;
}

/**
 * Which of `elements` this machine's GStreamer has, via `gst-inspect-1.0 --exists` (one quick process per
 * element; hardware plugins only register their encoder when the device or driver is there). Returns null
 * when gst-inspect-1.0 itself cannot run (not installed: gstreamer1.0-tools). Call it once at start.
 */
export function detectEncoders(
  elements: readonly string[] = Object.values(ENCODER_PROFILES).map((profile) => profile.element),
  options: DetectOptions = {},
): Set<string> | null {
  const found = new Set<string>();
  for (const element of elements) {
    const result = spawnSync(options.command ?? 'gst-inspect-1.0', ['--exists', element], {
      stdio: 'ignore',
      // Generous: the first GStreamer run after a plugin change rebuilds the registry (seconds on a Pi).
      timeout: options.timeoutMs ?? 15_000,
    });
    if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return null;
    // A timeout (result.signal) or any other failure counts as "not there".
    if (result.status === 0) found.add(element);
  }
  return found;
}

/**
 * Resolve --encoder once at start: detect, choose, and explain. When gst-inspect-1.0 is missing nothing
 * can be checked: auto falls back to x264enc and an explicit choice is trusted (GStreamer names any
 * missing element when the pipeline is built).
 */
export function resolveEncoder(
  preference: EncoderPreference,
  platform: NodeJS.Platform,
  log: Logger,
  detect: (elements: readonly string[]) => ReadonlySet<string> | null = (elements) => detectEncoders(elements),
): EncoderProfile {
  const available = detect(candidateElements(preference, platform));
  if (available === null) {
    const profile = preference === 'auto' ? X264_PROFILE : chooseEncoder(new Set([ENCODER_PROFILES[preference].element]), preference, platform);
    log.warn('cannot check which H.264 encoders exist: gst-inspect-1.0 is missing (sudo apt-get install gstreamer1.0-tools)', {
      assuming: profile.element,
    });
    return profile;
  }
  return chooseEncoder(available, preference, platform);
}
