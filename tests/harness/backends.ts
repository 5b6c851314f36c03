/**
 * What test files use to reach the real services resolved by the global setup.
 *
 * @example
 * describeWithBackend("redis", (url) => {
 *   let client: Redis;
 *   beforeAll(() => { client = createRedisClient(url); });
 *   afterAll(() => client.quit());
 *   test("...", async () => { const prefix = uniqueName("lock"); ... });
 * });
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import mysql from "mysql2/promise";
import pg from "pg";
import { describe, inject } from "vitest";
import { type NotRunReason, notRunSuiteName } from "./backends-not-run.js";
import type { BackendName, ProvidedService } from "./services.js";

export type { BackendName } from "./services.js";

const CONNECT_TIMEOUT_MS = 2_000;

function provided(name: BackendName): ProvidedService {
  return (
    inject("haspServices")?.[name] ?? {
      url: null,
      status: "missing",
      summary: `${name}: the harness global setup did not run (use the root vitest.config.ts)`,
    }
  );
}

/** The URL of a resolved backend, or undefined when its tests are skipped. */
export function serviceUrl(name: BackendName): string | undefined {
  return provided(name).url ?? undefined;
}

/**
 * A `describe` block that runs only when the backend was resolved. Otherwise its tests are
 * collected as skipped, under a name that says why (`mongodb (not run: no server)`), so the
 * summary counts them per backend: `factory` is called with a URL nothing may connect to, and
 * none of its tests or hooks runs.
 */
export function describeWithBackend(name: BackendName, factory: (url: string) => void): void {
  const service = provided(name);
  const { url } = service;
  if (url === null) {
    describe.skip(notRunSuiteName(name, notRunReason(service)), () => {
      factory(`unavailable://${name}`);
    });
    return;
  }
  describe(name, () => factory(url));
}

/** Why a backend's tests do not run, as the summary names it. */
export function notRunReason(service: ProvidedService): NotRunReason {
  return service.status === "filtered-out" ? "left out by HASP_BACKENDS" : "no server";
}

/** What the harness knows of a backend: URL (null when missing), status and attempts. */
export function providedService(name: BackendName): ProvidedService {
  return provided(name);
}

const RUN_ID = randomBytes(4).toString("hex");
let counter = 0;

/**
 * A fresh identifier per call, unique across runs and across test processes: `hasp_t_` + the
 * label + a random run id + a counter. Only lowercase letters, digits and `_`, at most 48
 * characters, so it is safe as a Redis key prefix and as an unquoted SQL table name.
 */
export function uniqueName(label = ""): string {
  counter += 1;
  const suffix = `${RUN_ID}_${counter.toString(36)}`;
  const room = 48 - "hasp_t_".length - suffix.length - 1;
  const cleaned = label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, Math.max(room, 0))
    .replace(/_+$/, "");
  return cleaned === "" ? `hasp_t_${suffix}` : `hasp_t_${cleaned}_${suffix}`;
}

/** An ioredis client; the caller closes it (`quit()`). */
export function createRedisClient(url: string): Redis {
  return new Redis(url, { connectTimeout: CONNECT_TIMEOUT_MS, maxRetriesPerRequest: 1 });
}

/** A pg pool; the caller closes it (`end()`). */
export function createPgPool(url: string): pg.Pool {
  return new pg.Pool({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
}

/** A mysql2/promise pool; the caller closes it (`end()`). */
export function createMysqlPool(url: string): mysql.Pool {
  return mysql.createPool({ uri: url, connectTimeout: CONNECT_TIMEOUT_MS });
}
