/** Order statistics of a benchmark's samples (ms). */
export interface Distribution {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  best: number;
  worst: number;
}

export function distribution(values: readonly number[]): Distribution {
  if (values.length === 0) throw new Error('no samples');
  const sorted = [...values].sort((a, b) => a - b);
  const pick = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { n: sorted.length, p50: pick(0.5), p95: pick(0.95), p99: pick(0.99), best: sorted[0]!, worst: sorted[sorted.length - 1]! };
}

/** One line of order statistics for a benchmark's samples (ms). */
export function summary(label: string, values: readonly number[]): string {
  if (values.length === 0) return `${label.padEnd(28)} n=0`;
  const d = distribution(values);
  return `${label.padEnd(28)} n=${d.n}  median=${d.p50.toFixed(0)} ms  p95=${d.p95.toFixed(0)} ms  best=${d.best.toFixed(0)} ms  worst=${d.worst.toFixed(0)} ms`;
}
