const HASP_ERROR = Symbol.for("hasp.error");

/**
 * The base of every error hasp throws.
 *
 * Catch hasp's errors with {@link isHaspError} rather than `instanceof`: the guard also
 * recognises errors thrown by another copy of hasp (two versions in one dependency tree,
 * another realm), where `instanceof` is false.
 */
export class HaspError extends Error {
  /**
   * The class's name (`"LockBackendError"`): each subclass sets its own, and the `is…` guards
   * compare it for errors from another copy of hasp.
   */
  override name: string = "HaspError";

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    Object.defineProperty(this, HASP_ERROR, { value: true });
  }
}

/** Whether `value` is an error thrown by hasp (any copy of it). */
export function isHaspError(value: unknown): value is HaspError {
  // The brand, not `instanceof Error`: an error from another realm has another `Error`.
  return (
    value instanceof HaspError ||
    (typeof value === "object" &&
      value !== null &&
      (value as Record<symbol, unknown>)[HASP_ERROR] === true)
  );
}

/**
 * Builds the guard for one error class: true for instances of `errorClass`, and for hasp
 * errors of the same `name` from another copy of hasp.
 */
export function createErrorGuard<TError extends HaspError>(
  errorClass: abstract new (...args: never[]) => TError,
  name: TError["name"],
): (value: unknown) => value is TError {
  return (value): value is TError =>
    value instanceof errorClass || (isHaspError(value) && value.name === name);
}
