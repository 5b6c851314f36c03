// The server's side of a measured window, read on a connection of its own: Redis's
// `INFO commandstats` (time the server spent in each command), PostgreSQL's pg_stat_statements
// when installed (execution time of the subject's statements) or else pg_stat_database's work
// counters, MariaDB/MySQL's global status counters. See bench/README.md for what each can and
// cannot say.

import type { Redis } from "ioredis";
import mysql from "mysql2";
import pg from "pg";
import { createRedisClient } from "./redis.js";
import type { BackendName, Counters } from "./types.js";

/** The server's cost of a window, per cycle (section). */
export type ServerCost = {
  /** Where the figures come from. */
  source: "redis commandstats" | "pg_stat_statements" | "pg_stat_database" | "global status";
  /** Unit of `perCycle`: µs of server time, or a work counter (not time). */
  unit: "µs" | "blks" | "rows";
  /** The headline figure per cycle; null when it could not be read (see `note`). */
  perCycle: number | null;
  /**
   * `window`: the measured window. `run`: the child's whole run, from before the subject's setup
   * to after its close, divided by every cycle of the run (warm-up included): PostgreSQL's
   * pg_stat_database is flushed by each backend up to 10 s late, but always when it exits.
   */
  scope: "window" | "run";
  /** Each counter's delta per cycle (Redis: `<command>.calls`, `<command>.usec`, `<command>.sent`). */
  counters: Record<string, number>;
  /** Why the figure may include other clients' work or be missing; null when nothing is known. */
  note: string | null;
};

type Sample = { readonly values: Record<string, number>; readonly sent: Record<string, number> };

/** Reads the server's counters, over the window or over the whole run (`scope`). */
export type ServerProbe = {
  readonly source: ServerCost["source"];
  readonly unit: ServerCost["unit"];
  readonly scope: ServerCost["scope"];
  sample(): Promise<Sample>;
  cost(before: Sample, after: Sample, cycles: number): ServerCost;
  close(): Promise<void>;
};

/** The commands that run a script: all their calls are top level, their usec includes the script's own calls. */
export const SCRIPT_COMMANDS: ReadonlySet<string> = new Set([
  "eval",
  "evalsha",
  "eval_ro",
  "evalsha_ro",
  "fcall",
  "fcall_ro",
]);

function perCycle(values: Record<string, number>, cycles: number): Record<string, number> {
  return Object.fromEntries(Object.entries(values).map(([name, value]) => [name, value / cycles]));
}

function subtract(after: Record<string, number>, before: Record<string, number>) {
  const delta: Record<string, number> = {};
  for (const [name, value] of Object.entries(after)) {
    const change = value - (before[name] ?? 0);
    if (change !== 0) {
      delta[name] = change;
    }
  }
  return delta;
}

/** `cmdstat_<name>:calls=…,usec=…` lines, and the connections the server accepted. */
function parseInfo(info: string): Record<string, number> {
  const values: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_(\S+?):calls=(\d+),usec=(\d+)/gm)) {
    values[`${match[1]}.calls`] = Number(match[2]);
    values[`${match[1]}.usec`] = Number(match[3]);
  }
  const connections = /^total_connections_received:(\d+)/m.exec(info)?.[1];
  values.connections = Number(connections ?? 0);
  return values;
}

/** Each command's server calls and usec and the subject's own sends, and their top-level usec. */
function redisCommands(delta: Record<string, number>, sent: Record<string, number>) {
  const names = new Set(
    [...Object.keys(delta), ...Object.keys(sent)]
      .filter((key) => !key.includes(" ") && key !== "connections")
      .map((key) => key.replace(/\.(calls|usec)$/, ""))
      .filter((name) => name !== "info"),
  );
  let usec = 0;
  let foreignScripts = 0;
  const totals: Record<string, number> = {};
  for (const name of names) {
    const calls = delta[`${name}.calls`] ?? 0;
    const time = delta[`${name}.usec`] ?? 0;
    const own = sent[name] ?? 0;
    Object.assign(totals, {
      [`${name}.calls`]: calls,
      [`${name}.usec`]: time,
      [`${name}.sent`]: own,
    });
    if (SCRIPT_COMMANDS.has(name)) {
      usec += time;
      // Counted as a family: ioredis sends a script's first call on a connection as EVAL.
      foreignScripts += calls - own;
    } else if (calls > 0) {
      usec += (time * Math.min(own, calls)) / calls;
    }
  }
  for (const [name, count] of Object.entries(sent)) {
    if (name.includes(" ")) {
      totals[`${name}.sent`] = count;
    }
  }
  return { usec, foreignScripts, totals };
}

