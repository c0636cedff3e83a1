/** The local stack most benchmarks run on: workerd, headless Chromium, and one sender for a fresh rover id. */
import { startSender, startWorker, type SenderHandle, type WorkerHandle } from '../scripts/local-stack.mjs';
import { launchBrowser, type Browser } from '../test/e2e/browser.js';

export interface LocalBench {
  worker: WorkerHandle;
  browser: Browser;
  sender: SenderHandle;
  roverId: string;
  stop(): Promise<void>;
}

export async function startLocalBench(name: string, senderArgs: string[]): Promise<LocalBench> {
  const worker = await startWorker();
  const browser = await launchBrowser();
  const roverId = `bench-${name}-${process.pid}`;
  try {
    const sender = await startSender({ server: worker.url.replace('http', 'ws'), roverId, token: await worker.roverToken(roverId), args: senderArgs });
    return {
      worker,
      browser,
      sender,
      roverId,
      stop: async () => {
        await sender.stop();
        await browser.close();
        await worker.stop();
      },
    };
  } catch (error) {
    await browser.close();
    await worker.stop();
    throw error;
  }
}
