/** The real rover-sender binary: clear errors a person can act on, and retrying when the server is down. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mintToken, verifyToken } from '../../protocol/auth.js';
import { freePort, generateSecrets, repoRoot, startWorker } from '../../scripts/local-stack.mjs';

const SENDER = join(repoRoot, 'sender', 'bin', 'rover-sender.mjs');
/** Shaped like a token; these tests never reach a server that would check it. */
const UNCHECKED_TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkZW1vIn0.c2lnbmF0dXJl';

function runSender(args: string[], killAfterMs?: number, token: string | null = UNCHECKED_TOKEN): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env['ROVER_TOKEN'];
    if (token !== null) env['ROVER_TOKEN'] = token;
    const child = spawn(process.execPath, [SENDER, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
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

  it('refuses to start without a rover token, saying how to get one', async () => {
    const { code, output } = await runSender(['-s', 'ws://127.0.0.1:9', '-r', 'demo'], undefined, null);
    expect(code).toBe(2);
    expect(output).toContain('a rover token is required');
    expect(output).toContain('npm run token -- rover --rover demo');
  });

  it('exits with code 3 when the server refuses its token, and says what to check', async () => {
    const worker = await startWorker();
    try {
      // A real token, but signed by another deployment's secret.
      const stranger = await startWorkerlessToken();
      const { code, output } = await runSender(['-s', worker.url, '-r', 'demo', '-W', '320', '-H', '240'], 15_000, stranger);
      expect(code).toBe(3);
      expect(output).toMatch(/HTTP 401 .*invalid rover token.*check this rover's token \(ROVER_TOKEN\)/);
      expect(output).not.toContain(stranger); // never log the credential
      // A token for another rover id is a 403.
      const other = await worker.roverToken('other-rover');
      const refused = await runSender(['-s', worker.url, '-r', 'demo', '-W', '320', '-H', '240'], 15_000, other);
      expect(refused.code).toBe(3);
      expect(refused.output).toMatch(/HTTP 403 .*another rover/);
    } finally {
      await worker.stop();
    }
  });
});

/** Mint a rover token with secrets no running Worker uses. */
async function startWorkerlessToken(): Promise<string> {
  return (await mintToken('rover', 'demo', generateSecrets().ROVER_TOKEN_SECRET, 600)).token;
}

describe('token CLI (npm run token)', () => {
  const TSX = join(repoRoot, 'node_modules', '.bin', 'tsx');
  const TOKEN_CLI = join(repoRoot, 'scripts', 'token.ts');

  function runTokenCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const clean = { ...process.env };
      delete clean['ROVER_TOKEN_SECRET'];
      delete clean['VIEWER_TOKEN_SECRET'];
      const child = spawn(TSX, [TOKEN_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...clean, ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('prints a viewer link the Worker will accept, with the token in the fragment', async () => {
    const { VIEWER_TOKEN_SECRET } = generateSecrets();
    const { code, stdout, stderr } = await runTokenCli(['viewer', '--rover', 'rover-7', '--server', 'https://rovers.example.com', '--ttl', '2h'], { VIEWER_TOKEN_SECRET });
    expect(code).toBe(0);
    const match = /^https:\/\/rovers\.example\.com\/rovers\/rover-7#access=(\S+)\n$/.exec(stdout);
    expect(match, stdout).not.toBeNull();
    const verified = await verifyToken('viewer', match![1], 'rover-7', VIEWER_TOKEN_SECRET);
    expect(verified.ok).toBe(true);
    if (verified.ok) expect(verified.claims.expiresAt - Date.now() / 1000).toBeGreaterThan(7100);
    expect(stderr).toMatch(/expires .* share it only with people who may watch/);
  });

  it('prints a rover token that is a rover token only', async () => {
    const { ROVER_TOKEN_SECRET, VIEWER_TOKEN_SECRET } = generateSecrets();
    const { code, stdout } = await runTokenCli(['rover', '--rover', 'rover-7'], { ROVER_TOKEN_SECRET, VIEWER_TOKEN_SECRET });
    expect(code).toBe(0);
    expect((await verifyToken('rover', stdout.trim(), 'rover-7', ROVER_TOKEN_SECRET)).ok).toBe(true);
    expect((await verifyToken('viewer', stdout.trim(), 'rover-7', VIEWER_TOKEN_SECRET)).ok).toBe(false);
  });

  it.each([
    [['bogus', '--rover', 'x'], /kind must be "viewer" or "rover"/],
    [['viewer', '--rover', 'Bad Id'], /not a valid rover id/],
    [['viewer', '--rover', 'x', '--ttl', '90d'], /--ttl must be from 60 s to 30 days/],
    [['viewer', '--rover', 'x', '--ttl', 'soon'], /use e\.g\. 90s, 15m, 8h/],
    [['viewer', '--rover', 'x', '--server', 'ftp://h'], /--server must be an http/],
  ])('refuses %j with a clear message', async (args, message) => {
    const { code, stderr } = await runTokenCli(args, generateSecrets() as unknown as Record<string, string>);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(message);
  });

  it('refuses to mint without a secret', async () => {
    const { code, stderr } = await runTokenCli(['rover', '--rover', 'x', '--secret-file', '/nonexistent/secret'], {});
    expect(code).toBe(2);
    expect(stderr).toMatch(/cannot read --secret-file .*ENOENT/);
  });
});