/** Contended: a command of each of the 8 workers may be in flight while the counters are read. */
const IN_FLIGHT = 8;

/**
 * Redis: the time of the commands the subject sent. A script's nested `redis.call`s are counted
 * by commandstats too, inside the script's usec and again under their own names, so a
 * non-script command counts only in the share the subject sent itself (`<command>.sent`).
 */
function redisProbe(url: string, counters: Counters): ServerProbe {
  const client: Redis = createRedisClient(url);
  return {
    source: "redis commandstats",
    unit: "µs",
    scope: "window",
    async sample() {
      const info = await client.info("commandstats", "stats");
      return { values: parseInfo(info), sent: { ...counters.byCommand } };
    },
    cost(before, after, cycles) {
      const delta = subtract(after.values, before.values);
      const { usec, foreignScripts, totals } = redisCommands(
        delta,
        subtract(after.sent, before.sent),
      );
      const notes = [
        foreignScripts > IN_FLIGHT ? `${foreignScripts} scripts run by other clients` : "",
        (delta.connections ?? 0) > 0
          ? `${delta.connections} connections opened by other clients`
          : "",
      ].filter((note) => note !== "");
      return {
        source: "redis commandstats",
        unit: "µs",
        scope: "window",
        perCycle: cycles === 0 ? null : usec / cycles,
        counters: cycles === 0 ? {} : perCycle(totals, cycles),
        note:
          notes.length === 0
            ? null
            : `other clients used Redis during the window: ${notes.join(", ")}`,
      };
    },
    async close() {
      await client.quit();
    },
  };
}

const PG_DATABASE_COUNTERS = [
  "xact_commit",
  "xact_rollback",
  "blks_read",
  "blks_hit",
  "tup_returned",
  "tup_fetched",
  "tup_inserted",
  "tup_updated",
  "tup_deleted",
] as const;

/** pg_stat_statements: the calls and time of the statements that name the subject's tables. */
async function readStatements(client: pg.Client, prefix: string): Promise<Record<string, number>> {
  const { rows } = await client.query<{ query: string; calls: string; ms: string }>(
    `SELECT query, calls, total_exec_time AS ms
       FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND strpos(query, $1) > 0`,
    [prefix],
  );
  const values: Record<string, number> = { calls: 0, usec: 0 };
  const add = (name: string, value: number) => {
    values[name] = (values[name] ?? 0) + value;
  };
  for (const row of rows) {
    // One entry per statement, named by its start, the subject's prefix left out.
    const name = row.query.replaceAll(prefix, "…").replace(/\s+/g, " ").slice(0, 80);
    add("calls", Number(row.calls));
    add("usec", Number(row.ms) * 1000);
    add(`${name}.calls`, Number(row.calls));
    add(`${name}.usec`, Number(row.ms) * 1000);
  }
  return values;
}

/** pg_stat_database: the work counters of the whole database. */
async function readDatabase(client: pg.Client): Promise<Record<string, number>> {
  await client.query("SELECT pg_stat_clear_snapshot()");
  const { rows } = await client.query<Record<string, string>>(
    `SELECT ${PG_DATABASE_COUNTERS.join(", ")} FROM pg_stat_database WHERE datname = current_database()`,
  );
  const row = rows[0] ?? {};
  return Object.fromEntries(PG_DATABASE_COUNTERS.map((name) => [name, Number(row[name])]));
}

/**
 * PostgreSQL: pg_stat_statements' execution time of the statements naming the subject's tables
 * (`prefix`), when the extension is loaded and created; else pg_stat_database's counters of the
 * whole database over the whole run (a backend flushes them up to 10 s late while it lives).
 */
