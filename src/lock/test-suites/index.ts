/**
 * The conformance suites every lock adapter must pass (needs `vitest`).
 *
 * @module hasp/lock/test-suites
 */
export {
  type LockAdapterTestSuiteSettings,
  lockAdapterTestSuite,
} from "./lock-adapter-test-suite.js";
export {
  type LockProviderTestSuiteSettings,
  lockProviderTestSuite,
} from "./lock-provider-test-suite.js";
