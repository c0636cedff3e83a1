/**
 * Congestion response for one camera's shared encoder ("smart scaling"). Pure logic, driven by the RTCP
 * every viewer sends back (rtcp.ts) and by a clock tick; the sender applies its decisions to the encoder.
 *
 * Per viewer, an estimate of what its path carries:
 *  - loss-based (as in GCC, draft-ietf-rmcat-gcc §6), once a second: loss over 10 % → cut, to what
 *    actually got through (the sending rate × (1 − loss)) with a 10 % margin, so a cap is found in one
 *    step, not ten; loss under 2 % → grow 8 %; in between → hold. Loss is the larger of the packets the
 *    viewer asked to have resent (NACKs: what the link dropped, before repair) and those still missing
 *    after repair (receiver reports' running totals) — repaired loss still means a full queue;
 *  - capped by the browser's own delay-based estimate (REMB), which sees the queue before loss does —
 *    once that estimate has caught up with what is being sent. Chrome's first REMBs are its cautious
 *    start value (~300 kbit/s, measured here), not the path: following those down would spiral.
 * One encoder serves all viewers of a camera, so the weakest viewer sets the encoder's bitrate (never
 * below the floor: a viewer on a hopeless link cannot starve everyone else of all quality).
 *
 * When the bitrate gets too low for the picture size, fewer pixels look better than blocky ones: the
 * picture steps down (¾, then ½ size) and, as a last resort, the frame rate halves; it steps back up with
 * hysteresis once the bitrate allows.
 */
import type { RtcpEvent } from './rtcp.js';

export interface CongestionOptions {
  /** The configured bitrate: the start and the ceiling, kbit/s. */
  maxKbps: number;
  /** Never go below this, kbit/s. */
  minKbps?: number;
  width: number;
  height: number;
  fps: number;
}

export interface VideoLevel {
  kbps: number;
  width: number;
  height: number;
  fps: number;
}

interface ViewerState {
  estimateKbps: number;
  rembKbps: number | null;
  rembAt: number;
  lastLoss: number;
  /** The latest receiver report's running totals, and the ones the last decision used. */
  latest: { lost: number; highest: number } | null;
  used: { lost: number; highest: number } | null;
  /** Sequence numbers NACKed since the last decision. */
  nacked: Set<number>;
  /** The REMB has reached the sending rate once: from then on it is the path's estimate, not a start value. */
  rembTrusted: boolean;
  /**
   * When the estimate was last cut: for HOLD_AFTER_CUT_MS the reports still carry loss from before the
   * cut (packets in flight, NACKs for them), so the estimate neither cuts again nor grows.
   */
  cutAt: number | null;
  /** The interval being measured: since when, and how many packets were sent in it. */
  intervalStart: number | null;
  intervalPackets: number;
}

const LOSS_HIGH = 0.1;
const LOSS_LOW = 0.02;
/** Growth per second on a clean link without a trusted REMB (GCC's 8 %), and towards a trusted REMB. */
const GROWTH_PER_SECOND = 1.08;
const GROWTH_TO_REMB_PER_SECOND = 1.5;
/**
 * Loss is judged over an interval of at least this many packets (or a second): at 2.5 Mbit/s that is a
 * quarter second, so a link that shrinks under a high rate is answered fast, yet a few random losses in a
 * short window are not mistaken for congestion.
 */
const MIN_INTERVAL_PACKETS = 60;
const MAX_INTERVAL_MS = 1_000;
const HOLD_AFTER_CUT_MS = 1_200;
const DELIVERED_MARGIN = 0.9;
/** A REMB older than this no longer caps the estimate (Chrome sends one about every second). */
const REMB_FRESH_MS = 3_000;
/** Small moves are not worth an encoder reconfiguration. */
const CHANGE_THRESHOLD = 0.05;
/** A REMB at least this share of the sending rate has caught up with it. */
const REMB_CAUGHT_UP = 0.9;
/** Bound on NACKed sequence numbers remembered per interval (a flood of NACKs must not grow memory). */
const MAX_NACKED = 4096;

/** Picture steps: bits per pixel per frame below which to take the next step down. */
const SCALE_STEPS = [1, 0.75, 0.5] as const;
const MIN_BITS_PER_PIXEL = 0.025;
/** Step back up only when the bigger picture would get this much more than the minimum. */
const UPSCALE_HYSTERESIS = 1.4;

export class CongestionController {
  private readonly viewers = new Map<string, ViewerState>();
  private readonly minKbps: number;
  private scaleStep = 0;
  private halfRate = false;
  private level: VideoLevel;
  private lastSentKbps: number;

