// The polling baselines' waiting: try, sleep 10 ms, try again until the deadline; then the
// section, then the release (also when the section throws).

import { setTimeout as sleep } from "node:timers/promises";
import type { Held, SubjectEnvironment } from "../types.js";

/** The raw baselines' polling interval (and the peers', where the library lets us choose). */
export const POLL_MS = 10;

/** One holder's attempt at a key (or a slot of it), and its release. */
export type PolledSteps = {
  take(): Promise<boolean>;
  release(): Promise<unknown>;
};

/** One attempt without waiting: the release handle, or null when nothing was free. */
export async function tryPolled(steps: PolledSteps): Promise<Held | null> {
  if (!(await steps.take())) {
    return null;
  }
  return {
    release: async () => {
      await steps.release();
      return true;
    },
  };
}

export async function runPolled(
  subject: string,
  key: string,
  env: SubjectEnvironment,
  steps: PolledSteps & { section(): Promise<void> },
): Promise<void> {
  const deadline = performance.now() + env.blockingTimeMs;
  while (!(await steps.take())) {
    if (performance.now() >= deadline) {
      throw new Error(`${subject}: "${key}" not acquired within ${env.blockingTimeMs} ms`);
    }
    await sleep(POLL_MS);
  }
  try {
    await steps.section();
  } finally {
    await steps.release();
  }
}
