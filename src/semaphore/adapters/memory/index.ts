/**
 * Semaphores in this process's memory: the embedded default, and the adapter for tests.
 *
 * @module hasp/semaphore/memory-semaphore-adapter
 */
export { MemorySemaphoreAdapter } from "./memory-semaphore-adapter.js";
