/**
 * The conformance suites every semaphore adapter must pass (needs `vitest`).
 *
 * @module hasp/semaphore/test-suites
 */
export {
  type SemaphoreAdapterTestSuiteSettings,
  semaphoreAdapterTestSuite,
} from "./semaphore-adapter-test-suite.js";
export {
  type SemaphoreProviderTestSuiteSettings,
  semaphoreProviderTestSuite,
} from "./semaphore-provider-test-suite.js";
