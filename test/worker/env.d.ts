// Bindings of the Worker under test, as seen by `env` from "cloudflare:workers" / "cloudflare:test".
import type { Env as WorkerEnv } from '../../worker/src/env.js';

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {}
  }
}
