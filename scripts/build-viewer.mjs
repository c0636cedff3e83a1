#!/usr/bin/env node
// Builds the hosted viewer into viewer/dist: bundles the TypeScript entry points and copies static files.
import { build } from 'esbuild';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'viewer', 'dist');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
cpSync(join(root, 'viewer', 'public'), out, { recursive: true });
const common = {
  outdir: out,
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
};
await Promise.all([
  build({ ...common, entryPoints: { app: join(root, 'viewer/src/main.ts'), home: join(root, 'viewer/src/home.ts') }, minify: true }),
  // The embeddable player (<rover-stream> + RoverViewerClient), for other pages: /rover-stream.js.
  build({ ...common, entryPoints: { 'rover-stream': join(root, 'viewer/src/embed/index.ts') }, minify: true }),
  // The embedding example's own script: documentation, so kept readable (it imports no code, only types).
  build({ ...common, entryPoints: { 'embed-example': join(root, 'viewer/src/embed/example.ts') }, minify: false }),
]);
console.log(`viewer built into ${out}`);
