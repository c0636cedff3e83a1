import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Unit tests for the pure parts of the rover sender and the shared protocol (plain Node, no GStreamer).
// `npx vitest run --config test/sender/vitest.config.ts` from the repo root.
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['test/sender/**/*.test.ts'],
    environment: 'node',
  },
});
