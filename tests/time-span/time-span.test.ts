import { inspect } from "node:util";
import { describe, expect, test } from "vitest";
import { InvalidArgumentError } from "../../src/errors/invalid-argument-error.js";
import { type ITimeSpan, TimeSpan } from "../../src/time-span/time-span.js";

function span(milliseconds: number): ITimeSpan {
  return { toMilliseconds: () => milliseconds };
}

/** Bad input is hasp's InvalidArgumentError, naming the method, the argument and the value. */
function expectInvalid(action: () => unknown, method: string, field: string, problem: string) {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(InvalidArgumentError);
  const error = caught as InvalidArgumentError;
  expect(error.message).toBe(`Invalid TimeSpan.${method} argument: ${field}: ${problem}`);
  expect(error.issues).toEqual([{ path: field, message: problem }]);
}

const NOT_FINITE = [
  [Number.NaN, "NaN"],
  [Number.POSITIVE_INFINITY, "Infinity"],
  [Number.NEGATIVE_INFINITY, "-Infinity"],
] as const;

describe("factories", () => {
  test.each([
    ["fromMilliseconds", TimeSpan.fromMilliseconds(1_500), 1_500],
    ["fromSeconds", TimeSpan.fromSeconds(1.5), 1_500],
    ["fromMinutes", TimeSpan.fromMinutes(2), 120_000],
    ["fromHours", TimeSpan.fromHours(1.5), 5_400_000],
    ["fromDays", TimeSpan.fromDays(2), 172_800_000],
  ])("%s stores the duration in milliseconds", (_, timeSpan, milliseconds) => {
    expect(timeSpan).toBeInstanceOf(TimeSpan);
    expect(timeSpan.toMilliseconds()).toBe(milliseconds);
  });

  test("keeps fractions of a millisecond", () => {
    expect(TimeSpan.fromMilliseconds(0.25).toMilliseconds()).toBe(0.25);
    expect(TimeSpan.fromSeconds(0.0005).toMilliseconds()).toBe(0.5);
  });

  test.each([
    ["fromMilliseconds", TimeSpan.fromMilliseconds(-250), -250],
    ["fromSeconds", TimeSpan.fromSeconds(-3), -3_000],
    ["fromMinutes", TimeSpan.fromMinutes(-1), -60_000],
    ["fromHours", TimeSpan.fromHours(-2), -7_200_000],
    ["fromDays", TimeSpan.fromDays(-1), -86_400_000],
  ])("%s accepts a negative duration", (_, timeSpan, milliseconds) => {
    expect(timeSpan.toMilliseconds()).toBe(milliseconds);
  });

  test("ZERO is a zero-length span", () => {
    expect(TimeSpan.ZERO).toBeInstanceOf(TimeSpan);
    expect(TimeSpan.ZERO.toMilliseconds()).toBe(0);
    expect(TimeSpan.ZERO.isZero()).toBe(true);
  });

  describe.each([
    ["fromMilliseconds", TimeSpan.fromMilliseconds, "milliseconds"],
    ["fromSeconds", TimeSpan.fromSeconds, "seconds"],
    ["fromMinutes", TimeSpan.fromMinutes, "minutes"],
    ["fromHours", TimeSpan.fromHours, "hours"],
    ["fromDays", TimeSpan.fromDays, "days"],
  ])("%s", (name, factory, unit) => {
    test.each(NOT_FINITE)("rejects %s with an InvalidArgumentError naming it", (value, printed) => {
      const problem = `must be a finite number, got ${printed}`;
      expectInvalid(() => factory(value), name, unit, problem);
    });

    test("rejects a value that is not a number", () => {
      const problem = "must be a finite number, got null";
      expectInvalid(() => factory(null as unknown as number), name, unit, problem);
    });
  });

  // A finite number of seconds, minutes, hours or days can overflow once converted to
  // milliseconds; the product is checked, not only the argument.
  test("rejects a duration that overflows when converted to milliseconds", () => {
    expectInvalid(
      () => TimeSpan.fromSeconds(Number.MAX_VALUE),
      "fromSeconds",
      "seconds",
      "the result must be a finite number of milliseconds, got Infinity",
    );
  });
});

