// What the workers of a multi-process run write beside the locks, in the same store: the log of
// their critical sections (read back and judged by check-sections.ts), and a resource per key
// that the sections write (a token and a count of writes: what a lost update or a stale write
// would show). On SQL they are tables; on Redis, a list and a hash per key.
import { sql } from "kysely";
import type { ResourceState, SectionRecord } from "./check-sections.js";
import type { StoreConnection } from "./stores.js";

/** The log of critical sections, in the order they were written. */
export type SectionLog<T = SectionRecord> = {
  /** Creates it empty (the coordinator, before any worker starts). */
  create(): Promise<void>;
  append(record: T): Promise<void>;
  read(): Promise<T[]>;
  drop(): Promise<void>;
};

/**
 * The section log on `connection`: `name` is the table on SQL, the list's key on Redis. Each
 * entry is the record as JSON.
 */
export function sectionLog<T = SectionRecord>(
  connection: StoreConnection,
  name: string,
): SectionLog<T> {
  if (connection.store === "redis") {
    const { redis } = connection;
    return {
      create: async () => {
        await redis.del(name);
      },
      append: async (record) => {
        await redis.rpush(name, JSON.stringify(record));
      },
      read: async () => (await redis.lrange(name, 0, -1)).map((line) => JSON.parse(line) as T),
      drop: async () => {
        await redis.del(name);
      },
    };
  }
  const { kysely } = connection;
  const table = sql.table(name);
  const seq = {
    postgres: sql`bigserial PRIMARY KEY`,
    mysql: sql`BIGINT AUTO_INCREMENT PRIMARY KEY`,
    sqlite: sql`INTEGER PRIMARY KEY AUTOINCREMENT`,
  }[connection.store];
  return {
    create: async () => {
      await sql`CREATE TABLE IF NOT EXISTS ${table} (seq ${seq}, entry TEXT NOT NULL)`.execute(
        kysely,
      );
    },
    append: async (record) => {
      await sql`INSERT INTO ${table} (entry) VALUES (${JSON.stringify(record)})`.execute(kysely);
    },
    read: async () => {
      const { rows } = await sql<{
        entry: string;
      }>`SELECT entry FROM ${table} ORDER BY seq`.execute(kysely);
      return rows.map((row) => JSON.parse(row.entry) as T);
    },
    drop: async () => {
      await sql`DROP TABLE IF EXISTS ${table}`.execute(kysely);
    },
  };
}

/** Per key, the token last written and how many writes it took. */
export type Resource = {
  /** Creates it with each key at token 0, no writes. */
  create(keys: readonly string[]): Promise<void>;
  read(key: string): Promise<ResourceState>;
  readAll(keys: readonly string[]): Promise<Map<string, ResourceState>>;
  /** Stores `state` as it is: a read, then this, is the update a lock must keep whole. */
  write(key: string, state: ResourceState): Promise<void>;
  /**
   * The fencing guard: stores `token` (and one more write) unless it is below the stored one;
   * answers whether it did.
   */
  writeIfNotStale(key: string, token: number): Promise<boolean>;
  drop(keys: readonly string[]): Promise<void>;
};

/**
 * The guarded write on Redis, one hash per key (`token`, `writes`).
 *
 * KEYS[1]: the key's resource hash.
 * ARGV[1]: the writer's fencing token.
 * Returns 1 when the token is not below the stored one (stored, `writes` + 1), 0 when refused.
 */
const GUARDED_WRITE_LUA = `
local stored = tonumber(redis.call('HGET', KEYS[1], 'token') or '0')
if tonumber(ARGV[1]) < stored then
  return 0
end
redis.call('HSET', KEYS[1], 'token', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'writes', 1)
return 1
`;

/** The resource on `connection`: `name` is the table on SQL, the prefix of each key's hash on Redis. */
export function resource(connection: StoreConnection, name: string): Resource {
  const store = resourceStore(connection, name);
  return {
    ...store,
    readAll: async (keys) =>
      new Map(await Promise.all(keys.map(async (key) => [key, await store.read(key)] as const))),
  };
}

function resourceStore(connection: StoreConnection, name: string): Omit<Resource, "readAll"> {
  if (connection.store === "redis") {
    const { redis } = connection;
    const hash = (key: string) => `${name}:${key}`;
    return {
      create: async (keys) => {
        if (keys.length > 0) {
          await redis.del(...keys.map(hash));
        }
      },
      read: async (key) => {
        const { token, writes } = await redis.hgetall(hash(key));
        return { token: Number(token ?? 0), writes: Number(writes ?? 0) };
      },
      write: async (key, state) => {
        await redis.hset(hash(key), "token", state.token, "writes", state.writes);
      },
      writeIfNotStale: async (key, token) =>
        (await redis.eval(GUARDED_WRITE_LUA, 1, hash(key), token)) === 1,
      drop: async (keys) => {
        if (keys.length > 0) {
          await redis.del(...keys.map(hash));
        }
      },
    };
  }
  const { kysely } = connection;
  const table = sql.table(name);
  const read = async (key: string) => {
    const { rows } = await sql<{
      token: number | string;
      writes: number | string;
    }>`SELECT token, writes FROM ${table} WHERE res_key = ${key}`.execute(kysely);
    return { token: Number(rows[0]?.token ?? 0), writes: Number(rows[0]?.writes ?? 0) };
  };
  return {
    create: async (keys) => {
      await sql`CREATE TABLE ${table} (res_key VARCHAR(32) PRIMARY KEY, token BIGINT NOT NULL, writes INT NOT NULL)`.execute(
        kysely,
      );
      for (const key of keys) {
        await sql`INSERT INTO ${table} (res_key, token, writes) VALUES (${key}, 0, 0)`.execute(
          kysely,
        );
      }
    },
    read,
    write: async (key, { token, writes }) => {
      await sql`UPDATE ${table} SET token = ${token}, writes = ${writes} WHERE res_key = ${key}`.execute(
        kysely,
      );
    },
    writeIfNotStale: async (key, token) => {
      const result = await sql`UPDATE ${table} SET token = ${token}, writes = writes + 1
        WHERE res_key = ${key} AND token <= ${token}`.execute(kysely);
      return Number(result.numAffectedRows ?? 0) === 1;
    },
    drop: async () => {
      await sql`DROP TABLE IF EXISTS ${table}`.execute(kysely);
    },
  };
}
