import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ServerClock } from '../../protocol/clock.js';
import {
  decodeTimecode,
  encodeTimecode,
  paintTimecodeI420,
  readTimecode,
  TIMECODE_BITS,
  timecodeStripHeight,
} from '../../protocol/timecode.js';
import { MeterSource } from '../../sender/src/meter.js';

/** I420 luma → RGBA (grey), as a browser canvas would hand back the top `rows` rows of a decoded frame. */
function lumaToRgba(frame: Uint8Array, width: number, rows: number, noise = 0, seed = 1): Uint8ClampedArray {
  const rgba = new Uint8ClampedArray(width * rows * 4);
  let state = seed;
  const random = (): number => ((state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff) * 2 - 1;
  for (let i = 0; i < width * rows; i++) {
    // Video range (16–235) → full range, as the browser's colour conversion does.
    const full = ((frame[i]! - 16) * 255) / 219 + random() * noise;
    rgba[i * 4] = rgba[i * 4 + 1] = rgba[i * 4 + 2] = full;
    rgba[i * 4 + 3] = 255;
  }
  return rgba;
}

/** Nearest-neighbour downscale of RGBA (what a lower-resolution encode does to the strip, roughly). */
function downscale(rgba: Uint8ClampedArray, width: number, rows: number, factor: number): { rgba: Uint8ClampedArray; width: number } {
  const w = Math.floor(width / factor);
  const h = Math.floor(rows / factor);
  const out = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const from = (Math.floor(y * factor) * width + Math.floor(x * factor)) * 4;
      out.set(rgba.subarray(from, from + 4), (y * w + x) * 4);
    }
  }
  return { rgba: out, width: w };
}

function paintedFrame(width: number, height: number, time: number): Uint8Array {
  const frame = new Uint8Array((width * height * 3) / 2).fill(128);
  paintTimecodeI420(frame, width, height, time);
  return frame;
}

describe('timecode', () => {
  it('round-trips any 48-bit millisecond time through its bits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), (time) => {
        const bits = encodeTimecode(time);
        expect(bits).toHaveLength(TIMECODE_BITS);
        expect(decodeTimecode(bits)).toBe(time);
      }),
    );
  });

  it('rejects any single flipped bit (CRC), instead of reading a wrong time', () => {
    const bits = encodeTimecode(1_795_000_000_123);
    for (let i = 0; i < bits.length; i++) {
      const damaged = [...bits];
      damaged[i] = !damaged[i];
      expect(decodeTimecode(damaged)).toBeNull();
    }
  });

  it('reads nothing from a frame without a code', () => {
    const grey = new Uint8ClampedArray(1280 * timecodeStripHeight(1280) * 4).fill(90);
    expect(readTimecode(grey, 1280)).toBeNull();
  });

  it.each([
    [1280, 720],
    [640, 360],
    [320, 240],
  ])('paints and reads back at %ix%i, with noise', (width, height) => {
    const time = 1_795_123_456_789;
    const frame = paintedFrame(width, height, time);
    const strip = timecodeStripHeight(width);
    expect(readTimecode(lumaToRgba(frame, width, strip), width)).toBe(time);
    // Codec noise of ±60 levels on every pixel still reads (cells are judged by their mean).
    expect(readTimecode(lumaToRgba(frame, width, strip, 60, 7), width)).toBe(time);
  });

  it('reads a code that was scaled down on the way (positions are fractions of the width)', () => {
    const time = 1_700_000_000_000;
    const frame = paintedFrame(1280, 720, time);
    const strip = timecodeStripHeight(1280);
    const small = downscale(lumaToRgba(frame, 1280, strip), 1280, strip, 2);
    expect(readTimecode(small.rgba, small.width)).toBe(time);
  });

  it('leaves the picture below the strip and refuses impossible times', () => {
    const frame = new Uint8Array((640 * 360 * 3) / 2).fill(77);
    paintTimecodeI420(frame, 640, 360, 5);
    expect(frame[timecodeStripHeight(640) * 640 + 5]).toBe(77);
    expect(() => encodeTimecode(-1)).toThrow(RangeError);
    expect(() => encodeTimecode(2 ** 48)).toThrow(RangeError);
    expect(() => encodeTimecode(Number.NaN)).toThrow(RangeError);
  });
});

describe('MeterSource', () => {
  it('pushes frames at the configured rate, each stamped with the clock at push time', async () => {
    const width = 320;
    const height = 240;
    let clock = 1_795_000_000_000;
    const stamps: { expected: number; read: number | null }[] = [];
    const meter = new MeterSource(
      {
        push: (frame) => {
          stamps.push({ expected: clock, read: readTimecode(lumaToRgba(frame, width, timecodeStripHeight(width)), width) });
        },
      },
      { width, height, fps: 50, now: () => (clock += 20) },
    );
    meter.start();
    await new Promise((resolve) => setTimeout(resolve, 500));
    meter.stop();
    const pushed = stamps.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(stamps.length).toBe(pushed); // stopped means stopped
    expect(pushed).toBeGreaterThanOrEqual(15); // ~25 expected in 0.5 s at 50 fps; timers on a busy box lag
    expect(pushed).toBeLessThanOrEqual(30);
    for (const { expected, read } of stamps) expect(read).toBe(expected);
  });

  it('refuses pictures that cannot hold the code', () => {
    expect(() => new MeterSource({ push: () => undefined }, { width: 64, height: 4, fps: 30, now: Date.now })).toThrow(RangeError);
    expect(() => new MeterSource({ push: () => undefined }, { width: 321, height: 240, fps: 30, now: Date.now })).toThrow(RangeError);
  });
});

describe('ServerClock', () => {
  it('estimates the offset from the reply with the shortest round trip', () => {
    let local = 1_000_000;
    const clock = new ServerClock(() => local);
    expect(clock.synced).toBe(false);
    expect(clock.now()).toBe(local); // own clock until the first reply
    // Server is 5000 ms ahead. A slow reply (queued 80 ms on the way back) and a quick one.
    clock.addReply(1_000_000, 1_005_010, 1_000_100);
    clock.addReply(1_000_200, 1_005_202, 1_000_204);
    expect(clock.synced).toBe(true);
    expect(clock.best()).toEqual({ offsetMs: 5000, roundTripMs: 4 });
    local = 2_000_000;
    expect(clock.now()).toBe(2_005_000);
    expect(clock.toServerTime(3_000)).toBe(8_000);
  });

  it('ignores impossible replies', () => {
    const clock = new ServerClock(() => 10);
    clock.addReply(20, 5, 10); // answered before it was asked
    clock.addReply(0, Number.NaN, 10);
    clock.addReply(0, 5, 60_000);
    expect(clock.synced).toBe(false);
  });
});
