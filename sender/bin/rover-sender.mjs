#!/usr/bin/env node
// rover-sender launcher. GStreamer's bus polling holds a libuv pool thread per camera; give DNS and fs
// room to work (must be set before the pool starts).
process.env.UV_THREADPOOL_SIZE ??= '8';
const { register } = await import('tsx/esm/api');
register();
await import('../src/cli.ts');
