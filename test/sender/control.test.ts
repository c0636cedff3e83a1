/** ControlGate: only the lease holder's commands pass, within rate and size; a lease that ends stops the robot once. */
import { describe, expect, it } from 'vitest';
import { CONTROL_RATE_LIMIT, MAX_CONTROL_BYTES } from '../../protocol/index.js';
import { ControlGate, type StopReason } from '../../sender/src/control.js';

function harness(programListening = true) {
  let now = 1_000;
  const timers: { at: number; callback: () => void; handle: number }[] = [];
  let nextHandle = 1;
  const events: string[] = [];
  const commands: { viewerId: string; seq: number; command: Record<string, unknown> }[] = [];
  const stops: StopReason[] = [];
  const gate = new ControlGate({
    now: () => now,
    setTimer: (callback, ms) => {
      const handle = nextHandle++;
      timers.push({ at: now + ms, callback, handle });
      return handle;
    },
    clearTimer: (handle) => {
      const index = timers.findIndex((timer) => timer.handle === handle);
      if (index >= 0) timers.splice(index, 1);
    },
    command: (viewerId, seq, command) => {
      commands.push({ viewerId, seq, command });
      return programListening;
    },
    lease: (viewerId) => events.push(`lease ${viewerId}`),
    stop: (reason) => {
      stops.push(reason);
      events.push(`stop ${reason}`);
    },
  });
  const advance = (ms: number): void => {
    now += ms;
    for (const timer of timers.filter((t) => t.at <= now)) {
      timers.splice(timers.indexOf(timer), 1);
      timer.callback();
    }
  };
  const drive = (viewerId: string, seq: number, command: Record<string, unknown> = { drive: { linear: 0.5 } }) =>
    gate.receive(viewerId, JSON.stringify({ type: 'control', seq, command }));
  return { gate, advance, events, commands, stops, drive };
}

describe('ControlGate', () => {
  it('passes commands from the lease holder only', () => {
    const { gate, commands, drive, events } = harness();
    expect(drive('alice', 1)).toEqual({ accepted: false, reason: 'no-lease', seq: 1 });
    gate.setLease('alice', 3_000);
    expect(events).toEqual(['lease alice']);
    expect(drive('alice', 2)).toEqual({ accepted: true, seq: 2 });
    expect(drive('bob', 7)).toEqual({ accepted: false, reason: 'no-lease', seq: 7 });
    expect(commands).toEqual([{ viewerId: 'alice', seq: 2, command: { drive: { linear: 0.5 } } }]);
  });

  it('a lease without renewal lapses at its deadline: one stop, then commands are refused', () => {
    const { gate, advance, stops, drive, events } = harness();
    gate.setLease('alice', 3_000);
    advance(2_000);
    gate.setLease('alice', 3_000); // renewal: the deadline moves
    advance(2_500);
    expect(stops).toEqual([]);
    expect(drive('alice', 1).accepted).toBe(true);
    advance(600);
    expect(stops).toEqual(['lease-lapsed']);
    expect(events.at(-1)).toBe('lease null');
    expect(drive('alice', 2)).toMatchObject({ accepted: false, reason: 'no-lease' });
    advance(10_000);
    expect(stops).toEqual(['lease-lapsed']);
  });

  it('release, the holder leaving, a new holder and shutdown each stop the robot; nothing to stop without a holder', () => {
    const { gate, stops } = harness();
    gate.setLease(null, 0);
    gate.shutdown();
    expect(stops).toEqual([]);
    gate.setLease('alice', 3_000);
    gate.setLease(null, 0);
    gate.setLease('alice', 3_000);
    gate.viewerGone('alice');
    gate.setLease('alice', 3_000);
    gate.setLease('bob', 3_000);
    gate.shutdown();
    expect(stops).toEqual(['released', 'controller-left', 'controller-left', 'shutdown']);
  });

  it('refuses malformed and oversized commands without passing them on', () => {
    const { gate, commands } = harness();
    gate.setLease('alice', 3_000);
    for (const raw of ['not json', '{"type":"control"}', '{"type":"control","seq":-1,"command":{}}', '[]',
      JSON.stringify({ type: 'control', seq: 1, command: { pad: 'x'.repeat(MAX_CONTROL_BYTES) } })]) {
      expect(gate.receive('alice', raw)).toMatchObject({ accepted: false, reason: 'invalid' });
    }
    expect(commands).toEqual([]);
  });

  it('rate-limits each viewer: a burst passes, the excess is refused, the budget refills', () => {
    const { gate, advance, drive } = harness();
    gate.setLease('alice', 60_000);
    const verdicts = Array.from({ length: CONTROL_RATE_LIMIT.burst + 10 }, (_, i) => drive('alice', i).accepted);
    expect(verdicts.filter(Boolean)).toHaveLength(CONTROL_RATE_LIMIT.burst);
    expect(drive('alice', 999)).toMatchObject({ accepted: false, reason: 'rate-limited' });
    advance(1_000);
    expect(drive('alice', 1000).accepted).toBe(true);
  });

  it('says "no-program" when no rover program listens', () => {
    const { gate, drive } = harness(false);
    gate.setLease('alice', 3_000);
    expect(drive('alice', 1)).toEqual({ accepted: false, reason: 'no-program', seq: 1 });
  });
});
