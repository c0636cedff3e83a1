import { describe, expect, it } from 'vitest';
import {
  buildPipeline,
  explainMissingElement,
  explainSourceError,
  parseSource,
  SourceParseError,
  type SourcePreset,
  type VideoSettings,
} from '../../sender/src/pipeline.js';

function parseError(spec: string): SourceParseError {
  try {
    parseSource(spec);
  } catch (error) {
    expect(error).toBeInstanceOf(SourceParseError);
    return error as SourceParseError;
  }
  throw new Error(`parseSource(${JSON.stringify(spec)}) did not throw`);
}

describe('parseSource', () => {
  it.each<[string, SourcePreset]>([
    ['test', { kind: 'test', pattern: 'smpte' }],
    ['test:ball', { kind: 'test', pattern: 'ball' }],
    ['  test:snow  ', { kind: 'test', pattern: 'snow' }],
    ['v4l2:/dev/video0', { kind: 'v4l2', device: '/dev/video0' }],
    ['v4l2:/dev/v4l/by-id/usb-Logitech_C920-video-index0', { kind: 'v4l2', device: '/dev/v4l/by-id/usb-Logitech_C920-video-index0' }],
    ['libcamera', { kind: 'libcamera' }],
    ['libcamera:/base/soc/i2c0mux/i2c@1/imx708@1a', { kind: 'libcamera', cameraName: '/base/soc/i2c0mux/i2c@1/imx708@1a' }],
    ['rtsp:rtsp://192.0.2.10:554/stream1', { kind: 'rtsp', url: 'rtsp://192.0.2.10:554/stream1' }],
    ['rtsp:rtsps://user:pw@cam.example/live?ch=1', { kind: 'rtsp', url: 'rtsps://user:pw@cam.example/live?ch=1' }],
    ['avf', { kind: 'avf', deviceIndex: 0 }],
    ['avf:1', { kind: 'avf', deviceIndex: 1 }],
    ['pipeline:videotestsrc is-live=true pattern=snow', { kind: 'pipeline', fragment: 'videotestsrc is-live=true pattern=snow' }],
    ['pipeline:  v4l2src ! jpegdec  ', { kind: 'pipeline', fragment: 'v4l2src ! jpegdec' }],
  ])('%s', (spec, expected) => {
    expect(parseSource(spec)).toEqual(expected);
  });

  it('rejects an unknown kind and lists the presets', () => {
    const error = parseError('webcam');
    expect(error.message).toContain('unknown camera source "webcam"');
    expect(error.message).toContain('v4l2:/dev/videoN');
    expect(error.message).toContain('libcamera');
    expect(parseError('').message).toContain('unknown camera source');
  });

  it('rejects v4l2 without a device path', () => {
    expect(parseError('v4l2').message).toMatch(/^v4l2 needs a device path, e\.g\. v4l2:\/dev\/video0 \(got ""\)$/);
    expect(parseError('v4l2:video0').message).toContain('v4l2 needs a device path');
  });

  it('rejects v4l2 paths that could inject pipeline syntax', () => {
    for (const spec of ['v4l2:/dev/x;rm', 'v4l2:/dev/video0 ! fakesink', 'v4l2:/dev/video0"', 'v4l2:/etc/passwd']) {
      expect(parseError(spec).message, spec).toContain('v4l2 needs a device path');
    }
  });

  it('rejects rtsp without a URL, with another scheme, or with pipeline metacharacters', () => {
    expect(parseError('rtsp').message).toContain('rtsp needs a URL');
    expect(parseError('rtsp:not a url').message).toContain('rtsp needs a URL');
    expect(parseError('rtsp:http://192.0.2.10/stream').message).toBe('rtsp URL must start with rtsp:// or rtsps:// (got "http:")');
    for (const spec of ['rtsp:rtsp://cam/a!b', 'rtsp:rtsp://cam/"x"', 'rtsp:rtsp://cam/a\\b']) {
      expect(parseError(spec).message, spec).toContain('may not contain quotes');
    }
  });

  it('rejects bad test patterns, libcamera names and avf indexes', () => {
    expect(parseError('test:Ball ! x').message).toContain('invalid test pattern');
    expect(parseError('libcamera:cam"era').message).toContain('may not contain quotes');
    expect(parseError('libcamera:a!b').message).toContain('may not contain quotes');
    expect(parseError('avf:-1').message).toContain('avf device index must be a number');
    expect(parseError('avf:one').message).toContain('avf device index must be a number');
    expect(parseError('avf:1.5').message).toContain('avf device index must be a number');
  });

  it('rejects an empty pipeline fragment', () => {
    expect(parseError('pipeline:').message).toBe('pipeline: needs a GStreamer fragment that outputs raw video');
    expect(parseError('pipeline:   ').message).toContain('needs a GStreamer fragment');
  });
});

