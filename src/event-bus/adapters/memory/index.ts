export { MemoryEventBusAdapter } from "./memory-event-bus-adapter.js";
