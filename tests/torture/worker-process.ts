/**
 * Torture workers (fixtures/torture-worker.ts) as the parent drives them: started by the shared
 * harness (examples/processes/) with their settings and a shifted clock, maybe, and their
 * "holding" and "done" messages turned into a promise and a field.
 */
import { fileURLToPath } from "node:url";
import { startWorkers, type WorkerProcess } from "../../examples/processes/worker-processes.js";
import type {
  ParentMessage,
  WorkerMessage,
  WorkerSettings,
  WorkerStats,
} from "./torture-protocol.js";

const WORKER = fileURLToPath(new URL("./fixtures/torture-worker.ts", import.meta.url));
const SHIFT_CLOCK = new URL("./fixtures/shift-clock.ts", import.meta.url).href;

export type TortureWorker = WorkerProcess<WorkerMessage> & {
  /** How far its wall clock is shifted (ms). */
  shiftMs: number;
  /** Its figures, once it said "done". */
  stats: WorkerStats | undefined;
  /** The key and token of its next "holding". */
  nextHolding(): Promise<{ key: string; token: number }>;
  tell(message: ParentMessage): void;
};

/** `count` workers, the `index`-th with `settingsOf(index)` and its clock `shiftOf(index)` ms off. */
export function startTortureWorkers(
  count: number,
  settingsOf: (index: number) => WorkerSettings,
  shiftOf: (index: number) => number,
): TortureWorker[] {
  const workers = startWorkers<WorkerSettings, WorkerMessage>(WORKER, count, settingsOf, (index) =>
    shiftOf(index) === 0
      ? {}
      : { preload: [SHIFT_CLOCK], env: { HASP_TORTURE_CLOCK_SHIFT_MS: String(shiftOf(index)) } },
  );
  return workers.map((worker) => {
    let onHolding: ((holding: { key: string; token: number }) => void) | undefined;
    const torture: TortureWorker = Object.assign(worker, {
      shiftMs: shiftOf(worker.index),
      stats: undefined as WorkerStats | undefined,
      nextHolding: () =>
        new Promise<{ key: string; token: number }>((resolve) => {
          onHolding = resolve;
        }),
      tell: (message: ParentMessage) => worker.send(message),
    });
    worker.onReport((message) => {
      if (message.type === "holding") {
        onHolding?.(message);
      } else {
        torture.stats = message.stats;
      }
    });
    return torture;
  });
}
