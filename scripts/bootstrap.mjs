#!/usr/bin/env node
// Installs what is missing so `npm start` and `npm test` work on a fresh Debian/Ubuntu machine:
// system packages via apt (sudo when not root), then `npm ci` when node_modules is missing or stale.
// Node built-ins only: this runs before any dependency exists. Quick when nothing is missing.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Debian/Ubuntu packages: GStreamer capture/encode + headers for the native addon, Chromium, coturn and the NAT lab's tools for tests. */
export const APT_PACKAGES = [
  'gstreamer1.0-tools',
  'gstreamer1.0-plugins-base',
  'gstreamer1.0-plugins-good',
  'gstreamer1.0-plugins-bad',
  'gstreamer1.0-plugins-ugly',
  'gstreamer1.0-libav',
  // timeoverlay (the test pattern's clock) lives here; it is only a Recommends of plugins-good.
  'gstreamer1.0-x',
  'libgstreamer1.0-dev',
  'libgstreamer-plugins-base1.0-dev',
  'chromium',
  'coturn',
  'iproute2',
  'iptables',
  // The NAT lab's coturn gets a throwaway TLS certificate (turns:).
  'openssl',
];

function missingAptPackages() {
  const result = spawnSync('dpkg-query', ['-W', '-f=${Package} ${db:Status-Status}\n', ...APT_PACKAGES], { encoding: 'utf8' });
  const installed = new Set(
    (result.stdout ?? '')
      .split('\n')
      .filter((line) => line.endsWith(' installed'))
      .map((line) => line.split(' ')[0]),
  );
  return APT_PACKAGES.filter((name) => !installed.has(name));
}

function run(command, args, options = {}) {
  console.log(`[setup] $ ${command} ${args.join(' ')}`);
  execFileSync(command, args, { stdio: 'inherit', cwd: root, ...options });
}

function ensureAptPackages() {
  if (process.platform !== 'linux' || spawnSync('dpkg-query', ['--version']).status !== 0) {
    console.log('[setup] not a Debian/Ubuntu system: install GStreamer (base/good/bad/ugly, libav) and Chromium yourself.');
    return;
  }
  const missing = missingAptPackages();
  if (missing.length === 0) return;
  console.log(`[setup] installing system packages: ${missing.join(' ')}`);
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args) => (sudo.length ? run('sudo', ['-E', 'apt-get', ...args], { env }) : run('apt-get', args, { env }));
  apt(['update', '-q']);
  apt(['install', '-y', '-q', ...missing]);
}

function lockHash() {
  const hash = createHash('sha256');
  hash.update(readFileSync(join(root, 'package-lock.json')));
  hash.update(process.version);
  return hash.digest('hex');
}

function ensureNodeModules() {
  const stamp = join(root, 'node_modules', '.rover-setup-stamp');
  const wanted = lockHash();
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) return;
  console.log('[setup] node_modules missing or stale: running npm ci');
  run('npm', ['ci', '--no-audit', '--no-fund']);
  writeFileSync(stamp, wanted);
}

const started = Date.now();
ensureAptPackages();
ensureNodeModules();
console.log(`[setup] ready (${Date.now() - started} ms)`);