describe('buildPipeline', () => {
  const video: VideoSettings = { width: 1280, height: 720, fps: 30, bitrateKbps: 2000 };
  const build = (source: SourcePreset, overrides: Partial<VideoSettings> = {}, ssrc = 0x12345678): string =>
    buildPipeline({ source, video: { ...video, ...overrides }, payloadType: 96, ssrc, udpPort: 50_123 });

  it('test preset: low-latency encoder, packetizer and sink settings', () => {
    const pipeline = build(parseSource('test:ball'));
    const elements = pipeline.split(' ! ');
    expect(elements[0]).toMatch(/^videotestsrc is-live=true pattern=ball$/);
    expect(elements).toContain('video/x-raw,width=1280,height=720,framerate=30/1');
    // The named caps filter congestion control reshapes at run time.
    expect(elements).toContain('capsfilter name=shape caps="video/x-raw,format=I420,width=1280,height=720,framerate=30/1"');

    const x264 = elements.find((e) => e.startsWith('x264enc '));
    expect(x264).toBeDefined();
    for (const setting of ['name=enc', 'tune=zerolatency', 'bframes=0', 'bitrate=2000', 'key-int-max=60', 'speed-preset=ultrafast', 'rc-lookahead=0']) {
      expect(x264!.split(' '), setting).toContain(setting);
    }
    expect(elements).toContain('video/x-h264,profile=constrained-baseline,stream-format=byte-stream');

    const pay = elements.find((e) => e.startsWith('rtph264pay '));
    for (const setting of ['name=pay', 'pt=96', `ssrc=${0x12345678}`, 'config-interval=-1', 'aggregate-mode=zero-latency']) {
      expect(pay!.split(' '), setting).toContain(setting);
    }
    expect(elements.at(-1)).toBe('udpsink host=127.0.0.1 port=50123 sync=false async=false');
    expect(pipeline).toContain('leaky=downstream');

    // Order of the tail: caps → queue → encoder → H.264 caps → payloader → sink.
    const index = (prefix: string): number => elements.findIndex((e) => e.startsWith(prefix));
    expect(index('video/x-raw,format=I420')).toBeLessThan(index('queue'));
    expect(index('queue')).toBeLessThan(index('x264enc'));
    expect(index('x264enc')).toBeLessThan(index('video/x-h264'));
    expect(index('video/x-h264')).toBeLessThan(index('rtph264pay'));
    expect(index('rtph264pay')).toBeLessThan(index('udpsink'));
  });

  it('key-int-max is two seconds of frames and sizes come from the settings', () => {
    const pipeline = build(parseSource('v4l2:/dev/video0'), { width: 640, height: 480, fps: 15, bitrateKbps: 800 });
    expect(pipeline.startsWith('v4l2src device=/dev/video0 do-timestamp=true ! decodebin ! ')).toBe(true);
    expect(pipeline).toContain(' key-int-max=30 ');
    expect(pipeline).toContain(' bitrate=800 ');
    expect(pipeline).toContain('video/x-raw,format=I420,width=640,height=480,framerate=15/1');
    expect(pipeline).not.toContain('1280');
  });

  it('writes the SSRC unsigned, even when given as a signed 32-bit number', () => {
    expect(build(parseSource('libcamera'), {}, 0xdeadbeef)).toContain(' ssrc=3735928559 ');
    expect(build(parseSource('libcamera'), {}, 0xdeadbeef | 0)).toContain(' ssrc=3735928559 ');
  });

  it('rtsp, libcamera, avf and pipeline presets', () => {
    expect(build(parseSource('rtsp:rtsp://192.0.2.10:554/stream1'))).toMatch(
      /^rtspsrc location="rtsp:\/\/192\.0\.2\.10:554\/stream1" latency=0 drop-on-latency=true ! decodebin ! videoconvert ! /,
    );
    expect(build(parseSource('libcamera:imx708'))).toMatch(/^libcamerasrc camera-name="imx708" ! videoconvert ! /);
    expect(build(parseSource('libcamera'))).toMatch(/^libcamerasrc ! videoconvert ! /);
    expect(build(parseSource('avf:1'), { fps: 60 })).toMatch(/^avfvideosrc device-index=1 do-timestamp=true ! /);
    expect(build(parseSource('avf:1'), { fps: 60 })).toContain(' key-int-max=120 ');
    expect(build(parseSource('pipeline:videotestsrc pattern=snow'))).toMatch(/^videotestsrc pattern=snow ! videoconvert ! videoscale ! /);
  });
});

