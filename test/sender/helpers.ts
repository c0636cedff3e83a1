/** Small helpers shared by the sender unit tests. */

/** Deterministic PRNG (mulberry32): the same seed gives the same sequence on every run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Big-endian byte encoders for building packets by hand. */
export const u16 = (n: number): number[] => [(n >>> 8) & 0xff, n & 0xff];
export const u32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

/** Concatenate byte lists into one Uint8Array. */
export function bytes(...parts: (number | number[])[]): Uint8Array {
  return Uint8Array.from(parts.flat());
}

/** Copy `data` into the middle of a larger ArrayBuffer, so the view has byteOffset ≠ 0 and trailing bytes. */
export function embedded(data: Uint8Array, before = 7, after = 5): Buffer {
  const backing = Buffer.alloc(before + data.length + after, 0xee);
  backing.set(data, before);
  return backing.subarray(before, before + data.length);
}

/** H.264 NAL header bytes (forbidden=0, NRI=3): SPS, PPS, IDR slice, non-IDR slice, STAP-A, FU-A indicator. */
export const NAL = { SPS: 0x67, PPS: 0x68, IDR: 0x65, SLICE: 0x41, STAP_A: 0x78, FU_A: 0x7c } as const;
