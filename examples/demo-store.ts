// The demo's store, opened the same way by the coordinator (demo.ts) and by every worker
// (demo-worker.ts): a lock adapter, plus the section log the workers append to and the
// coordinator checks. On SQL the log is a table beside the lock table; on Redis, a list.
import type { Redis } from "ioredis";
import type { ILockAdapter } from "../src/lock/contracts/index.js";
import { Namespace } from "../src/namespace/index.js";
import { TimeSpan } from "../src/time-span/index.js";
import type { DemoStoreSettings } from "./demo-protocol.js";
import type { SectionRecord } from "./processes/check-sections.js";
import { sectionLog } from "./processes/section-log.js";
import { connect, lockAdapterOn } from "./processes/stores.js";

export type DemoStore = {
  readonly adapter: ILockAdapter;
  /** What the run creates, for `--keep`. */
  readonly created: string;
  /**
   * The pause between tries of a blocking acquire. Only SQLite and MySQL use it: Redis and
   * PostgreSQL (with a listener) wake a waiter with the release itself.
   */
  readonly blockingInterval: TimeSpan;
  /** Creates the lock table and the log (the coordinator, before any worker starts). */
  init(): Promise<void>;
  append(record: SectionRecord): Promise<void>;
  /** The log, in the order the sections were written. */
  read(): Promise<SectionRecord[]>;
  /** Removes what the run created on the server. */
  drop(): Promise<void>;
  close(): Promise<void>;
};

/** The namespace of a run's keys, so that runs sharing a server never contend. */
export function demoNamespace(run: string): Namespace {
  return new Namespace(["hasp-demo", run]);
}

const WHERE = { sqlite: "the file", postgres: "PostgreSQL", mysql: "MySQL" } as const;

/**
 * Connects to the store (and fails when it does not answer within a few seconds).
 * `listen`: on PostgreSQL, a connection of its own for release notifications (the workers).
 */
export async function openDemoStore(
  settings: DemoStoreSettings,
  { listen = false }: { listen?: boolean } = {},
): Promise<DemoStore> {
  const connection = await connect(settings, { listen });
  const { store, target, run } = settings;
  const lockTable = `hasp_demo_${run}`;
  const adapter = await lockAdapterOn(connection, lockTable);
  const logName = store === "redis" ? `hasp-demo:${run}:sections` : `${lockTable}_log`;
  const log = sectionLog(connection, logName);
  const keys = `{${demoNamespace(run).toString()}:*`;
  return {
    adapter,
    created:
      store === "redis"
        ? `the Redis keys ${keys}} and ${logName}`
        : `the tables ${lockTable} and ${logName} in ${store === "sqlite" ? `the file ${target}` : WHERE[store]}`,
    blockingInterval: TimeSpan.fromMilliseconds(20),
    async init() {
      await adapter.init?.();
      await log.create();
    },
    append: log.append,
    read: log.read,
    async drop() {
      await log.drop();
      if (connection.store === "redis") {
        // Each lock leaves a fencing counter behind (it outlives the hold by design).
        await deleteMatching(connection.redis, keys);
      } else {
        await adapter.dropSchema?.();
      }
    },
    async close() {
      await adapter.close?.();
      await connection.close();
    },
  };
}

async function deleteMatching(redis: Redis, pattern: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    if (keys.length > 0) {
      await redis.del(...keys);
    }
    cursor = next;
  } while (cursor !== "0");
}
