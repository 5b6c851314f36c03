import { describe, expect, test } from "vitest";
import {
  InvalidArgumentError,
  isInvalidArgumentError,
} from "../../src/errors/invalid-argument-error.js";
import { type IKey, Namespace } from "../../src/namespace/namespace.js";

function expectInvalidArgument(action: () => unknown, message: string): void {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(InvalidArgumentError);
  expect(isInvalidArgumentError(caught)).toBe(true);
  const error = caught as InvalidArgumentError;
  expect(error.name).toBe("InvalidArgumentError");
  expect(error.message).toBe(message);
  expect(error.issues).toEqual([]);
}

describe("roots", () => {
  test("a string root is a namespace of one part", () => {
    const namespace = new Namespace("billing");
    expect(namespace.parts).toEqual(["billing"]);
    expect(namespace.delimiter).toBe(":");
    expect(namespace.toString()).toBe("billing");
    expect(namespace.create("order:42").toString()).toBe("billing:order:42");
  });

  test("an array root joins its parts with the delimiter", () => {
    const namespace = new Namespace(["billing", "locks"]);
    expect(namespace.parts).toEqual(["billing", "locks"]);
    expect(namespace.toString()).toBe("billing:locks");
    expect(`${namespace}`).toBe("billing:locks");
  });

  test("a custom delimiter is placed between the parts and before the key", () => {
    const namespace = new Namespace(["billing", "locks"], { delimiter: "/" });
    expect(namespace.delimiter).toBe("/");
    expect(namespace.toString()).toBe("billing/locks");
    expect(namespace.create("order:42").toString()).toBe("billing/locks/order:42");
  });

  test("a multi-character delimiter", () => {
    const namespace = new Namespace(["a", "b"], { delimiter: "::" });
    expect(namespace.create("k").toString()).toBe("a::b::k");
  });

  test("an undefined delimiter falls back to the default", () => {
    const namespace = new Namespace("billing", { delimiter: undefined });
    expect(namespace.delimiter).toBe(":");
    expect(namespace.create("k").toString()).toBe("billing:k");
  });

  test("parts are frozen and detached from the array passed in", () => {
    const root = ["billing", "locks"];
    const namespace = new Namespace(root);
    root.push("extra");
    root[0] = "changed";
    expect(namespace.parts).toEqual(["billing", "locks"]);
    expect(namespace.toString()).toBe("billing:locks");
    expect(Object.isFrozen(namespace.parts)).toBe(true);
    expect(() => (namespace.parts as string[]).push("x")).toThrow(TypeError);
  });
});

describe("create", () => {
  const namespace = new Namespace(["billing", "locks"]);

  test("get returns the key as written, toString the full stored key", () => {
    const key = namespace.create("order:42");
    expect(key.get()).toBe("order:42");
    expect(key.toString()).toBe("billing:locks:order:42");
    expect(`${key}`).toBe("billing:locks:order:42");
  });

  test("serialises to JSON as the full key", () => {
    const key = namespace.create("order:42");
    expect(JSON.stringify(key)).toBe('"billing:locks:order:42"');
    expect(JSON.stringify({ key })).toBe('{"key":"billing:locks:order:42"}');
  });

  test("keeps whitespace and unicode in the key unchanged", () => {
    const key = namespace.create(" größe ✓ ");
    expect(key.get()).toBe(" größe ✓ ");
    expect(key.toString()).toBe("billing:locks: größe ✓ ");
  });

  test("equals is true for the same key in an equal namespace", () => {
    const key = namespace.create("order:42");
    expect(key.equals(key)).toBe(true);
    expect(key.equals(namespace.create("order:42"))).toBe(true);
    expect(key.equals(new Namespace(["billing", "locks"]).create("order:42"))).toBe(true);
    expect(key.equals(new Namespace("billing").append("locks").create("order:42"))).toBe(true);
  });

  test("equals is false for another key, namespace or delimiter", () => {
    const key = namespace.create("order:42");
    expect(key.equals(namespace.create("order:43"))).toBe(false);
    expect(key.equals(new Namespace(["billing", "queues"]).create("order:42"))).toBe(false);
    expect(key.equals(new Namespace("billing").create("order:42"))).toBe(false);
    expect(
      key.equals(new Namespace(["billing", "locks"], { delimiter: "/" }).create("order:42")),
    ).toBe(false);
  });

  test("equals compares the full key of any IKey", () => {
    const key = namespace.create("order:42");
    const foreign = (full: string): IKey => ({
      get: () => "order:42",
      toString: () => full,
      equals: () => false,
    });
    expect(key.equals(foreign("billing:locks:order:42"))).toBe(true);
    expect(key.equals(foreign("order:42"))).toBe(false);
  });
});

