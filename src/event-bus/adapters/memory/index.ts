/**
 * The in-process event bus transport.
 *
 * @module hasp/event-bus/memory-event-bus-adapter
 */
export { MemoryEventBusAdapter } from "./memory-event-bus-adapter.js";
