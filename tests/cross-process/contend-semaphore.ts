// The semaphore's cross-process run: SEMAPHORE_WORKERS processes (fixtures/semaphore-worker.ts)
// share one semaphore of limit SEMAPHORE_LIMIT, SEMAPHORE_SECTIONS sections each; then the log
// is held to the limit: never more than that many sections at once (each up to the instant its
// slot may have run out), a section requested after another ended has the greater token, each
// process's tokens grow, no token is issued twice, every worker is served, and more than one
// section did run at once (a semaphore that let one in at a time would pass the rest).
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { checkSections, type SectionRecord } from "../../examples/processes/check-sections.js";
import { type StoreTarget, semaphoreAdapterOn } from "../../examples/processes/stores.js";
import { uniqueName } from "../harness/backends.js";
import { type ContendSettings, expectEveryWorkerServed, runWorkers } from "./contend.js";

export const SEMAPHORE_WORKERS = 6;
export const SEMAPHORE_LIMIT = 3;
export const SEMAPHORE_SECTIONS = 25;
const WORKER = fileURLToPath(new URL("./fixtures/semaphore-worker.ts", import.meta.url));

export type SemaphoreContendSettings = ContendSettings & { limit: number };

export async function contendSemaphore(target: StoreTarget): Promise<void> {
  const settings: SemaphoreContendSettings = {
    ...target,
    name: uniqueName("xsem"),
    key: "exports",
    sections: SEMAPHORE_SECTIONS,
    limit: SEMAPHORE_LIMIT,
  };
  await runWorkers({
    worker: WORKER,
    workers: SEMAPHORE_WORKERS,
    settings,
    adapterOn: semaphoreAdapterOn,
    async check(log, _connection, pids) {
      const records = await log.read();
      expectEveryWorkerServed(records, pids, SEMAPHORE_SECTIONS);
      expectTokensOfEachProcessGrow(records);
      const result = checkSections(records, { limit: SEMAPHORE_LIMIT });
      expect(result.violations).toEqual([]);
      expect(result.checked).toBe(records.length);
      const peak = peakAtOnce(records);
      console.log(
        `[cross-process semaphore ${target.store}] ${records.length} sections, at most ${peak} at once (limit ${SEMAPHORE_LIMIT})`,
      );
      expect(peak).toBeGreaterThan(1);
    },
  });
}

/** No token twice; each process's sections, in its own order, have growing tokens. */
function expectTokensOfEachProcessGrow(records: readonly SectionRecord[]): void {
  expect(new Set(records.map((record) => record.token)).size).toBe(records.length);
  const last = new Map<number, number>();
  for (const record of [...records].sort((a, b) => a.start - b.start)) {
    const pid = record.pid ?? 0;
    expect(record.token, `pid ${pid}`).toBeGreaterThan(last.get(pid) ?? 0);
    last.set(pid, record.token);
  }
}

/** The most sections that ran at one instant. */
function peakAtOnce(records: readonly SectionRecord[]): number {
  const moments = records.flatMap((record) => [
    { at: record.start, step: 1 },
    { at: record.end, step: -1 },
  ]);
  moments.sort((a, b) => a.at - b.at || a.step - b.step);
  let inside = 0;
  let peak = 0;
  for (const { step } of moments) {
    inside += step;
    peak = Math.max(peak, inside);
  }
  return peak;
}
