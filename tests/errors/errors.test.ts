import { readFileSync } from "node:fs";
import { createContext, runInContext } from "node:vm";
import ts from "typescript";
import { describe, expect, test, vi } from "vitest";
import { z } from "zod";
import { createErrorGuard, HaspError, isHaspError } from "../../src/errors/hasp-error.js";
import {
  InvalidArgumentError,
  isInvalidArgumentError,
} from "../../src/errors/invalid-argument-error.js";

type HaspErrorModule = typeof import("../../src/errors/hasp-error.js");
type InvalidArgumentErrorModule = typeof import("../../src/errors/invalid-argument-error.js");

class LockError extends HaspError {
  override name = "LockError" as const;
}

class ReleaseLockError extends LockError {}

const isLockError = createErrorGuard(LockError, "LockError");

/**
 * A second instance of hasp-error.ts, as when two copies of hasp sit in one dependency tree.
 * The query string makes vitest load and evaluate the file again as a separate module.
 */
async function importHaspErrorCopy(): Promise<HaspErrorModule> {
  const specifier = "../../src/errors/hasp-error.js?copy";
  return (await import(specifier)) as HaspErrorModule;
}

function zodError(schema: z.ZodType, input: unknown): z.ZodError {
  const result = schema.safeParse(input);
  if (result.success) {
    throw new Error("expected the schema to reject the input");
  }
  return result.error;
}

