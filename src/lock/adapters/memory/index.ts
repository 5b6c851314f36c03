export { MemoryLockAdapter } from "./memory-lock-adapter.js";
