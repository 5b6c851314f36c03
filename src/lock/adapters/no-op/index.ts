/**
 * A lock adapter that always succeeds, for tests of code that takes locks.
 *
 * @module hasp/lock/no-op-lock-adapter
 */
export { NoOpLockAdapter } from "./no-op-lock-adapter.js";
