#!/usr/bin/env node
// `npm start`: the local stack. Worker on workerd (port 8787 unless PORT is set), a sender for rover
// `demo` (test pattern unless ROVER_SOURCE says otherwise, e.g. v4l2:/dev/video0), and the viewer URL.
import { runDemoRover } from './demo-rover.mjs';
import { devSecrets, repoRoot, startSender, startWorker } from './local-stack.mjs';

const port = Number(process.env.PORT ?? 8787);
const linkTtlSeconds = 12 * 3600;
const roverId = process.env.ROVER_ID ?? 'demo';
const source = process.env.ROVER_SOURCE ?? 'test';
// Relative to the sender's working directory (the repo): Unix socket paths are limited to 107 bytes.
const apiSocket = '.state/rover-api.sock';
process.chdir(repoRoot);

console.log(`[start] starting the Worker on http://127.0.0.1:${port} (local workerd)…`);
// Auth is on here too: the stack has its own secrets (.state/dev-secrets.json), and the printed link carries access.
const worker = await startWorker({ port, secrets: devSecrets(), onLine: (line) => console.log(`[worker] ${line}`) });
console.log(`[start] starting the sender for rover "${roverId}" (source: ${source})…`);
const sender = await startSender({
  server: worker.url.replace('http', 'ws'),
  roverId,
  token: await worker.roverToken(roverId, 7 * 24 * 3600),
  args: ['--source', source, '--api-socket', apiSocket],
  onLine: (line) => console.log(`[sender] ${line}`),
});

console.log(`
  Rover Live is running.
  Viewer link (valid 12 h; it carries access, share it only with people who may watch):
    ${(await worker.viewerLink(roverId, linkTtlSeconds)).replace('#', '?autoconnect=1#')}
  Operator link (may also take control and drive; the demo rover program prints the commands):
    ${(await worker.viewerLink(roverId, linkTtlSeconds, { control: true })).replace('#', '?autoconnect=1#')}
  More links: npm run token -- viewer --rover ${roverId} --server ${worker.url}
  Press Ctrl-C to stop.
`);

// The demo rover program on the sender's local API: status, a synthetic detection box, drive commands.
const demo = runDemoRover(apiSocket);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  console.log('[start] stopping…');
  demo.close();
  await Promise.allSettled([sender.stop(), worker.stop()]);
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
sender.exited.then((code) => {
  if (!stopping) {
    console.error(`[start] the sender exited (code ${code}); stopping.`);
    void stop();
  }
});
