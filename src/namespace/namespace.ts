import { InvalidArgumentError } from "../errors/invalid-argument-error.js";
import { storedStringProblem } from "./stored-string-problem.js";

/** A key inside a {@link Namespace}. */
export type IKey = {
  /** The key as the caller wrote it, without the namespace: `"order:42"`. */
  get(): string;
  /** The full key as stored in the backend: `"billing:locks:order:42"`. */
  toString(): string;
  /** Whether both keys name the same stored key. */
  equals(other: IKey): boolean;
};

/**
 * What makes keys: hasp's {@link Namespace}, or any object with the same two methods (daiso-core's
 * `Namespace` is one). A provider checks the keys such an object makes before using them.
 */
export type INamespace = {
  /** The key `key` inside this namespace. */
  create(key: string): IKey;
  /** The prefix alone. */
  toString(): string;
};

/** Settings of a {@link Namespace}. */
export type NamespaceSettings = {
  /**
   * Placed between the namespace's parts and before the key.
   * @default ":"
   */
  delimiter?: string;
};

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return `a ${typeof value}`;
  }
}

function checkPart(value: unknown, what: string): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidArgumentError(`${what} must be a non-empty string, got ${describe(value)}`);
  }
  const problem = storedStringProblem(value);
  if (problem !== undefined) {
    throw new InvalidArgumentError(`${what} ${problem}, got ${describe(value)}`);
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
 * Parts may not contain the delimiter's characters, so two namespaces never share a prefix;
 * keys may (`"order:42"`), so keep a namespace's keys from spelling another namespace's parts.
 *
 * @example
 * const namespace = new Namespace(["billing", "locks"]);
 * const key = namespace.create("order:42");
 * key.get();      // "order:42"
 * key.toString(); // "billing:locks:order:42"
 */
export class Namespace implements INamespace {
  readonly #parts: readonly string[];
  readonly #delimiter: string;
  readonly #prefix: string;
  /** The key made last: keys are immutable, so one made again is that one. */
  #last: Key | undefined;

  /**
   * @throws InvalidArgumentError when a part or the delimiter is empty, not well-formed UTF-16
   *   (a lone surrogate) or contains NUL.
   */
  constructor(root: string | readonly string[], settings: NamespaceSettings = {}) {
    if (typeof root !== "string" && !Array.isArray(root)) {
      throw new InvalidArgumentError(
        `Namespace root must be a string or an array of strings, got ${describe(root)}`,
      );
    }
    const parts: readonly unknown[] = typeof root === "string" ? [root] : root;
    if (parts.length === 0) {
      throw new InvalidArgumentError("Namespace needs at least one part, got []");
    }
    const delimiter = checkPart(settings.delimiter ?? ":", "Namespace delimiter");
    // A part holding a character of the delimiter could be split two ways (["a:b"] and
    // ["a", "b"] would share every key), so it is refused.
    const reserved = new Set(delimiter);
    this.#parts = Object.freeze(
      parts.map((part, index) => {
        const checked = checkPart(part, `Namespace part ${index}`);
        if ([...checked].some((char) => reserved.has(char))) {
          throw new InvalidArgumentError(
            `Namespace part ${index} (${JSON.stringify(checked)}) must not contain the delimiter ${JSON.stringify(delimiter)}; give the parts as an array instead`,
          );
        }
        return checked;
      }),
    );
    this.#delimiter = delimiter;
    this.#prefix = this.#parts.join(this.#delimiter);
  }

  /** The namespace's parts, as given. */
  get parts(): readonly string[] {
    return this.#parts;
  }

  /** What separates the parts and the key (`":"` unless set). */
  get delimiter(): string {
    return this.#delimiter;
  }

  /** A new namespace with `part` (or parts) added at the end: a sub-namespace. */
  append(part: string | readonly string[]): Namespace {
    return new Namespace([...this.#parts, ...(typeof part === "string" ? [part] : part)], {
      delimiter: this.#delimiter,
    });
  }

  /**
   * @throws InvalidArgumentError when `key` is empty, not a string, not well-formed UTF-16 (a
   *   lone surrogate, which a backend would store as U+FFFD) or contains NUL.
   */
  create(key: string): IKey {
    // The same key again (a lock per job, workers taking turns): its key, checked and stored
    // whole already, so a backend's map hashes it once.
    const last = this.#last;
    if (last !== undefined && last.get() === key) {
      return last;
    }
    checkPart(key, "Key");
    const made = new Key(key, `${this.#prefix}${this.#delimiter}${key}`);
    this.#last = made;
    return made;
  }

  /** The prefix alone: `"billing:locks"`. */
  toString(): string {
    return this.#prefix;
  }
}

/**
 * `namespace.create(key)`, for any {@link INamespace}: hasp's own checks its keys; the key made
 * by another (daiso-core's `Namespace`) is checked here, as a key the backend stores as it is.
 *
 * @throws InvalidArgumentError when `key`, or the stored key made of it, is empty, not a
 *   string, not well-formed UTF-16 or contains NUL, or when `create` does not return a key.
 */
export function createKey(namespace: INamespace, key: string): IKey {
  if (namespace instanceof Namespace) {
    return namespace.create(key);
  }
  checkPart(key, "Key");
  const made: unknown = namespace.create(key);
  if (
    typeof made !== "object" ||
    made === null ||
    typeof (made as IKey).get !== "function" ||
    typeof (made as IKey).equals !== "function" ||
    // Object's own toString would store every key as "[object Object]": one lock for all.
    (made as IKey).toString === Object.prototype.toString
  ) {
    throw new InvalidArgumentError(
      `The namespace's create(${JSON.stringify(key)}) must return a key (with get(), toString() and equals()), got ${describe(made)}`,
    );
  }
  checkPart((made as IKey).toString(), `The stored key of ${JSON.stringify(key)}`);
  return made as IKey;
}
