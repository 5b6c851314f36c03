import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, expect, test, vi } from "vitest";
import {
  RedisLockAdapter,
  RedisReplicaAckError,
  redisHoldKey,
} from "../../src/lock/adapters/redis/redis-lock-adapter.js";
import type { ILock } from "../../src/lock/contracts/lock.js";
import { LockBackendError } from "../../src/lock/contracts/lock-errors.js";
import { LOCK_STATE } from "../../src/lock/contracts/lock-state.js";
import { LockProvider } from "../../src/lock/lock-provider.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { createRedisClient, describeWithBackend, uniqueName } from "../harness/backends.js";
import { PrivateRedisServer } from "../harness/private-redis.js";

const TTL_MS = 30_000;
const TTL = TimeSpan.fromMilliseconds(TTL_MS);
const FENCE_GRACE_MS = 60_000;

// waitForReplicas against a real replica: a private primary and a replica of it, which a test
// stalls (SIGSTOP) so that WAIT times out, as a replica behind a slow link would.
describeWithBackend("redis", () => {
  let directory: string;
  let primary: PrivateRedisServer;
  let replica: PrivateRedisServer;
  let client: Redis;
  let adapter: RedisLockAdapter;
  let provider: LockProvider;
  let namespace: Namespace;

  /** Resolves once the replica acknowledged every write so far (WAIT), within 20 s. */
  async function replicaInSync(): Promise<void> {
    const deadline = performance.now() + 20_000;
    for (;;) {
      await client.set("hasp:replicas:sync", String(Date.now()));
      if ((await client.wait(1, 500)) >= 1) {
        return;
      }
      if (performance.now() > deadline) {
        throw new Error(`the replica did not catch up: ${await client.info("replication")}`);
      }
    }
  }

  const holdKeys = (lock: ILock) => {
    const hold = redisHoldKey(lock.key.toString());
    return { hold, fence: `${hold}:fence` };
  };

  /** The error of `attempt`, or null when it succeeded. */
  const failureOf = (attempt: PromiseLike<unknown>) =>
    Promise.resolve(attempt).then(
      () => null,
      (error: unknown) => error,
    );

  function expectReplicaAckError(error: unknown, operation: "acquire" | "refresh"): void {
    expect(error).toBeInstanceOf(LockBackendError);
    const cause = (error as LockBackendError).cause;
    expect(cause).toBeInstanceOf(RedisReplicaAckError);
    expect(cause).toMatchObject({ operation, acknowledged: 0, required: 1 });
  }

  /** Absolute expiry times (PEXPIRETIME) agree: both come from the server clock, within 2 ms. */
  function expectSameExpiry(actual: number, expected: number): void {
    expect(expected).toBeGreaterThan(0);
    expect(Math.abs(actual - expected), `${actual} vs ${expected}`).toBeLessThanOrEqual(2);
  }

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "hasp-replicas-"));
    primary = await PrivateRedisServer.start(["--dir", directory, "--dbfilename", "primary.rdb"]);
    replica = await PrivateRedisServer.start([
      "--dir",
      directory,
      "--dbfilename",
      "replica.rdb",
      "--replicaof",
      "127.0.0.1",
      String(primary.port),
    ]);
    client = createRedisClient(primary.url);
    adapter = new RedisLockAdapter({
      database: client,
      waitForReplicas: { count: 1, timeout: TimeSpan.fromMilliseconds(200) },
    });
  });

  afterAll(async () => {
    replica?.resume();
    await adapter?.close();
    await client?.quit();
    await replica?.stop();
    await primary?.stop();
    await rm(directory, { recursive: true, force: true });
  });

  beforeEach(async () => {
    namespace = new Namespace(uniqueName("replicas"));
    provider = new LockProvider({ adapter, namespace });
    await replicaInSync();
  });

  afterEach(() => {
    replica.resume();
  });

  test("a re-acquire no replica acknowledged is undone by putting the hold back as it was: same owner, same token, its previous expiry", async () => {
    const lock = provider.create("order", { ttl: TTL });
    const token = await lock.acquireOrFail();
    const { hold, fence } = holdKeys(lock);
    const expiry = await client.pexpiretime(hold);
    // A re-acquire from now on would move the expiry later, beyond the comparison's slack.
    await vi.waitFor(async () => expect(await client.pttl(hold)).toBeLessThan(TTL_MS - 10));

    replica.pause();
    expectReplicaAckError(await failureOf(lock.acquire()), "acquire");

    expect(lock.fencingToken).toBe(token);
    expect(await lock.getState()).toMatchObject({ type: LOCK_STATE.ACQUIRED, fencingToken: token });
    expectSameExpiry(await client.pexpiretime(hold), expiry);
    expectSameExpiry(await client.pexpiretime(fence), expiry + FENCE_GRACE_MS);
    const other = provider.create("order", { ttl: TTL });
    expect(await other.acquire()).toBe(false);
    expect(await other.getState()).toMatchObject({
      type: LOCK_STATE.UNAVAILABLE,
      owner: lock.id,
    });

    replica.resume();
    await replicaInSync();
    expect(await lock.release()).toBe(true);
  });

  test("a refresh no replica acknowledged is undone: the hold's previous expiry is back", async () => {
    const lock = provider.create("order", { ttl: TTL });
    const token = await lock.acquireOrFail();
    const { hold, fence } = holdKeys(lock);
    const expiry = await client.pexpiretime(hold);

    replica.pause();
    expectReplicaAckError(await failureOf(lock.refresh(TimeSpan.fromMinutes(10))), "refresh");

    expectSameExpiry(await client.pexpiretime(hold), expiry);
    expectSameExpiry(await client.pexpiretime(fence), expiry + FENCE_GRACE_MS);
    expect(await lock.getState()).toMatchObject({ type: LOCK_STATE.ACQUIRED, fencingToken: token });

    replica.resume();
    await replicaInSync();
    expect(await lock.release()).toBe(true);
  });

  test("a hold that never expires, re-acquired with a TTL the replicas missed, never expires again", async () => {
    const forever = provider.create("order", { ttl: null, lockId: "forever-owner" });
    const token = await forever.acquireOrFail();
    const { hold, fence } = holdKeys(forever);

    replica.pause();
    const expiring = provider.create("order", { ttl: TTL, lockId: forever.id });
    expectReplicaAckError(await failureOf(expiring.acquire()), "acquire");

    expect(await client.pttl(hold)).toBe(-1);
    expect(await client.pttl(fence)).toBe(-1);
    expect(await forever.getState()).toMatchObject({
      type: LOCK_STATE.ACQUIRED,
      fencingToken: token,
      remainingTime: null,
    });

    replica.resume();
    await replicaInSync();
    expect(await forever.release()).toBe(true);
  });

  test("a new hold no replica acknowledged is still released, for the next owner", async () => {
    const lock = provider.create("order", { ttl: TTL });
    replica.pause();
    expectReplicaAckError(await failureOf(lock.acquire()), "acquire");
    expect(lock.fencingToken).toBeNull();
    expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
    replica.resume();
    await replicaInSync();
    expect(await provider.create("order", { ttl: TTL }).acquire()).toBe(true);
  });

  test("the undo only touches the hold of that owner with that token", async () => {
    type Restore = (
      hold: string,
      fence: string,
      owner: string,
      token: string,
      expiry: string,
    ) => Promise<number>;
    const restore = (client as unknown as { hasp_lock_restore_expiry: Restore })
      .hasp_lock_restore_expiry;
    // An explicit lock id: what the adapter stores as the owner is the id itself.
    const lock = provider.create("order", { ttl: TTL, lockId: "restoring-owner" });
    const token = await lock.acquireOrFail();
    const { hold, fence } = holdKeys(lock);
    const expiry = await client.pexpiretime(hold);
    const earlier = String(expiry - 10_000);
    expect(await restore.call(client, hold, fence, lock.id, String(token + 1), earlier)).toBe(0);
    expect(await restore.call(client, hold, fence, "someone", String(token), earlier)).toBe(0);
    expect(await client.pexpiretime(hold)).toBe(expiry);
    expect(await restore.call(client, hold, fence, lock.id, String(token), earlier)).toBe(1);
    expect(await client.pexpiretime(hold)).toBe(expiry - 10_000);
    await expect(restore.call(client, hold, fence, lock.id, String(token), "1e13")).rejects.toThrow(
      /^ERR hasp: expiry must be/,
    );
    // An expiry already past ends the hold, as its TTL would have.
    expect(await restore.call(client, hold, fence, lock.id, String(token), "1")).toBe(1);
    expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
  });
});