describe("conversions", () => {
  const ninetyMinutes = TimeSpan.fromMilliseconds(5_400_000);

  test.each([
    ["toMilliseconds", ninetyMinutes.toMilliseconds(), 5_400_000],
    ["toSeconds", ninetyMinutes.toSeconds(), 5_400],
    ["toMinutes", ninetyMinutes.toMinutes(), 90],
    ["toHours", ninetyMinutes.toHours(), 1.5],
    ["toDays", ninetyMinutes.toDays(), 0.0625],
  ])("%s of 90 minutes", (_, actual, expected) => {
    expect(actual).toBe(expected);
  });

  test("converts negative spans and fractions", () => {
    const span = TimeSpan.fromMilliseconds(-1_500);
    expect(span.toSeconds()).toBe(-1.5);
    expect(span.toMinutes()).toBe(-0.025);
    expect(TimeSpan.fromDays(1.5).toHours()).toBe(36);
    expect(TimeSpan.fromMilliseconds(250).toSeconds()).toBe(0.25);
  });
});

describe("TimeSpan.from", () => {
  test("returns a TimeSpan as is", () => {
    const original = TimeSpan.fromSeconds(1);
    expect(TimeSpan.from(original)).toBe(original);
  });

  test("converts a plain object with toMilliseconds", () => {
    const converted = TimeSpan.from(span(1_234.5));
    expect(converted).toBeInstanceOf(TimeSpan);
    expect(converted.toMilliseconds()).toBe(1_234.5);
    expect(converted.toString()).toBe("1s 234.5ms");
  });

  test("converts an object whose toMilliseconds lives on its prototype", () => {
    class Minutes {
      constructor(readonly minutes: number) {}
      toMilliseconds(): number {
        return this.minutes * 60_000;
      }
    }
    expect(TimeSpan.from(new Minutes(3)).toMilliseconds()).toBe(180_000);
  });

  test.each(NOT_FINITE)("rejects toMilliseconds() returning %s", (value, printed) => {
    expectInvalid(
      () => TimeSpan.from(span(value)),
      "from",
      "toMilliseconds()",
      `must be a finite number, got ${printed}`,
    );
  });

  test("rejects toMilliseconds() returning a string", () => {
    expectInvalid(
      () => TimeSpan.from({ toMilliseconds: () => "1000" as unknown as number }),
      "from",
      "toMilliseconds()",
      "must be a finite number, got 1000",
    );
  });
});

