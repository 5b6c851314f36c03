// A pg.Pool given as a KyselyLockAdapter's listener stays the application's: ending it is not
// held up by the client the adapter checked out to LISTEN, and closing the adapter first is
// not needed.
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { KyselyLockAdapter } from "../../src/lock/adapters/kysely/kysely-lock-adapter.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { createPgPool, describeWithBackend, uniqueName } from "../harness/backends.js";

const LONG = TimeSpan.fromSeconds(10);

/** `promise`, or "still pending" after `ms` (the timer does not keep the process alive). */
function within<T>(promise: Promise<T>, ms: number): Promise<T | "still pending"> {
  return Promise.race([
    promise,
    new Promise<"still pending">((resolve) => setTimeout(resolve, ms, "still pending").unref()),
  ]);
}

describeWithBackend("postgres", (url) => {
  const tableName = uniqueName("listener");
  let kysely: Kysely<unknown>;

  beforeAll(async () => {
    kysely = new Kysely({ dialect: new PostgresDialect({ pool: createPgPool(url) }) });
    await new KyselyLockAdapter({ kysely, tableName }).init();
  });

  afterAll(async () => {
    await new KyselyLockAdapter({ kysely, tableName }).dropSchema();
    await kysely.destroy();
  });

  test("ending the listener pool while a wait listens resolves without closing the adapter; later waits fail", async () => {
    const listener = new pg.Pool({ connectionString: url, max: 2 });
    const adapter = new KyselyLockAdapter({ kysely, tableName, listener });
    const key = uniqueName("key");
    expect(await adapter.acquire(key, "holder", LONG)).toMatchObject({ acquired: true });
    const controller = new AbortController();
    const waiting = adapter.waitForRelease?.(key, LONG, controller.signal, {
      lockId: "waiter",
      ttl: LONG,
    });
    const outcome = waiting?.then(
      () => "ended",
      (reason: unknown) => reason,
    );
    // Listening: the pool's one client is checked out.
    while (listener.totalCount === 0 || listener.idleCount > 0) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(await within(listener.end(), 5_000)).toBeUndefined();
    expect(listener.totalCount).toBe(0);

    await expect(
      adapter.waitForRelease?.(key, LONG, new AbortController().signal, {
        lockId: "late",
        ttl: LONG,
      }),
    ).rejects.toThrow(/pool/);
    controller.abort("gave up");
    expect(await outcome).toBe("gave up");
    await adapter.forceRelease(key);
  });
});
