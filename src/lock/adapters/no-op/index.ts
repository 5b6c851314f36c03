export { NoOpLockAdapter } from "./no-op-lock-adapter.js";
