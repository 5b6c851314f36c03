/** A value JSON can carry as is. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/**
 * Turns values into text and back.
 *
 * @example
 * const text = serde.serialize({ at: new Date(), tags: new Set(["a"]) });
 * const value = serde.deserialize<{ at: Date; tags: Set<string> }>(text);
 */
export type ISerde<TSerialized = string> = {
  /** @throws SerdeError when the value cannot be represented. */
  serialize(value: unknown): TSerialized;
  /**
   * The caller states the type; nothing checks it beyond what the transformers validate.
   * @throws SerdeError on malformed input, an unknown format version or transformer, or data
   * a transformer rejects.
   */
  deserialize<TValue = unknown>(serialized: TSerialized): TValue;
};

/**
 * Teaches a serde one custom class. Applies at any depth: inside arrays, objects, Maps, Sets.
 *
 * `deserialize` receives data from outside the process: validate it (with a schema library or by hand) and throw when
 * it is not what `serialize` produces.
 */
export type ISerdeTransformer<TCustom, TData extends JsonValue = JsonValue> = {
  /** Unique among the transformers of one serde; written into each document that uses it. */
  readonly name: string;
  /** Whether this transformer handles `value` (usually `value instanceof TheClass`). */
  isApplicable(value: unknown): value is TCustom;
  /** Turns an applicable value into plain JSON data. */
  serialize(value: TCustom): TData;
  /**
   * Rebuilds the value from the data `serialize` produced.
   * @throws anything on data it does not accept; the serde reports it as a `SerdeError`.
   */
  deserialize(data: unknown): TCustom;
};

/** Where transformers are registered: a `Serde`. */
export type ISerdeRegister = {
  /** @throws SerdeError when a transformer of that name is already registered. */
  registerCustom<TCustom, TData extends JsonValue>(
    transformer: ISerdeTransformer<TCustom, TData>,
  ): void;
};

/**
 * The engine behind a `Serde`: turns values into a JSON document and back, and applies the
 * transformers it is given. `SuperJsonSerdeAdapter` is the one hasp ships.
 */
export type ISerdeAdapter = {
  /** Turns `value` into a JSON document. May throw; the serde wraps the error in a `SerdeError`. */
  serialize(value: unknown): JsonValue;
  /** Rebuilds the value from a document `serialize` produced; throws on one it cannot read. */
  deserialize(document: JsonValue): unknown;
  /**
   * Adds a transformer, applied at any depth from now on. The serde has already checked that
   * its name is new.
   */
  registerCustom<TCustom, TData extends JsonValue>(
    transformer: ISerdeTransformer<TCustom, TData>,
  ): void;
};