describe('explainMissingElement', () => {
  it('names the package that provides a known element', () => {
    expect(explainMissingElement('no element "x264enc"')).toBe(
      'GStreamer element "x264enc" is not installed. Install it with: sudo apt-get install gstreamer1.0-plugins-ugly',
    );
    expect(explainMissingElement('erroneous pipeline: no element "rtph264pay"')).toContain('gstreamer1.0-plugins-good');
  });

  it('gives a generic message for an unknown element', () => {
    const message = explainMissingElement('no element "fancysrc"');
    expect(message).toContain('"fancysrc" is not installed');
    expect(message).toContain('gst-inspect-1.0 fancysrc');
    expect(message).not.toContain('apt-get');
  });

  it('returns null for other errors', () => {
    expect(explainMissingElement('could not link videoconvert0 to x264enc0')).toBeNull();
    expect(explainMissingElement('')).toBeNull();
  });
});

describe('explainSourceError', () => {
  const v4l2: SourcePreset = { kind: 'v4l2', device: '/dev/video2' };

  it('busy device', () => {
    const message = explainSourceError(v4l2, "Device '/dev/video2' is busy");
    expect(message).toContain('camera /dev/video2 is busy');
    expect(message).toContain('fuser /dev/video2');
  });

  it('permission denied', () => {
    const message = explainSourceError(v4l2, 'Permission denied');
    expect(message).toContain('no permission to open /dev/video2');
    expect(message).toContain('"video" group');
  });

  it('missing device', () => {
    expect(explainSourceError(v4l2, "Cannot identify device '/dev/video2'.")).toContain('camera /dev/video2 does not exist');
    expect(explainSourceError(v4l2, 'no such file')).toContain('ls /dev/video*');
  });

  it('anything else, or another source kind, is reported as is', () => {
    expect(explainSourceError(v4l2, 'Internal data stream error')).toBe('camera source failed: Internal data stream error');
    expect(explainSourceError({ kind: 'test', pattern: 'smpte' }, 'device busy')).toBe('camera source failed: device busy');
  });
});

describe('meter source', () => {
  it('parses, and feeds the pipeline from an appsrc of the configured size that never queues stale frames', () => {
    expect(parseSource('meter')).toEqual({ kind: 'meter' });
    expect(() => parseSource('meter:fast')).toThrow(/meter takes no argument/);
    const description = buildPipeline({
      source: { kind: 'meter' },
      video: { width: 640, height: 360, fps: 25, bitrateKbps: 800 },
      payloadType: 96,
      ssrc: 7,
      udpPort: 5000,
    });
    const first = description.split(' ! ')[0]!;
    expect(first).toMatch(/^appsrc name=meter is-live=true format=time do-timestamp=true /);
    expect(first).toContain('max-buffers=2 leaky-type=downstream');
    expect(first).toContain('caps="video/x-raw,format=I420,width=640,height=360,framerate=25/1"');
  });
});
