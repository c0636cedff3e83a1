/**
 * Mint access tokens offline (no server round trip): the Worker accepts them because they are signed
 * with the same secrets it holds (`wrangler secret put ROVER_TOKEN_SECRET` / `VIEWER_TOKEN_SECRET`).
 *
 *   npm run token -- viewer --rover rover-7 --server https://rovers.example.com [--ttl 8h]   → a viewer link
 *   npm run token -- rover  --rover rover-7 [--ttl 365d]                                    → ROVER_TOKEN value
 *
 * Secrets come from the environment (ROVER_TOKEN_SECRET / VIEWER_TOKEN_SECRET), from --secret-file, or,
 * for the local `npm start` stack, from .state/dev-secrets.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_ROVER_TTL_SECONDS, DEFAULT_VIEWER_TTL_SECONDS, maxTtlSeconds, MIN_SECRET_LENGTH, mintToken, parseDuration, type TokenKind } from '../protocol/auth.js';
import { isValidRoverId } from '../protocol/index.js';

const repoRoot = join(import.meta.dirname, '..');

function fail(message: string): never {
  process.stderr.write(`token: ${message}\n`);
  process.exit(2);
}

function secretFor(kind: TokenKind, secretFile: string | undefined): string {
  const variable = kind === 'rover' ? 'ROVER_TOKEN_SECRET' : 'VIEWER_TOKEN_SECRET';
  let secret: string | undefined;
  if (secretFile) {
    try {
      secret = readFileSync(secretFile, 'utf8').trim();
    } catch (error) {
      fail(`cannot read --secret-file ${secretFile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  } else if (process.env[variable]) {
    secret = process.env[variable]!.trim();
  } else {
    const local = join(repoRoot, '.state', 'dev-secrets.json');
    if (existsSync(local)) {
      secret = (JSON.parse(readFileSync(local, 'utf8')) as Record<string, string>)[variable];
      process.stderr.write(`token: using the local stack's ${variable} (.state/dev-secrets.json)\n`);
    }
  }
  if (!secret) fail(`no secret: set ${variable} (the value you gave \`wrangler secret put ${variable}\`) or --secret-file`);
  if (secret.length < MIN_SECRET_LENGTH) fail(`${variable} is shorter than ${MIN_SECRET_LENGTH} characters`);
  return secret;
}

function duration(value: string): number {
  const seconds = parseDuration(value);
  if (seconds === null) throw new InvalidArgumentError('use e.g. 90s, 15m, 8h, 30d or plain seconds');
  return seconds;
}

const program = new Command()
  .name('token')
  .description('Mint rover tokens and viewer links, signed with the Worker\'s secrets.')
  .argument('<kind>', 'viewer (a link an operator opens) or rover (the ROVER_TOKEN of a rover)')
  .addOption(new Option('-r, --rover <id>', 'rover id').makeOptionMandatory())
  .addOption(new Option('--ttl <duration>', `lifetime (default ${DEFAULT_VIEWER_TTL_SECONDS / 3600}h for viewers, ${DEFAULT_ROVER_TTL_SECONDS / 86_400}d for rovers)`).argParser(duration))
  .addOption(new Option('-s, --server <url>', 'the Worker\'s URL, for viewer links (default http://127.0.0.1:8787)'))
  .addOption(new Option('--secret-file <path>', 'read the signing secret from this file'))
  .addOption(new Option('--control', 'viewer links only: may also take control of the rover (drive it), one operator at a time'))
  .showHelpAfterError()
  .action(async (kind: string, options: { rover: string; ttl?: number; server?: string; secretFile?: string; control?: boolean }) => {
    if (kind !== 'viewer' && kind !== 'rover') fail(`kind must be "viewer" or "rover" (got "${kind}")`);
    if (options.control && kind !== 'viewer') fail('--control is for viewer links (it lets an operator drive the rover)');
    if (!isValidRoverId(options.rover)) fail(`"${options.rover}" is not a valid rover id: 1-64 of a-z 0-9 - _`);
    const ttl = options.ttl ?? (kind === 'rover' ? DEFAULT_ROVER_TTL_SECONDS : DEFAULT_VIEWER_TTL_SECONDS);
    if (ttl < 60 || ttl > maxTtlSeconds(kind)) fail(`--ttl must be from 60 s to ${maxTtlSeconds(kind) / 86_400} days for ${kind} tokens`);
    const { token, expiresAt } = await mintToken(kind, options.rover, secretFor(kind, options.secretFile), ttl, undefined, { control: options.control === true });
    const expires = new Date(expiresAt * 1000).toISOString();
    if (kind === 'rover') {
      process.stderr.write(`token: rover token for "${options.rover}", expires ${expires}. Give it to the sender as ROVER_TOKEN.\n`);
      process.stdout.write(`${token}\n`);
    } else {
      let base: URL;
      try {
        base = new URL(options.server ?? 'http://127.0.0.1:8787');
        if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error();
      } catch {
        fail(`--server must be an http:// or https:// URL (got "${options.server}")`);
      }
      const may = options.control ? 'watch and drive' : 'watch';
      process.stderr.write(`token: viewer link for "${options.rover}" (${may}), expires ${expires}. It carries access: share it only with people who may ${may}.\n`);
      process.stdout.write(`${base.origin}/rovers/${options.rover}#access=${token}\n`);
    }
  });

await program.parseAsync(process.argv);
