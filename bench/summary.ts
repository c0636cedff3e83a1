/** One line of order statistics for a benchmark's samples (ms). */
export function summary(label: string, values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const pick = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return `${label.padEnd(28)} n=${sorted.length}  median=${pick(0.5).toFixed(0)} ms  p95=${pick(0.95).toFixed(0)} ms  best=${sorted[0]!.toFixed(0)} ms  worst=${sorted[sorted.length - 1]!.toFixed(0)} ms`;
}
