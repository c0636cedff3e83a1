import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';

// Worker + Durable Object tests that run inside workerd (@cloudflare/vitest-pool-workers).
// `npx vitest run --config test/worker/vitest.config.ts` from the repo root; global-setup.ts builds viewer/dist first.

const repo = fileURLToPath(new URL('../..', import.meta.url));
const state = `${repo}.state`;

// Keep wrangler's state in the repo and never phone home. Set here because the plugin reads
// wrangler.toml in this (the main vitest) process.
process.env.WRANGLER_SEND_METRICS = 'false';
process.env.XDG_CONFIG_HOME ??= `${state}/xdg`;
mkdirSync(`${state}/xdg`, { recursive: true });

export default defineConfig({
  plugins: [
    cloudflareTest({
      main: `${repo}worker/src/index.ts`,
      wrangler: { configPath: `${repo}wrangler.toml` },
      // Nothing in wrangler.toml is remote; do not try to start a remote proxy session (works offline).
      remoteBindings: false,
    }),
  ],
  test: {
    root: repo,
    include: ['test/worker/**/*.test.ts'],
    globalSetup: [`${repo}test/worker/global-setup.ts`],
    testTimeout: 15_000,
    // The Durable Object logs one JSON line per event: show them only for failing tests.
    silent: 'passed-only',
    hookTimeout: 30_000,
  },
});
