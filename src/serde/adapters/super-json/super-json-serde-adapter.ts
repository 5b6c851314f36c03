import { SuperJSON, type SuperJSONResult } from "superjson";
import type { ISerdeAdapter, ISerdeTransformer, JsonValue } from "../../serde-contracts.js";

/**
 * A serde adapter built on superjson: Date, Map, Set, BigInt, RegExp, URL, Error, `undefined`,
 * NaN and ±Infinity survive the trip, and so does any class with a registered transformer.
 * Each adapter has its own registry: registering on one never affects another.
 */
export class SuperJsonSerdeAdapter implements ISerdeAdapter {
  readonly #superJson = new SuperJSON();

  serialize(value: unknown): JsonValue {
    return this.#superJson.serialize(value) as unknown as JsonValue;
  }

  deserialize(document: JsonValue): unknown {
    if (typeof document !== "object" || document === null || !("json" in document)) {
      throw new TypeError("A superjson document is an object with a `json` field");
    }
    return this.#superJson.deserialize(document as unknown as SuperJSONResult);
  }

  registerCustom<TCustom, TData extends JsonValue>(
    transformer: ISerdeTransformer<TCustom, TData>,
  ): void {
    this.#superJson.registerCustom<TCustom, TData>(
      {
        isApplicable: (value): value is TCustom => transformer.isApplicable(value),
        serialize: (value) => transformer.serialize(value),
        deserialize: (data) => transformer.deserialize(data),
      },
      transformer.name,
    );
  }
}