describe("HaspError", () => {
  test("is an Error with its own name, message and cause", () => {
    const cause = new Error("socket closed");
    const error = new HaspError("lock lost", { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("HaspError");
    expect(error.message).toBe("lock lost");
    expect(error.cause).toBe(cause);
    expect(String(error)).toBe("HaspError: lock lost");
    expect(error.stack?.split("\n")[0]).toBe("HaspError: lock lost");
  });

  test("has no cause unless one is passed", () => {
    expect("cause" in new HaspError("x")).toBe(false);
  });

  test("a subclass keeps its own name", () => {
    const error = new ReleaseLockError("not the owner");
    expect(error.name).toBe("LockError");
    expect(String(error)).toBe("LockError: not the owner");
    expect(error).toBeInstanceOf(HaspError);
  });
});

describe("InvalidArgumentError", () => {
  test("is a HaspError with its own name and no issues by default", () => {
    const error = new InvalidArgumentError("ttl must be positive");
    expect(error).toBeInstanceOf(HaspError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("InvalidArgumentError");
    expect(error.message).toBe("ttl must be positive");
    expect(error.issues).toEqual([]);
    expect(String(error)).toBe("InvalidArgumentError: ttl must be positive");
    expect(error.stack?.split("\n")[0]).toBe("InvalidArgumentError: ttl must be positive");
  });

  test("keeps the issues and the cause it is given", () => {
    const cause = new Error("root");
    const issues = [{ path: "ttl", message: "must be positive" }];
    const error = new InvalidArgumentError("bad", issues, { cause });
    expect(error.issues).toEqual([{ path: "ttl", message: "must be positive" }]);
    expect(error.cause).toBe(cause);
  });
});

describe("isHaspError", () => {
  test.each([
    ["a HaspError", new HaspError("x")],
    ["an InvalidArgumentError", new InvalidArgumentError("x")],
    ["a subclass defined outside hasp", new LockError("x")],
    ["a subclass of a subclass", new ReleaseLockError("x")],
  ])("true for %s", (_, value) => {
    expect(isHaspError(value)).toBe(true);
  });

  test.each([
    ["a plain Error", new Error("x")],
    ["a TypeError", new TypeError("x")],
    ["an Error named HaspError", Object.assign(new Error("x"), { name: "HaspError" })],
    ["an object with a name", { name: "HaspError", message: "x" }],
    ["an object with the name InvalidArgumentError", { name: "InvalidArgumentError" }],
    ["the string HaspError", "HaspError"],
    ["null", null],
    ["undefined", undefined],
    ["the HaspError class itself", HaspError],
  ])("false for %s", (_, value) => {
    expect(isHaspError(value)).toBe(false);
  });
});

describe("errors from another copy of hasp", () => {
  test("the query-string import is a separate module instance", async () => {
    const copy = await importHaspErrorCopy();
    expect(copy.HaspError).not.toBe(HaspError);
    expect(copy.isHaspError).not.toBe(isHaspError);
  });

  test("isHaspError recognises a HaspError from the other copy, instanceof does not", async () => {
    const copy = await importHaspErrorCopy();
    const foreign = new copy.HaspError("from the other copy");
    expect(foreign instanceof HaspError).toBe(false);
    expect(isHaspError(foreign)).toBe(true);
  });

  test("the other copy's guard recognises this copy's errors", async () => {
    const copy = await importHaspErrorCopy();
    const local = new InvalidArgumentError("x");
    expect(local instanceof copy.HaspError).toBe(false);
    expect(copy.isHaspError(local)).toBe(true);
  });

  test("a guard built by createErrorGuard recognises the other copy's error by name", async () => {
    const copy = await importHaspErrorCopy();
    class ForeignLockError extends copy.HaspError {
      override name = "LockError" as const;
    }
    class ForeignOtherError extends copy.HaspError {
      override name = "OtherError" as const;
    }
    const foreign = new ForeignLockError("x");
    expect(foreign instanceof LockError).toBe(false);
    expect(isLockError(foreign)).toBe(true);
    expect(isLockError(new ForeignOtherError("x"))).toBe(false);
    expect(isLockError(new copy.HaspError("x"))).toBe(false);
  });

  test("a whole second copy (after vi.resetModules) is recognised", async () => {
    vi.resetModules();
    const second = (await import(
      "../../src/errors/invalid-argument-error.js"
    )) as InvalidArgumentErrorModule;
    vi.resetModules();
    expect(second.InvalidArgumentError).not.toBe(InvalidArgumentError);

    const foreign = new second.InvalidArgumentError("Invalid lock settings: ttl: too small");
    expect(foreign instanceof InvalidArgumentError).toBe(false);
    expect(foreign instanceof HaspError).toBe(false);
    expect(isHaspError(foreign)).toBe(true);
    expect(isInvalidArgumentError(foreign)).toBe(true);
    expect(isLockError(foreign)).toBe(false);
    expect(second.isInvalidArgumentError(new InvalidArgumentError("x"))).toBe(true);
    expect(second.isInvalidArgumentError(new HaspError("x"))).toBe(false);
  });

  // An Error built in another realm (a vm context) is not `instanceof Error` here, so the guard
  // must rely on the shared Symbol.for brand. hasp-error.ts itself is evaluated in a vm context.
  test("isHaspError recognises a HaspError created in another realm", () => {
    const source = readFileSync(new URL("../../src/errors/hasp-error.ts", import.meta.url), "utf8");
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
    });
    const realm = createContext({ exports: {} });
    runInContext(outputText, realm);
    const otherRealm = (realm as { exports: HaspErrorModule }).exports;
    const foreign = runInContext('new exports.HaspError("from another realm")', realm) as Error;

    expect(foreign instanceof Error).toBe(false);
    expect(otherRealm.isHaspError(foreign)).toBe(true);
    expect(isHaspError(foreign)).toBe(true);
  });
});

describe("createErrorGuard", () => {
  test("true for instances of the class and of its subclasses", () => {
    expect(isLockError(new LockError("x"))).toBe(true);
    expect(isLockError(new ReleaseLockError("x"))).toBe(true);
  });

  test.each([
    ["a HaspError", new HaspError("x")],
    ["another HaspError subclass", new InvalidArgumentError("x")],
    ["a plain Error named LockError", Object.assign(new Error("x"), { name: "LockError" })],
    ["an object named LockError", { name: "LockError", message: "x" }],
    ["null", null],
    ["a string", "LockError"],
  ])("false for %s", (_, value) => {
    expect(isLockError(value)).toBe(false);
  });

  test("isInvalidArgumentError is built the same way", () => {
    expect(isInvalidArgumentError(new InvalidArgumentError("x"))).toBe(true);
    expect(isInvalidArgumentError(new HaspError("x"))).toBe(false);
    expect(isInvalidArgumentError(new LockError("x"))).toBe(false);
    expect(isInvalidArgumentError(new RangeError("x"))).toBe(false);
  });
});

describe("InvalidArgumentError.fromZodError", () => {
  const retrySchema = z.object({
    maxAttempts: z.number().int().min(1, "must be at least 1"),
    backoff: z.object({
      delays: z.array(z.number({ error: "must be a number" })),
    }),
  });

  test("names each offending field path in the message and in issues", () => {
    const cause = zodError(retrySchema, { maxAttempts: 0, backoff: { delays: [10, "x"] } });
    const error = InvalidArgumentError.fromZodError("retry settings", cause);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.name).toBe("InvalidArgumentError");
    expect(error.message).toBe(
      "Invalid retry settings: maxAttempts: must be at least 1; backoff.delays.1: must be a number",
    );
    expect(error.issues).toEqual([
      { path: "maxAttempts", message: "must be at least 1" },
      { path: "backoff.delays.1", message: "must be a number" },
    ]);
  });

  test("keeps the ZodError as the cause", () => {
    const cause = zodError(retrySchema, { maxAttempts: 0, backoff: { delays: [] } });
    const error = InvalidArgumentError.fromZodError("retry settings", cause);
    expect(error.cause).toBe(cause);
    expect(error.cause).toBeInstanceOf(z.ZodError);
  });

  test("uses zod's own message when the schema sets none", () => {
    const cause = zodError(retrySchema, { maxAttempts: 1, backoff: "fast" });
    const zodMessage = cause.issues[0]?.message;
    expect(cause.issues).toHaveLength(1);
    expect(zodMessage).toEqual(expect.any(String));
    const error = InvalidArgumentError.fromZodError("retry settings", cause);
    expect(error.message).toBe(`Invalid retry settings: backoff: ${zodMessage}`);
    expect(error.issues).toEqual([{ path: "backoff", message: zodMessage }]);
  });

  test("names a failure of the value itself (value)", () => {
    const cause = zodError(z.number({ error: "must be a number" }), "ten");
    const error = InvalidArgumentError.fromZodError("timeout", cause);
    expect(error.message).toBe("Invalid timeout: must be a number");
    expect(error.issues).toEqual([{ path: "(value)", message: "must be a number" }]);
  });
});
