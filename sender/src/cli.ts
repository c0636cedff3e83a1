/** rover-sender entry point: parse config, start cameras and signaling, shut down cleanly on signals. */
import { ApiError } from './api.js';
import { ConfigError, parseArgs } from './config.js';
import { EncoderError } from './encoder.js';
import { EncoderSelectionError, resolveEncoder, type EncoderProfile } from './encoders.js';
import { createLogger } from './log.js';
import { RoverSender } from './sender.js';

const SHUTDOWN_DEADLINE_MS = 2_000;

async function main(): Promise<void> {
  let config;
  try {
    config = parseArgs(process.argv.slice(2));
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`rover-sender: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const log = createLogger(config.logLevel, { rover: config.roverId });
  // Once, before any camera starts: which H.264 encoder this machine has (or the one asked for).
  let encoder: EncoderProfile;
  try {
    encoder = resolveEncoder(config.encoder, process.platform, log);
  } catch (error) {
    if (error instanceof EncoderSelectionError) {
      log.error(`cannot start camera: ${error.message}`);
      process.exit(4);
    }
    throw error;
  }
  log.info(`encoder: ${encoder.label}`, {
    chosen: config.encoder === 'auto' ? 'auto' : 'requested',
    ...(encoder.bitrate.runtime ? {} : { bitrate: 'fixed at start' }),
  });
  const sender = new RoverSender({
    server: config.server,
    roverId: config.roverId,
    token: config.token,
    iceServers: config.iceServers,
    relayOnly: config.relayOnly,
    api: config.api,
    log,
    cameras: config.cameras.map((camera) => ({ ...camera, video: { ...camera.video }, encoder, adapt: config.adapt })),
  });

  let shuttingDown = false;
  const shutdown = (signal: string, code = 0): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info('shutting down', { signal });
    // Hard deadline: never hang a service manager waiting on us.
    setTimeout(() => process.exit(code), SHUTDOWN_DEADLINE_MS).unref();
    sender.stop().finally(() => process.exit(code));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  sender.onFatal = (error) => {
    log.error(error.message);
    shutdown('fatal', 3);
  };

  try {
    await sender.start();
  } catch (error) {
    if (error instanceof EncoderError) {
      log.error(`cannot start camera: ${error.message}`);
      await sender.stop();
      process.exit(4);
    }
    if (error instanceof ApiError) {
      log.error(error.message);
      await sender.stop();
      process.exit(2);
    }
    throw error;
  }
  log.info('sender running', { server: new URL(config.server).host, cameras: config.cameras.map((c) => `${c.id}:${c.source.kind}`).join(' ') });
}

main().catch((error: unknown) => {
  process.stderr.write(`rover-sender: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
