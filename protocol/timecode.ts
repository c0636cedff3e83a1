/**
 * The glass-to-glass timecode: the rover's `meter` source paints each frame's capture time into the top
 * of the picture as a block code, and the viewer reads it back from the decoded frame. Shared by the
 * sender (painter) and the viewer (reader), so both sides agree on the layout by construction.
 *
 * Layout, chosen to survive H.264 at low bitrates and any scaling on the way:
 *  - a full-width strip of TIMECODE_ROWS rows × TIMECODE_COLUMNS cells; a cell is W/COLUMNS wide and as
 *    tall as it is wide, so positions are fractions of the width and scale with the picture;
 *  - each cell is one bit: black (0) or white (1), with neutral chroma — large flat blocks that even a
 *    starved encoder keeps (the reader samples only the middle of each cell);
 *  - 64 bits: 48-bit capture time in ms (server clock, see clock.ts) then a CRC-16 of those 6 bytes,
 *    so a misread frame is rejected rather than turned into a wrong latency.
 */

export const TIMECODE_COLUMNS = 32;
export const TIMECODE_ROWS = 2;
export const TIMECODE_BITS = TIMECODE_COLUMNS * TIMECODE_ROWS;
const TIME_BITS = 48;

/** Height in pixels of the code strip for a picture of this width. */
export function timecodeStripHeight(width: number): number {
  return Math.round((width / TIMECODE_COLUMNS) * TIMECODE_ROWS);
}

/** CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF). */
export function crc16(bytes: ArrayLike<number>): number {
  let crc = 0xffff;
  for (let i = 0; i < bytes.length; i++) {
    crc ^= (bytes[i]! & 0xff) << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

function timeBytes(timeMs: number): number[] {
  const bytes: number[] = [];
  let rest = Math.floor(timeMs);
  for (let i = 0; i < TIME_BITS / 8; i++) {
    bytes.unshift(rest % 256);
    rest = Math.floor(rest / 256);
  }
  return bytes;
}

/** The 64 bits (most significant first) that encode a capture time. */
export function encodeTimecode(timeMs: number): boolean[] {
  if (!Number.isFinite(timeMs) || timeMs < 0 || timeMs >= 2 ** TIME_BITS) throw new RangeError('timecode time out of range');
  const bytes = timeBytes(timeMs);
  const crc = crc16(bytes);
  const all = [...bytes, crc >> 8, crc & 0xff];
  const bits: boolean[] = [];
  for (const byte of all) for (let bit = 7; bit >= 0; bit--) bits.push(((byte >> bit) & 1) === 1);
  return bits;
}

/** The capture time in 64 read bits, or null when the checksum does not match (misread, or no code). */
export function decodeTimecode(bits: readonly boolean[]): number | null {
  if (bits.length !== TIMECODE_BITS) return null;
  const bytes: number[] = [];
  for (let i = 0; i < TIMECODE_BITS; i += 8) {
    let byte = 0;
    for (let bit = 0; bit < 8; bit++) byte = (byte << 1) | (bits[i + bit] ? 1 : 0);
    bytes.push(byte);
  }
  const time = bytes.slice(0, TIME_BITS / 8);
  const crc = (bytes[6]! << 8) | bytes[7]!;
  if (crc16(time) !== crc) return null;
  return time.reduce((value, byte) => value * 256 + byte, 0);
}

/** Pixel rectangle [x0, x1) × [y0, y1) of bit `index` in a picture `width` wide. */
export function cellRect(index: number, width: number): { x0: number; x1: number; y0: number; y1: number } {
  const column = index % TIMECODE_COLUMNS;
  const row = Math.floor(index / TIMECODE_COLUMNS);
  const cell = width / TIMECODE_COLUMNS;
  return {
    x0: Math.round(column * cell),
    x1: Math.round((column + 1) * cell),
    y0: Math.round(row * cell),
    y1: Math.round((row + 1) * cell),
  };
}

/**
 * Read the bits from RGBA pixels of the strip (as canvas getImageData returns them, `width` wide), by the
 * mean luma of the middle half of each cell against mid-grey.
 */
export function readTimecodeBits(rgba: ArrayLike<number>, width: number): boolean[] {
  const bits: boolean[] = [];
  for (let index = 0; index < TIMECODE_BITS; index++) {
    const { x0, x1, y0, y1 } = cellRect(index, width);
    const insetX = Math.max(1, Math.floor((x1 - x0) / 4));
    const insetY = Math.max(1, Math.floor((y1 - y0) / 4));
    let sum = 0;
    let count = 0;
    for (let y = y0 + insetY; y < y1 - insetY; y++) {
      for (let x = x0 + insetX; x < x1 - insetX; x++) {
        const p = (y * width + x) * 4;
        sum += 0.299 * rgba[p]! + 0.587 * rgba[p + 1]! + 0.114 * rgba[p + 2]!;
        count++;
      }
    }
    bits.push(count > 0 && sum / count >= 128);
  }
  return bits;
}

/** Read a capture time from RGBA strip pixels; null when unreadable. */
export function readTimecode(rgba: ArrayLike<number>, width: number): number | null {
  return decodeTimecode(readTimecodeBits(rgba, width));
}

/** Video-range luma for the painter. */
export const LUMA_BLACK = 16;
export const LUMA_WHITE = 235;

/**
 * Paint a capture time into an I420 frame in place (luma cells; chroma under the strip neutral).
 * `frame` is width×height luma followed by the two quarter-size chroma planes.
 */
export function paintTimecodeI420(frame: Uint8Array, width: number, height: number, timeMs: number): void {
  const bits = encodeTimecode(timeMs);
  const strip = Math.min(height, timecodeStripHeight(width));
  for (let index = 0; index < TIMECODE_BITS; index++) {
    const { x0, x1, y0, y1 } = cellRect(index, width);
    const value = bits[index] ? LUMA_WHITE : LUMA_BLACK;
    for (let y = y0; y < Math.min(y1, strip); y++) frame.fill(value, y * width + x0, y * width + x1);
  }
  const chromaWidth = width / 2;
  const chromaRows = Math.ceil(strip / 2);
  const uOffset = width * height;
  const vOffset = uOffset + (width * height) / 4;
  frame.fill(128, uOffset, uOffset + chromaRows * chromaWidth);
  frame.fill(128, vOffset, vOffset + chromaRows * chromaWidth);
}