describe("arithmetic", () => {
  test("add", () => {
    expect(TimeSpan.fromSeconds(1).add(TimeSpan.fromMilliseconds(500)).toMilliseconds()).toBe(
      1_500,
    );
    expect(TimeSpan.fromSeconds(1).add(span(-250)).toMilliseconds()).toBe(750);
    expect(TimeSpan.fromMinutes(1).add(TimeSpan.ZERO).toMilliseconds()).toBe(60_000);
  });

  test("subtract, including into negative", () => {
    expect(TimeSpan.fromSeconds(2).subtract(TimeSpan.fromMilliseconds(500)).toMilliseconds()).toBe(
      1_500,
    );
    const negative = TimeSpan.fromSeconds(1).subtract(span(1_500));
    expect(negative.toMilliseconds()).toBe(-500);
    expect(negative.isNegative()).toBe(true);
  });

  test("multiply", () => {
    expect(TimeSpan.fromSeconds(2).multiply(2.5).toMilliseconds()).toBe(5_000);
    expect(TimeSpan.fromSeconds(2).multiply(-1).toMilliseconds()).toBe(-2_000);
    expect(TimeSpan.fromSeconds(2).multiply(0).toMilliseconds()).toBe(0);
    expect(TimeSpan.fromMilliseconds(3).multiply(0.5).toMilliseconds()).toBe(1.5);
  });

  test("divide", () => {
    expect(TimeSpan.fromSeconds(1).divide(4).toMilliseconds()).toBe(250);
    expect(TimeSpan.fromSeconds(1).divide(-2).toMilliseconds()).toBe(-500);
    expect(TimeSpan.fromMilliseconds(1).divide(3).toMilliseconds()).toBe(1 / 3);
    expect(TimeSpan.fromSeconds(1).divide(0.5).toMilliseconds()).toBe(2_000);
  });

  test("divide by 0 is an InvalidArgumentError", () => {
    expectInvalid(() => TimeSpan.fromSeconds(1).divide(0), "divide", "divisor", "must not be 0");
    expectInvalid(() => TimeSpan.fromSeconds(1).divide(-0), "divide", "divisor", "must not be 0");
    expectInvalid(() => TimeSpan.ZERO.divide(0), "divide", "divisor", "must not be 0");
  });

  test.each(NOT_FINITE)("multiply and divide reject %s", (value, printed) => {
    const oneSecond = TimeSpan.fromSeconds(1);
    const problem = `must be a finite number, got ${printed}`;
    expectInvalid(() => oneSecond.multiply(value), "multiply", "factor", problem);
    expectInvalid(() => oneSecond.divide(value), "divide", "divisor", problem);
  });

  test.each(NOT_FINITE)("add and subtract reject an operand returning %s", (value, printed) => {
    const oneSecond = TimeSpan.fromSeconds(1);
    const problem = `must be a finite number, got ${printed}`;
    expectInvalid(() => oneSecond.add(span(value)), "add", "other", problem);
    expectInvalid(() => oneSecond.subtract(span(value)), "subtract", "other", problem);
  });

  test("a result that overflows is an InvalidArgumentError naming the value", () => {
    const largest = TimeSpan.fromMilliseconds(Number.MAX_VALUE);
    const problem = "the result must be a finite number of milliseconds, got Infinity";
    expectInvalid(() => largest.add(largest), "add", "other", problem);
    expectInvalid(() => largest.multiply(2), "multiply", "factor", problem);
    expectInvalid(() => largest.divide(0.5), "divide", "divisor", problem);
    expectInvalid(
      () => TimeSpan.fromMilliseconds(-Number.MAX_VALUE).subtract(largest),
      "subtract",
      "other",
      "the result must be a finite number of milliseconds, got -Infinity",
    );
  });
});

describe("immutability", () => {
  test.each([
    ["add", (original: TimeSpan) => original.add(TimeSpan.fromSeconds(1))],
    ["add ZERO", (original: TimeSpan) => original.add(TimeSpan.ZERO)],
    ["subtract", (original: TimeSpan) => original.subtract(TimeSpan.fromSeconds(1))],
    ["multiply", (original: TimeSpan) => original.multiply(3)],
    ["multiply by 1", (original: TimeSpan) => original.multiply(1)],
    ["divide", (original: TimeSpan) => original.divide(2)],
  ])("%s returns a new TimeSpan and leaves the original unchanged", (_, operation) => {
    const original = TimeSpan.fromSeconds(10);
    const result = operation(original);
    expect(result).toBeInstanceOf(TimeSpan);
    expect(result).not.toBe(original);
    expect(original.toMilliseconds()).toBe(10_000);
  });

  test("ZERO is unchanged by operations on it", () => {
    TimeSpan.ZERO.add(TimeSpan.fromSeconds(5));
    TimeSpan.ZERO.subtract(TimeSpan.fromSeconds(5));
    expect(TimeSpan.ZERO.toMilliseconds()).toBe(0);
  });

  test("the duration is not reachable as a writable property", () => {
    const timeSpan = TimeSpan.fromSeconds(1);
    expect(Object.keys(timeSpan)).toEqual([]);
    (timeSpan as unknown as Record<string, unknown>).milliseconds = 5;
    expect(timeSpan.toMilliseconds()).toBe(1_000);
  });
});

