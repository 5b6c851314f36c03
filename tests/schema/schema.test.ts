/**
 * hasp's schema builder stands in for zod in the settings schemas, so it must give zod's answer:
 * the same data, or the same issues (paths and messages, in order). Each schema below is built
 * twice, with zod and with `s`, and both parse the same inputs.
 */
import { inspect } from "node:util";
import { describe, expect, test } from "vitest";
import { z } from "zod";
import { type Schema, s } from "../../src/schema/schema.js";
import { TimeSpan } from "../../src/time-span/time-span.js";

type Answer =
  | { data: unknown }
  | { issues: { path: PropertyKey[]; message: string; errors?: unknown }[] };

function answer(schema: {
  safeParse(input: unknown): { success: boolean; data?: unknown; error?: unknown };
}): (input: unknown) => Answer {
  const issues = (list: readonly z.core.$ZodIssue[]): Answer & { issues: unknown } => ({
    issues: list.map((issue) => ({
      path: [...issue.path],
      message: issue.message,
      ...(issue.code === "invalid_union" ? { errors: issue.errors.map((e) => issues(e)) } : {}),
    })),
  });
  return (input) => {
    const result = schema.safeParse(input);
    return result.success
      ? { data: result.data }
      : issues((result.error as { issues: z.core.$ZodIssue[] }).issues);
  };
}

class Thing {}
const VALUES: unknown[] = [
  undefined,
  null,
  0,
  -1,
  1,
  1.5,
  2 ** 60,
  -(2 ** 60),
  Number.NaN,
  Number.POSITIVE_INFINITY,
  "",
  "x",
  "ab",
  "a\0b",
  "😀😀😀",
  "😀😀😀😀",
  "x".repeat(5),
  "0f",
  "system.x",
  true,
  false,
  [],
  [1],
  ["x", 2],
  {},
  { a: 1 },
  { length: 0 },
  () => 1,
  new Map(),
  new Thing(),
  Object.create(null),
  10n,
  Symbol("s"),
  TimeSpan.fromSeconds(1),
  TimeSpan.fromMilliseconds(-1),
];

const isThing = (value: unknown) => value instanceof Thing;
const noZ = (value: string) => !value.includes("z");
const pairs: [string, z.ZodType, Schema<unknown>][] = [
  [
    "string with a message, min and max in code points, regex, refine",
    z
      .string("must be a string")
      .min(2, "short")
      .max(3, "long")
      .regex(/^[^0]*$/, "zero")
      .refine(noZ, "z"),
    s
      .string("must be a string")
      .min(2, "short")
      .max(3, "long")
      .regex(/^[^0]*$/, "zero")
      .refine(noZ, "z"),
  ],
  [
    "string superRefine",
    z.string().superRefine((v, c) => {
      if (v.includes("\0")) c.addIssue({ code: "custom", message: "NUL" });
    }),
    s.string().superRefine((v, c) => {
      if (v.includes("\0")) c.addIssue({ code: "custom", message: "NUL" });
    }),
  ],
  ["number int min", z.number().int("int").min(1, "min"), s.number().int("int").min(1, "min")],
  [
    "number positive max",
    z.number().positive().max(10, "max"),
    s.number().positive().max(10, "max"),
  ],
  [
    "number finite default",
    z.number().min(1, "min").finite().default(2),
    s.number().min(1, "min").finite().default(2),
  ],
  ["boolean", z.boolean("bool"), s.boolean("bool")],
  ["literal", z.literal(true), s.literal(true)],
  ["enum", z.enum(["a", "b"]), s.enum(["a", "b"])],
  [
    "custom, nullable, default",
    z.custom(isThing, "thing").nullable().default(null),
    s.custom(isThing, "thing").nullable().default(null),
  ],
  [
    "transform then refine",
    z
      .custom(isThing, "thing")
      .transform(() => 5)
      .refine((n) => n > 9, "big"),
    s
      .custom(isThing, "thing")
      .transform(() => 5)
      .refine((n) => n > 9, "big"),
  ],
  [
    "union of custom and array",
    z.union([z.custom(isThing, "thing"), z.array(z.custom(isThing, "thing"))]),
    s.union([s.custom(isThing, "thing"), s.array(s.custom(isThing, "thing"))]),
  ],
  [
    "union of boolean and strict object",
    z.union([z.boolean(), z.object({ a: z.number().optional() }).strict()]),
    s.union([s.boolean(), s.object({ a: s.number().optional() }).strict()]),
  ],
];

function objectPair(strict: boolean): [string, z.ZodType, Schema<unknown>] {
  const zShape = z.object({
    a: z.string("str").min(1, "empty").optional(),
    b: z.number().int("int").default(3),
    c: z.custom(isThing, "thing"),
    d: z.unknown(),
    e: z.union([z.boolean(), z.literal("x")]).default(false),
  });
  const sShape = s.object({
    a: s.string("str").min(1, "empty").optional(),
    b: s.number().int("int").default(3),
    c: s.custom(isThing, "thing"),
    d: s.unknown(),
    e: s.union([s.boolean(), s.literal("x")]).default(false),
  });
  // One object each: zod rewrites the one it is given.
  const refine = () => ({ message: "b above a", path: ["b"] });
  const bBelowA = (o: { a?: string; b: number }) => o.a === undefined || o.b <= o.a.length;
  return [
    `object${strict ? " strict" : ""} with a refine`,
    (strict ? zShape.strict() : zShape).refine(bBelowA, refine()),
    (strict ? sShape.strict() : sShape).refine(bBelowA, refine()),
  ];
}
pairs.push(objectPair(false), objectPair(true));

/** Objects of every field drawn from VALUES, some with extra or inherited keys (seeded). */
function objects(count: number): unknown[] {
  let seed = 17;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const draw = () => VALUES[Math.floor(next() * VALUES.length)];
  const out: unknown[] = [JSON.parse('{"__proto__": 1}'), { c: new Thing(), d: 1, extra: 1 }];
  for (let index = 0; index < count; index++) {
    const object: Record<string, unknown> = {};
    for (const key of ["a", "b", "c", "d", "e", "f"]) {
      if (next() < 0.6) {
        object[key] = key === "c" && next() < 0.5 ? new Thing() : draw();
      }
    }
    out.push(next() < 0.1 ? Object.create(object) : object);
  }
  return out;
}
const INPUTS = [...VALUES, ...objects(400)];

describe("s gives zod's answer", () => {
  test.each(pairs)("%s", (_name, zodSchema, schema) => {
    const [byZod, byS] = [answer(zodSchema), answer(schema)];
    for (const input of INPUTS) {
      expect(byS(input), inspect(input)).toEqual(byZod(input));
    }
  });
});
