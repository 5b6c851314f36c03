// The stall fault of a torture run (torture.ts): a holder stopped (SIGSTOP) past its TTL until
// another worker wrote its key with a newer token, then resumed, so that its late write is refused.
import { setTimeout as sleep } from "node:timers/promises";
import { withTimeout } from "../../examples/processes/worker-processes.js";
import type { TortureStore } from "./torture-store.js";
import type { TortureWorker } from "./worker-process.js";

export type StallOutcome = {
  worker: number;
  key: string;
  token: number;
  stoppedMs: number;
  /** The resource's token when the holder was resumed (above `token`), or null: nobody wrote. */
  overtakenBy: number | null;
};

/** Stops `worker` inside a section past its TTL, until another worker wrote the key, then resumes it. */
export async function stallHolder(
  worker: TortureWorker,
  store: TortureStore,
  stallMs: number,
  now: () => number,
): Promise<StallOutcome> {
  const holding = worker.nextHolding();
  worker.tell({ type: "stall" });
  const { key, token } = await withTimeout(
    holding,
    30_000,
    `worker ${worker.index} to hold a key`,
  ).catch((error: unknown) => {
    // Should it hold a key later after all, it must not wait for this forever.
    worker.tell({ type: "continue" });
    throw error;
  });
  worker.child.kill("SIGSTOP");
  const stoppedAt = now();
  let overtakenBy: number | null = null;
  try {
    while (now() - stoppedAt < 20_000) {
      await sleep(50);
      const current = await store.resourceToken(key);
      if (current > token && now() - stoppedAt >= stallMs) {
        overtakenBy = current;
        break;
      }
    }
  } finally {
    // "continue" waits in the pipe; the worker reads it once running again.
    worker.tell({ type: "continue" });
    worker.child.kill("SIGCONT");
  }
  return { worker: worker.index, key, token, stoppedMs: now() - stoppedAt, overtakenBy };
}
