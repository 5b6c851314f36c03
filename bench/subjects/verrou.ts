// Peer: @verrou/core (issue 7), on each store it ships that a bench backend has: memory, Redis
// (ioredis) and its database store through Kysely (PostgreSQL, MySQL/MariaDB, SQLite), with the
// same driver, pool size and SQLite setup as raw and hasp. `acquireImmediately`/`release` for the
// cycle scenarios, `run` (its retry loop) for the contended ones, a new lock (owner) per cycle or
// section. Its retry delay is set to 10 ms, the raw baseline's poll (its default is 250 ms). The
// store is wrapped only to count `save` calls (acquire attempts).

import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { E_LOCK_NOT_OWNED, type Lock, LockFactory } from "@verrou/core";
import { KyselyAdapter, kyselyStore } from "@verrou/core/drivers/kysely";
import { memoryStore } from "@verrou/core/drivers/memory";
import { redisStore } from "@verrou/core/drivers/redis";
import type { LockStore } from "@verrou/core/types";
import type { Redis } from "ioredis";
import { Kysely, MysqlDialect, PostgresDialect, type SqliteDatabase, SqliteDialect } from "kysely";
import { countCommands, createRedisClient, deleteKeysContaining } from "../redis.js";
import { createMysqlPool, createPgPool, openSqlite, POOL_SIZE, sqliteDirectory } from "../sql.js";
import type {
  Counters,
  LockClient,
  SubjectDefinition,
  SubjectEnvironment,
  SubjectFixture,
} from "../types.js";

const POLL_MS = 10;

function countingStore(store: LockStore, counters: Counters): LockStore {
  return {
    save: (key, owner, ttl) => {
      counters.attempts += 1;
      return store.save(key, owner, ttl);
    },
    delete: (key, owner) => store.delete(key, owner),
    forceDelete: (key) => store.forceDelete(key),
    exists: (key) => store.exists(key),
    extend: (key, owner, duration) => store.extend(key, owner, duration),
  };
}

/** verrou's release resolves or throws E_LOCK_NOT_OWNED; the bench wants a boolean. */
async function release(lock: Lock): Promise<boolean> {
  try {
    await lock.release();
    return true;
  } catch (error) {
    if (error instanceof E_LOCK_NOT_OWNED) {
      return false;
    }
    throw error;
  }
}

function verrouClient(name: string, store: LockStore, env: SubjectEnvironment): LockClient {
  const factory = new LockFactory(countingStore(store, env.counters), {
    retry: { delay: POLL_MS, timeout: env.blockingTimeMs },
  });
  return {
    async tryAcquire(key) {
      const lock = factory.createLock(`${env.prefix}:${key}`, env.ttlMs);
      return (await lock.acquireImmediately()) ? { release: () => release(lock) } : null;
    },
    async runExclusive(key, section) {
      const [acquired] = await factory.createLock(`${env.prefix}:${key}`, env.ttlMs).run(section);
      if (!acquired) {
        throw new Error(`${name}: "${key}" not acquired within ${env.blockingTimeMs} ms`);
      }
    },
  };
}

export const verrouMemory: SubjectDefinition = {
  name: "verrou-memory",
  backend: "memory",
  baseline: false,
  description:
    "@verrou/core memoryStore (an async-mutex per key), one store shared by the child's clients, 10 ms retry delay",
  async setup(env) {
    env.counters.commands = -1;
    const store = memoryStore().factory();
    return {
      async connect() {
        return verrouClient("verrou-memory", store, env);
      },
      async close() {},
    };
  },
};

export const verrouRedis: SubjectDefinition = {
  name: "verrou-redis",
  backend: "redis",
  baseline: false,
  description:
    "@verrou/core redisStore, one ioredis client per client: SET NX PX, EVAL of a compare-and-delete script, 10 ms retry delay",
  async setup(env) {
    const url = env.redisUrl;
    if (url === undefined) {
      throw new Error("verrou-redis needs Redis");
    }
    const clients: Redis[] = [];
    return {
      async connect() {
        const client = createRedisClient(url);
        clients.push(client);
        await client.ping();
        countCommands(client, env.counters);
        return verrouClient("verrou-redis", redisStore({ connection: client }).factory(), env);
      },
      async close() {
        await Promise.all(clients.map((client) => client.quit()));
        await deleteKeysContaining(url, env.prefix);
      },
    };
  },
};

