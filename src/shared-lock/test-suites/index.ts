/**
 * The conformance suites every shared lock adapter must pass (needs `vitest`).
 *
 * @module hasp/shared-lock/test-suites
 */
export {
  type SharedLockAdapterTestSuiteSettings,
  sharedLockAdapterTestSuite,
} from "./shared-lock-adapter-test-suite.js";
export {
  type SharedLockProviderTestSuiteSettings,
  sharedLockProviderTestSuite,
} from "./shared-lock-provider-test-suite.js";
