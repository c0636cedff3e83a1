import { defineConfig } from 'vitest/config';

// Real processes and a real browser: one file at a time, generous timeouts.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    root: new URL('../..', import.meta.url).pathname,
  },
});
