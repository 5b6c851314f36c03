import * as v from "valibot";
import { describe, expect, test } from "vitest";
import {
  InvalidArgumentError,
  isInvalidArgumentError,
} from "../../src/errors/invalid-argument-error.js";
import { mustBe, parseSettings, settingsObject } from "../../src/settings/parse-settings.js";

function thrownBy(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error("expected the action to throw");
}

describe("parseSettings", () => {
  const lockSchema = v.object({
    ttl: v.optional(v.pipe(v.number(), v.gtValue(0, "must be positive")), 30_000),
    owner: v.optional(v.pipe(v.string(), v.nonEmpty("must not be empty"))),
    retry: v.optional(v.object({ attempts: v.optional(v.number(), 3) }), { attempts: 3 }),
  });

  test("returns the parsed data with defaults applied", () => {
    expect(parseSettings("lock settings", lockSchema, {})).toEqual({
      ttl: 30_000,
      retry: { attempts: 3 },
    });
    expect(parseSettings("lock settings", lockSchema, { ttl: 5, owner: "worker-1" })).toEqual({
      ttl: 5,
      owner: "worker-1",
      retry: { attempts: 3 },
    });
  });

  test("the result is frozen", () => {
    const settings = parseSettings("lock settings", lockSchema, { ttl: 5 });
    expect(Object.isFrozen(settings)).toBe(true);
    expect(() => {
      (settings as { ttl: number }).ttl = 10;
    }).toThrow(TypeError);
    expect(settings.ttl).toBe(5);
  });

  test("leaves the caller's input untouched", () => {
    const input = { ttl: 5, unknownSetting: true };
    const settings = parseSettings("lock settings", lockSchema, input);
    expect(settings).not.toBe(input);
    expect(Object.isFrozen(input)).toBe(false);
    expect(input).toEqual({ ttl: 5, unknownSetting: true });
    expect(settings).toEqual({ ttl: 5, retry: { attempts: 3 } });
  });

  test("returns a primitive result as is", () => {
    expect(parseSettings("timeout", v.optional(v.number(), 1_000), undefined)).toBe(1_000);
    expect(parseSettings("name", v.string(), "locks")).toBe("locks");
  });

  test("throws an InvalidArgumentError naming the field", () => {
    const error = thrownBy(() => parseSettings("lock settings", lockSchema, { ttl: -1 }));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(isInvalidArgumentError(error)).toBe(true);
    const invalid = error as InvalidArgumentError;
    expect(invalid.message).toBe("Invalid lock settings: ttl: must be positive");
    expect(invalid.issues).toEqual([{ path: "ttl", message: "must be positive" }]);
    expect(invalid.cause).toBeInstanceOf(v.ValiError);
  });

  test("names every invalid field at once", () => {
    const error = thrownBy(() =>
      parseSettings("lock settings", lockSchema, { ttl: 0, owner: "" }),
    ) as InvalidArgumentError;
    expect(error.message).toBe(
      "Invalid lock settings: ttl: must be positive; owner: must not be empty",
    );
    expect(error.issues.map((issue) => issue.path)).toEqual(["ttl", "owner"]);
  });

  test("a value of the wrong type: what was expected, and the type received", () => {
    const schema = v.object({
      ttl: v.custom((value) => value === null, mustBe("a TimeSpan or null")),
      count: v.number(),
      names: v.array(v.string()),
    });
    const error = thrownBy(() =>
      parseSettings("lock settings", schema, { ttl: 5, count: Number.NaN, names: ["a", null] }),
    ) as InvalidArgumentError;
    expect(error.issues).toEqual([
      { path: "ttl", message: "must be a TimeSpan or null, got number" },
      { path: "count", message: "must be number, got NaN" },
      { path: "names.1", message: "must be string, got null" },
    ]);
    expect(thrownBy(() => parseSettings("settings", schema, "fast"))).toMatchObject({
      message: "Invalid settings: must be Object, got string",
    });
    expect(thrownBy(() => parseSettings("settings", schema, {}))).toMatchObject({
      message: "Invalid settings: ttl: is required; count: is required; names: is required",
    });
  });

  describe("settingsObject", () => {
    const schema = settingsObject({
      adapter: v.custom((value) => typeof value === "object", mustBe("a lock adapter")),
      ttl: v.optional(v.number(mustBe("a number"))),
    });

    test("refuses an unknown key, naming the keys it takes", () => {
      expect(
        thrownBy(() => parseSettings("settings", schema, { adapter: {}, tll: 5 })),
      ).toMatchObject({
        message: "Invalid settings: tll: unknown key, expected one of: adapter, ttl",
      });
    });

    test("a required key left out gets its schema's message", () => {
      expect(thrownBy(() => parseSettings("settings", schema, { ttl: 5 }))).toMatchObject({
        issues: [{ path: "adapter", message: "must be a lock adapter, got undefined" }],
      });
    });

    test("a value that is not an object", () => {
      expect(thrownBy(() => parseSettings("settings", schema, "fast"))).toMatchObject({
        issues: [{ path: "(value)", message: "must be an object, got string" }],
      });
    });
  });

  describe("a union", () => {
    const schema = v.object({
      autoRefresh: v.union(
        [v.boolean(), settingsObject({ interval: v.number(mustBe("a number")) })],
        mustBe("a boolean or an object"),
      ),
    });

    test("that no option's shape fits: the union's message", () => {
      expect(
        thrownBy(() => parseSettings("run settings", schema, { autoRefresh: "x" })),
      ).toMatchObject({
        issues: [{ path: "autoRefresh", message: "must be a boolean or an object, got string" }],
      });
    });

    test("whose value passed an option's type: the rule it broke", () => {
      const evenOrNull = v.union(
        [
          v.pipe(
            v.number(),
            v.check((value) => value % 2 === 0, "must be even"),
            v.transform(String),
          ),
          v.null(),
        ],
        mustBe("a number or null"),
      );
      expect(thrownBy(() => parseSettings("count", evenOrNull, 3))).toMatchObject({
        issues: [{ path: "(value)", message: "must be even" }],
      });
      expect(thrownBy(() => parseSettings("count", evenOrNull, "3"))).toMatchObject({
        issues: [{ path: "(value)", message: "must be a number or null, got string" }],
      });
    });

    test("an array is not an object's shape", () => {
      expect(
        thrownBy(() => parseSettings("run settings", schema, { autoRefresh: [] })),
      ).toMatchObject({
        issues: [{ path: "autoRefresh", message: "must be a boolean or an object, got array" }],
      });
    });

    test("whose value has an option's shape: that option's problems, naming the field", () => {
      const input = { autoRefresh: { interval: "5" } };
      expect(thrownBy(() => parseSettings("run settings", schema, input))).toMatchObject({
        issues: [{ path: "autoRefresh.interval", message: "must be a number, got string" }],
      });
    });
  });
});
