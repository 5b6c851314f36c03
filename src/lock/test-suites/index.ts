export {
  type LockAdapterTestSuiteSettings,
  lockAdapterTestSuite,
} from "./lock-adapter-test-suite.js";
export {
  type LockProviderTestSuiteSettings,
  lockProviderTestSuite,
} from "./lock-provider-test-suite.js";
