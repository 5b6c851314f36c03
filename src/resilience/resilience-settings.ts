import { s } from "../schema/schema.js";
import { TimeSpan } from "../time-span/time-span.js";
import { positiveTimeSpanSchema, timeSpanSchema } from "../time-span/time-span-schema.js";
import type { BackoffPolicy } from "./backoff-policies.js";
import type { ErrorPolicy } from "./error-policy.js";

const duration = (fallback: TimeSpan) =>
  timeSpanSchema.refine((value) => !value.isNegative(), "must not be negative").default(fallback);

const callable = <T>(what: string) =>
  s.custom<T>((value) => typeof value === "function", `must be ${what}`);

const jitter = s.boolean().default(false);

export const constantBackoffSchema = s.object({
  delay: duration(TimeSpan.fromSeconds(1)),
  jitter,
});

export const linearBackoffSchema = s
  .object({
    minDelay: duration(TimeSpan.fromSeconds(1)),
    maxDelay: duration(TimeSpan.fromMinutes(1)),
    jitter,
  })
  .refine((value) => !value.maxDelay.isShorterThan(value.minDelay), {
    message: "must not be shorter than minDelay",
    path: ["maxDelay"],
  });

export const exponentialBackoffSchema = s
  .object({
    minDelay: duration(TimeSpan.fromMilliseconds(100)),
    maxDelay: duration(TimeSpan.fromMinutes(1)),
    multiplier: s.number().min(1, "must be at least 1").finite().default(2),
    jitter,
  })
  .refine((value) => !value.maxDelay.isShorterThan(value.minDelay), {
    message: "must not be shorter than minDelay",
    path: ["maxDelay"],
  });

const errorMatcher = s.union([
  callable<ErrorPolicy>("an error class or a predicate"),
  s.array(callable<ErrorPolicy>("an error class")),
]);

const errorPolicy = s
  .union([
    errorMatcher,
    s.object({ treatFalseAsError: s.literal(true), errors: errorMatcher.optional() }).strict(),
  ])
  .optional();

export const retrySchema = s
  .object({
    maxAttempts: s.number().int("must be an integer").min(1, "must be at least 1").default(4),
    backoffPolicy: callable<BackoffPolicy>("a backoff policy function").optional(),
    errorPolicy,
    onRetry: callable<(event: never) => void>("a function").optional(),
    throwRetryError: s.boolean().default(false),
  })
  .strict();

export const timeoutSchema = s
  .object({
    waitTime: positiveTimeSpanSchema,
  })
  .strict();

export const fallbackSchema = s
  .object({
    fallbackValue: s.unknown(),
    errorPolicy,
    onFallback: callable<(event: never) => void>("a function").optional(),
  })
  .strict();
