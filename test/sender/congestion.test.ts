import { describe, expect, it } from 'vitest';
import { CongestionController } from '../../sender/src/congestion.js';
import type { RtcpEvent } from '../../sender/src/rtcp.js';

/** A receiver's running totals, as RTCP receiver reports carry them. */
class Receiver {
  highest = 1000;
  lost = 0;
  /** `sentKbps` for one second at 1200-byte packets, `loss` of them never arriving. */
  second(sentKbps: number, loss: number): RtcpEvent {
    const packets = Math.max(1, Math.round((sentKbps * 1000) / 8 / 1200));
    this.highest += packets;
    this.lost += Math.round(packets * loss);
    return this.report();
  }
  report(): RtcpEvent {
    return {
      type: 'receiver-report',
      ssrc: 1,
      reports: [{ ssrc: 2, fractionLost: 0, cumulativeLost: this.lost, highestSequence: this.highest, jitter: 0, lastSenderReport: 0, delaySinceLastSenderReport: 0 }],
    };
  }
}
const remb = (kbps: number): RtcpEvent => ({ type: 'remb', senderSsrc: 1, bitrateBps: kbps * 1000, ssrcs: [2] });

function controller(maxKbps = 2500) {
  return new CongestionController({ maxKbps, minKbps: 150, width: 1280, height: 720, fps: 30 });
}

/** A link of `capKbps`: what is sent beyond it is lost. One decision per second, as in the sender. */
function simulate(cc: CongestionController, viewerId: string, receiver: Receiver, capKbps: number, seconds: number, randomLoss = 0, startAt = 0): number[] {
  const trace: number[] = [];
  for (let t = 0; t < seconds; t++) {
    const now = startAt + t * 1000;
    const sent = cc.current.kbps;
    const loss = Math.min(1, Math.max(0, (sent - capKbps) / sent) + randomLoss);
    cc.onRtcp(viewerId, receiver.second(sent, loss), now);
    cc.decide(now, sent);
    trace.push(cc.current.kbps);
  }
  return trace;
}

function connected(cc: CongestionController, viewerId: string): Receiver {
  cc.addViewer(viewerId);
  const receiver = new Receiver();
  cc.onRtcp(viewerId, receiver.report(), 0);
  cc.decide(0, cc.current.kbps); // first report: a baseline, nothing to compare yet
  return receiver;
}

