import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Kysely, PostgresDialect } from "kysely";
import { afterAll, beforeAll, expect, test } from "vitest";
import { KyselyLockAdapter } from "../../src/lock/adapters/kysely/kysely-lock-adapter.js";
import { createPgPool, describeWithBackend, uniqueName } from "../harness/backends.js";

/** After its "closed" line, a fixture must exit by itself within this. */
const EXIT_WITHIN_MS = 5_000;
/** A fixture still running then is killed, and its test fails. */
const KILL_AFTER_MS = 30_000;

type FixtureRun = {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** ms from the "closed" line to the exit; undefined when it never printed it. */
  exitedAfterMs: number | undefined;
  output: string;
};

/** Runs `node --import tsx fixtures/<name>.ts ...args` to its end (or kills it). */
function runFixture(name: string, args: string[]): Promise<FixtureRun> {
  const file = fileURLToPath(new URL(`./fixtures/${name}.ts`, import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", file, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let closedAt: number | undefined;
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
    if (closedAt === undefined && output.split("\n").includes("closed")) {
      closedAt = performance.now();
    }
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), KILL_AFTER_MS);
  return new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      clearTimeout(killer);
      resolve({
        code,
        signal,
        exitedAfterMs: closedAt === undefined ? undefined : performance.now() - closedAt,
        output,
      });
    });
  });
}

function expectExitedByItself(run: FixtureRun): void {
  expect(run.signal, `killed after ${KILL_AFTER_MS} ms: it hung\n${run.output}`).toBeNull();
  expect(run.code, run.output).toBe(0);
  expect(run.exitedAfterMs, run.output).toBeDefined();
  expect(run.exitedAfterMs, run.output).toBeLessThan(EXIT_WITHIN_MS);
}

describeWithBackend("redis", (url) => {
  test("a process that quits its client exits by itself after a blocking acquire waited on a RedisLockAdapter", async () => {
    expectExitedByItself(await runFixture("redis-lock", [url, uniqueName("lifecycle")]));
  }, 40_000);

  test("a process that quits its client exits by itself after listening on a RedisPubSubEventBusAdapter", async () => {
    expectExitedByItself(await runFixture("redis-event-bus", [url, uniqueName("lifecycle")]));
  }, 40_000);
});

describeWithBackend("postgres", (url) => {
  const table = uniqueName("lifecycle");
  let adapter: KyselyLockAdapter;
  let kysely: Kysely<unknown>;

  beforeAll(() => {
    kysely = new Kysely({ dialect: new PostgresDialect({ pool: createPgPool(url) }) });
    adapter = new KyselyLockAdapter({ kysely, tableName: table });
  });

  afterAll(async () => {
    await adapter.dropSchema();
    await kysely.destroy();
  });

  for (const listener of ["pool", "shared-pool", "client"] as const) {
    test(`a process that ends its Kysely and its listener (${listener}) exits by itself without closing the adapter`, async () => {
      expectExitedByItself(await runFixture("postgres-lock", [url, table, listener]));
    }, 40_000);
  }
});