type AnyKysely = Kysely<any>;

/**
 * A verrou database-store subject over `open` (one client's Kysely; `connect` calls it once per
 * client). verrou's own DDL creates the table once, before the first client: its stores are made
 * with `autoCreateTable: false`, since eight concurrent `CREATE TABLE IF NOT EXISTS` can collide
 * on PostgreSQL. `close()` drops the table before destroying the clients.
 */
function verrouSqlSubject(
  name: string,
  env: SubjectEnvironment,
  open: () => AnyKysely,
): SubjectFixture {
  const tableName = `${env.prefix}_verrou`;
  const opened: AnyKysely[] = [];
  let created: Promise<void> | undefined;
  return {
    async connect() {
      const kysely = open();
      opened.push(kysely);
      created ??= (async () => {
        const adapter = new KyselyAdapter(kysely);
        adapter.setTableName(tableName);
        await adapter.createTableIfNotExists();
      })();
      await created;
      const store = kyselyStore({ connection: kysely, tableName, autoCreateTable: false });
      return verrouClient(name, store.factory(), env);
    },
    async close() {
      try {
        await opened[0]?.schema.dropTable(tableName).ifExists().execute();
      } finally {
        await Promise.all(opened.map((kysely) => kysely.destroy()));
      }
    },
  };
}

export const verrouPostgres: SubjectDefinition = {
  name: "verrou-postgres",
  backend: "postgres",
  baseline: false,
  description: `@verrou/core kyselyStore, Kysely on a pg Pool (${POOL_SIZE}) per client: INSERT, on conflict UPDATE ... WHERE expiration <= client clock; SELECT then DELETE to release; 10 ms retry delay`,
  async setup(env) {
    const url = env.postgresUrl;
    if (url === undefined) {
      throw new Error("verrou-postgres needs PostgreSQL");
    }
    return verrouSqlSubject(
      "verrou-postgres",
      env,
      () => new Kysely({ dialect: new PostgresDialect({ pool: createPgPool(url, env.counters) }) }),
    );
  },
};

export const verrouMysql: SubjectDefinition = {
  name: "verrou-mysql",
  backend: "mysql",
  baseline: false,
  description: `@verrou/core kyselyStore, Kysely on a mysql2 pool (${POOL_SIZE}) per client, as verrou-postgres`,
  async setup(env) {
    const url = env.mysqlUrl;
    if (url === undefined) {
      throw new Error("verrou-mysql needs MySQL or MariaDB");
    }
    return verrouSqlSubject(
      "verrou-mysql",
      env,
      () => new Kysely({ dialect: new MysqlDialect({ pool: createMysqlPool(url, env.counters) }) }),
    );
  },
};

export const verrouSqlite: SubjectDefinition = {
  name: "verrou-sqlite",
  backend: "sqlite",
  baseline: false,
  description:
    "@verrou/core kyselyStore, Kysely on better-sqlite3 (WAL, a connection per client, statements kept prepared, as hasp-sqlite), as verrou-postgres",
  async setup(env) {
    const directory = sqliteDirectory(env.prefix);
    mkdirSync(directory, { recursive: true });
    const file = join(directory, "locks.db");
    const fixture = verrouSqlSubject("verrou-sqlite", env, () => {
      const database = openSqlite(file);
      // The same connection hasp-sqlite gets: statements prepared once, each run counted.
      const statements = new Map<string, ReturnType<typeof database.prepare>>();
      const cached: SqliteDatabase = {
        close: () => database.close(),
        prepare: (source) => {
          env.counters.commands += 1;
          let statement = statements.get(source);
          if (statement === undefined) {
            statement = database.prepare(source);
            statements.set(source, statement);
          }
          return statement;
        },
      };
      return new Kysely({ dialect: new SqliteDialect({ database: cached }) });
    });
    return {
      connect: () => fixture.connect(),
      async close() {
        try {
          await fixture.close();
        } finally {
          rmSync(directory, { recursive: true, force: true });
        }
      },
    };
  },
};
