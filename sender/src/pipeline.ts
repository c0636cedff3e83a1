/**
 * Builds GStreamer pipeline descriptions from camera source presets. Pure: no GStreamer calls here.
 *
 * Every pipeline ends in the same low-latency tail: scale/convert to the configured size and rate,
 * the chosen H.264 encoder (encoders.ts; x264 by default) with no B-frames and low-latency rate control,
 * baseline-profile H.264 (what browsers decode), RTP packetization, and a UDP sink to the sender's own
 * loopback socket. The loopback hop keeps media off libuv's thread pool (appsink pulls there stalled
 * intake during connection setup).
 */
import { X264_PROFILE, type EncoderProfile } from './encoders.js';

export interface VideoSettings {
  width: number;
  height: number;
  fps: number;
  bitrateKbps: number;
}

export type SourcePreset =
  | { kind: 'test'; pattern: string }
  | { kind: 'meter' }
  | { kind: 'v4l2'; device: string }
  | { kind: 'libcamera'; cameraName?: string }
  | { kind: 'rtsp'; url: string }
  | { kind: 'avf'; deviceIndex: number }
  | { kind: 'pipeline'; fragment: string };

export const SOURCE_HELP = `Camera source presets:
  test                 GStreamer test pattern (default)
  test:<pattern>       test pattern by name, e.g. test:ball, test:smpte
  meter                frames stamped with their capture time: the viewer shows
                       live glass-to-glass latency (benchmarks, link checks)
  v4l2:/dev/videoN     USB/UVC webcam or capture card on Linux
  libcamera[:<name>]   Raspberry Pi / libcamera CSI camera
  rtsp:<url>           IP camera, e.g. rtsp:rtsp://192.0.2.10:554/stream1
  avf[:<index>]        macOS camera (AVFoundation)
  pipeline:<fragment>  any GStreamer fragment that outputs raw video, e.g.
                       "pipeline:videotestsrc is-live=true pattern=snow"`;

export class SourceParseError extends Error {}