  constructor(private readonly options: CongestionOptions) {
    this.minKbps = Math.min(options.minKbps ?? 150, options.maxKbps);
    this.level = { kbps: options.maxKbps, width: options.width, height: options.height, fps: options.fps };
    this.lastSentKbps = options.maxKbps;
  }

  get current(): VideoLevel {
    return { ...this.level };
  }

  addViewer(viewerId: string): void {
    // A newcomer starts at the current level: it must not drag the encoder down before it has reported.
    if (!this.viewers.has(viewerId)) {
      this.viewers.set(viewerId, { estimateKbps: this.options.maxKbps, rembKbps: null, rembAt: 0, lastLoss: 0, latest: null, used: null, nacked: new Set(), rembTrusted: false, cutAt: null, intervalStart: null, intervalPackets: 0 });
    }
  }

  removeViewer(viewerId: string): void {
    this.viewers.delete(viewerId);
  }

  /**
   * Feed one RTCP event from a viewer. Browsers put a receiver report into every compound RTCP packet
   * (with each NACK and PLI too), many a second under loss: reports are only recorded here, and the loss
   * is taken over the whole interval between two decisions, from the reports' running totals.
   */
  onRtcp(viewerId: string, event: RtcpEvent, now: number): void {
    const viewer = this.viewers.get(viewerId);
    if (!viewer) return;
    if (event.type === 'remb') {
      viewer.rembKbps = event.bitrateBps / 1000;
      viewer.rembAt = now;
      if (viewer.rembKbps >= REMB_CAUGHT_UP * Math.min(this.lastSentKbps, this.level.kbps)) viewer.rembTrusted = true;
      return;
    }
    if (event.type === 'nack') {
      for (const sequence of event.lostSequenceNumbers) if (viewer.nacked.size < MAX_NACKED) viewer.nacked.add(sequence);
      return;
    }
    if (event.type !== 'receiver-report' && event.type !== 'sender-report') return;
    const block = event.reports[0];
    if (block) viewer.latest = { lost: block.cumulativeLost, highest: block.highestSequence };
  }

  /**
   * Loss over the interval since the previous decision: `dropped` is what the link dropped (NACKed), of the
   * packets in the interval; `unrepaired` what stayed lost after retransmission. Null when the viewer
   * reported nothing new.
   */
  private intervalLoss(viewer: ViewerState, sentPackets: number): { dropped: number; unrepaired: number } | null {
    const { latest, used } = viewer;
    viewer.used = latest;
    const nacked = viewer.nacked.size;
    viewer.nacked.clear();
    const expected = latest && used ? latest.highest - used.highest : 0;
    const unrepaired = latest && used && expected > 0 ? Math.min(1, Math.max(0, (latest.lost - used.lost) / expected)) : null;
    // NACKs may name packets of the previous interval: divide by the larger of the two counts.
    const packets = Math.max(sentPackets, expected);
    if (unrepaired === null && (nacked === 0 || packets === 0)) return null;
    const dropped = packets > 0 ? Math.min(1, nacked / packets) : 0;
    return { dropped: Math.max(dropped, unrepaired ?? 0), unrepaired: unrepaired ?? 0 };
  }

  private updateEstimate(viewer: ViewerState, loss: { dropped: number; unrepaired: number }, sentKbps: number, now: number, seconds: number): void {
    viewer.lastLoss = loss.dropped;
    const remb = viewer.rembKbps !== null && now - viewer.rembAt <= REMB_FRESH_MS ? viewer.rembKbps : null;
    if (viewer.cutAt !== null && now - viewer.cutAt <= HOLD_AFTER_CUT_MS) return;
    if (loss.dropped > LOSS_HIGH) {
      viewer.cutAt = now;
      viewer.estimateKbps *= 1 - 0.5 * loss.dropped;
      // Packets lost for good: the path carried at most what got through. Go there in one step.
      if (loss.unrepaired > LOSS_HIGH) viewer.estimateKbps = Math.min(viewer.estimateKbps, sentKbps * (1 - loss.unrepaired) * DELIVERED_MARGIN);
    } else if (loss.dropped < LOSS_LOW) {
      if (viewer.rembTrusted && remb !== null) {
        // The browser measures the path: grow towards its estimate quickly (at most 1.5× a second).
        viewer.estimateKbps = Math.max(viewer.estimateKbps, Math.min(remb, viewer.estimateKbps * GROWTH_TO_REMB_PER_SECOND ** seconds));
      } else {
        viewer.estimateKbps = Math.max(viewer.estimateKbps, Math.min(viewer.estimateKbps * GROWTH_PER_SECOND ** seconds, remb ?? Infinity));
      }
    }
    viewer.estimateKbps = clamp(viewer.estimateKbps, this.minKbps, this.options.maxKbps);
  }

