/**
 * The lock contracts: the types of locks, providers and adapters, their states, events and errors.
 *
 * @module hasp/lock/contracts
 */
export type {
  ILock,
  LockAutoRefreshSettings,
  LockBlockingSettings,
  LockIdFactory,
  LockRunBlockingSettings,
  LockRunContext,
  LockRunnable,
  LockRunResult,
  LockRunSettings,
} from "./lock.js";
export type {
  ILockAdapter,
  LockAcquireResult,
  LockAdapterState,
  LockHandOff,
  LockWaitClaim,
  LockWaitResult,
} from "./lock-adapter.js";
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
} from "./lock-errors.js";
export {
  LOCK_EVENTS,
  type LockAcquiredEvent,
  type LockEventBase,
  type LockEventMap,
  type LockEventName,
  type LockFailedRefreshEvent,
  type LockFailedReleaseEvent,
  type LockForceReleasedEvent,
  type LockRefreshedEvent,
  type LockReleasedEvent,
  type LockUnavailableEvent,
  type LockUnexpectedErrorEvent,
} from "./lock-events.js";
export type {
  ILockListenable,
  ILockProvider,
  ILockProviderBase,
  ILockProviderClosable,
  LockCreateSettings,
} from "./lock-provider.js";
export {
  type ILockAcquiredState,
  type ILockExpiredState,
  type ILockState,
  type ILockUnavailableState,
  LOCK_STATE,
  type LockStateType,
} from "./lock-state.js";
