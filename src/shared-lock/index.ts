/**
 * The shared lock (reader-writer lock) provider, its factory, and the shared lock events, states
 * and errors.
 *
 * @module hasp/shared-lock
 */
export {
  FailedAcquireWriterLockError,
  FailedRefreshReaderSemaphoreError,
  FailedRefreshWriterLockError,
  FailedReleaseReaderSemaphoreError,
  FailedReleaseWriterLockError,
  isFailedAcquireWriterLockError,
  isFailedRefreshReaderSemaphoreError,
  isFailedRefreshWriterLockError,
  isFailedReleaseReaderSemaphoreError,
  isFailedReleaseWriterLockError,
  isLimitReachedReaderSemaphoreError,
  isSharedLockAdapterResultError,
  isSharedLockBackendError,
  isSharedLockError,
  isSharedLockLostError,
  LimitReachedReaderSemaphoreError,
  SharedLockAdapterResultError,
  SharedLockBackendError,
  SharedLockError,
  SharedLockLostError,
} from "./contracts/shared-lock-errors.js";
export { SHARED_LOCK_EVENTS, type SharedLockEventMap } from "./contracts/shared-lock-events.js";
export { type ISharedLockState, SHARED_LOCK_STATE } from "./contracts/shared-lock-state.js";
export { SharedLockProvider, type SharedLockProviderSettings } from "./shared-lock-provider.js";
export {
  SharedLockProviderFactory,
  type SharedLockProviderFactorySettings,
} from "./shared-lock-provider-factory.js";
