import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Worker + Durable Object tests that run inside workerd (@cloudflare/vitest-pool-workers).
// From the repo root: `npx vitest run --config test/worker/vitest.config.ts` (or `npm run test:worker`);
// global-setup.ts builds viewer/dist (the static assets) first.

const repo = fileURLToPath(new URL('../..', import.meta.url));
const state = `${repo}.state`;

// Keep wrangler's state (logs, metrics choice) in the repo and never send metrics. This must happen
// before wrangler is loaded: it reads the environment at import time, hence the dynamic import below
// (a static import would be hoisted above these lines).
process.env.WRANGLER_SEND_METRICS = 'false';
process.env.XDG_CONFIG_HOME ??= `${state}/xdg`;
mkdirSync(process.env.XDG_CONFIG_HOME, { recursive: true });
const { cloudflareTest } = await import('@cloudflare/vitest-pool-workers');

export default defineConfig({
  plugins: [
    cloudflareTest({
      main: `${repo}worker/src/index.ts`,
      wrangler: { configPath: `${repo}wrangler.toml` },
      // Nothing in wrangler.toml is remote: never try to start a remote proxy session (works offline).
      remoteBindings: false,
      // TURN configured as in production (a coturn that is never contacted: tests only read credentials).
      miniflare: {
        bindings: {
          TURN_URLS: 'turn:turn.test.invalid:3478?transport=udp turns:turn.test.invalid:5349?transport=tcp',
          TURN_SECRET: 'worker-tests-turn-secret-0123456789',
          TURN_TTL_SECONDS: '600',
          ROVER_TOKEN_SECRET: 'worker-tests-rover-token-secret-0123456789abcdef',
          VIEWER_TOKEN_SECRET: 'worker-tests-viewer-token-secret-0123456789abcdef',
          ADMIN_TOKEN: 'worker-tests-admin-token-0123456789abcdefghijkl',
          ALLOWED_ORIGINS: 'tauri://localhost',
        },
      },
    }),
  ],
  test: {
    root: repo,
    include: ['test/worker/**/*.test.ts'],
    globalSetup: [`${repo}test/worker/global-setup.ts`],
    testTimeout: 15_000,
    hookTimeout: 30_000,
    // The Durable Object logs one JSON line per event: show them only for failing tests.
    silent: 'passed-only',
  },
});