describe('CongestionController', () => {
  it('holds the configured bitrate on a clean link and makes no change', () => {
    const cc = controller();
    const receiver = connected(cc, 'a');
    expect(simulate(cc, 'a', receiver, 10_000, 10)).toEqual(Array(10).fill(2500));
  });

  it('settles under a 1 Mbit/s cap with 1 % random loss in one decision, then recovers when the cap lifts', () => {
    const cc = controller();
    const receiver = connected(cc, 'a');
    const capped = simulate(cc, 'a', receiver, 1000, 20, 0.01, 1000);
    // Under the cap after the first decision, and it stays near it (a sawtooth around the cap, never far below).
    expect(capped[0]).toBeLessThanOrEqual(1000);
    for (const kbps of capped) {
      expect(kbps).toBeLessThanOrEqual(1250);
      expect(kbps).toBeGreaterThanOrEqual(650);
    }
    expect(cc.current).toMatchObject({ width: 1280, height: 720, fps: 30 }); // 1 Mbit/s still feeds 720p30
    const lifted = simulate(cc, 'a', receiver, 10_000, 20, 0, 30_000);
    const recoveredAt = lifted.findIndex((kbps) => kbps >= 2400);
    expect(recoveredAt).toBeGreaterThan(0);
    expect(recoveredAt).toBeLessThanOrEqual(15);
  });

  it('takes loss over the whole interval, however many reports arrived in it', () => {
    const cc = controller();
    const receiver = connected(cc, 'a');
    // Ten reports in one second (browsers add one to every NACK): 5 % loss overall, not ten decisions.
    for (let i = 0; i < 10; i++) cc.onRtcp('a', receiver.second(250, 0.05), 100 * i);
    expect(cc.decide(1000, 2500)).toBeNull(); // between 2 % and 10 %: hold
    expect(cc.current.kbps).toBe(2500);
  });

  it('grows no faster than the browser\'s own estimate (REMB) allows, but is not pulled down by it', () => {
    const cc = controller();
    const receiver = connected(cc, 'a');
    // Chrome's first REMBs are its cautious start value: following them down would spiral.
    cc.onRtcp('a', remb(300), 500);
    cc.onRtcp('a', receiver.second(2500, 0), 1000);
    expect(cc.decide(1000, 2500)).toBeNull();
    // After a loss cut, growth stops at the REMB...
    cc.onRtcp('a', receiver.second(2500, 0.5), 2000);
    expect(cc.decide(2000, 2500)?.kbps).toBeLessThanOrEqual(1125);
    const afterCut = cc.current.kbps;
    cc.onRtcp('a', remb(afterCut), 2500);
    cc.onRtcp('a', receiver.second(afterCut, 0), 3000);
    expect(cc.decide(3000, afterCut)).toBeNull();
    // ...and resumes when the browser's estimate rises, or once it is stale.
    cc.onRtcp('a', remb(5000), 3500);
    cc.onRtcp('a', receiver.second(afterCut, 0), 4000);
    expect(cc.decide(4000, afterCut)?.kbps).toBeGreaterThan(afterCut);
    const later = cc.current.kbps;
    cc.onRtcp('a', receiver.second(later, 0), 10_000);
    expect(cc.decide(10_000, later)?.kbps).toBeGreaterThan(later);
  });

  it('counts what the link dropped (NACKs) even when retransmission repaired it, and cuts once per episode', () => {
    const cc = controller();
    const receiver = connected(cc, 'a');
    // 260 packets in the second, 52 of them NACKed (20 %), all repaired: the receiver report shows no loss.
    const nack: RtcpEvent = { type: 'nack', senderSsrc: 1, mediaSsrc: 2, lostSequenceNumbers: Array.from({ length: 52 }, (_, i) => 100 + i) };
    cc.onRtcp('a', nack, 500);
    cc.onRtcp('a', { ...nack }, 600); // the same packets asked for again count once
    cc.onRtcp('a', receiver.second(2500, 0), 1000);
    const cut = cc.decide(1000, 2500, 260);
    expect(cut?.kbps).toBe(2250); // × (1 − 0.5 × 0.2)
    // The next interval still shows the pre-cut loss: no second cut on the same episode.
    cc.onRtcp('a', nack, 1500);
    cc.onRtcp('a', receiver.second(2250, 0), 2000);
    expect(cc.decide(2000, 2250, 234)).toBeNull();
  });

  it('follows a REMB down once it has caught up with the sending rate (then it is the path, not a start value)', () => {
    const cc = controller();
    const receiver = connected(cc, 'a');
    cc.onRtcp('a', remb(2300), 500); // caught up: ≥ 90 % of the 2500 being sent
    cc.onRtcp('a', receiver.second(2500, 0), 1000);
    expect(cc.decide(1000, 2500)?.kbps).toBe(2300);
    cc.onRtcp('a', remb(800), 1500); // a queue builds on the path: the browser's delay estimate drops
    cc.onRtcp('a', receiver.second(2400, 0), 2000);
    expect(cc.decide(2000, 2400)?.kbps).toBe(800);
  });

  it('lets the weakest viewer set the shared encoder, and forgets it when it leaves', () => {
    const cc = controller();
    const good = connected(cc, 'good');
    const weak = connected(cc, 'weak');
    cc.onRtcp('good', good.second(2500, 0), 1000);
    cc.onRtcp('weak', weak.second(2500, 0.6), 1000);
    expect(cc.decide(1000, 2500)?.kbps).toBe(900); // what got through to the weak one (2500 × 0.4), less 10 %
    cc.removeViewer('weak');
    cc.onRtcp('good', good.second(900, 0), 2000);
    expect(cc.decide(2000, 900)?.kbps).toBeGreaterThan(900);
  });

  it('never goes below the floor, however bad the link', () => {
    const cc = controller();
    const receiver = connected(cc, 'a');
    const trace = simulate(cc, 'a', receiver, 20, 10, 0, 1000);
    expect(Math.min(...trace)).toBe(150);
  });

  it('steps the picture down when the bitrate starves it, frame rate last, and back up with hysteresis', () => {
    const cc = controller(2500);
    const receiver = connected(cc, 'a');
    cc.onRtcp('a', receiver.second(2500, 0.78), 1000); // ~550 kbit/s got through
    expect(cc.decide(1000, 2500)).toMatchObject({ width: 960, height: 540, fps: 30 });
    const mid = cc.current.kbps;
    expect(mid).toBeGreaterThan(450);
    expect(mid).toBeLessThan(550);
    // The interval right after a cut still carries loss from before it: wait one decision.
    cc.onRtcp('a', receiver.second(mid, 0.7), 2000);
    expect(cc.decide(2000, mid)).toBeNull();
    cc.onRtcp('a', receiver.second(mid, 0.7), 3000); // still that bad: below the floor, so the floor
    expect(cc.decide(3000, mid)).toMatchObject({ kbps: 150, width: 640, height: 360, fps: 15 });
    cc.onRtcp('a', receiver.second(150, 0), 4000);
    cc.decide(4000, 150);
    // A little more room is not enough to step back up (no flapping)...
    cc.onRtcp('a', receiver.second(150, 0), 5500);
    expect(cc.decide(5500, 150)).toMatchObject({ width: 640, height: 360, fps: 15 });
    // ...a clean link for long enough is, step by step, back to the full picture.
    const shapes = new Set<string>();
    for (let t = 7; t < 50; t++) {
      const sent = cc.current.kbps;
      cc.onRtcp('a', receiver.second(sent, 0), t * 1000);
      cc.decide(t * 1000, sent);
      shapes.add(`${cc.current.width}x${cc.current.height}@${cc.current.fps}`);
    }
    expect([...shapes]).toEqual(['640x360@15', '640x360@30', '960x540@30', '1280x720@30']);
    expect(cc.current.kbps).toBe(2500);
  });

  it('judges loss over enough packets: a fast answer at high rates, no panic over two losses in a short window', () => {
    const cc = controller();
    const receiver = connected(cc, 'a');
    const nacks = (count: number, from: number): RtcpEvent => ({
      type: 'nack',
      senderSsrc: 1,
      mediaSsrc: 2,
      lostSequenceNumbers: Array.from({ length: count }, (_, i) => from + i),
    });
    // 250 ms at 2.5 Mbit/s is ~65 packets: enough to judge; 30 % of them dropped → cut at once.
    cc.onRtcp('a', nacks(20, 5000), 100);
    expect(cc.decide(250, 2500, 65)?.kbps).toBeLessThan(2500);
    // At a low rate, 2 losses in 10 packets are not judged alone: the interval waits for more packets.
    const slow = controller(300);
    connected(slow, 'b');
    slow.onRtcp('b', nacks(2, 100), 100);
    expect(slow.decide(250, 300, 10)).toBeNull();
    expect(slow.current.kbps).toBe(300);
  });

  it('ignores reports from unknown viewers and decides nothing without viewers or news', () => {
    const cc = controller();
    cc.onRtcp('ghost', remb(100), 0);
    expect(cc.decide(0, 2500)).toBeNull();
    const receiver = connected(cc, 'a');
    cc.onRtcp('a', { type: 'receiver-report', ssrc: 1, reports: [] }, 500);
    cc.onRtcp('a', { type: 'malformed', reason: 'x' }, 500);
    expect(cc.decide(1000, 2500)).toBeNull(); // no new report: no news
    cc.onRtcp('a', receiver.report(), 1500); // same totals again
    expect(cc.decide(2000, 2500)).toBeNull();
  });
});
