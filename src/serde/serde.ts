import type {
  ISerde,
  ISerdeAdapter,
  ISerdeRegister,
  ISerdeTransformer,
  JsonValue,
} from "./serde-contracts.js";
import { SerdeError } from "./serde-error.js";

/** The version of the envelope `Serde` writes; a document of another version is refused. */
export const SERDE_FORMAT_VERSION = 1;

/**
 * @internal Marks values that only a registered transformer can write (a lock): a method that
 * says what to register. A `Serde` whose adapter left such a value as it is (no transformer
 * applied) refuses it instead of writing its public fields, often `{}`. `Symbol.for`, so that a
 * value of another copy of hasp in the process is recognised too.
 */
export const TRANSFORMER_REQUIRED: unique symbol = Symbol.for("hasp.serde.transformer-required");

/** A `JSON.stringify` replacer that refuses a value marked with {@link TRANSFORMER_REQUIRED}. */
function refuseUntransformed(_key: string, value: unknown): unknown {
  if (typeof value === "object" && value !== null && TRANSFORMER_REQUIRED in value) {
    const explain = (value as { [TRANSFORMER_REQUIRED]: unknown })[TRANSFORMER_REQUIRED];
    throw new SerdeError(
      typeof explain === "function"
        ? String(explain.call(value))
        : "A value that needs a registered transformer was left as it is",
    );
  }
  return value;
}

type Envelope = { v: typeof SERDE_FORMAT_VERSION; body: JsonValue };

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Serializes values to text through an adapter (such as `SuperJsonSerdeAdapter`), in an
 * envelope that carries a format version. Custom classes are taught with `registerCustom`;
 * a lock provider registers its locks this way so that a lock survives the trip to another
 * process.
 *
 * @example
 * const serde = new Serde(new SuperJsonSerdeAdapter());
 * serde.deserialize(serde.serialize(new Map([["a", 1n]]))); // Map { "a" => 1n }
 */
export class Serde implements ISerde<string>, ISerdeRegister {
  readonly #adapter: ISerdeAdapter;
  readonly #names = new Set<string>();

  constructor(adapter: ISerdeAdapter) {
    this.#adapter = adapter;
  }

  /**
   * Registers a transformer. A second registration under a taken name throws, rather than
   * letting one of them win silently and restore objects bound to the wrong owner.
   *
   * @throws SerdeError when the name is empty or taken.
   */
  registerCustom<TCustom, TData extends JsonValue>(
    transformer: ISerdeTransformer<TCustom, TData>,
  ): void {
    const { name } = transformer;
    if (typeof name !== "string" || name.length === 0) {
      throw new SerdeError("A serde transformer needs a non-empty name");
    }
    if (this.#names.has(name)) {
      throw new SerdeError(`A serde transformer named "${name}" is already registered`);
    }
    this.#adapter.registerCustom<TCustom, TData>({
      name,
      isApplicable: (value): value is TCustom => transformer.isApplicable(value),
      serialize: (value) => transformer.serialize(value),
      deserialize: (data) => {
        try {
          return transformer.deserialize(data);
        } catch (error) {
          throw new SerdeError(
            `The serde transformer "${name}" rejected its data: ${describeError(error)}`,
            { cause: error },
          );
        }
      },
    });
    this.#names.add(name);
  }

  /** Whether a transformer of that name is registered. */
  hasCustom(name: string): boolean {
    return this.#names.has(name);
  }

  serialize(value: unknown): string {
    try {
      const envelope: Envelope = { v: SERDE_FORMAT_VERSION, body: this.#adapter.serialize(value) };
      return JSON.stringify(envelope, refuseUntransformed);
    } catch (error) {
      if (error instanceof SerdeError) {
        throw error;
      }
      throw new SerdeError(`Could not serialize the value: ${describeError(error)}`, {
        cause: error,
      });
    }
  }

  deserialize<TValue = unknown>(serialized: string): TValue {
    if (typeof serialized !== "string") {
      throw new SerdeError(`Can only deserialize a string, got ${typeof serialized}`);
    }
    let envelope: unknown;
    try {
      envelope = JSON.parse(serialized);
    } catch (error) {
      throw new SerdeError(`Malformed serialized text: ${describeError(error)}`, { cause: error });
    }
    if (typeof envelope !== "object" || envelope === null || !("v" in envelope)) {
      throw new SerdeError("Not a hasp serde document: the format version is missing");
    }
    if (envelope.v !== SERDE_FORMAT_VERSION || !("body" in envelope)) {
      throw new SerdeError(
        `Unsupported serde format version ${JSON.stringify(envelope.v)}; this hasp reads version ${SERDE_FORMAT_VERSION}`,
      );
    }
    try {
      return this.#adapter.deserialize(envelope.body as JsonValue) as TValue;
    } catch (error) {
      if (error instanceof SerdeError) {
        throw error;
      }
      throw new SerdeError(`Could not deserialize the document: ${describeError(error)}`, {
        cause: error,
      });
    }
  }
}
