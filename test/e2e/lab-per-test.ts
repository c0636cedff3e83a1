/** A fresh NAT lab and stack for each test, torn down after it whether it passed or not (vitest only). */
import { afterEach } from 'vitest';
import { createLab, type Lab, type LabOptions } from '../netlab/lab.js';
import { startLabStack, type LabStack, type LabStackOptions } from './lab-stack.js';

export type StartLab = (labOptions: LabOptions, stackOptions: LabStackOptions) => Promise<{ lab: Lab; stack: LabStack }>;

/** Call inside a describe; the returned function starts the test's lab and stack. */
export function labPerTest(): StartLab {
  let running: { lab: Lab; stack?: LabStack } | undefined;
  afterEach(async () => {
    await running?.stack?.stop();
    await running?.lab.destroy();
    running = undefined;
  });
  return async (labOptions, stackOptions) => {
    const lab = await createLab(labOptions);
    running = { lab };
    running.stack = await startLabStack(lab, stackOptions);
    return { lab, stack: running.stack };
  };
}
