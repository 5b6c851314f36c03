import { describeValue } from "../../errors/describe-value.js";
import { createErrorGuard, HaspError, isHaspError } from "../../errors/hasp-error.js";
import type { SharedLockReaderBlocker, SharedLockWriterBlocker } from "./shared-lock-adapter.js";

/** The base of the shared lock errors; `key` is the key as the caller wrote it. */
export class SharedLockError extends HaspError {
  override name: string = "SharedLockError";

  constructor(
    message: string,
    /** The key as the caller wrote it (without the provider's namespace). */
    readonly key: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Why a writer was refused, as a message's ending. */
function writerRefusal(blockedBy: SharedLockWriterBlocker | undefined, owner?: string): string {
  switch (blockedBy) {
    case "writer":
      return owner === undefined ? ": another writer holds it" : `: written by "${owner}"`;
    case "readers":
      return ": readers hold it";
    case "waiters":
      return ": a writer that came first waits for it";
    default:
      return "";
  }
}

/** Why a reader was refused, as a message's ending. */
function readerRefusal(
  blockedBy: SharedLockReaderBlocker | undefined,
  owner: string | undefined,
  limit: number | undefined,
): string {
  switch (blockedBy) {
    case "writer":
      return owner === undefined ? ": a writer holds it" : `: written by "${owner}"`;
    case "waiters":
      return ": a writer waits for it";
    case "limit":
      return limit === undefined
        ? ": no reader slot is free"
        : `: all ${limit} reader slots are held`;
    default:
      return "";
  }
}

/** The key could not be taken as this shared lock's writer (`blockedBy` says why, when known). */
export class FailedAcquireWriterLockError extends SharedLockError {
  override name = "FailedAcquireWriterLockError" as const;

  constructor(
    key: string,
    /** The public id of the shared lock that tried to acquire. */
    readonly lockId: string,
    /** What kept it out; `undefined` when the backend did not answer in time. */
    readonly blockedBy: SharedLockWriterBlocker | undefined,
    /** The writer's public id when `blockedBy` is `"writer"`; else `undefined`. */
    readonly owner: string | undefined,
    options?: ErrorOptions,
  ) {
    super(
      `Shared lock "${key}" could not be acquired as writer by "${lockId}"${writerRefusal(blockedBy, owner)}`,
      key,
      options,
    );
  }
}

/** This shared lock is not the key's writer (never acquired, expired, released, or taken over). */
export class FailedReleaseWriterLockError extends SharedLockError {
  override name = "FailedReleaseWriterLockError" as const;

  constructor(
    key: string,
    /** The public id of the shared lock that tried to release. */
    readonly lockId: string,
    options?: ErrorOptions,
  ) {
    super(
      `Shared lock "${key}": the writer hold of "${lockId}" could not be released: it holds none`,
      key,
      options,
    );
  }
}

/** This shared lock is not the key's writer, or its writer hold never expires. */
export class FailedRefreshWriterLockError extends SharedLockError {
  override name = "FailedRefreshWriterLockError" as const;

  constructor(
    key: string,
    /** The public id of the shared lock that tried to refresh. */
    readonly lockId: string,
    options?: ErrorOptions,
  ) {
    super(
      `Shared lock "${key}": the writer hold of "${lockId}" could not be refreshed: it holds none, or it never expires`,
      key,
      options,
    );
  }
}

/**
 * No reader slot could be taken by this shared lock: a writer holds the key, a writer waits for
 * it, or all `limit` slots are held (`blockedBy` says which). daiso-core's name, kept for every
 * reader refusal.
 */
export class LimitReachedReaderSemaphoreError extends SharedLockError {
  override name = "LimitReachedReaderSemaphoreError" as const;

  constructor(
    key: string,
    /** The public id of the shared lock that tried to acquire. */
    readonly lockId: string,
    /** What kept it out; `undefined` when the backend did not answer in time. */
    readonly blockedBy: SharedLockReaderBlocker | undefined,
    /** The writer's public id when `blockedBy` is `"writer"`; else `undefined`. */
    readonly owner: string | undefined,
    /** The limit in force when `blockedBy` is `"limit"`; else `undefined`. */
    readonly limit: number | undefined,
    options?: ErrorOptions,
  ) {
    super(
      `Shared lock "${key}": no reader slot could be acquired by "${lockId}"${readerRefusal(blockedBy, owner, limit)}`,
      key,
      options,
    );
  }
}

/** This shared lock holds no reader slot of the key (never acquired, expired, released). */
export class FailedReleaseReaderSemaphoreError extends SharedLockError {
  override name = "FailedReleaseReaderSemaphoreError" as const;

  constructor(
    key: string,
    /** The public id of the shared lock that tried to release. */
    readonly lockId: string,
    options?: ErrorOptions,
  ) {
    super(
      `Shared lock "${key}": the reader slot of "${lockId}" could not be released: it holds none`,
      key,
      options,
    );
  }
}

/** This shared lock holds no reader slot of the key, or its slot never expires. */
export class FailedRefreshReaderSemaphoreError extends SharedLockError {
  override name = "FailedRefreshReaderSemaphoreError" as const;

  constructor(
    key: string,
    /** The public id of the shared lock that tried to refresh. */
    readonly lockId: string,
    options?: ErrorOptions,
  ) {
    super(
      `Shared lock "${key}": the reader slot of "${lockId}" could not be refreshed: it holds none, or it never expires`,
      key,
      options,
    );
  }
}

/**
 * The backend failed (connection lost, timeout, server error): not the same thing as the key
 * being held. `cause` is the driver's error; `operation` what was attempted; `hint`, when the
 * adapter recognised the failure, what to do about it. An adapter may throw one itself (`key`
 * `""` for a call that concerns no key, such as `init()`).
 */
export class SharedLockBackendError extends SharedLockError {
  override name = "SharedLockBackendError" as const;

  /** What to do about the failure, when the adapter recognised it (also in the message). */
  readonly hint: string | undefined;

  constructor(
    /** The key as the caller wrote it; `""` for an adapter's call that concerns no key. */
    key: string,
    /** The adapter method that failed: `"acquireWriter"`, `"releaseReader"`, `"init"`, … */
    readonly operation: string,
    options: ErrorOptions & { cause: unknown; hint?: string | undefined },
  ) {
    const reason = options.cause instanceof Error ? options.cause.message : String(options.cause);
    const subject = key === "" ? "Shared lock adapter" : `Shared lock "${key}"`;
    const hint = options.hint === undefined ? "" : `. ${options.hint}`;
    super(`${subject}: ${operation} failed in the backend: ${reason}${hint}`, key, options);
    this.hint = options.hint;
  }
}

/**
 * An adapter answered with something `ISharedLockAdapter` does not allow: a bug in the adapter,
 * never a held key. Thrown by the operation, and sent as `UNEXPECTED_ERROR`.
 */
export class SharedLockAdapterResultError extends SharedLockError {
  override name = "SharedLockAdapterResultError" as const;

  constructor(
    key: string,
    /** The adapter's constructor name (`"MySharedLockAdapter"`; `"Object"` for a literal). */
    readonly adapter: string,
    /** The adapter method that answered: `"acquireWriter"`, `"getState"`, … */
    readonly operation: string,
    /** What it answered. */
    readonly returned: unknown,
    /** What the contract expects instead. */
    expected: string,
  ) {
    super(
      `Shared lock "${key}": ${adapter}.${operation}() returned ${describeValue(returned)}; the ISharedLockAdapter contract expects ${expected}`,
      key,
    );
  }
}

/**
 * A writer hold or reader slot held by `run*` may have been lost while the function ran (a
 * refresh failed, or its time ran out unanswered): the reason the function's signal is aborted
 * with.
 */
export class SharedLockLostError extends SharedLockError {
  override name = "SharedLockLostError" as const;

  constructor(
    key: string,
    /** The public id of the shared lock that lost its hold. */
    readonly lockId: string,
    /** Which hold was lost: the writer's, or a reader slot. */
    readonly side: "writer" | "reader",
    options?: ErrorOptions,
  ) {
    super(
      `Shared lock "${key}": the ${side === "writer" ? "writer hold" : "reader slot"} of "${lockId}" was lost while its function ran`,
      key,
      options,
    );
  }
}

/** Whether `value` is a {@link FailedAcquireWriterLockError}, from this or another copy of hasp. */
export const isFailedAcquireWriterLockError = createErrorGuard(
  FailedAcquireWriterLockError,
  "FailedAcquireWriterLockError",
);
/** Whether `value` is a {@link FailedReleaseWriterLockError}, from this or another copy of hasp. */
export const isFailedReleaseWriterLockError = createErrorGuard(
  FailedReleaseWriterLockError,
  "FailedReleaseWriterLockError",
);
/** Whether `value` is a {@link FailedRefreshWriterLockError}, from this or another copy of hasp. */
export const isFailedRefreshWriterLockError = createErrorGuard(
  FailedRefreshWriterLockError,
  "FailedRefreshWriterLockError",
);
/** Whether `value` is a {@link LimitReachedReaderSemaphoreError}, from this or another copy of hasp. */
export const isLimitReachedReaderSemaphoreError = createErrorGuard(
  LimitReachedReaderSemaphoreError,
  "LimitReachedReaderSemaphoreError",
);
/** Whether `value` is a {@link FailedReleaseReaderSemaphoreError}, from this or another copy of hasp. */
export const isFailedReleaseReaderSemaphoreError = createErrorGuard(
  FailedReleaseReaderSemaphoreError,
  "FailedReleaseReaderSemaphoreError",
);
/** Whether `value` is a {@link FailedRefreshReaderSemaphoreError}, from this or another copy of hasp. */
export const isFailedRefreshReaderSemaphoreError = createErrorGuard(
  FailedRefreshReaderSemaphoreError,
  "FailedRefreshReaderSemaphoreError",
);
/** Whether `value` is a {@link SharedLockBackendError}, from this or another copy of hasp. */
export const isSharedLockBackendError = createErrorGuard(
  SharedLockBackendError,
  "SharedLockBackendError",
);
/** Whether `value` is a {@link SharedLockAdapterResultError}, from this or another copy of hasp. */
export const isSharedLockAdapterResultError = createErrorGuard(
  SharedLockAdapterResultError,
  "SharedLockAdapterResultError",
);
/** Whether `value` is a {@link SharedLockLostError}, from this or another copy of hasp. */
export const isSharedLockLostError = createErrorGuard(SharedLockLostError, "SharedLockLostError");

const SHARED_LOCK_ERROR_NAMES = new Set([
  "SharedLockError",
  "FailedAcquireWriterLockError",
  "FailedReleaseWriterLockError",
  "FailedRefreshWriterLockError",
  "LimitReachedReaderSemaphoreError",
  "FailedReleaseReaderSemaphoreError",
  "FailedRefreshReaderSemaphoreError",
  "SharedLockBackendError",
  "SharedLockAdapterResultError",
  "SharedLockLostError",
]);

/** Whether `value` is any shared lock error, from this or another copy of hasp. */
export function isSharedLockError(value: unknown): value is SharedLockError {
  return (
    value instanceof SharedLockError ||
    (isHaspError(value) && SHARED_LOCK_ERROR_NAMES.has(value.name))
  );
}
