/** The real rover-sender binary: clear errors a person can act on, and retrying when the server is down. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, repoRoot } from '../../scripts/local-stack.mjs';

const SENDER = join(repoRoot, 'sender', 'bin', 'rover-sender.mjs');

function runSender(args: string[], killAfterMs?: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SENDER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = killAfterMs ? setTimeout(() => child.kill('SIGTERM'), killAfterMs) : undefined;
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('rover-sender CLI', () => {
  it('names the missing GStreamer element and exits with code 4', async () => {
    const { code, output } = await runSender(['-s', 'ws://127.0.0.1:9', '-r', 'demo', '-c', 'pipeline:videotestsrc ! nosuchfilter']);
    expect(code).toBe(4);
    expect(output).toContain('GStreamer element "nosuchfilter" is not installed');
  });

  it('says a camera device does not exist', async () => {
    const { code, output } = await runSender(['-s', 'ws://127.0.0.1:9', '-r', 'demo', '-c', 'v4l2:/dev/video-does-not-exist']);
    expect(code).toBe(4);
    expect(output).toContain('camera /dev/video-does-not-exist does not exist');
  });

  it('refuses an invalid rover id before doing anything', async () => {
    const { code, output } = await runSender(['-s', 'ws://127.0.0.1:9', '-r', 'Not/Valid']);
    expect(code).toBe(2);
    expect(output).toContain('is not a valid rover id');
  });

  it('keeps retrying with backoff while the server is unreachable, and stops cleanly on SIGTERM', async () => {
    const port = await freePort(); // nothing listens here
    const { code, output } = await runSender(['-s', `ws://127.0.0.1:${port}`, '-r', 'demo', '-W', '320', '-H', '240'], 3_000);
    expect(code).toBe(0);
    const attempts = output.match(/cannot reach signaling server .*ECONNREFUSED/g) ?? [];
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(output).toMatch(/reconnecting .*inMs=\d+/);
  });
});
