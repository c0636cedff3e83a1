/**
 * Run every benchmark in turn and write bench/RESULTS.md: the machine, the date, each benchmark's
 * printed output, and its goal lines gathered at the top. One at a time, so they do not disturb each other.
 *
 *   npm run bench                      (all; the NAT-lab ones need root)
 *   BENCHES=ttff,g2g npm run bench     (a subset; RESULTS.md then holds only those)
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../scripts/local-stack.mjs';

interface Bench {
  id: string;
  script: string;
  title: string;
  env?: Record<string, string>;
  needsRoot?: boolean;
}

const BENCHES: Bench[] = [
  { id: 'ttff', script: 'bench:ttff', title: 'Time to first frame (loopback)', env: { RUNS: '20' } },
  { id: 'g2g', script: 'bench:g2g', title: 'Glass-to-glass latency (loopback)', env: { DURATION_S: '30' } },
  { id: 'cost', script: 'bench:cost', title: 'Cost per viewer' },
  { id: 'signaling', script: 'bench:signaling', title: 'Signaling round trips (Durable Object)' },
  { id: 'datachannel', script: 'bench:datachannel', title: 'Telemetry and control latency (data channels, loopback)', env: { SAMPLES: '200' } },
  { id: 'adapt', script: 'bench:adapt', title: 'Link adaptation (NAT lab, shaped link)', needsRoot: true },
  { id: 'ttff-turn', script: 'bench:ttff:turn', title: 'Time to first frame through TURN (NAT lab)', env: { RUNS: '10' }, needsRoot: true },
];

function version(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', timeout: 10_000 }).split('\n')[0]!.trim();
  } catch {
    return 'not found';
  }
}

function machine(): string {
  const os = (() => {
    try {
      return /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? process.platform;
    } catch {
      return process.platform;
    }
  })();
  return [
    `- ${os}, kernel ${version('uname', ['-r'])}`,
    `- CPU: ${cpus()[0]?.model ?? 'unknown'} × ${cpus().length}; RAM ${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
    `- Node ${process.version}; ${version('gst-launch-1.0', ['--version']).replace('gst-launch-1.0 version ', 'GStreamer ')}; ${version('chromium', ['--version'])}`,
    `- x264enc (software): no hardware encoder on this machine`,
  ].join('\n');
}

function run(bench: Bench): Promise<{ output: string; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '--silent', bench.script], {
      cwd: repoRoot,
      env: { ...process.env, ...bench.env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      process.stdout.write(chunk);
    });
    child.on('close', (code) => resolve({ output, code }));
  });
}

const wanted = process.env['BENCHES']?.split(',').map((s) => s.trim());
const selected = BENCHES.filter((b) => !wanted || wanted.includes(b.id));
const isRoot = process.getuid?.() === 0;
const sections: string[] = [];
const goals: string[] = [];
let failed = 0;
for (const bench of selected) {
  if (bench.needsRoot && !isRoot) {
    sections.push(`## ${bench.title}\n\nSkipped: needs root (network namespaces).`);
    continue;
  }
  console.log(`\n=== ${bench.title} (npm run ${bench.script})`);
  const started = Date.now();
  const { output, code } = await run(bench);
  if (code !== 0) failed++;
  // Progress dots are noise in a report.
  const text = output.replace(/^\.+$/gm, '').replace(/\n{3,}/g, '\n\n').trim();
  for (const line of text.split('\n')) if (/goal/i.test(line) && !line.startsWith('|')) goals.push(`- ${bench.title}: ${line.replace(/^[-\s]+/, '')}`);
  const env = Object.entries(bench.env ?? {}).map(([k, v]) => `${k}=${v} `).join('');
  sections.push(
    `## ${bench.title}\n\n\`${env}npm run ${bench.script}\` — ${((Date.now() - started) / 1000).toFixed(0)} s${code === 0 ? '' : `, **exited ${code}**`}\n\n\`\`\`\n${text}\n\`\`\``,
  );
}

const report = `# Benchmark results

Latest full run of \`npm run bench\` (bench/all.ts), ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC.

## Machine
${machine()}

## Goals
${goals.length ? goals.join('\n') : '- (no goal lines printed)'}

${sections.join('\n\n')}
`;
writeFileSync(join(repoRoot, 'bench', 'RESULTS.md'), report);
console.log(`\nwrote bench/RESULTS.md${failed ? ` (${failed} benchmark(s) failed)` : ''}`);
process.exit(failed ? 1 : 0);
