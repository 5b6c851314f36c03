import { describe, expect, test } from "vitest";
import { z } from "zod";
import { SuperJsonSerdeAdapter } from "../../src/serde/adapters/super-json/super-json-serde-adapter.js";
import { SERDE_FORMAT_VERSION, Serde } from "../../src/serde/serde.js";
import type { ISerdeTransformer } from "../../src/serde/serde-contracts.js";
import { isSerdeError, SerdeError } from "../../src/serde/serde-error.js";

class Money {
  constructor(
    readonly amount: bigint,
    readonly currency: string,
  ) {}
}

const moneyData = z.object({ amount: z.string().regex(/^-?\d+$/), currency: z.string().length(3) });

const moneyTransformer: ISerdeTransformer<Money, { amount: string; currency: string }> = {
  name: "money",
  isApplicable: (value): value is Money => value instanceof Money,
  serialize: (value) => ({ amount: value.amount.toString(), currency: value.currency }),
  deserialize: (data) => {
    const { amount, currency } = moneyData.parse(data);
    return new Money(BigInt(amount), currency);
  },
};

function newSerde(): Serde {
  const serde = new Serde(new SuperJsonSerdeAdapter());
  serde.registerCustom(moneyTransformer);
  return serde;
}

function roundTrip<T>(value: T, serde = newSerde()): T {
  const text = serde.serialize(value);
  expect(typeof text).toBe("string");
  return serde.deserialize<T>(text);
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

describe("Serde with SuperJsonSerdeAdapter", () => {
  test.each([
    ["a string", "text"],
    ["a number", 42.5],
    ["NaN", Number.NaN],
    ["Infinity", Number.NEGATIVE_INFINITY],
    ["a boolean", false],
    ["null", null],
    ["undefined", undefined],
    ["a bigint", 12345678901234567890n],
    ["a Date", new Date("2026-11-27T03:00:00.123Z")],
    ["a RegExp", /lock:\d+/giu],
    [
      "a Map",
      new Map<unknown, unknown>([
        ["a", 1],
        [2, new Date(0)],
      ]),
    ],
    ["a Set", new Set([1, "two", 3n])],
    ["a URL", new URL("https://example.com/a?b=c")],
    ["an array with holes of undefined", [1, undefined, 3]],
    ["an object with an undefined field", { a: undefined, b: 1 }],
  ])("round-trips %s", (_name, value) => {
    expect(roundTrip(value)).toEqual(value);
  });

  test("round-trips a custom class at any depth (in a Map, in an object, in an array)", () => {
    const value = {
      event: { payload: new Map([["price", [new Money(-150n, "EUR"), new Money(3n, "SEK")]]]) },
      at: new Date(1),
    };
    const restored = roundTrip(value);
    const prices = restored.event.payload.get("price");
    expect(prices?.[0]).toBeInstanceOf(Money);
    expect(prices?.[0]).toEqual(new Money(-150n, "EUR"));
    expect(prices?.[1]?.amount).toBe(3n);
    expect(restored.at).toEqual(new Date(1));
  });

  test("writes the format version into an envelope", () => {
    const document = JSON.parse(newSerde().serialize({ a: 1 }));
    expect(document.v).toBe(SERDE_FORMAT_VERSION);
    expect(document.body).toEqual({ json: { a: 1 } });
  });

  test("each serde has its own registry", () => {
    const other = new Serde(new SuperJsonSerdeAdapter());
    const text = newSerde().serialize(new Money(1n, "EUR"));
    const error = thrown(() => other.deserialize(text));
    expect(isSerdeError(error)).toBe(true);
    // The message names the type it lacks, at any depth, and what to do.
    expect((error as Error).message).toContain(
      `the document holds "money" values, which this serde has no transformer for: register it`,
    );
    const nested = newSerde().serialize({ prices: new Map([["a", [new Money(2n, "EUR")]]]) });
    expect((thrown(() => other.deserialize(nested)) as Error).message).toContain('"money"');
    expect(other.hasCustom("money")).toBe(false);
  });

  describe("registerCustom", () => {
    test("refuses a second transformer under a taken name", () => {
      const serde = newSerde();
      const impostor: ISerdeTransformer<Date, string> = {
        name: "money",
        isApplicable: (value): value is Date => value instanceof Date,
        serialize: (value) => value.toISOString(),
        deserialize: (data) => new Date(String(data)),
      };
      const error = thrown(() => serde.registerCustom(impostor));
      expect(error).toBeInstanceOf(SerdeError);
      expect((error as Error).message).toBe(
        'A serde transformer named "money" is already registered',
      );
      // The first registration still works, unchanged.
      expect(roundTrip(new Money(7n, "USD"), serde)).toEqual(new Money(7n, "USD"));
      expect(roundTrip(new Date(5), serde)).toEqual(new Date(5));
    });

    test("refuses an empty name", () => {
      expect(() => newSerde().registerCustom({ ...moneyTransformer, name: "" })).toThrow(
        SerdeError,
      );
    });
  });

  describe("bad input", () => {
    const money = newSerde().serialize({ price: new Money(5n, "EUR") });

    test.each([
      ["malformed text", "{not json", /Malformed serialized text/],
      ["an empty string", "", /Malformed serialized text/],
      ["JSON without a version", JSON.stringify({ json: 1 }), /format version is missing/],
      ["a primitive", "42", /format version is missing/],
      [
        "another version",
        JSON.stringify({ v: 2, body: { json: 1 } }),
        /version 2.*reads version 1/,
      ],
      ["a version without a body", JSON.stringify({ v: 1 }), /version/],
      ["a body that is no superjson document", JSON.stringify({ v: 1, body: 5 }), /`json` field/],
      [
        "an unknown transformer",
        money.replace('"money"', '"lock"'),
        /Could not deserialize the document: the document holds "lock" values, which this serde has no transformer for/,
      ],
      [
        "data the transformer rejects",
        money.replace('"EUR"', '"EURO"'),
        /transformer "money" rejected its data/,
      ],
      [
        "data of the wrong shape",
        money.replace('"amount":"5"', '"amount":{"$gt":""}'),
        /transformer "money" rejected its data/,
      ],
    ])("%s throws a SerdeError with the cause", (_name, text, message) => {
      const error = thrown(() => newSerde().deserialize(text));
      expect(error).toBeInstanceOf(SerdeError);
      expect((error as Error).message).toMatch(message);
    });

    test("a transformer's rejection keeps the zod error as cause", () => {
      const error = thrown(() => newSerde().deserialize(money.replace('"EUR"', '"E"')));
      expect((error as Error).cause).toBeInstanceOf(z.ZodError);
    });

    test("a non-string input throws a SerdeError", () => {
      expect(() => newSerde().deserialize(5 as unknown as string)).toThrow(SerdeError);
    });

    test("a failure while serializing is a SerdeError", () => {
      const serde = new Serde(new SuperJsonSerdeAdapter());
      serde.registerCustom<Money, string>({
        name: "broken",
        isApplicable: (value): value is Money => value instanceof Money,
        serialize: () => {
          throw new Error("cannot");
        },
        deserialize: () => new Money(0n, "EUR"),
      });
      const error = thrown(() => serde.serialize([new Money(1n, "EUR")]));
      expect(error).toBeInstanceOf(SerdeError);
      expect((error as Error).message).toBe("Could not serialize the value: cannot");
    });
  });
});
