import { MemorySemaphoreAdapter } from "../../src/semaphore/adapters/memory/memory-semaphore-adapter.js";
import type { ISemaphoreAdapter } from "../../src/semaphore/contracts/semaphore-adapter.js";
import { semaphoreAdapterTestSuite } from "../../src/semaphore/test-suites/semaphore-adapter-test-suite.js";
import { semaphoreProviderTestSuite } from "../../src/semaphore/test-suites/semaphore-provider-test-suite.js";

/** The memory adapter without its release signal: blocking acquires poll at their interval. */
function polling(adapter: MemorySemaphoreAdapter): ISemaphoreAdapter {
  return {
    acquire: (key, slotId, limit, ttl) => adapter.acquire(key, slotId, limit, ttl),
    release: (key, slotId) => adapter.release(key, slotId),
    forceReleaseAll: (key) => adapter.forceReleaseAll(key),
    refresh: (key, slotId, ttl) => adapter.refresh(key, slotId, ttl),
    getState: (key, slotId) => adapter.getState(key, slotId),
  };
}

semaphoreProviderTestSuite({ createAdapter: () => new MemorySemaphoreAdapter() });

// The same promises where no release is signalled: waits poll, never past the soonest expiry.
semaphoreProviderTestSuite({ createAdapter: () => polling(new MemorySemaphoreAdapter()) });
semaphoreAdapterTestSuite({
  createAdapter: () => polling(new MemorySemaphoreAdapter()),
  instancesShareBackend: false,
});
