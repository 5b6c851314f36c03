import { InvalidArgumentError } from "../errors/invalid-argument-error.js";

/** A key inside a {@link Namespace}. */
export type IKey = {
  /** The key as the caller wrote it, without the namespace: `"order:42"`. */
  get(): string;
  /** The full key as stored in the backend: `"billing:locks:order:42"`. */
  toString(): string;
  /** Whether both keys name the same stored key. */
  equals(other: IKey): boolean;
};

/** Settings of a {@link Namespace}. */
export type NamespaceSettings = {
  /**
   * Placed between the namespace's parts and before the key.
   * @default ":"
   */
  delimiter?: string;
};

function checkPart(value: unknown, what: string): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidArgumentError(
      `${what} must be a non-empty string, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

class Key implements IKey {
  readonly #key: string;
  readonly #full: string;

  constructor(key: string, full: string) {
    this.#key = key;
    this.#full = full;
  }

  get(): string {
    return this.#key;
  }

  toString(): string {
    return this.#full;
  }

  equals(other: IKey): boolean {
    return this.#full === other.toString();
  }

  toJSON(): string {
    return this.#full;
  }
}

/**
 * A prefix that keeps one group's keys apart from another's on a shared backend.
 *
 * @example
 * const namespace = new Namespace(["billing", "locks"]);
 * const key = namespace.create("order:42");
 * key.get();      // "order:42"
 * key.toString(); // "billing:locks:order:42"
 */
export class Namespace {
  readonly #parts: readonly string[];
  readonly #delimiter: string;
  readonly #prefix: string;

  /** @throws InvalidArgumentError when a part or the delimiter is empty. */
  constructor(root: string | readonly string[], settings: NamespaceSettings = {}) {
    const parts = typeof root === "string" ? [root] : [...root];
    if (parts.length === 0) {
      throw new InvalidArgumentError("Namespace needs at least one part, got []");
    }
    this.#parts = Object.freeze(
      parts.map((part, index) => checkPart(part, `Namespace part ${index}`)),
    );
    this.#delimiter = checkPart(settings.delimiter ?? ":", "Namespace delimiter");
    this.#prefix = this.#parts.join(this.#delimiter);
  }

  /** The namespace's parts, as given. */
  get parts(): readonly string[] {
    return this.#parts;
  }

  get delimiter(): string {
    return this.#delimiter;
  }

  /** A new namespace with `part` (or parts) added at the end: a sub-namespace. */
  append(part: string | readonly string[]): Namespace {
    return new Namespace([...this.#parts, ...(typeof part === "string" ? [part] : part)], {
      delimiter: this.#delimiter,
    });
  }

  /** @throws InvalidArgumentError when `key` is empty or not a string. */
  create(key: string): IKey {
    checkPart(key, "Key");
    return new Key(key, `${this.#prefix}${this.#delimiter}${key}`);
  }

  /** The prefix alone: `"billing:locks"`. */
  toString(): string {
    return this.#prefix;
  }
}