describe("comparison", () => {
  test("compare returns -1, 0 or 1", () => {
    const oneSecond = TimeSpan.fromSeconds(1);
    expect(oneSecond.compare(TimeSpan.fromMilliseconds(999))).toBe(1);
    expect(oneSecond.compare(TimeSpan.fromMilliseconds(1_000))).toBe(0);
    expect(oneSecond.compare(TimeSpan.fromMilliseconds(1_001))).toBe(-1);
    expect(oneSecond.compare(TimeSpan.fromHours(5))).toBe(-1);
    expect(oneSecond.compare(TimeSpan.fromMilliseconds(-5))).toBe(1);
  });

  test("compare accepts a plain ITimeSpan and sorts spans", () => {
    expect(TimeSpan.fromSeconds(1).compare(span(1_000))).toBe(0);
    const sorted = [TimeSpan.fromSeconds(3), TimeSpan.fromSeconds(-1), TimeSpan.fromSeconds(2)]
      .sort((a, b) => a.compare(b))
      .map((timeSpan) => timeSpan.toMilliseconds());
    expect(sorted).toEqual([-1_000, 2_000, 3_000]);
  });

  test("equals compares durations, whatever the unit they were built from", () => {
    expect(TimeSpan.fromMinutes(1).equals(TimeSpan.fromSeconds(60))).toBe(true);
    expect(TimeSpan.fromHours(24).equals(TimeSpan.fromDays(1))).toBe(true);
    expect(TimeSpan.fromSeconds(1).equals(span(1_000))).toBe(true);
    expect(TimeSpan.fromSeconds(1).equals(span(1_000.5))).toBe(false);
    expect(TimeSpan.fromSeconds(1).equals(TimeSpan.fromSeconds(-1))).toBe(false);
  });

  test("isLongerThan and isShorterThan are strict", () => {
    const oneSecond = TimeSpan.fromSeconds(1);
    expect(oneSecond.isLongerThan(span(999))).toBe(true);
    expect(oneSecond.isLongerThan(span(1_000))).toBe(false);
    expect(oneSecond.isLongerThan(span(1_001))).toBe(false);
    expect(oneSecond.isShorterThan(span(1_001))).toBe(true);
    expect(oneSecond.isShorterThan(span(1_000))).toBe(false);
    expect(oneSecond.isShorterThan(span(999))).toBe(false);
  });

  test("isZero", () => {
    expect(TimeSpan.ZERO.isZero()).toBe(true);
    expect(TimeSpan.fromSeconds(0).isZero()).toBe(true);
    expect(TimeSpan.fromMilliseconds(0.001).isZero()).toBe(false);
    expect(TimeSpan.fromMilliseconds(-0.001).isZero()).toBe(false);
  });

  test("isNegative", () => {
    expect(TimeSpan.fromMilliseconds(-0.001).isNegative()).toBe(true);
    expect(TimeSpan.fromSeconds(-1).isNegative()).toBe(true);
    expect(TimeSpan.ZERO.isNegative()).toBe(false);
    expect(TimeSpan.fromSeconds(1).isNegative()).toBe(false);
  });

  test("min and max pick the shortest and longest span", () => {
    const spans = [TimeSpan.fromSeconds(3), TimeSpan.fromSeconds(-1), TimeSpan.fromSeconds(2)];
    expect(TimeSpan.min(TimeSpan.fromSeconds(5), ...spans).toMilliseconds()).toBe(-1_000);
    expect(TimeSpan.max(TimeSpan.fromSeconds(1), ...spans).toMilliseconds()).toBe(3_000);
  });

  test("min and max of one span return it", () => {
    const only = TimeSpan.fromSeconds(7);
    expect(TimeSpan.min(only)).toBe(only);
    expect(TimeSpan.max(only)).toBe(only);
  });

  test("min and max return the first of equal spans", () => {
    const first = TimeSpan.fromSeconds(1);
    const second = TimeSpan.fromMilliseconds(1_000);
    expect(TimeSpan.min(first, second)).toBe(first);
    expect(TimeSpan.max(first, second)).toBe(first);
    expect(TimeSpan.min(second, first)).toBe(second);
  });

  test("min and max convert plain ITimeSpans to TimeSpans", () => {
    const shortest = TimeSpan.min(span(300), span(100), span(200));
    const longest = TimeSpan.max(span(300), span(100), span(400));
    expect(shortest).toBeInstanceOf(TimeSpan);
    expect(shortest.toMilliseconds()).toBe(100);
    expect(longest).toBeInstanceOf(TimeSpan);
    expect(longest.toMilliseconds()).toBe(400);
  });

  test("min and max reject a plain ITimeSpan returning NaN", () => {
    const problem = "must be a finite number, got NaN";
    expectInvalid(() => TimeSpan.min(span(1), span(Number.NaN)), "min", "spans", problem);
    expectInvalid(() => TimeSpan.max(span(Number.NaN), span(1)), "max", "spans", problem);
    expectInvalid(() => TimeSpan.ZERO.compare(span(Number.NaN)), "compare", "other", problem);
  });
});

