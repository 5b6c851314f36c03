import { describeValue } from "../../errors/describe-value.js";
import { createErrorGuard, HaspError, isHaspError } from "../../errors/hasp-error.js";

/** The base of the semaphore errors; `key` is the key as the caller wrote it. */
export class SemaphoreError extends HaspError {
  override name: string = "SemaphoreError";

  constructor(
    message: string,
    /** The key as the caller wrote it (without the provider's namespace). */
    readonly key: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** No slot of the key was free for this semaphore. */
export class LimitReachedSemaphoreError extends SemaphoreError {
  override name = "LimitReachedSemaphoreError" as const;

  constructor(
    key: string,
    /** The public id of the slot that tried to acquire. */
    readonly slotId: string,
    /** The limit in force; `undefined` when the backend did not answer in time. */
    readonly limit: number | undefined,
    options?: ErrorOptions,
  ) {
    super(
      limit === undefined
        ? `Semaphore "${key}": no slot could be acquired by "${slotId}"`
        : `Semaphore "${key}": no slot could be acquired by "${slotId}": all ${limit} are held`,
      key,
      options,
    );
  }
}

/** This semaphore holds no slot of the key (never acquired, expired, released). */
export class FailedReleaseSemaphoreError extends SemaphoreError {
  override name = "FailedReleaseSemaphoreError" as const;

  constructor(
    key: string,
    /** The public id of the slot that tried to release. */
    readonly slotId: string,
    options?: ErrorOptions,
  ) {
    super(
      `Semaphore "${key}": the slot of "${slotId}" could not be released: it holds none`,
      key,
      options,
    );
  }
}

/** This semaphore holds no slot of the key, or its slot never expires. */
export class FailedRefreshSemaphoreError extends SemaphoreError {
  override name = "FailedRefreshSemaphoreError" as const;

  constructor(
    key: string,
    /** The public id of the slot that tried to refresh. */
    readonly slotId: string,
    options?: ErrorOptions,
  ) {
    super(
      `Semaphore "${key}": the slot of "${slotId}" could not be refreshed: it holds none, or it never expires`,
      key,
      options,
    );
  }
}

/**
 * The backend failed (connection lost, timeout, server error): not the same thing as no slot
 * being free. `cause` is the driver's error; `operation` what was attempted; `hint`, when the
 * adapter recognised the failure, what to do about it. An adapter may throw one itself (`key`
 * `""` for a call that concerns no key, such as `init()`).
 */
export class SemaphoreBackendError extends SemaphoreError {
  override name = "SemaphoreBackendError" as const;

  /** What to do about the failure, when the adapter recognised it (also in the message). */
  readonly hint: string | undefined;

  constructor(
    /** The key as the caller wrote it; `""` for an adapter's call that concerns no key. */
    key: string,
    /** The adapter method that failed: `"acquire"`, `"release"`, `"waitForRelease"`, `"init"`, … */
    readonly operation: string,
    options: ErrorOptions & { cause: unknown; hint?: string | undefined },
  ) {
    const reason = options.cause instanceof Error ? options.cause.message : String(options.cause);
    const subject = key === "" ? "Semaphore adapter" : `Semaphore "${key}"`;
    const hint = options.hint === undefined ? "" : `. ${options.hint}`;
    super(`${subject}: ${operation} failed in the backend: ${reason}${hint}`, key, options);
    this.hint = options.hint;
  }
}

/**
 * An adapter answered with something `ISemaphoreAdapter` does not allow: a bug in the adapter,
 * never a full semaphore. Thrown by the operation, and sent as `UNEXPECTED_ERROR`.
 */
export class SemaphoreAdapterResultError extends SemaphoreError {
  override name = "SemaphoreAdapterResultError" as const;

  constructor(
    key: string,
    /** The adapter's constructor name (`"MySemaphoreAdapter"`; `"Object"` for a literal). */
    readonly adapter: string,
    /** The adapter method that answered: `"acquire"`, `"release"`, … */
    readonly operation: string,
    /** What it answered. */
    readonly returned: unknown,
    /** What the contract expects instead. */
    expected: string,
  ) {
    super(
      `Semaphore "${key}": ${adapter}.${operation}() returned ${describeValue(returned)}; the ISemaphoreAdapter contract expects ${expected}`,
      key,
    );
  }
}

/**
 * A slot held by `run*` may have been lost while the function ran (a refresh failed, or its
 * time ran out unanswered): the reason the function's signal is aborted with.
 */
export class SemaphoreSlotLostError extends SemaphoreError {
  override name = "SemaphoreSlotLostError" as const;

  constructor(
    key: string,
    /** The public id of the slot that was lost. */
    readonly slotId: string,
    options?: ErrorOptions,
  ) {
    super(
      `Semaphore "${key}": the slot of "${slotId}" was lost while its function ran`,
      key,
      options,
    );
  }
}

/** Whether `value` is a {@link LimitReachedSemaphoreError}, from this or another copy of hasp. */
export const isLimitReachedSemaphoreError = createErrorGuard(
  LimitReachedSemaphoreError,
  "LimitReachedSemaphoreError",
);
/** Whether `value` is a {@link FailedReleaseSemaphoreError}, from this or another copy of hasp. */
export const isFailedReleaseSemaphoreError = createErrorGuard(
  FailedReleaseSemaphoreError,
  "FailedReleaseSemaphoreError",
);
/** Whether `value` is a {@link FailedRefreshSemaphoreError}, from this or another copy of hasp. */
export const isFailedRefreshSemaphoreError = createErrorGuard(
  FailedRefreshSemaphoreError,
  "FailedRefreshSemaphoreError",
);
/** Whether `value` is a {@link SemaphoreBackendError}, from this or another copy of hasp. */
export const isSemaphoreBackendError = createErrorGuard(
  SemaphoreBackendError,
  "SemaphoreBackendError",
);
/** Whether `value` is a {@link SemaphoreAdapterResultError}, from this or another copy of hasp. */
export const isSemaphoreAdapterResultError = createErrorGuard(
  SemaphoreAdapterResultError,
  "SemaphoreAdapterResultError",
);
/** Whether `value` is a {@link SemaphoreSlotLostError}, from this or another copy of hasp. */
export const isSemaphoreSlotLostError = createErrorGuard(
  SemaphoreSlotLostError,
  "SemaphoreSlotLostError",
);

const SEMAPHORE_ERROR_NAMES = new Set([
  "SemaphoreError",
  "LimitReachedSemaphoreError",
  "FailedReleaseSemaphoreError",
  "FailedRefreshSemaphoreError",
  "SemaphoreBackendError",
  "SemaphoreAdapterResultError",
  "SemaphoreSlotLostError",
]);

/** Whether `value` is any semaphore error, from this or another copy of hasp. */
export function isSemaphoreError(value: unknown): value is SemaphoreError {
  return (
    value instanceof SemaphoreError || (isHaspError(value) && SEMAPHORE_ERROR_NAMES.has(value.name))
  );
}
