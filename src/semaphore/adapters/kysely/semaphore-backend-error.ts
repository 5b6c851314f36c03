import { HaspError } from "../../../errors/hasp-error.js";

// Stands in for the semaphore's backend error of src/semaphore/contracts/ (being written on
// branch i20-core), with the shape of LockBackendError; replaced by it once merged.

/**
 * The backend failed (connection lost, timeout, server error, a missing table): not the same
 * thing as a semaphore without a free slot. `cause` is the driver's error; `operation` what was
 * attempted; `hint`, when the adapter recognised the failure, what to do about it.
 */
export class SemaphoreBackendError extends HaspError {
  override name = "SemaphoreBackendError" as const;

  /** What to do about the failure, when the adapter recognised it (also in the message). */
  readonly hint: string | undefined;

  constructor(
    /** The key; `""` for an adapter's call that concerns no key (`init`). */
    readonly key: string,
    /** The adapter method that failed: `"acquire"`, `"release"`, `"init"`, … */
    readonly operation: string,
    options: ErrorOptions & { cause: unknown; hint?: string },
  ) {
    const reason = options.cause instanceof Error ? options.cause.message : String(options.cause);
    const subject = key === "" ? "Semaphore adapter" : `Semaphore "${key}"`;
    const hint = options.hint === undefined ? "" : `. ${options.hint}`;
    super(`${subject}: ${operation} failed in the backend: ${reason}${hint}`, options);
    this.hint = options.hint;
  }
}