describe("-0 normalisation", () => {
  test.each([
    ["fromMilliseconds(-0)", () => TimeSpan.fromMilliseconds(-0)],
    ["fromSeconds(-0)", () => TimeSpan.fromSeconds(-0)],
    ["fromDays(-0)", () => TimeSpan.fromDays(-0)],
    ["from a plain -0", () => TimeSpan.from(span(-0))],
    ["a span minus itself", () => TimeSpan.fromSeconds(5).subtract(TimeSpan.fromSeconds(5))],
    ["a negative span times 0", () => TimeSpan.fromSeconds(-5).multiply(0)],
    ["zero times -1", () => TimeSpan.ZERO.multiply(-1)],
    ["zero divided by -3", () => TimeSpan.ZERO.divide(-3)],
  ])("%s is +0", (_, create) => {
    const timeSpan = create();
    expect(Object.is(timeSpan.toMilliseconds(), 0)).toBe(true);
    expect(Object.is(timeSpan.toSeconds(), 0)).toBe(true);
    expect(Object.is(timeSpan.toJSON(), 0)).toBe(true);
    expect(timeSpan.toString()).toBe("0ms");
    expect(timeSpan.isNegative()).toBe(false);
    expect(timeSpan.isZero()).toBe(true);
    expect(timeSpan.equals(TimeSpan.ZERO)).toBe(true);
  });
});

describe("toString", () => {
  test.each([
    [0, "0ms"],
    [250, "250ms"],
    [0.25, "0.25ms"],
    [1.23456, "1.235ms"],
    [1_000, "1s"],
    [2_500, "2s 500ms"],
    [1_500.5, "1s 500.5ms"],
    [60_000, "1m"],
    [90_000, "1m 30s"],
    [3_600_000, "1h"],
    [5_400_000, "1h 30m"],
    [86_400_000, "1d"],
    [90_061_001, "1d 1h 1m 1s 1ms"],
    [259_200_005, "3d 5ms"],
    [3_456_000_000, "40d"],
    [-5_000, "-5s"],
    [-0.25, "-0.25ms"],
    [-5_400_000, "-1h 30m"],
    [-90_061_001, "-1d 1h 1m 1s 1ms"],
  ])("%d ms prints as %s", (milliseconds, printed) => {
    expect(TimeSpan.fromMilliseconds(milliseconds).toString()).toBe(printed);
  });

  test("string conversion uses toString", () => {
    expect(`${TimeSpan.fromSeconds(90)}`).toBe("1m 30s");
    expect(String(TimeSpan.fromHours(1.5))).toBe("1h 30m");
  });

  test("node's inspect shows the readable form", () => {
    expect(inspect(TimeSpan.fromSeconds(90))).toBe("TimeSpan(1m 30s)");
    expect(inspect({ ttl: TimeSpan.fromMilliseconds(250) })).toBe("{ ttl: TimeSpan(250ms) }");
  });

  // Float error of a unit factory must not show as a trailing "0ms" or as "1000ms":
  // fromHours(1.1) is 3960000.0000000005 ms; fromHours(2.3) is 8279999.999999999 ms.
  test("fromHours(1.1) prints without a spurious 0ms", () => {
    expect(TimeSpan.fromHours(1.1).toString()).toBe("1h 6m");
  });

  test("fromHours(2.3) prints as 2h 18m, not 2h 17m 59s 1000ms", () => {
    expect(TimeSpan.fromHours(2.3).toString()).toBe("2h 18m");
  });
});