describe("append", () => {
  test("returns a sub-namespace and leaves the original unchanged", () => {
    const billing = new Namespace("billing");
    const locks = billing.append("locks");
    expect(locks).not.toBe(billing);
    expect(locks.parts).toEqual(["billing", "locks"]);
    expect(locks.create("order:42").toString()).toBe("billing:locks:order:42");
    expect(billing.parts).toEqual(["billing"]);
    expect(billing.create("order:42").toString()).toBe("billing:order:42");
  });

  test("appends several parts from an array", () => {
    const namespace = new Namespace("billing").append(["eu", "locks"]);
    expect(namespace.parts).toEqual(["billing", "eu", "locks"]);
    expect(namespace.toString()).toBe("billing:eu:locks");
  });

  test("appending an empty array gives an equal, separate namespace", () => {
    const billing = new Namespace("billing");
    const same = billing.append([]);
    expect(same).not.toBe(billing);
    expect(same.parts).toEqual(["billing"]);
    expect(same.create("k").equals(billing.create("k"))).toBe(true);
  });

  test("keeps the delimiter", () => {
    const namespace = new Namespace("billing", { delimiter: "/" }).append("locks");
    expect(namespace.delimiter).toBe("/");
    expect(namespace.create("order:42").toString()).toBe("billing/locks/order:42");
  });

  test("rejects an empty part, naming its position", () => {
    const namespace = new Namespace(["billing", "locks"]);
    expectInvalidArgument(
      () => namespace.append(""),
      'Namespace part 2 must be a non-empty string, got ""',
    );
    expectInvalidArgument(
      () => namespace.append(["eu", ""]),
      'Namespace part 3 must be a non-empty string, got ""',
    );
  });
});

describe("rejected arguments", () => {
  test("an empty root array", () => {
    expectInvalidArgument(() => new Namespace([]), "Namespace needs at least one part, got []");
  });

  test("an empty string root", () => {
    expectInvalidArgument(
      () => new Namespace(""),
      'Namespace part 0 must be a non-empty string, got ""',
    );
  });

  test("an empty part, naming its position", () => {
    expectInvalidArgument(
      () => new Namespace(["billing", "", "locks"]),
      'Namespace part 1 must be a non-empty string, got ""',
    );
  });

  test("a part that is not a string", () => {
    expectInvalidArgument(
      () => new Namespace(["billing", 7 as unknown as string]),
      "Namespace part 1 must be a non-empty string, got 7",
    );
    expectInvalidArgument(
      () => new Namespace([null as unknown as string]),
      "Namespace part 0 must be a non-empty string, got null",
    );
  });

  test("an empty delimiter", () => {
    expectInvalidArgument(
      () => new Namespace("billing", { delimiter: "" }),
      'Namespace delimiter must be a non-empty string, got ""',
    );
  });

  test("a delimiter that is not a string", () => {
    expectInvalidArgument(
      () => new Namespace("billing", { delimiter: 5 as unknown as string }),
      "Namespace delimiter must be a non-empty string, got 5",
    );
  });

  test("an empty key", () => {
    expectInvalidArgument(
      () => new Namespace("billing").create(""),
      'Key must be a non-empty string, got ""',
    );
  });

  test.each([
    ["a number", 42, "Key must be a non-empty string, got 42"],
    ["null", null, "Key must be a non-empty string, got null"],
    ["undefined", undefined, "Key must be a non-empty string, got undefined"],
    ["an object", { id: 42 }, 'Key must be a non-empty string, got {"id":42}'],
    ["an array", ["order", 42], 'Key must be a non-empty string, got ["order",42]'],
  ])("a key that is %s", (_, key, message) => {
    expectInvalidArgument(() => new Namespace("billing").create(key as unknown as string), message);
  });

  // JSON.stringify throws on a bigint; describing the value must not turn the error into a TypeError.
  test("a key that is a bigint is an InvalidArgumentError", () => {
    let caught: unknown;
    try {
      new Namespace("billing").create(42n as unknown as string);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidArgumentError);
  });
});

