// The cross-process tests' run: WORKERS processes (fixtures/worker.ts) run SECTIONS critical
// sections each on one lock of a store, through the shared harness (examples/processes/); then
// what they wrote is checked: no lost update, tokens increasing in section order, no overlap in
// time, every worker served.
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { checkSections, type SectionRecord } from "../../examples/processes/check-sections.js";
import { resource, sectionLog } from "../../examples/processes/section-log.js";
import {
  connect,
  lockAdapterOn,
  type StoreConnection,
  type StoreTarget,
} from "../../examples/processes/stores.js";
import { allReady, go, startWorkers } from "../../examples/processes/worker-processes.js";
import { uniqueName } from "../harness/backends.js";

export const WORKERS = 4;
export const SECTIONS = 50;
const WORKER = fileURLToPath(new URL("./fixtures/worker.ts", import.meta.url));

/** A worker's one argument. */
export type ContendSettings = StoreTarget & {
  /** The provider's namespace, the lock table, the prefix of the resource and the log. */
  name: string;
  key: string;
  sections: number;
};

/**
 * Runs the workers on `target` and checks their work. `cleanUp`: removes what the locks left
 * behind (SQL: the lock table is dropped here).
 */
export async function contend(
  target: StoreTarget,
  cleanUp: (
    connection: StoreConnection,
    settings: ContendSettings,
  ) => Promise<void> = async () => {},
): Promise<void> {
  const settings: ContendSettings = {
    ...target,
    name: uniqueName("xproc"),
    key: "job",
    sections: SECTIONS,
  };
  const connection = await connect(target);
  const adapter = await lockAdapterOn(connection, settings.name);
  const counter = resource(connection, `${settings.name}_res`);
  const log = sectionLog(connection, `${settings.name}_log`);
  const workers = startWorkers(WORKER, WORKERS, () => settings);
  try {
    await adapter.init?.();
    await counter.create([settings.key]);
    await log.create();
    await allReady(workers, 30_000);
    go(workers, process.hrtime.bigint(), {});
    const exits = await Promise.all(workers.map((worker) => worker.exited));
    const stderr = workers.map((worker) => `worker ${worker.child.pid}: ${worker.stderr()}`);
    expect(exits, stderr.join("\n")).toEqual(workers.map(() => 0));

    const total = WORKERS * SECTIONS;
    // No lost update: every read-modify-write saw the previous one's write.
    const state = await counter.read(settings.key);
    expect(state.writes).toBe(total);

    const records = await log.read();
    const pids = workers.map((worker) => worker.child.pid ?? 0);
    const handoffs = checkRun(records, pids, new Map([[settings.key, state]]));
    console.log(
      `[cross-process ${target.store}] ${total} sections, ${handoffs} hand-offs between processes`,
    );
    expect(handoffs).toBeGreaterThanOrEqual(WORKERS);
  } finally {
    for (const worker of workers) {
      worker.kill();
    }
    await Promise.all(workers.map((worker) => worker.exited));
    await cleanUp(connection, settings);
    await adapter.dropSchema?.();
    await counter.drop([settings.key]);
    await log.drop();
    await adapter.close?.();
    await connection.close();
  }
}

/**
 * Every worker ran SECTIONS sections; in the order they were logged the tokens strictly
 * increase; the shared checker finds nothing (no overlap in time, the resource holds every
 * write). Returns how many times the key changed hands between processes.
 */
function checkRun(
  log: readonly SectionRecord[],
  pids: readonly number[],
  resourceState: Map<string, { token: number; writes: number }>,
): number {
  expect(log).toHaveLength(pids.length * SECTIONS);
  const counts = new Map<number, number>();
  for (const section of log) {
    counts.set(section.pid ?? 0, (counts.get(section.pid ?? 0) ?? 0) + 1);
  }
  expect([...counts.keys()].sort()).toEqual([...pids].sort());
  expect([...counts.values()]).toEqual(pids.map(() => SECTIONS));
  for (let i = 1; i < log.length; i++) {
    const [before, after] = [log[i - 1], log[i]] as [SectionRecord, SectionRecord];
    expect(after.token, `section ${i} after section ${i - 1}`).toBeGreaterThan(before.token);
  }
  const result = checkSections(log, { resource: resourceState });
  expect(result.violations).toEqual([]);
  expect(result.checked).toBe(log.length);
  return result.handoffs;
}
