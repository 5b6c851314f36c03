import { MemoryEventBusAdapter } from "../../src/event-bus/adapters/memory/memory-event-bus-adapter.js";
import { eventBusAdapterTestSuite } from "../../src/event-bus/test-suites/event-bus-adapter-test-suite.js";

eventBusAdapterTestSuite({ createAdapter: () => new MemoryEventBusAdapter() });
