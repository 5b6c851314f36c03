// The errors a new user meets first: an adapter whose init() cannot reach its server, a lock
// operation before init(), and (MySQL) a pool from mysql2/promise.
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Kysely, MysqlDialect, type MysqlPool, PostgresDialect, SqliteDialect } from "kysely";
import { MongoClient } from "mongodb";
import mysql from "mysql2";
import mysqlPromise from "mysql2/promise";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { KyselyLockAdapter } from "../../src/lock/adapters/kysely/kysely-lock-adapter.js";
import { MongodbLockAdapter } from "../../src/lock/adapters/mongodb/mongodb-lock-adapter.js";
import { isLockBackendError, LockBackendError } from "../../src/lock/contracts/lock-errors.js";
import { LOCK_EVENTS } from "../../src/lock/contracts/lock-events.js";
import { LockProvider } from "../../src/lock/lock-provider.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { describeWithBackend, uniqueName } from "../harness/backends.js";

/** Nothing listens there: connecting is refused at once. */
const CLOSED = "127.0.0.1:1";

/** The LockBackendError `promise` rejects with (failing the test when it is not one). */
async function backendError(promise: PromiseLike<unknown>): Promise<LockBackendError> {
  const error = await Promise.resolve(promise).then(
    () => expect.fail("expected a rejection"),
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(LockBackendError);
  return error as LockBackendError;
}

describe("init() without a server: a LockBackendError with the driver's error as cause", () => {
  test("PostgreSQL (pg) on a closed port", async () => {
    const kysely = new Kysely({
      dialect: new PostgresDialect({
        pool: new pg.Pool({ connectionString: `postgres://${CLOSED}/x` }),
      }),
    });
    try {
      const error = await backendError(new KyselyLockAdapter({ kysely }).init());
      expect(error.operation).toBe("init");
      expect(error.key).toBe("");
      expect((error.cause as { code?: unknown }).code).toBe("ECONNREFUSED");
      expect(error.message).toBe(
        `Lock adapter: init failed in the backend: connect ECONNREFUSED ${CLOSED}`,
      );
    } finally {
      await kysely.destroy();
    }
  });

  test("MySQL (mysql2) on a closed port", async () => {
    const pool = mysql.createPool({ uri: `mysql://root@${CLOSED}/x` });
    const kysely = new Kysely({ dialect: new MysqlDialect({ pool }) });
    try {
      const error = await backendError(new KyselyLockAdapter({ kysely }).init());
      expect(error.operation).toBe("init");
      expect((error.cause as { code?: unknown }).code).toBe("ECONNREFUSED");
      expect(error.message).toMatch(/^Lock adapter: init failed in the backend: .*ECONNREFUSED/);
    } finally {
      await kysely.destroy();
    }
  });

  test("SQLite (better-sqlite3) on a file in a directory that does not exist", async () => {
    const path = join(tmpdir(), uniqueName("missing-dir"), "locks.db");
    const kysely = new Kysely({
      dialect: new SqliteDialect({ database: async () => new Database(path) }),
    });
    try {
      const error = await backendError(new KyselyLockAdapter({ kysely }).init());
      expect(error.operation).toBe("init");
      // better-sqlite3's own error, thrown as Kysely opens the database.
      expect(error.cause).toBeInstanceOf(TypeError);
      expect(error.message).toBe(
        "Lock adapter: init failed in the backend: Cannot open database because the directory does not exist",
      );
    } finally {
      await kysely.destroy().catch(() => {}); // it never opened
    }
  });

  test("MongoDB on a closed port", async () => {
    const client = new MongoClient(`mongodb://${CLOSED}/x`, { serverSelectionTimeoutMS: 300 });
    try {
      const error = await backendError(new MongodbLockAdapter({ database: client.db() }).init());
      expect(error.operation).toBe("init");
      expect(error.cause).toBeInstanceOf(Error);
      expect(error.message).toMatch(/^Lock adapter: init failed in the backend: .*ECONNREFUSED/);
    } finally {
      await client.close();
    }
  });
});

const HINT =
  /init\(\) on the KyselyLockAdapter at start-up, or apply the migration in hasp's docs\/adapters\/sql\.md/;

/**
 * A lock operation on an adapter whose init() never ran: the caller's LockBackendError keeps the
 * driver's error as cause and says to run init(); so does the adapter's own, called directly.
 */
function operationBeforeInit(
  createKysely: () => Kysely<unknown>,
  cause: { code: string; message: RegExp },
) {
  let kysely: Kysely<unknown>;
  beforeAll(() => {
    kysely = createKysely();
  });
  afterAll(() => kysely.destroy());

  test(`each operation fails with a LockBackendError that names init(); cause ${cause.code}`, async () => {
    const tableName = uniqueName("never_init");
    const adapter = new KyselyLockAdapter({ kysely, tableName });
    const provider = new LockProvider({ adapter, namespace: new Namespace("app") });
    const heard: unknown[] = [];
    await provider.addListener(LOCK_EVENTS.UNEXPECTED_ERROR, ({ error }) => {
      heard.push(error);
    });
    const lock = provider.create("invoice:42", { ttl: TimeSpan.fromSeconds(5) });

    const error = await backendError(lock.acquire());
    expect(error.key).toBe("invoice:42");
    expect(error.operation).toBe("acquire");
    expect(error.cause).toMatchObject({ code: cause.code });
    expect((error.cause as Error).message).toMatch(cause.message);
    expect(error.hint).toMatch(HINT);
    expect(error.hint).toContain(`"${tableName}"`);
    expect(error.message).toContain(`Lock "invoice:42": acquire failed in the backend: `);
    expect(error.message).toMatch(HINT);
    // Listeners get the whole error, hint included.
    expect(heard).toHaveLength(1);
    expect(heard[0]).toBe(error);

    for (const call of [() => lock.getState(), () => lock.forceRelease()]) {
      expect((await backendError(call())).hint).toMatch(HINT);
    }
    const direct = await backendError(adapter.release("app:invoice:42", "owner"));
    expect(direct.key).toBe("app:invoice:42");
    expect(direct.operation).toBe("release");
    expect(direct.hint).toMatch(HINT);
    expect(isLockBackendError(await adapter.removeExpired().catch((e: unknown) => e))).toBe(true);

    await adapter.init();
    expect(await lock.acquire()).toBe(true);
    await lock.release();
    await adapter.dropSchema();
  });
}

describe("SQLite: an operation before init()", () => {
  operationBeforeInit(
    () => new Kysely({ dialect: new SqliteDialect({ database: new Database(":memory:") }) }),
    { code: "SQLITE_ERROR", message: /^no such table: hasp_t_never_init/ },
  );
});

describeWithBackend("postgres", (url) => {
  describe("an operation before init()", () => {
    operationBeforeInit(
      () =>
        new Kysely({
          dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url }) }),
        }),
      // Each operation is a procedure of the table's own.
      {
        code: "42883",
        message: /^procedure "?hasp_t_never_init.*:acquire"?\(.*\) does not exist$/,
      },
    );
  });
});

