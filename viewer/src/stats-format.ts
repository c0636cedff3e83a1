/** Words and numbers for the stats overlay and the tiles, from the client's once-a-second samples. */
import type { MediaPath, ViewerStats } from './client.js';

/** One line, e.g. "640×360 · 30 fps · 812 kbit/s · RTT 3 ms · 0 lost" (tests and scripts read this format). */
export function formatStatsLine(stats: ViewerStats): string {
  const rtt = stats.rttMs === null ? '' : ` · RTT ${Math.round(stats.rttMs)} ms`;
  return `${stats.width}×${stats.height} · ${stats.fps.toFixed(0)} fps · ${stats.bitrateKbps} kbit/s${rtt} · ${stats.packetsLost} lost`;
}

/** Short form for a grid tile, where space is scarce. */
export function formatTileStats(stats: ViewerStats): string {
  return `${stats.width}×${stats.height} · ${stats.fps.toFixed(0)} fps · ${stats.bitrateKbps} kbit/s`;
}

export function formatPath(path: MediaPath): string {
  return path.kind === 'relayed' ? `Relayed via TURN (${path.protocol})` : 'Direct';
}
