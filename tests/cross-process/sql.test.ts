import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect, sql } from "kysely";
import mysql from "mysql2";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  KyselyLockAdapter,
  type KyselyLockDialect,
} from "../../src/lock/adapters/kysely/kysely-lock-adapter.js";
import { describeWithBackend, uniqueName } from "../harness/backends.js";
import { checkSections, type Section, startWorker } from "./worker-process.js";

const WORKERS = 4;
const SECTIONS = 50;
const WORKER = fileURLToPath(new URL("./fixtures/sql-worker.ts", import.meta.url));

type AnyKysely = Kysely<any>;

/** The counter and log tables beside the lock table, in each dialect's DDL. */
function createTables(dialect: KyselyLockDialect, table: string) {
  const counter = sql.table(`${table}_counter`);
  const log = sql.table(`${table}_log`);
  const seq = {
    postgres: sql`bigserial PRIMARY KEY`,
    mysql: sql`BIGINT AUTO_INCREMENT PRIMARY KEY`,
    sqlite: sql`INTEGER PRIMARY KEY AUTOINCREMENT`,
  }[dialect];
  const double = dialect === "postgres" ? sql`double precision` : sql`DOUBLE`;
  return [
    sql`CREATE TABLE ${counter} (id INT PRIMARY KEY, value INT NOT NULL)`,
    sql`INSERT INTO ${counter} (id, value) VALUES (1, 0)`,
    sql`CREATE TABLE ${log} (seq ${seq}, token BIGINT NOT NULL, start_ms ${double} NOT NULL, end_ms ${double} NOT NULL, pid INT NOT NULL)`,
  ];
}

/**
 * Starts WORKERS processes on one lock of `table`, waits for them, and checks what their
 * critical sections wrote: no lost update, tokens increasing in section order, no overlap in
 * time, every worker served.
 */
async function contend(
  dialect: KyselyLockDialect,
  target: string,
  kysely: AnyKysely,
): Promise<void> {
  const table = uniqueName("xproc");
  const adapter = new KyselyLockAdapter({ kysely, tableName: table });
  const workers: Array<ReturnType<typeof startWorker>> = [];
  try {
    await adapter.init();
    for (const statement of createTables(dialect, table)) {
      await statement.execute(kysely);
    }
    const epoch = process.hrtime.bigint();
    for (let i = 0; i < WORKERS; i++) {
      workers.push(
        startWorker(WORKER, [dialect, target, table, "job", String(SECTIONS), String(epoch)]),
      );
    }
    await Promise.all(workers.map((worker) => worker.ready));
    for (const worker of workers) {
      worker.child.stdin?.write("go\n");
    }
    const exits = await Promise.all(workers.map((worker) => worker.exited));
    expect(exits, workers.map((worker) => worker.stderr()).join("\n")).toEqual(
      Array.from({ length: WORKERS }, () => 0),
    );

    const total = WORKERS * SECTIONS;
    // No lost update: every read-modify-write saw the previous one's write.
    const counter = await sql<{
      value: number | string;
    }>`SELECT value FROM ${sql.table(`${table}_counter`)} WHERE id = 1`.execute(kysely);
    expect(Number(counter.rows[0]?.value)).toBe(total);

    const rows = await sql<{
      token: number | string;
      start_ms: number;
      end_ms: number;
      pid: number;
    }>`SELECT token, start_ms, end_ms, pid FROM ${sql.table(`${table}_log`)} ORDER BY seq`.execute(
      kysely,
    );
    const log: Section[] = rows.rows.map((row) => ({
      token: Number(row.token),
      start: Number(row.start_ms),
      end: Number(row.end_ms),
      pid: Number(row.pid),
    }));
    const handoffs = checkSections(
      log,
      workers.map((worker) => worker.child.pid ?? 0),
      SECTIONS,
    );
    console.log(
      `[cross-process ${dialect}] ${total} sections, ${handoffs} hand-offs between processes`,
    );
    expect(handoffs).toBeGreaterThanOrEqual(WORKERS);
  } finally {
    for (const worker of workers) {
      worker.kill();
    }
    await Promise.all(workers.map((worker) => worker.exited));
    await adapter.dropSchema();
    for (const name of [`${table}_counter`, `${table}_log`]) {
      await sql`DROP TABLE IF EXISTS ${sql.table(name)}`.execute(kysely);
    }
  }
}

const title = `${WORKERS} processes x ${SECTIONS} sections on one key: no lost update, increasing tokens, no overlap`;

describeWithBackend("postgres", (url) => {
  let kysely: AnyKysely;

  beforeAll(() => {
    kysely = new Kysely({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url }) }),
    });
  });

  afterAll(async () => {
    await kysely.destroy();
  });

  test(`${title} (LISTEN/NOTIFY)`, () => contend("postgres", url, kysely), 60_000);
});

describeWithBackend("mysql", (url) => {
  let kysely: AnyKysely;

  beforeAll(() => {
    kysely = new Kysely({ dialect: new MysqlDialect({ pool: mysql.createPool({ uri: url }) }) });
  });

  afterAll(async () => {
    await kysely.destroy();
  });

  test(`${title} (polling)`, () => contend("mysql", url, kysely), 60_000);
});

describe("sqlite", () => {
  let dir: string;
  let file: string;
  let kysely: AnyKysely;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "hasp-xproc-"));
    file = join(dir, "locks.db");
    const database = new Database(file, { timeout: 10_000 });
    // WAL is a property of the file: set once here, every process then uses it.
    database.pragma("journal_mode = WAL");
    kysely = new Kysely({ dialect: new SqliteDialect({ database }) });
  });

  afterAll(async () => {
    await kysely.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test(`${title} (one file, WAL)`, () => contend("sqlite", file, kysely), 60_000);
});
