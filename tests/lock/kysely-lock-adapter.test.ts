import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import {
  DummyDriver,
  Kysely,
  MssqlAdapter,
  MssqlIntrospector,
  MssqlQueryCompiler,
  MysqlDialect,
  PostgresDialect,
  SqliteDialect,
} from "kysely";
import mysql from "mysql2";
import pg from "pg";
import { describe, expect, test } from "vitest";
import { InvalidArgumentError } from "../../src/errors/invalid-argument-error.js";
import {
  KyselyLockAdapter,
  type KyselyLockAdapterSettings,
} from "../../src/lock/adapters/kysely/kysely-lock-adapter.js";
import { mysqlStatements } from "../../src/lock/adapters/kysely/mysql/mysql-lock-statements.js";
import { postgresStatements } from "../../src/lock/adapters/kysely/postgres/postgres-lock-statements.js";
import { sqliteStatements } from "../../src/lock/adapters/kysely/sqlite/sqlite-lock-statements.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { describeWithBackend, uniqueName } from "../harness/backends.js";

describeWithBackend("postgres", (url) => {
  test("SERIALIZABLE as the server's default isolation: 4 x 100 contended acquires, one winner each, no error", async () => {
    const pool = new pg.Pool({
      connectionString: url,
      max: 20,
      options: "-c default_transaction_isolation=serializable",
    });
    let conflicts = 0;
    const kysely = new Kysely({
      dialect: new PostgresDialect({ pool }),
      log: (event) => {
        if (event.level === "error") conflicts += 1;
      },
    });
    const adapter = new KyselyLockAdapter({ kysely, tableName: uniqueName("serializable") });
    try {
      await adapter.init();
      for (let round = 0; round < 4; round++) {
        const key = `key-${round}`;
        const results = await Promise.allSettled(
          Array.from({ length: 100 }, (_, i) =>
            adapter.acquire(key, `owner-${i}`, TimeSpan.fromSeconds(30)),
          ),
        );
        const rejected = results.filter((result) => result.status === "rejected");
        expect(
          rejected,
          String((rejected[0] as PromiseRejectedResult | undefined)?.reason),
        ).toEqual([]);
        const winners = results.filter(
          (result) => result.status === "fulfilled" && result.value.acquired,
        );
        expect(winners).toHaveLength(1);
      }
      // The serialization failures were real, and retried inside the adapter.
      expect(conflicts).toBeGreaterThan(0);
    } finally {
      await adapter.dropSchema();
      await kysely.destroy();
    }
  });

  test("a wait is bounded by its time even while its LISTEN connection is not yet to be had", async () => {
    // One listener connection for two adapters: the second waits for it, but not past maxWait.
    const listener = new pg.Pool({ connectionString: url, max: 1 });
    const kysely = new Kysely({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url }) }),
    });
    const tableName = uniqueName("bounded");
    const [first, second] = [0, 1].map(
      () => new KyselyLockAdapter({ kysely, tableName, listener }),
    ) as [KyselyLockAdapter, KyselyLockAdapter];
    try {
      await first.init();
      await first.acquire("key", "holder", TimeSpan.fromSeconds(30));
      const signal = new AbortController().signal;
      await first.waitForRelease?.("key", TimeSpan.fromMilliseconds(50), signal); // takes the connection
      const started = performance.now();
      await second.waitForRelease?.("key", TimeSpan.fromMilliseconds(300), signal);
      expect(performance.now() - started).toBeLessThan(5_000);
    } finally {
      await first.dropSchema();
      await Promise.all([first.close(), second.close()]);
      await kysely.destroy();
      await listener.end();
    }
  });
});

