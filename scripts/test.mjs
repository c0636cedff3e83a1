#!/usr/bin/env node
// `npm test`: typecheck, build the viewer, then every suite (worker in workerd, sender units, end-to-end),
// and a deployability check of the Worker bundle. Prints one closing summary line.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, wranglerEnv } from './local-stack.mjs';

const bin = (name) => join(repoRoot, 'node_modules', '.bin', name);
let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];

function step(name, command, args, env = process.env) {
  console.log(`\n=== ${name}`);
  const result = spawnSync(command, args, { cwd: repoRoot, stdio: 'inherit', env });
  if (result.status !== 0) {
    failures.push(name);
    return false;
  }
  return true;
}

function suite(name, config) {
  const dir = mkdtempSync(join(tmpdir(), 'rover-test-'));
  const report = join(dir, 'report.json');
  const ok = step(name, bin('vitest'), ['run', '--config', config, '--reporter=default', '--reporter=json', `--outputFile.json=${report}`], wranglerEnv({ TMPDIR: tmpdir() }));
  try {
    const json = JSON.parse(readFileSync(report, 'utf8'));
    passed += json.numPassedTests;
    failed += json.numFailedTests;
    skipped += json.numPendingTests + (json.numTodoTests ?? 0);
  } catch {
    if (!ok) failed += 1;
  }
  rmSync(dir, { recursive: true, force: true });
}

const only = process.argv[2];
if (!only || only === 'static') {
  step('typecheck', bin('tsc'), ['-p', 'tsconfig.json']) &&
    step('typecheck worker', bin('tsc'), ['-p', 'worker/tsconfig.json']) &&
    step('typecheck viewer', bin('tsc'), ['-p', 'viewer/tsconfig.json']) &&
    step('typecheck e2e + bench', bin('tsc'), ['-p', 'test/e2e/tsconfig.json']) &&
    step('typecheck worker tests', bin('tsc'), ['-p', 'test/worker/tsconfig.json']);
  step('build viewer', process.execPath, ['scripts/build-viewer.mjs']);
}
if (!only || only === 'worker') suite('worker (workerd)', 'test/worker/vitest.config.ts');
if (!only || only === 'sender') suite('sender units', 'test/sender/vitest.config.ts');
if (!only || only === 'e2e') suite('end-to-end (workerd + sender + Chromium)', 'test/e2e/vitest.config.ts');
if (!only || only === 'static') {
  const out = mkdtempSync(join(tmpdir(), 'rover-bundle-'));
  step('wrangler deploy --dry-run', bin('wrangler'), ['deploy', '--dry-run', '--outdir', out], wranglerEnv());
  rmSync(out, { recursive: true, force: true });
}

console.log('');
if (failures.length) console.log(`failed steps: ${failures.join(', ')}`);
console.log(`${passed} passed, ${failed + (failures.length && !failed ? failures.length : 0)} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failures.length || failed ? 1 : 0);
