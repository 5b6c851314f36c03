import * as v from "valibot";
import { mustBe, settingsObject } from "../settings/parse-settings.js";
import { positiveTimeSpanSchema } from "../time-span/time-span-schema.js";
import type { BackoffPolicy } from "./backoff-policies.js";
import type { ErrorPolicy } from "./error-policy.js";

const callable = <T>(what: string) =>
  v.custom<T>((value) => typeof value === "function", mustBe(what));

const errorMatcher = v.union(
  [
    callable<ErrorPolicy>("an error class or a predicate"),
    v.array(callable<ErrorPolicy>("an error class")),
  ],
  mustBe("an error class, a predicate or an array of error classes"),
);

const errorPolicy = v.optional(
  v.union(
    [
      errorMatcher,
      settingsObject({
        treatFalseAsError: v.literal(true, mustBe("true")),
        errors: v.optional(errorMatcher),
      }),
    ],
    mustBe("an error class, a predicate, an array of error classes or { treatFalseAsError: true }"),
  ),
);

export const retrySchema = settingsObject({
  maxAttempts: v.optional(
    v.pipe(
      v.number(mustBe("a number")),
      v.safeInteger("must be an integer"),
      v.minValue(1, "must be at least 1"),
    ),
    4,
  ),
  backoffPolicy: v.optional(callable<BackoffPolicy>("a backoff policy function")),
  errorPolicy,
  onRetry: v.optional(callable<(event: never) => void>("a function")),
  throwRetryError: v.optional(v.boolean(mustBe("a boolean")), false),
});

export const timeoutSchema = settingsObject({
  waitTime: positiveTimeSpanSchema,
});

export const fallbackSchema = settingsObject({
  fallbackValue: v.unknown(),
  errorPolicy,
  onFallback: v.optional(callable<(event: never) => void>("a function")),
});
