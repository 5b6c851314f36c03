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
 * `deserialize` receives data from outside the process: validate it (with zod) and throw when
 * it is not what `serialize` produces.
 */
export type ISerdeTransformer<TCustom, TData extends JsonValue = JsonValue> = {
  /** Unique among the transformers of one serde; written into each document that uses it. */
  readonly name: string;
  isApplicable(value: unknown): value is TCustom;
  serialize(value: TCustom): TData;
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
  serialize(value: unknown): JsonValue;
  deserialize(document: JsonValue): unknown;
  registerCustom<TCustom, TData extends JsonValue>(
    transformer: ISerdeTransformer<TCustom, TData>,
  ): void;
};
