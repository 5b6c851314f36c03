/**
 * The lock provider, its factory, and the lock events, states and errors.
 *
 * @module hasp/lock
 */
export {
  FailedAcquireLockError,
  FailedRefreshLockError,
  FailedReleaseLockError,
  isFailedAcquireLockError,
  isFailedRefreshLockError,
  isFailedReleaseLockError,
  isLockAdapterResultError,
  isLockBackendError,
  isLockError,
  isLockLostError,
  LockAdapterResultError,
  LockBackendError,
  LockError,
  LockLostError,
} from "./contracts/lock-errors.js";
export { LOCK_EVENTS, type LockEventMap } from "./contracts/lock-events.js";
export { type ILockState, LOCK_STATE } from "./contracts/lock-state.js";
export { LockProvider, type LockProviderSettings } from "./lock-provider.js";
export { LockProviderFactory, type LockProviderFactorySettings } from "./lock-provider-factory.js";