describeWithBackend("mysql", (url) => {
  describe("an operation before init()", () => {
    operationBeforeInit(
      () => new Kysely({ dialect: new MysqlDialect({ pool: mysql.createPool({ uri: url }) }) }),
      { code: "ER_NO_SUCH_TABLE", message: /hasp_t_never_init.* doesn't exist/ },
    );
  });

  // 15 s of the adapter's wait for a connection, with room for a busy machine; a hang fails here.
  test("a pool from mysql2/promise: init() fails, naming the pool to pass, instead of hanging", {
    timeout: 40_000,
  }, async () => {
    const promisePool = mysqlPromise.createPool({ uri: url });
    const kysely = new Kysely({
      // The mistake under test: the promise pool's getConnection() ignores Kysely's callback.
      dialect: new MysqlDialect({ pool: promisePool as unknown as MysqlPool }),
    });
    try {
      const started = Date.now();
      const error = await backendError(new KyselyLockAdapter({ kysely }).init());
      expect(Date.now() - started).toBeGreaterThanOrEqual(14_000);
      expect(error.operation).toBe("init");
      expect(error.hint).toMatch(/"mysql2\/promise"/);
      expect(error.message).toContain('createPool from "mysql2"');
    } finally {
      await promisePool.end();
    }
  });
});
