import { createErrorGuard, HaspError } from "../errors/hasp-error.js";

/**
 * A value could not be serialized, or a document could not be read back: malformed text, an
 * unsupported format version, a transformer nobody registered, or data a transformer refused.
 * Nothing half-built is ever returned; `cause` holds the underlying error.
 */
export class SerdeError extends HaspError {
  override name = "SerdeError" as const;
}

/** Whether `value` is a {@link SerdeError}, from this or another copy of hasp. */
export const isSerdeError = createErrorGuard(SerdeError, "SerdeError");