describe("KyselyLockAdapter without a server", () => {
  const sqlite = () =>
    new Kysely({ dialect: new SqliteDialect({ database: new Database(":memory:") }) });

  test("MySQL: the server's version is asked on first use, and again only when called again", async () => {
    // A server that accepts connections and hangs up: each attempt to ask shows as a connection.
    let connections = 0;
    const server = createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const pool = mysql.createPool({ host: "127.0.0.1", port, user: "root", connectTimeout: 500 });
    const kysely = new Kysely({ dialect: new MysqlDialect({ pool }) });
    try {
      const adapter = new KyselyLockAdapter({ kysely });
      await sleep(200);
      expect(connections).toBe(0);
      await expect(adapter.getState("key")).rejects.toThrow();
      await expect(adapter.getState("key")).rejects.toThrow();
      await sleep(200);
      expect(connections).toBe(2); // one failed SELECT VERSION() per call, no retry loop
    } finally {
      await kysely.destroy();
      server.close();
    }
  });

  test("bad settings name the field", () => {
    const kysely = sqlite();
    for (const [settings, field] of [
      [{}, "kysely"],
      [{ kysely: {} }, "kysely"],
      [{ kysely, tableName: "locks; DROP TABLE x" }, "tableName"],
      [{ kysely, tableName: "" }, "tableName"],
      [{ kysely, tableName: "x".repeat(49) }, "tableName"],
      [{ kysely, dialect: "oracle" }, "dialect"],
      [{ kysely, sweepInterval: TimeSpan.fromMilliseconds(-1) }, "sweepInterval"],
      [{ kysely, listener: new pg.Pool() }, "listener"],
      [{ kysely, returning: "yes" }, "returning"],
      [{ kysely, prepared: 1 }, "prepared"],
      // MySQL family only: refused on SQLite rather than ignored.
      [{ kysely, returning: true }, "returning"],
      [{ kysely, prepared: false }, "prepared"],
      [{ kysely, unknown: 1 }, "unknown"],
    ] as const) {
      expect(
        () => new KyselyLockAdapter(settings as unknown as KyselyLockAdapterSettings),
        JSON.stringify(Object.keys(settings)),
      ).toThrow(expect.objectContaining({ message: expect.stringContaining(field) }));
      expect(() => new KyselyLockAdapter(settings as unknown as KyselyLockAdapterSettings)).toThrow(
        InvalidArgumentError,
      );
    }
  });

  test("a duration above 100 years passed to the adapter directly is an InvalidArgumentError, before any statement", async () => {
    let statements = 0;
    const kysely = new Kysely({
      dialect: new SqliteDialect({ database: new Database(":memory:") }),
      log: () => {
        statements += 1;
      },
    });
    try {
      const adapter = new KyselyLockAdapter({ kysely });
      await adapter.init();
      expect(await adapter.acquire("key", "holder", TimeSpan.fromSeconds(30))).toMatchObject({
        acquired: true,
      });
      const before = statements;
      expect(before).toBeGreaterThan(0);
      const huge = TimeSpan.fromMilliseconds(1e17);
      for (const attempt of [
        () => adapter.acquire("key", "other", huge),
        () => adapter.acquire("free", "other", huge),
        () => adapter.refresh("key", "holder", huge),
      ]) {
        const error = await attempt().then(
          () => null,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(InvalidArgumentError);
        expect(String(error)).toMatch(
          /ttl: must be at most 100 years \(3153600000000 ms\), got 100000000000000000 ms/,
        );
      }
      expect(statements).toBe(before);
      expect(await adapter.getState("free")).toBeNull();
      const held = await adapter.getState("key");
      expect(held?.owner).toBe("holder");
      expect(held?.remainingTime?.toMilliseconds()).toBeLessThanOrEqual(30_000);
    } finally {
      await kysely.destroy();
    }
  });

  test("an unsupported dialect is refused by name", () => {
    const kysely = new Kysely({
      dialect: {
        createAdapter: () => new MssqlAdapter(),
        createDriver: () => new DummyDriver(),
        createIntrospector: (db) => new MssqlIntrospector(db),
        createQueryCompiler: () => new MssqlQueryCompiler(),
      },
    });
    expect(() => new KyselyLockAdapter({ kysely })).toThrow(/unsupported dialect MssqlAdapter/);
  });

  test("the dialect is detected", () => {
    expect(new KyselyLockAdapter({ kysely: sqlite() }).dialect).toBe("sqlite");
    const pool = new pg.Pool();
    const postgres = new Kysely({ dialect: new PostgresDialect({ pool }) });
    expect(new KyselyLockAdapter({ kysely: postgres }).dialect).toBe("postgres");
    const mysqlPool = mysql.createPool({});
    const maria = new Kysely({ dialect: new MysqlDialect({ pool: mysqlPool }) });
    expect(new KyselyLockAdapter({ kysely: maria }).dialect).toBe("mysql");
  });

  test("the migrations in docs/adapters/sql.md are the DDL init() runs", () => {
    const docs = readFileSync(new URL("../../docs/adapters/sql.md", import.meta.url), "utf8");
    const blocks = [...docs.matchAll(/```sql\n([\s\S]*?)```/g)].map((match) => match[1]);
    for (const statements of [
      postgresStatements("hasp_locks"),
      mysqlStatements("hasp_locks", { returning: true, prepared: true }),
      sqliteStatements("hasp_locks"),
    ]) {
      const ddl = `${statements.createSchema.join(";\n\n")};\n`;
      expect(blocks, `the ${statements.dialect} migration`).toContain(ddl);
    }
  });

  test("the SQL of each dialect", () => {
    for (const statements of [
      postgresStatements("hasp_locks"),
      mysqlStatements("hasp_locks", { returning: true, prepared: false }),
      mysqlStatements("hasp_locks", { returning: false, prepared: false }),
      sqliteStatements("hasp_locks"),
    ]) {
      const label = `${statements.dialect}${statements.returning ? "" : " (no RETURNING)"}`;
      const text = Object.fromEntries(
        Object.entries(statements).map(([name, value]) => [
          name,
          typeof value === "object" && value !== null && "sql" in value ? value.sql : value,
        ]),
      );
      expect(text).toMatchSnapshot(label);
    }
  });

  test("MariaDB, prepared: each operation is prepared under a name of its table's, and run by EXECUTE with one value per placeholder", () => {
    const plain = mysqlStatements("hasp_locks", { returning: true, prepared: false });
    const prepared = mysqlStatements("hasp_locks", { returning: true, prepared: true });
    const operations = ["acquire", "release", "forceRelease", "refresh", "getState"] as const;
    const names = ["acquire", "release", "force_release", "refresh", "get_state"];
    operations.forEach((operation, index) => {
      const statement = prepared[operation];
      const placeholders = statement.sql.split("?").length - 1;
      const digest = createHash("sha256").update(statement.sql).digest("hex").slice(0, 8);
      const name = `\`hasp_locks:${names[index]}:${digest}\``;
      expect(statement.sql).toBe(plain[operation].sql);
      expect(plain[operation].prepared).toBeUndefined();
      expect(statement.prepared).toEqual({
        name,
        prepare: `PREPARE ${name} FROM ?`,
        execute: `EXECUTE ${name} USING ${Array(placeholders).fill("?").join(", ")}`,
      });
    });
    // Clean-up runs rarely: as text.
    expect(prepared.removeExpired.prepared).toBeUndefined();
    // Other SQL, another name: adapters on one pool never run each other's statement.
    const other = mysqlStatements("hasp_locks", { returning: false, prepared: true });
    expect(other.acquire.prepared?.name).not.toBe(prepared.acquire.prepared?.name);
    expect(other.release.prepared?.name).toBe(prepared.release.prepared?.name);
  });
});
