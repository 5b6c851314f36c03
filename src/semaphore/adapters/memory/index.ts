export { MemorySemaphoreAdapter } from "./memory-semaphore-adapter.js";
