/** TelemetryRelay: at most TELEMETRY_MAX_HZ per camera, newest wins, sequence numbers and server-clock times. */
import { describe, expect, it } from 'vitest';
import { MAX_TELEMETRY_BYTES, TelemetryMessage, TELEMETRY_MAX_HZ } from '../../protocol/index.js';
import { TelemetryRelay } from '../../sender/src/telemetry.js';

function harness(offsetMs = 0) {
  let now = 10_000;
  const timers: { at: number; callback: () => void }[] = [];
  const sent: TelemetryMessage[] = [];
  const relay = new TelemetryRelay({
    toServerTime: (local) => local + offsetMs,
    localNow: () => now,
    publish: (message, text) => {
      expect(TelemetryMessage.parse(JSON.parse(text))).toEqual(message);
      sent.push(message);
    },
    setTimer: (callback, ms) => timers.push({ at: now + ms, callback }),
  });
  const advance = (ms: number): void => {
    now += ms;
    for (const timer of timers.filter((t) => t.at <= now)) {
      timers.splice(timers.indexOf(timer), 1);
      timer.callback();
    }
  };
  return { relay, sent, advance };
}

describe('TelemetryRelay', () => {
  it('sends at most TELEMETRY_MAX_HZ per camera, coalescing to the newest sample', () => {
    const { relay, sent, advance } = harness();
    // A program publishing at 200 Hz for one second.
    for (let i = 0; i < 200; i++) {
      relay.submit({ type: 'telemetry', camera: 'front', status: { i } });
      advance(5);
    }
    advance(100);
    expect(sent.length).toBeGreaterThanOrEqual(TELEMETRY_MAX_HZ - 1);
    expect(sent.length).toBeLessThanOrEqual(TELEMETRY_MAX_HZ + 1);
    expect(sent.at(-1)?.status).toEqual({ i: 199 }); // the newest always goes out
    expect(sent.map((m) => m.seq)).toEqual(sent.map((_, i) => i));
    expect(relay.coalesced).toBeGreaterThan(100);
  });

  it('keeps cameras and rover-wide status apart: each gets its own rate', () => {
    const { relay, sent } = harness();
    relay.submit({ type: 'telemetry', camera: 'front', detections: [] });
    relay.submit({ type: 'telemetry', camera: 'rear', detections: [] });
    relay.submit({ type: 'telemetry', status: { battery: 0.8 } });
    expect(sent.map((m) => m.camera ?? 'rover')).toEqual(['front', 'rear', 'rover']);
  });

  it('stamps capture times on the server clock: the program\'s own time converted, or now', () => {
    const { relay, sent, advance } = harness(250);
    relay.submit({ type: 'telemetry', ts: 9_000, status: { a: 1 } });
    advance(100);
    relay.submit({ type: 'telemetry', status: { a: 2 } });
    expect(sent.map((m) => m.ts)).toEqual([9_250, 10_350]);
  });

  it('refuses a sample larger than MAX_TELEMETRY_BYTES', () => {
    const { relay, sent } = harness();
    const detections = Array.from({ length: 100 }, () => ({ label: 'x'.repeat(64), score: 0.5, box: [0.1, 0.1, 0.2, 0.2] as [number, number, number, number] }));
    const huge = { type: 'telemetry' as const, detections, status: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, 'v'.repeat(100)])) };
    expect(JSON.stringify(huge).length).toBeGreaterThan(MAX_TELEMETRY_BYTES);
    expect(relay.submit(huge)).toBe(false);
    expect(sent).toEqual([]);
  });
});
