import { describeValue } from "../../errors/describe-value.js";
import { createErrorGuard, HaspError, isHaspError } from "../../errors/hasp-error.js";

/** The base of the lock errors; `key` is the key as the caller wrote it. */
export class LockError extends HaspError {
  override name: string = "LockError";

  constructor(
    message: string,
    /** The key as the caller wrote it (without the provider's namespace). */
    readonly key: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The lock is held by someone else (`owner`, when the backend said). */
export class FailedAcquireLockError extends LockError {
  override name = "FailedAcquireLockError" as const;

  constructor(
    key: string,
    /** The id of the lock that tried to acquire. */
    readonly lockId: string,
    /** The holder's public id; `undefined` when the backend did not say. */
    readonly owner: string | undefined,
    options?: ErrorOptions,
  ) {
    super(
      owner === undefined
        ? `Lock "${key}" could not be acquired by "${lockId}"`
        : `Lock "${key}" could not be acquired by "${lockId}": held by "${owner}"`,
      key,
      options,
    );
  }
}

/** This lock does not hold the key (never acquired, expired, released, or taken over). */
export class FailedReleaseLockError extends LockError {
  override name = "FailedReleaseLockError" as const;

  constructor(
    key: string,
    /** The id of the lock that tried to release. */
    readonly lockId: string,
    options?: ErrorOptions,
  ) {
    super(`Lock "${key}" could not be released by "${lockId}": it does not hold it`, key, options);
  }
}

/** This lock does not hold the key, or its hold never expires. */
export class FailedRefreshLockError extends LockError {
  override name = "FailedRefreshLockError" as const;

  constructor(
    key: string,
    /** The id of the lock that tried to refresh. */
    readonly lockId: string,
    options?: ErrorOptions,
  ) {
    super(
      `Lock "${key}" could not be refreshed by "${lockId}": it does not hold it, or the hold never expires`,
      key,
      options,
    );
  }
}

/**
 * The backend failed (connection lost, timeout, server error): not the same thing as the lock
 * being held by someone else. `cause` is the driver's error; `operation` what was attempted;
 * `hint`, when the adapter recognised the failure, what to do about it.
 *
 * An adapter throws one itself from a call of its own that concerns no key (`init()`, with
 * `key` `""`), and from a lock operation whose failure it can explain (the table `init()`
 * creates is missing); a `Lock` gives its caller one with the caller's key, the same `cause`
 * and `hint`.
 */
export class LockBackendError extends LockError {
  override name = "LockBackendError" as const;

  /** What to do about the failure, when the adapter recognised it (also in the message). */
  readonly hint: string | undefined;

  constructor(
    /** The key as the caller wrote it; `""` for an adapter's call that concerns no key (`init`). */
    key: string,
    /** The adapter method that failed: `"acquire"`, `"release"`, `"waitForRelease"`, `"init"`, … */
    readonly operation: string,
    options: ErrorOptions & { cause: unknown; hint?: string },
  ) {
    const reason = options.cause instanceof Error ? options.cause.message : String(options.cause);
    const subject = key === "" ? "Lock adapter" : `Lock "${key}"`;
    const hint = options.hint === undefined ? "" : `. ${options.hint}`;
    super(`${subject}: ${operation} failed in the backend: ${reason}${hint}`, key, options);
    this.hint = options.hint;
  }
}

/**
 * An adapter answered with something its contract does not allow (an adapter written to another
 * contract, such as daiso-core's, whose `acquire` answers a boolean): a bug in the adapter, never
 * a lock that is held. Thrown by the operation, and sent as `UNEXPECTED_ERROR`.
 */
export class LockAdapterResultError extends LockError {
  override name = "LockAdapterResultError" as const;

  constructor(
    key: string,
    /** The adapter's constructor name (`"MyLockAdapter"`; `"Object"` for an object literal). */
    readonly adapter: string,
    /** The adapter method that answered: `"acquire"`, `"release"`, … */
    readonly operation: string,
    /** What it answered. */
    readonly returned: unknown,
    /** What the contract expects instead. */
    expected: string,
  ) {
    super(
      `Lock "${key}": ${adapter}.${operation}() returned ${describeValue(returned)}; the ILockAdapter contract expects ${expected}`,
      key,
    );
  }
}

/**
 * A lock held by `run*` was lost while the function ran (a refresh failed): the reason the
 * function's signal is aborted with.
 */
export class LockLostError extends LockError {
  override name = "LockLostError" as const;

  constructor(
    key: string,
    /** The id of the lock that lost its hold. */
    readonly lockId: string,
    options?: ErrorOptions,
  ) {
    super(`Lock "${key}" held by "${lockId}" was lost while its function ran`, key, options);
  }
}

/** Whether `value` is a {@link FailedAcquireLockError}, from this or another copy of hasp. */
export const isFailedAcquireLockError = createErrorGuard(
  FailedAcquireLockError,
  "FailedAcquireLockError",
);
/** Whether `value` is a {@link FailedReleaseLockError}, from this or another copy of hasp. */
export const isFailedReleaseLockError = createErrorGuard(
  FailedReleaseLockError,
  "FailedReleaseLockError",
);
/** Whether `value` is a {@link FailedRefreshLockError}, from this or another copy of hasp. */
export const isFailedRefreshLockError = createErrorGuard(
  FailedRefreshLockError,
  "FailedRefreshLockError",
);
/** Whether `value` is a {@link LockBackendError}, from this or another copy of hasp. */
export const isLockBackendError = createErrorGuard(LockBackendError, "LockBackendError");
/** Whether `value` is a {@link LockAdapterResultError}, from this or another copy of hasp. */
export const isLockAdapterResultError = createErrorGuard(
  LockAdapterResultError,
  "LockAdapterResultError",
);
/** Whether `value` is a {@link LockLostError}, from this or another copy of hasp. */
export const isLockLostError = createErrorGuard(LockLostError, "LockLostError");

const LOCK_ERROR_NAMES = new Set([
  "LockError",
  "FailedAcquireLockError",
  "FailedReleaseLockError",
  "FailedRefreshLockError",
  "LockBackendError",
  "LockAdapterResultError",
  "LockLostError",
]);

/** Whether `value` is any lock error, from this or another copy of hasp. */
export function isLockError(value: unknown): value is LockError {
  return value instanceof LockError || (isHaspError(value) && LOCK_ERROR_NAMES.has(value.name));
}
