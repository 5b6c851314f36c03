/**
 * A shared lock adapter that always grants, for tests of code that takes shared locks.
 *
 * @module hasp/shared-lock/no-op-shared-lock-adapter
 */
export { NoOpSharedLockAdapter } from "./no-op-shared-lock-adapter.js";