/** Parse `--source` into a preset. Throws SourceParseError with a usable message. */
export function parseSource(spec: string): SourcePreset {
  const trimmed = spec.trim();
  const colon = trimmed.indexOf(':');
  const kind = colon === -1 ? trimmed : trimmed.slice(0, colon);
  const arg = colon === -1 ? '' : trimmed.slice(colon + 1);
  switch (kind) {
    case 'test':
      if (arg && !/^[a-z0-9-]+$/.test(arg)) throw new SourceParseError(`invalid test pattern "${arg}"`);
      return { kind: 'test', pattern: arg || 'smpte' };
    case 'meter':
      if (arg) throw new SourceParseError('meter takes no argument (size and rate come from --width, --height, --fps)');
      return { kind: 'meter' };
    case 'v4l2':
      if (!/^\/dev\/[A-Za-z0-9._/-]+$/.test(arg)) {
        throw new SourceParseError(`v4l2 needs a device path, e.g. v4l2:/dev/video0 (got "${arg}")`);
      }
      return { kind: 'v4l2', device: arg };
    case 'libcamera':
      if (arg && /["\\!]/.test(arg)) throw new SourceParseError('libcamera camera name may not contain quotes, "\\" or "!"');
      return arg ? { kind: 'libcamera', cameraName: arg } : { kind: 'libcamera' };
    case 'rtsp': {
      let url: URL;
      try {
        url = new URL(arg);
      } catch {
        throw new SourceParseError(`rtsp needs a URL, e.g. rtsp:rtsp://192.0.2.10/stream (got "${arg}")`);
      }
      if (url.protocol !== 'rtsp:' && url.protocol !== 'rtsps:') {
        throw new SourceParseError(`rtsp URL must start with rtsp:// or rtsps:// (got "${url.protocol}")`);
      }
      if (/["\\!\s]/.test(arg)) throw new SourceParseError('rtsp URL may not contain quotes, spaces, "\\" or "!"');
      return { kind: 'rtsp', url: arg };
    }
    case 'avf': {
      const index = arg ? Number(arg) : 0;
      if (!Number.isInteger(index) || index < 0) throw new SourceParseError(`avf device index must be a number (got "${arg}")`);
      return { kind: 'avf', deviceIndex: index };
    }
    case 'pipeline':
      if (!arg.trim()) throw new SourceParseError('pipeline: needs a GStreamer fragment that outputs raw video');
      return { kind: 'pipeline', fragment: arg.trim() };
    default:
      throw new SourceParseError(`unknown camera source "${spec}".\n${SOURCE_HELP}`);
  }
}

/** The part of the pipeline that produces raw video for a preset. */
export function sourceFragment(source: SourcePreset, video: VideoSettings): string {
  switch (source.kind) {
    case 'test':
      // timeoverlay makes motion and freezes visible to a person looking at the test pattern.
      return `videotestsrc is-live=true pattern=${source.pattern} ! video/x-raw,width=${video.width},height=${video.height},framerate=${video.fps}/1 ! timeoverlay halignment=right valignment=bottom font-desc="Sans 18"`;
    case 'meter':
      // Frames come from this process (meter.ts); never queue them: a stale frame is a wrong reading.
      return `appsrc name=${METER_SOURCE_NAME} is-live=true format=time do-timestamp=true min-latency=0 max-buffers=2 leaky-type=downstream caps="video/x-raw,format=I420,width=${video.width},height=${video.height},framerate=${video.fps}/1"`;
    case 'v4l2':
      // decodebin handles both raw and MJPEG webcams (most UVC cameras only do high resolutions as MJPEG).
      return `v4l2src device=${source.device} do-timestamp=true ! decodebin`;
    case 'libcamera':
      return source.cameraName ? `libcamerasrc camera-name="${source.cameraName}"` : 'libcamerasrc';
    case 'rtsp':
      return `rtspsrc location="${source.url}" latency=0 drop-on-latency=true ! decodebin`;
    case 'avf':
      return `avfvideosrc device-index=${source.deviceIndex} do-timestamp=true`;
    case 'pipeline':
      return source.fragment;
  }
}

export interface PipelineOptions {
  source: SourcePreset;
  video: VideoSettings;
  payloadType: number;
  ssrc: number;
  udpPort: number;
  /** H.264 encoder profile (encoders.ts: chooseEncoder); default x264enc. */
  encoder?: EncoderProfile;
}

/** Element names the sender looks up at run time. */
export const ENCODER_NAME = 'enc';
export const PAYLOADER_NAME = 'pay';
export const METER_SOURCE_NAME = 'meter';
export const SHAPE_NAME = 'shape';

/** Raw video caps the encoder is fed: picture size and frame rate (changed at run time by congestion control). */
export function shapeCaps(shape: { width: number; height: number; fps: number }): string {
  return `video/x-raw,format=I420,width=${shape.width},height=${shape.height},framerate=${shape.fps}/1`;
}

export function buildPipeline(options: PipelineOptions): string {
  const { video } = options;
  return [
    sourceFragment(options.source, video),
    'videoconvert',
    'videoscale',
    'videorate drop-only=true',
    // Named, so congestion control can change the picture size and rate at run time (shapeCaps).
    `capsfilter name=${SHAPE_NAME} caps="${shapeCaps(video)}"`,
    // Never queue stale frames: drop the oldest rather than add latency.
    'queue max-size-buffers=2 max-size-bytes=0 max-size-time=0 leaky=downstream',
    // Any conversion the encoder needs, the encoder (named ENCODER_NAME for run-time changes), its H.264 caps.
    (options.encoder ?? X264_PROFILE).fragment(video, ENCODER_NAME),
    `rtph264pay name=${PAYLOADER_NAME} pt=${options.payloadType} ssrc=${options.ssrc >>> 0} config-interval=-1 aggregate-mode=zero-latency mtu=1200`,
    `udpsink host=127.0.0.1 port=${options.udpPort} sync=false async=false`,
  ].join(' ! ');
}

/** Which Debian/Ubuntu package provides each element we may use. */
export const ELEMENT_PACKAGES: Record<string, string> = {
  videotestsrc: 'gstreamer1.0-plugins-base',
  appsrc: 'gstreamer1.0-plugins-base',
  timeoverlay: 'gstreamer1.0-x',
  videoconvert: 'gstreamer1.0-plugins-base',
  videoscale: 'gstreamer1.0-plugins-base',
  videorate: 'gstreamer1.0-plugins-base',
  decodebin: 'gstreamer1.0-plugins-base',
  queue: 'gstreamer1.0-tools (GStreamer core)',
  x264enc: 'gstreamer1.0-plugins-ugly',
  v4l2h264enc: 'gstreamer1.0-plugins-good',
  vaapih264enc: 'gstreamer1.0-vaapi',
  nvh264enc: 'gstreamer1.0-plugins-bad',
  vtenc_h264: 'gst-plugins-bad (macOS: brew install gstreamer)',
  rtph264pay: 'gstreamer1.0-plugins-good',
  udpsink: 'gstreamer1.0-plugins-good',
  v4l2src: 'gstreamer1.0-plugins-good',
  rtspsrc: 'gstreamer1.0-plugins-good',
  jpegdec: 'gstreamer1.0-plugins-good',
  libcamerasrc: 'gstreamer1.0-libcamera',
  avdec_h264: 'gstreamer1.0-libav',
  avfvideosrc: 'gst-plugins-bad (macOS: brew install gstreamer)',
};

/** Turn GStreamer's parse error into an actionable message; null when it is not a missing element. */
export function explainMissingElement(gstError: string): string | null {
  const match = /no element "([^"]+)"/.exec(gstError);
  if (!match) return null;
  const element = match[1]!;
  const pkg = ELEMENT_PACKAGES[element];
  return pkg
    ? `GStreamer element "${element}" is not installed. Install it with: sudo apt-get install ${pkg}`
    : `GStreamer element "${element}" is not installed (check the plugin that provides it with gst-inspect-1.0 ${element}).`;
}

/** Map a runtime GStreamer error from the camera source to advice for a person. */
export function explainSourceError(source: SourcePreset, gstError: string): string {
  const text = gstError.toLowerCase();
  if (source.kind === 'v4l2') {
    if (text.includes('busy')) return `camera ${source.device} is busy: another program is using it (close it, or check with: fuser ${source.device}).`;
    if (text.includes('permission')) return `no permission to open ${source.device}: add this user to the "video" group (sudo usermod -aG video $USER) and log in again.`;
    if (text.includes('cannot identify') || text.includes('no such file')) return `camera ${source.device} does not exist (list cameras with: ls /dev/video*).`;
  }
  return `camera source failed: ${gstError}`;
}
