// hasp's semaphore through its public API, for the semaphore scenario: `SemaphoreProvider.create`
// with the scenario's limit and `runBlockingOrFail` per section (a new semaphore, so a new slot
// id, per section). The adapter is wrapped only to count acquire attempts (no await added).

import { Namespace } from "../../src/namespace/index.js";
import type { ISemaphoreAdapter } from "../../src/semaphore/contracts/index.js";
import { SemaphoreProvider } from "../../src/semaphore/index.js";
import { TimeSpan } from "../../src/time-span/index.js";
import type { Counters, LockClient, SubjectEnvironment } from "../types.js";

/**
 * The adapter, counting acquire attempts; a wait that acquires (`waitAcquires`) counts as one
 * too. Its capabilities pass through: hiding one would bench another path than users run.
 */
export function countingSemaphoreAdapter(
  adapter: ISemaphoreAdapter,
  counters: Counters,
): ISemaphoreAdapter {
  const acquires = adapter.waitAcquires === true;
  const wait = adapter.waitForRelease?.bind(adapter);
  return {
    acquire: (key, slotId, limit, ttl) => {
      counters.attempts += 1;
      return adapter.acquire(key, slotId, limit, ttl);
    },
    release: (key, slotId) => adapter.release(key, slotId),
    forceReleaseAll: (key) => adapter.forceReleaseAll(key),
    refresh: (key, slotId, ttl) => adapter.refresh(key, slotId, ttl),
    getState: (key, slotId) => adapter.getState(key, slotId),
    ...(wait === undefined
      ? {}
      : {
          waitAcquires: acquires,
          ...(adapter.waitsPastExpiry === undefined
            ? {}
            : { waitsPastExpiry: adapter.waitsPastExpiry }),
          waitForRelease: acquires
            ? (key, maxWait, signal, claim) => {
                counters.attempts += 1;
                return wait(key, maxWait, signal, claim);
              }
            : wait,
        }),
  };
}

/**
 * `client` with a semaphore (its `runLimited`) over the adapter `open` makes, at the first
 * section: subjects that never run the semaphore scenario make no semaphore tables or
 * subscribers. `pollMs`: the blocking interval, for adapters without a release signal (the
 * library default otherwise).
 */
export function withSemaphore(
  client: LockClient,
  open: () => Promise<ISemaphoreAdapter>,
  env: SubjectEnvironment,
  pollMs?: number,
): LockClient {
  let provider: Promise<SemaphoreProvider> | undefined;
  const opened = async () =>
    new SemaphoreProvider({
      adapter: countingSemaphoreAdapter(await open(), env.counters),
      namespace: new Namespace([env.prefix]),
      defaultTtl: TimeSpan.fromMilliseconds(env.ttlMs),
      defaultBlockingTime: TimeSpan.fromMilliseconds(env.blockingTimeMs),
      ...(pollMs === undefined
        ? {}
        : { defaultBlockingInterval: TimeSpan.fromMilliseconds(pollMs) }),
    });
  return {
    ...client,
    async runLimited(key, limit, section) {
      provider ??= opened();
      const semaphore = (await provider).create(key, { limit });
      await semaphore.runBlockingOrFail(() => section());
    },
    async tryLimited(key, limit) {
      provider ??= opened();
      const semaphore = (await provider).create(key, { limit });
      return (await semaphore.acquire()) ? { release: () => semaphore.release() } : null;
    },
  };
}