describe("strings a backend cannot store as they are", () => {
  // A lone surrogate has no UTF-8 form: the drivers send U+FFFD, so "o\uD800" and "o\uDC00"
  // would be one key on the backend. PostgreSQL's text refuses NUL, which others store.
  test.each([
    [
      "a lone high surrogate",
      "o\uD800",
      'Key must be well-formed UTF-16 (a lone surrogate at index 1), got "o\\ud800"',
    ],
    [
      "a lone low surrogate",
      "o\uDC00",
      'Key must be well-formed UTF-16 (a lone surrogate at index 1), got "o\\udc00"',
    ],
    [
      "a pair in the wrong order",
      "ab\uDC00\uD800",
      'Key must be well-formed UTF-16 (a lone surrogate at index 2), got "ab\\udc00\\ud800"',
    ],
    [
      "a high surrogate at the end, after a pair",
      "\uD83D\uDE00\uD83D",
      'Key must be well-formed UTF-16 (a lone surrogate at index 2), got "😀\\ud83d"',
    ],
    ["a NUL", "order\u000042", 'Key must not contain NUL (at index 5), got "order\\u000042"'],
  ])("a key with %s is refused, naming the problem and where", (_, key, message) => {
    expectInvalidArgument(() => new Namespace("billing").create(key), message);
  });

  test("a key with a well-formed pair (an emoji) is kept as it is", () => {
    const key = new Namespace("billing").create("order 😀");
    expect(key.get()).toBe("order \uD83D\uDE00");
    expect(key.toString()).toBe("billing:order 😀");
  });

  test("parts, appended parts and the delimiter are held to the same", () => {
    expectInvalidArgument(
      () => new Namespace(["billing", "\uDFFFx"]),
      'Namespace part 1 must be well-formed UTF-16 (a lone surrogate at index 0), got "\\udfffx"',
    );
    expectInvalidArgument(
      () => new Namespace("bill\0ing"),
      'Namespace part 0 must not contain NUL (at index 4), got "bill\\u0000ing"',
    );
    expectInvalidArgument(
      () => new Namespace("billing").append(["eu", "lo\uD800cks"]),
      'Namespace part 2 must be well-formed UTF-16 (a lone surrogate at index 2), got "lo\\ud800cks"',
    );
    expectInvalidArgument(
      () => new Namespace("billing", { delimiter: "\0" }),
      'Namespace delimiter must not contain NUL (at index 0), got "\\u0000"',
    );
    expectInvalidArgument(
      () => new Namespace("billing", { delimiter: "\uD800" }),
      'Namespace delimiter must be well-formed UTF-16 (a lone surrogate at index 0), got "\\ud800"',
    );
  });
});

describe("isolation", () => {
  const distinct: ReadonlyArray<readonly string[]> = [
    ["a"],
    ["b"],
    ["ab"],
    ["a", "b"],
    ["b", "a"],
    ["a", "b", "c"],
    ["a", "bc"],
    ["ab", "c"],
    ["A"],
  ];

  test("namespaces whose parts differ never produce the same full key for one key", () => {
    const fullKeys = distinct.map((parts) => new Namespace(parts).create("order:42").toString());
    expect(new Set(fullKeys).size).toBe(distinct.length);
    expect(fullKeys).toEqual([
      "a:order:42",
      "b:order:42",
      "ab:order:42",
      "a:b:order:42",
      "b:a:order:42",
      "a:b:c:order:42",
      "a:bc:order:42",
      "ab:c:order:42",
      "A:order:42",
    ]);
  });

  test("the same parts with different delimiters produce different full keys", () => {
    const colon = new Namespace(["a", "b"]).create("k");
    const slash = new Namespace(["a", "b"], { delimiter: "/" }).create("k");
    expect(colon.toString()).toBe("a:b:k");
    expect(slash.toString()).toBe("a/b/k");
    expect(colon.equals(slash)).toBe(false);
  });

  // `new Namespace("a:b")` and `new Namespace(["a", "b"])` must not both store "k" as "a:b:k".
  test("a part containing the delimiter does not collide with the split parts", () => {
    expect(fullKeyOrRejected(["a:b"], ":")).not.toBe(fullKeyOrRejected(["a", "b"], ":"));
  });

  // With a two-character delimiter: neither "a:" nor ":b" contains "::", yet
  // ["a:", "b"] and ["a", ":b"] both join to "a:::b", so rejecting only parts that contain
  // the delimiter is not enough.
  test("parts that run into a multi-character delimiter do not collide", () => {
    expect(fullKeyOrRejected(["a:", "b"], "::")).not.toBe(fullKeyOrRejected(["a", ":b"], "::"));
  });
});

/** The full key of "k", or "rejected" when the namespace refuses its parts. */
function fullKeyOrRejected(parts: readonly string[], delimiter: string): string {
  try {
    return new Namespace(parts, { delimiter }).create("k").toString();
  } catch (error) {
    if (isInvalidArgumentError(error)) {
      return `rejected ${parts.join(",")}`;
    }
    throw error;
  }
}