  /** The estimate for one viewer: loss-based, capped by its REMB once that is trusted and fresh. */
  viewerEstimate(viewerId: string, now: number): number | null {
    const viewer = this.viewers.get(viewerId);
    if (!viewer) return null;
    const remb = viewer.rembTrusted && viewer.rembKbps !== null && now - viewer.rembAt <= REMB_FRESH_MS ? viewer.rembKbps : Infinity;
    return clamp(Math.min(viewer.estimateKbps, remb), this.minKbps, this.options.maxKbps);
  }

  /** The weakest viewer's latest signals, for logs. */
  weakest(): { loss: number; rembKbps: number | null } | null {
    let weakest: ViewerState | null = null;
    for (const viewer of this.viewers.values()) if (weakest === null || viewer.estimateKbps < weakest.estimateKbps) weakest = viewer;
    return weakest ? { loss: weakest.lastLoss, rembKbps: weakest.rembKbps } : null;
  }

  /**
   * Decide the encoder's level now (call several times a second). `sentKbps` and `sentPackets` are what
   * the encoder produced since the previous call. A viewer's loss is judged once its interval holds
   * MIN_INTERVAL_PACKETS packets or MAX_INTERVAL_MS has passed. Returns the new level when it should
   * change (bitrate by more than CHANGE_THRESHOLD, or picture size / frame rate), else null.
   */
  decide(now: number, sentKbps: number, sentPackets = 0): VideoLevel | null {
    this.lastSentKbps = sentKbps;
    if (this.viewers.size === 0) return null;
    for (const viewer of this.viewers.values()) {
      viewer.intervalStart ??= now - MAX_INTERVAL_MS;
      viewer.intervalPackets += sentPackets;
      const elapsed = now - viewer.intervalStart;
      if (viewer.intervalPackets < MIN_INTERVAL_PACKETS && elapsed < MAX_INTERVAL_MS) continue;
      const loss = this.intervalLoss(viewer, viewer.intervalPackets);
      viewer.intervalStart = now;
      viewer.intervalPackets = 0;
      if (loss !== null) this.updateEstimate(viewer, loss, sentKbps, now, Math.min(elapsed, MAX_INTERVAL_MS) / 1000);
    }
    let target = this.options.maxKbps;
    for (const viewerId of this.viewers.keys()) target = Math.min(target, this.viewerEstimate(viewerId, now) ?? target);
    target = Math.round(target);

    this.chooseShape(target);
    const { width, height, fps } = this.shape();
    const changedShape = width !== this.level.width || height !== this.level.height || fps !== this.level.fps;
    const changedRate = Math.abs(target - this.level.kbps) / this.level.kbps > CHANGE_THRESHOLD || (target === this.options.maxKbps && this.level.kbps !== target);
    if (!changedShape && !changedRate) return null;
    this.level = { kbps: changedRate ? target : this.level.kbps, width, height, fps };
    return { ...this.level };
  }

  private chooseShape(kbps: number): void {
    const bitsPerPixel = (step: number, halfRate: boolean): number => {
      const scale = SCALE_STEPS[step]!;
      const pixels = this.options.width * scale * this.options.height * scale;
      return (kbps * 1000) / (pixels * (halfRate ? this.options.fps / 2 : this.options.fps));
    };
    // Down: while the current shape starves, take the next step (smaller picture, then half rate).
    while (bitsPerPixel(this.scaleStep, this.halfRate) < MIN_BITS_PER_PIXEL) {
      if (this.scaleStep < SCALE_STEPS.length - 1) this.scaleStep++;
      else if (!this.halfRate && this.options.fps >= 20) this.halfRate = true;
      else break;
    }
    // Up: only when the bigger shape would be comfortably fed.
    for (;;) {
      if (this.halfRate) {
        if (bitsPerPixel(this.scaleStep, false) >= MIN_BITS_PER_PIXEL * UPSCALE_HYSTERESIS) this.halfRate = false;
        else break;
      } else if (this.scaleStep > 0 && bitsPerPixel(this.scaleStep - 1, false) >= MIN_BITS_PER_PIXEL * UPSCALE_HYSTERESIS) {
        this.scaleStep--;
      } else break;
    }
  }

  private shape(): { width: number; height: number; fps: number } {
    const scale = SCALE_STEPS[this.scaleStep]!;
    return {
      width: even(this.options.width * scale),
      height: even(this.options.height * scale),
      fps: this.halfRate ? Math.max(1, Math.round(this.options.fps / 2)) : this.options.fps,
    };
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

/** H.264 4:2:0 wants even sizes. */
function even(value: number): number {
  return Math.max(2, Math.round(value / 2) * 2);
}