async function postgresProbe(url: string, prefix: string, counters: Counters) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const statements = await client
    .query("SELECT 1 FROM pg_stat_statements LIMIT 1")
    .then(() => true)
    .catch(() => false);
  const probe: ServerProbe = {
    source: statements ? "pg_stat_statements" : "pg_stat_database",
    unit: statements ? "µs" : "blks",
    scope: statements ? "window" : "run",
    async sample() {
      const sent = { statements: counters.commands };
      if (statements) {
        return { values: await readStatements(client, prefix), sent };
      }
      return { values: await readDatabase(client), sent };
    },
    cost(before, after, cycles) {
      const delta = subtract(after.values, before.values);
      const headline = statements
        ? (delta.usec ?? 0)
        : (delta.blks_hit ?? 0) + (delta.blks_read ?? 0);
      return {
        source: statements ? "pg_stat_statements" : "pg_stat_database",
        unit: statements ? "µs" : "blks",
        scope: statements ? "window" : "run",
        perCycle: cycles === 0 ? null : headline / cycles,
        counters: cycles === 0 ? {} : perCycle(delta, cycles),
        // Not even a guess at other clients: a NOTIFY makes each listening backend read it in a
        // transaction of its own, so transactions exceed the subject's statements by design.
        note: null,
      };
    },
    close: () => client.end(),
  };
  return probe;
}

const MYSQL_COUNTERS =
  /^(Handler_(read_\w+|write|update|delete|commit)|Questions|Com_(select|insert|update|delete)|Innodb_rows_\w+|Busy_time|Cpu_time)$/;

/** MariaDB/MySQL: global status counters (the whole server's, so other clients' too). */
async function mysqlProbe(url: string, counters: Counters): Promise<ServerProbe> {
  const connection = mysql.createConnection({ uri: url }).promise();
  const read = async () => {
    const [rows] = await connection.query("SHOW GLOBAL STATUS");
    const values: Record<string, number> = {};
    for (const row of rows as Array<{ Variable_name: string; Value: string }>) {
      if (MYSQL_COUNTERS.test(row.Variable_name)) {
        values[row.Variable_name] = Number(row.Value);
      }
    }
    return values;
  };
  return {
    source: "global status",
    unit: "rows",
    scope: "window",
    async sample() {
      return { values: await read(), sent: { statements: counters.commands } };
    },
    cost(before, after, cycles) {
      const delta = subtract(after.values, before.values);
      const own = (after.sent.statements ?? 0) - (before.sent.statements ?? 0);
      const rows = Object.entries(delta)
        .filter(([name]) => /^Handler_(read_\w+|write|update|delete)$/.test(name))
        .reduce((sum, [, value]) => sum + value, 0);
      const questions = delta.Questions ?? 0;
      // The probe's own SHOW GLOBAL STATUS is a question too.
      const foreign = questions > own * 1.02 + 3;
      return {
        source: "global status",
        unit: "rows",
        scope: "window",
        perCycle: cycles === 0 ? null : rows / cycles,
        counters: cycles === 0 ? {} : perCycle(delta, cycles),
        note: foreign
          ? `other clients used the server: ${questions} statements, the subject sent ${own}`
          : null,
      };
    },
    close: () => connection.end(),
  };
}

/** The probe of a subject's server, or null for a backend without one (memory, SQLite). */
export async function openServerProbe(
  backend: BackendName,
  urls: { redisUrl?: string; postgresUrl?: string; mysqlUrl?: string; prefix: string },
  counters: Counters,
): Promise<ServerProbe | null> {
  if (backend === "redis" && urls.redisUrl !== undefined) {
    return redisProbe(urls.redisUrl, counters);
  }
  if (backend === "postgres" && urls.postgresUrl !== undefined) {
    return postgresProbe(urls.postgresUrl, urls.prefix, counters);
  }
  if (backend === "mysql" && urls.mysqlUrl !== undefined) {
    return mysqlProbe(urls.mysqlUrl, counters);
  }
  return null;
}
