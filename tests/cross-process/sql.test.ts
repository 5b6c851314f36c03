import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, test } from "vitest";
import { describeWithBackend } from "../harness/backends.js";
import { contend, SECTIONS, WORKERS } from "./contend.js";

const title = `${WORKERS} processes x ${SECTIONS} sections on one key: no lost update, increasing tokens, no overlap`;

describeWithBackend("postgres", (url) => {
  test(`${title} (LISTEN/NOTIFY)`, () => contend({ store: "postgres", target: url }), 60_000);
});

describeWithBackend("mysql", (url) => {
  test(`${title} (polling)`, () => contend({ store: "mysql", target: url }), 60_000);
});

describe("sqlite", () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "hasp-xproc-"));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test(
    `${title} (one file, WAL)`,
    () => contend({ store: "sqlite", target: join(dir, "locks.db") }),
    60_000,
  );
});
