import { SuperJSON, type SuperJSONResult } from "superjson";
import type { ISerdeAdapter, ISerdeTransformer, JsonValue } from "../../serde-contracts.js";

/**
 * A serde adapter built on superjson: Date, Map, Set, BigInt, RegExp, URL, Error, `undefined`,
 * NaN and ±Infinity survive the trip, and so does any class with a registered transformer.
 * Each adapter has its own registry: registering on one never affects another.
 */
export class SuperJsonSerdeAdapter implements ISerdeAdapter {
  readonly #superJson = new SuperJSON();
  readonly #customNames = new Set<string>();

  serialize(value: unknown): JsonValue {
    return this.#superJson.serialize(value) as unknown as JsonValue;
  }

  deserialize(document: JsonValue): unknown {
    if (typeof document !== "object" || document === null || !("json" in document)) {
      throw new TypeError("A superjson document is an object with a `json` field");
    }
    const unknown = customNames(document).filter((name) => !this.#customNames.has(name));
    if (unknown.length > 0) {
      // superjson would only say "unknown custom value": name the type and what to do.
      throw new TypeError(
        `the document holds ${unknown.map((name) => JSON.stringify(name)).join(", ")} values, which this serde has no transformer for: register it before deserializing (for hasp's locks: give this serde to their LockProvider, as the sender did)`,
      );
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
    this.#customNames.add(transformer.name);
  }
}

/** The names of the custom types a superjson document's `meta.values` mentions. */
function customNames(document: object): string[] {
  const names = new Set<string>();
  const visit = (node: unknown): void => {
    if (!Array.isArray(node)) {
      if (typeof node === "object" && node !== null) {
        Object.values(node).forEach(visit);
      }
      return;
    }
    // An annotation is ["custom", name]; nested trees are arrays or objects of annotations.
    if (node[0] === "custom" && typeof node[1] === "string") {
      names.add(node[1]);
      return;
    }
    node.forEach(visit);
  };
  visit((document as { meta?: { values?: unknown } }).meta?.values);
  return [...names];
}
