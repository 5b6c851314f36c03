/**
 * A torture run's backend as the parent process sees it: where the workers find the locks and
 * the guarded resource, the faults only the parent can inject (a Redis restart, terminated
 * PostgreSQL connections), what the resource and the log hold at the end, and the clean-up.
 * The connections, the log and the resource are the shared harness's (examples/processes/).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "kysely";
import type { Outage, ResourceState } from "../../examples/processes/check-sections.js";
import { resource, sectionLog } from "../../examples/processes/section-log.js";
import {
  connect,
  lockAdapterOn,
  type StoreConnection,
  semaphoreAdapterOn,
} from "../../examples/processes/stores.js";
import { PrivateRedisServer } from "../harness/private-redis.js";
import { dataNames, type SectionRecord, type TortureBackend } from "./torture-protocol.js";

export type TortureStoreSettings = {
  backend: TortureBackend;
  /** The server (unused for SQLite); on Redis it keeps the resource and the log only. */
  url?: string;
  name: string;
  keys: string[];
  /** The run's clock (ms since its epoch), for the outages. */
  now: () => number;
  /** The run takes semaphores (of this limit): their tables, not the lock's. */
  limit?: number;
};

/** The backend as this process sees it: where workers go, its faults, the resource and the log. */
export type TortureStore = {
  lockTarget: string;
  resourceTarget: string;
  /** Where a delay proxy forwards to; null: no network (SQLite). */
  lockEndpoint: { host: string; port: number } | null;
  /** Redis: kills the lock server (SIGKILL), keeps it down a moment, starts it again. */
  restart?: () => Promise<Outage>;
  /** PostgreSQL: terminates every lock connection of the workers; answers how many. */
  terminate?: () => Promise<number>;
  /** The token the guarded resource holds for `key` (0: none yet). */
  resourceToken(key: string): Promise<number>;
  readResource(): Promise<Map<string, ResourceState>>;
  readLog(): Promise<SectionRecord[]>;
  close(): Promise<void>;
};

function endpointOf(url: string, defaultPort: number): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: parsed.port === "" ? defaultPort : Number(parsed.port) };
}

export async function openTortureStore(settings: TortureStoreSettings): Promise<TortureStore> {
  const { backend, now } = settings;
  if (backend === "redis") {
    const url = required(settings);
    const server = await PrivateRedisServer.start();
    const data = await dataOn(await connect({ store: "redis", target: url }), settings);
    return {
      ...data,
      lockTarget: server.url,
      resourceTarget: url,
      lockEndpoint: { host: "127.0.0.1", port: server.port },
      restart: async () => {
        const from = now();
        await server.stop();
        const dead = now();
        // Down long enough that the clients' calls fail rather than wait for the reconnect.
        await sleep(400);
        await server.start();
        return { from, dead, back: now() };
      },
      close: async () => {
        await data.close();
        await server.stop();
      },
    };
  }
  if (backend === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "hasp-torture-"));
    const file = join(dir, "locks.db");
    const data = await sqlStore(await connect({ store: "sqlite", target: file }), settings);
    return {
      ...data,
      lockTarget: file,
      resourceTarget: file,
      lockEndpoint: null,
      close: async () => {
        await data.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const url = required(settings);
  const connection = await connect({ store: backend, target: url }, { connections: 2 });
  const data = await sqlStore(connection, settings);
  const where = { lockTarget: url, resourceTarget: url };
  if (backend === "mysql") {
    return { ...data, ...where, lockEndpoint: endpointOf(url, 3306) };
  }
  return {
    ...data,
    ...where,
    lockEndpoint: endpointOf(url, 5432),
    terminate: async () => {
      if (connection.store === "redis") {
        return 0;
      }
      // The lock connections of every worker: its pool and its LISTEN connection, not the
      // resource's (a torn write to the resource would prove nothing about the lock).
      const { rows } = await sql<{ terminated: boolean }>`
        SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity
        WHERE datname = current_database()
          AND application_name IN (${`${settings.name}_lock`}, ${`${settings.name}_lock_listen`})`.execute(
        connection.kysely,
      );
      return rows.filter((row) => row.terminated).length;
    },
  };
}

function required(settings: TortureStoreSettings): string {
  if (settings.url === undefined) {
    throw new Error(`a ${settings.backend} torture run needs the server's URL`);
  }
  return settings.url;
}

type TortureData = Pick<TortureStore, "resourceToken" | "readResource" | "readLog" | "close">;

/** The resource (each key at token 0) and the log, emptied, on `connection`. */
async function dataOn(
  connection: StoreConnection,
  { name, keys }: TortureStoreSettings,
  dropLocks: () => Promise<void> = async () => {},
): Promise<TortureData> {
  const names = dataNames(name);
  const res = resource(connection, names.resource);
  const log = sectionLog<SectionRecord>(connection, names.log);
  const drop = async () => {
    await dropLocks();
    await res.drop(keys);
    await log.drop();
  };
  try {
    await res.drop(keys);
    await res.create(keys);
    await log.create();
  } catch (error) {
    await drop().catch(() => {});
    await connection.close();
    throw error;
  }
  return {
    resourceToken: async (key) => (await res.read(key)).token,
    readResource: () => res.readAll(keys),
    readLog: () => log.read(),
    close: async () => {
      await drop();
      await connection.close();
    },
  };
}

/** On SQL, the lock table (or the semaphore's) too, through the adapter. */
async function sqlStore(
  connection: StoreConnection,
  settings: TortureStoreSettings,
): Promise<TortureData> {
  const adapter =
    settings.limit === undefined
      ? await lockAdapterOn(connection, settings.name)
      : await semaphoreAdapterOn(connection, settings.name);
  const dropLocks = async () => {
    await adapter.dropSchema?.();
  };
  try {
    await adapter.init?.();
  } catch (error) {
    await dropLocks().catch(() => {});
    await connection.close();
    throw error;
  }
  return dataOn(connection, settings, dropLocks);
}
