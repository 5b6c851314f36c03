/**
 * The conformance suite every event bus adapter must pass (needs `vitest`).
 *
 * @module hasp/event-bus/test-suites
 */
export {
  type EventBusAdapterTestSuiteSettings,
  eventBusAdapterTestSuite,
} from "./event-bus-adapter-test-suite.js";
