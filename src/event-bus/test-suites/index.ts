export {
  type EventBusAdapterTestSuiteSettings,
  eventBusAdapterTestSuite,
} from "./event-bus-adapter-test-suite.js";
