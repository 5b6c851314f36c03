/**
 * A semaphore adapter that always grants, for tests of code that takes semaphores.
 *
 * @module hasp/semaphore/no-op-semaphore-adapter
 */
export { NoOpSemaphoreAdapter } from "./no-op-semaphore-adapter.js";
