/**
 * Shared (reader-writer) locks in this process's memory: the embedded default, and the adapter
 * for tests.
 *
 * @module hasp/shared-lock/memory-shared-lock-adapter
 */
export { MemorySharedLockAdapter } from "./memory-shared-lock-adapter.js";
