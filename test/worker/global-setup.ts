import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Builds viewer/dist (the static assets wrangler.toml serves) before the Worker tests start. */
export default function setup(): void {
  const repo = fileURLToPath(new URL('../..', import.meta.url));
  const result = spawnSync(process.execPath, ['scripts/build-viewer.mjs'], { cwd: repo, stdio: 'inherit' });
  if (result.status !== 0) {
    throw new Error(`node scripts/build-viewer.mjs failed (exit ${result.status ?? result.signal}): the Worker tests need viewer/dist`);
  }
}
