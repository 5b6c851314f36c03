// The cross-process tests' run: WORKERS processes run SECTIONS critical sections each on one
// key of a store, through the shared harness (examples/processes/); then what they wrote is
// checked. `contend` runs the lock's workers (fixtures/worker.ts): no lost update, tokens
// increasing in section order, no overlap in time, every worker served. The semaphore's run
// (contend-semaphore.ts) shares the skeleton, `runWorkers`.
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { checkSections, type SectionRecord } from "../../examples/processes/check-sections.js";
import { resource, type SectionLog, sectionLog } from "../../examples/processes/section-log.js";
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
  /** The provider's namespace, the adapter's table, the prefix of the resource and the log. */
  name: string;
  key: string;
  sections: number;
};

/** What the coordinator makes on the store: the primitive's adapter, for its schema. */
type CoordinatorAdapter = {
  init?(): Promise<void>;
  dropSchema?(): Promise<void>;
  close?(): Promise<void>;
};

/** What differs between the primitives' runs. */
export type Contention<TSettings extends ContendSettings> = {
  /** The worker's script. */
  worker: string;
  workers: number;
  settings: TSettings;
  adapterOn(connection: StoreConnection, name: string): Promise<CoordinatorAdapter>;
  /** Before the workers start (the log exists). */
  prepare?(connection: StoreConnection): Promise<void>;
  /** Once every worker exited 0: checks what they logged. */
  check(log: SectionLog, connection: StoreConnection, pids: readonly number[]): Promise<void>;
  /** Removes what the run left behind, whatever happened. */
  cleanUp?(connection: StoreConnection): Promise<void>;
};

/** Starts the workers on `target`, lets them go at once, waits for them, checks their log. */
export async function runWorkers<TSettings extends ContendSettings>(
  contention: Contention<TSettings>,
): Promise<void> {
  const { settings } = contention;
  const connection = await connect(settings);
  const adapter = await contention.adapterOn(connection, settings.name);
  const log = sectionLog(connection, `${settings.name}_log`);
  const workers = startWorkers(contention.worker, contention.workers, () => settings);
  try {
    await adapter.init?.();
    await log.create();
    await contention.prepare?.(connection);
    await allReady(workers, 30_000);
    go(workers, process.hrtime.bigint(), {});
    const exits = await Promise.all(workers.map((worker) => worker.exited));
    const stderr = workers.map((worker) => `worker ${worker.child.pid}: ${worker.stderr()}`);
    expect(exits, stderr.join("\n")).toEqual(workers.map(() => 0));
    await contention.check(
      log,
      connection,
      workers.map((worker) => worker.child.pid ?? 0),
    );
  } finally {
    for (const worker of workers) {
      worker.kill();
    }
    await Promise.all(workers.map((worker) => worker.exited));
    await contention.cleanUp?.(connection);
    await adapter.dropSchema?.();
    await log.drop();
    await adapter.close?.();
    await connection.close();
  }
}

/**
 * The lock's run on `target`. `cleanUp`: removes what the locks left behind (SQL: the lock table
 * is dropped by the adapter).
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
  const counterOn = (connection: StoreConnection) => resource(connection, `${settings.name}_res`);
  await runWorkers({
    worker: WORKER,
    workers: WORKERS,
    settings,
    adapterOn: lockAdapterOn,
    prepare: (connection) => counterOn(connection).create([settings.key]),
    async check(log, connection, pids) {
      const total = WORKERS * SECTIONS;
      // No lost update: every read-modify-write saw the previous one's write.
      const state = await counterOn(connection).read(settings.key);
      expect(state.writes).toBe(total);
      const handoffs = checkRun(await log.read(), pids, new Map([[settings.key, state]]));
      console.log(
        `[cross-process ${target.store}] ${total} sections, ${handoffs} hand-offs between processes`,
      );
      expect(handoffs).toBeGreaterThanOrEqual(WORKERS);
    },
    async cleanUp(connection) {
      await cleanUp(connection, settings);
      await counterOn(connection).drop([settings.key]);
    },
  });
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
  expectEveryWorkerServed(log, pids, SECTIONS);
  for (let i = 1; i < log.length; i++) {
    const [before, after] = [log[i - 1], log[i]] as [SectionRecord, SectionRecord];
    expect(after.token, `section ${i} after section ${i - 1}`).toBeGreaterThan(before.token);
  }
  const result = checkSections(log, { resource: resourceState });
  expect(result.violations).toEqual([]);
  expect(result.checked).toBe(log.length);
  return result.handoffs;
}

/** Each worker logged `sections` sections, and nobody else did. */
export function expectEveryWorkerServed(
  log: readonly SectionRecord[],
  pids: readonly number[],
  sections: number,
): void {
  expect(log).toHaveLength(pids.length * sections);
  const counts = new Map<number, number>();
  for (const section of log) {
    counts.set(section.pid ?? 0, (counts.get(section.pid ?? 0) ?? 0) + 1);
  }
  expect([...counts.keys()].sort()).toEqual([...pids].sort());
  expect([...counts.values()]).toEqual(pids.map(() => sections));
}
