import { describe, test } from "vitest";
import type { ISharedLockAdapter } from "../contracts/shared-lock-adapter.js";

/** Settings of {@link sharedLockAdapterTestSuite}: how to get the adapter under test. */
export type SharedLockAdapterTestSuiteSettings = {
  /** A fresh adapter (or one shared by the suite) for each test. */
  createAdapter: () => ISharedLockAdapter | Promise<ISharedLockAdapter>;
  /** Called after each test, once the test's keys are force-released. */
  destroyAdapter?: (adapter: ISharedLockAdapter) => void | Promise<void>;
  /**
   * Whether two adapters from `createAdapter` see the same keys (two clients of one server),
   * so the suite can contend from several instances as several processes would. `false` for
   * an in-process store, where each instance is its own world.
   * @default true
   */
  instancesShareBackend?: boolean;
  /**
   * Put in front of every key the suite uses. A random part per call of the suite always
   * follows it, so runs sharing a server never meet, even with the same prefix.
   * @default "hasp-suite:"
   */
  keyPrefix?: string;
  /**
   * How many waits the backend has queued on `key`, for an adapter whose `waitForRelease`
   * queues a wait asynchronously (after a subscription, or a round trip). The queue tests then
   * act only once their waits are queued. Without it they give the waits 100 ms, which is
   * enough for an adapter that queues a wait in the call itself.
   */
  queuedWaits?: (key: string) => Promise<number>;
};

/**
 * The behaviour every `ISharedLockAdapter` must have, specified once; run it in a vitest file
 * against each implementation. It uses real time with TTLs of 100 ms to a few seconds, so it
 * suits any backend, remote ones included. The queue tests are skipped for adapters without
 * `waitForRelease`, and the intent tests for adapters with it.
 *
 * @example
 * sharedLockAdapterTestSuite({ createAdapter: () => new MemorySharedLockAdapter() });
 */
export function sharedLockAdapterTestSuite(settings: SharedLockAdapterTestSuiteSettings): void {
  void settings;
  describe("shared lock adapter conformance", () => {
    describe("acquireWriter", () => {
      test.todo("a free key: the writer takes it; getState shows the owner, the TTL and the token");
      test.todo("another live writer: refused with blockedBy writer, its owner and remaining time");
      test.todo("live readers: refused with blockedBy readers, the count and the soonest expiry");
      test.todo("the caller's own reader slot counts as readers (no upgrade)");
      test.todo("re-acquire of the own live writer hold: same token, TTL restarted");
      test.todo("after its own hold expired: a new, greater token");
      test.todo("ttl null: the hold never expires and cannot be refreshed");
      test.todo("a refusal leaves the holders' TTLs alone");
      test.todo("50 writers at once on a free key: exactly one wins");
    });
    describe("acquireReader", () => {
      test.todo("a free key: a slot is taken; getState shows the limit, the count and the slot");
      test.todo("a live writer: refused with blockedBy writer, its owner and remaining time");
      test.todo("the caller's own writer hold: refused with blockedBy writer");
      test.todo("`limit` readers hold; the next is refused with blockedBy limit");
      test.todo("re-acquire of the own live slot, even at the limit: same token, TTL restarted");
      test.todo("after its own slot expired: a new, greater token");
      test.todo("ttl null: the slot never expires and cannot be refreshed");
      test.todo("differing limits: the smallest live limit holds, and a slot keeps its limit");
      test.todo("a limit that is not a whole number from 1 to 1,000,000 is refused");
    });
    describe("a crashed holder", () => {
      test.todo(
        "a crashed reader: acquireWriter succeeds once its TTL passed, with no call in between",
      );
      test.todo(
        "a crashed writer: acquireReader succeeds once its TTL passed, with no call in between",
      );
      test.todo("a crashed writer: acquireWriter by another succeeds once its TTL passed");
    });
    describe("fencing tokens", () => {
      test.todo(
        "a writer's token is above every earlier reader's, across release, expiry and force releases",
      );
      test.todo("readers' tokens are above the earlier writer's");
    });
    describe("ownership", () => {
      test.todo("releaseWriter by a stranger or by a reader: false, nothing changes");
      test.todo("releaseReader by a stranger or by the writer: false, nothing changes");
      test.todo("refreshWriter and refreshReader by a stranger or the other side: false");
      test.todo("an expired hold can neither release nor refresh");
      test.todo("refresh restarts the TTL with the given span");
    });
    describe("force releases", () => {
      test.todo(
        "forceReleaseWriter frees the writer; with readers only it answers false and leaves them",
      );
      test.todo("forceReleaseAllReaders frees every reader; with a writer only it answers false");
      test.todo("forceRelease frees everyone; of a free key it answers false");
    });
    describe("getState", () => {
      test.todo("null for a free key and for a key whose holders all expired");
      test.todo("the writer state");
      test.todo("the readers state with slot and writerWaiting");
    });
    describe("writer preference, polling (adapters without waitForRelease)", () => {
      test.todo(
        "a refused writer records its intent; new readers are refused with waiters; getState shows writerWaiting",
      );
      test.todo(
        "the holding reader can still refresh and re-acquire; a second writer is refused with waiters",
      );
      test.todo(
        "after the reader releases the writer acquires and its intent is cleared; after it releases readers enter",
      );
      test.todo("an intent that is never renewed lapses, and new readers enter");
      test.todo("an intent of null records nothing");
    });
    describe("writer preference, queue (adapters with waitForRelease)", () => {
      test.todo("a newcomer reader is refused while a writer waits");
      test.todo("the last reader out hands the key to the waiting writer, with a greater token");
      test.todo(
        "a writer's release hands slots to the readers queued before the next writer, together",
      );
      test.todo("the next writer gets the key when those readers leave");
      test.todo("waitsPastExpiry: a crashed reader's expiry hands the key to the waiting writer");
      test.todo("a wait that aborted or timed out is never granted later");
      test.todo("waitAcquires: a claimed wait takes a free key at once");
      test.todo("maxWait and close() end waits");
    });
    describe("storms", () => {
      test.todo(
        "mixed acquires and releases from several instances: never a writer beside anyone, never more than limit readers, tokens grow",
      );
    });
  });
}
