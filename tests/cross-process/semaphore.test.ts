import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, test } from "vitest";
import { describeWithBackend } from "../harness/backends.js";
import {
  contendSemaphore,
  SEMAPHORE_LIMIT,
  SEMAPHORE_SECTIONS,
  SEMAPHORE_WORKERS,
} from "./contend-semaphore.js";

const title = `${SEMAPHORE_WORKERS} processes x ${SEMAPHORE_SECTIONS} sections on a semaphore of limit ${SEMAPHORE_LIMIT}: never more than ${SEMAPHORE_LIMIT} inside, growing tokens`;

describeWithBackend("redis", (url) => {
  test(`${title} (hand-off)`, () => contendSemaphore({ store: "redis", target: url }), 60_000);
});

describeWithBackend("postgres", (url) => {
  test(
    `${title} (LISTEN/NOTIFY)`,
    () => contendSemaphore({ store: "postgres", target: url }),
    60_000,
  );
});

describeWithBackend("mysql", (url) => {
  test(`${title} (polling)`, () => contendSemaphore({ store: "mysql", target: url }), 60_000);
});

describe("sqlite", () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "hasp-xsem-"));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test(
    `${title} (one file, WAL)`,
    () => contendSemaphore({ store: "sqlite", target: join(dir, "semaphores.db") }),
    60_000,
  );
});