describe("toJSON", () => {
  test("serialises as the number of milliseconds", () => {
    expect(TimeSpan.fromSeconds(1.5).toJSON()).toBe(1_500);
    expect(TimeSpan.fromMilliseconds(-0.25).toJSON()).toBe(-0.25);
    expect(JSON.stringify({ ttl: TimeSpan.fromSeconds(1.5), zero: TimeSpan.ZERO })).toBe(
      '{"ttl":1500,"zero":0}',
    );
  });

  test("round-trips through fromMilliseconds", () => {
    const original = TimeSpan.fromMilliseconds(90_061_001.5);
    const parsed = JSON.parse(JSON.stringify(original)) as number;
    expect(TimeSpan.fromMilliseconds(parsed).equals(original)).toBe(true);
  });
});

describe("TimeSpan.isTimeSpan", () => {
  test("true for a TimeSpan and for any object with a toMilliseconds method", () => {
    expect(TimeSpan.isTimeSpan(TimeSpan.fromSeconds(1))).toBe(true);
    expect(TimeSpan.isTimeSpan(TimeSpan.ZERO)).toBe(true);
    expect(TimeSpan.isTimeSpan(span(5))).toBe(true);
    expect(TimeSpan.isTimeSpan({ toMilliseconds: () => Number.NaN })).toBe(true);
  });

  test.each([
    ["null", null],
    ["undefined", undefined],
    ["a number", 1_000],
    ["a string", "1s"],
    ["an empty object", {}],
    ["an object whose toMilliseconds is a number", { toMilliseconds: 1_000 }],
    ["an object with toSeconds only", { toSeconds: () => 1 }],
  ])("false for %s", (_, value) => {
    expect(TimeSpan.isTimeSpan(value)).toBe(false);
  });
});

describe("daiso-core's constructors", () => {
  test("fromStr reads a number and a unit, as @lukeed/ms (daiso-core's fromStr) does", () => {
    const cases: Array<[string, number]> = [
      ["5s", 5_000],
      ["500", 500],
      ["250ms", 250],
      ["1.5h", 5_400_000],
      [".5s", 500],
      ["2 minutes", 120_000],
      ["3 Days", 259_200_000],
      ["1w", 604_800_000],
      ["1y", 31_557_600_000],
      ["-5s", -5_000],
      ["0s", 0],
    ];
    for (const [text, milliseconds] of cases) {
      expect(TimeSpan.fromStr(text).toMilliseconds(), text).toBe(milliseconds);
    }
    for (const text of ["", "abc", "5sx", "5 parsecs", "s", "1e3s"]) {
      expect(() => TimeSpan.fromStr(text), text).toThrow(InvalidArgumentError);
      expect(() => TimeSpan.fromStr(text)).toThrow(/is not a duration; write a number and a unit/);
    }
  });

  test("fromDateRange is end minus start, either defaulting to now; fromTimeSpan is from", () => {
    const start = new Date("2026-01-01T00:00:00Z");
    const end = new Date("2026-01-01T00:01:30Z");
    expect(TimeSpan.fromDateRange({ start, end }).toMilliseconds()).toBe(90_000);
    expect(TimeSpan.fromDateRange({ start: end, end: start }).toMilliseconds()).toBe(-90_000);
    expect(
      TimeSpan.fromDateRange({ end: new Date(Date.now() + 60_000) }).toSeconds(),
    ).toBeGreaterThan(59);
    expect(() => TimeSpan.fromDateRange({ start: new Date("nope") })).toThrow(InvalidArgumentError);
    const span = TimeSpan.fromSeconds(2);
    expect(TimeSpan.fromTimeSpan(span)).toBe(span);
  });
});
