// The Redis server's CPU per uncontended acquire+release, from INFO commandstats: hasp's
// RedisLockAdapter and RedisSemaphoreAdapter (limit 4, one slot taken) beside the raw baseline
// (SET NX PX, then a compare-and-delete script), on fresh keys. Run it against a Redis nothing else uses, or other clients' commands count too:
//
//   redis-server --port 6390 --save '' --appendonly no --daemonize yes
//   npx tsx bench/redis-server-cost.ts --url redis://127.0.0.1:6390 --cycles 20000 --runs 5
//   npx tsx bench/redis-server-cost.ts --before ../main   # also another checkout's adapter
//
// Prints, per subject and run, µs and calls per cycle for each command (scripts by their
// defined name), then the medians and hasp's ratio to raw.

import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { RedisLockAdapter } from "../src/lock/adapters/redis/index.js";
import { RedisSemaphoreAdapter } from "../src/semaphore/adapters/redis/index.js";
import { TimeSpan } from "../src/time-span/index.js";
import { median } from "./stats.js";

const COMPARE_AND_DELETE = `if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end`;
const TTL_MS = 10_000;

type Cost = Map<string, { usec: number; calls: number }>;
/** A cycle in two steps, each run on every key before the next, so each is measured alone. */
type Subject = {
  name: string;
  /** The commands its client sends (the others are run inside its scripts). */
  sent: readonly string[];
  steps: ReadonlyArray<{ name: string; run: (key: string, id: string) => Promise<void> }>;
};

const { values } = parseArgs({
  options: {
    url: { type: "string", default: "redis://127.0.0.1:6390" },
    cycles: { type: "string", default: "20000" },
    runs: { type: "string", default: "5" },
    before: { type: "string" },
  },
});
const cycles = Number(values.cycles);

/**
 * The server's commandstats. They do not split EVALSHA by script, so each step runs alone
 * between a reset and a read, and its EVALSHA line is its script's. A script's own calls are
 * counted twice: in their command's line, and in the EVALSHA's.
 */
async function commandStats(client: Redis): Promise<Cost> {
  const info = await client.info("commandstats");
  const cost: Cost = new Map();
  for (const line of info.split("\r\n")) {
    const match = /^cmdstat_([^:|]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (match !== null && match[1] !== "info") {
      cost.set(match[1] as string, { calls: Number(match[2]), usec: Number(match[3]) });
    }
  }
  return cost;
}

/** µs and calls per cycle of each step's commands, with "total": the commands sent. */
async function measure(client: Redis, subject: Subject): Promise<Rows> {
  const keys = Array.from({ length: cycles }, () => [`cost:${randomUUID()}`, randomUUID()]);
  const rows: Rows = {};
  let total = 0;
  for (const step of subject.steps) {
    await client.config("RESETSTAT");
    for (const [key, id] of keys) {
      await step.run(key as string, id as string);
    }
    for (const [command, { usec, calls }] of await commandStats(client)) {
      if (command === "config") {
        continue;
      }
      rows[`${step.name} ${command}`] = { usec: usec / cycles, calls: calls / cycles };
      if (subject.sent.includes(command)) {
        total += usec;
      }
    }
  }
  rows.total = { usec: total / cycles, calls: Number.NaN };
  return rows;
}

function rawSubject(client: Redis): Subject {
  client.defineCommand("benchRawRelease", { numberOfKeys: 1, lua: COMPARE_AND_DELETE });
  const release = client as unknown as {
    benchRawRelease(key: string, id: string): Promise<number>;
  };
  return {
    name: "raw",
    sent: ["set", "evalsha"],
    steps: [
      {
        name: "acquire",
        async run(key, id) {
          if ((await client.set(key, id, "PX", TTL_MS, "NX")) !== "OK") {
            throw new Error("raw: not acquired");
          }
        },
      },
      {
        name: "release",
        async run(key, id) {
          if ((await release.benchRawRelease(key, id)) !== 1) {
            throw new Error("raw: not released");
          }
        },
      },
    ],
  };
}

/** An adapter's cycle, run by its scripts (EVALSHA): `acquire` answers whether it acquired. */
function scriptSubject(
  name: string,
  acquire: (key: string, id: string) => Promise<boolean>,
  release: (key: string, id: string) => Promise<boolean>,
): Subject {
  return {
    name,
    sent: ["evalsha"],
    steps: [
      {
        name: "acquire",
        async run(key, id) {
          if (!(await acquire(key, id))) {
            throw new Error(`${name}: not acquired`);
          }
        },
      },
      {
        name: "release",
        async run(key, id) {
          if (!(await release(key, id))) {
            throw new Error(`${name}: not released`);
          }
        },
      },
    ],
  };
}

/** On a client of its own: the adapters of two checkouts define their scripts by one name. */
function haspSubject(url: string, name: string, Adapter: typeof RedisLockAdapter): Subject {
  const adapter = new Adapter(new Redis(url));
  const ttl = TimeSpan.fromMilliseconds(TTL_MS);
  return scriptSubject(
    name,
    async (key, id) => (await adapter.acquire(key, id, ttl)).acquired,
    (key, id) => adapter.release(key, id),
  );
}

/** RedisSemaphoreAdapter's cycle, on a client of its own: one slot of a limit of 4. */
function semaphoreSubject(
  url: string,
  name = "semaphore",
  Adapter: typeof RedisSemaphoreAdapter = RedisSemaphoreAdapter,
): Subject {
  const adapter = new Adapter(new Redis(url));
  const ttl = TimeSpan.fromMilliseconds(TTL_MS);
  return scriptSubject(
    name,
    async (key, id) => (await adapter.acquire(key, id, 4, ttl)).acquired,
    (key, id) => adapter.release(key, id),
  );
}

type Rows = Record<string, { usec: number; calls: number }>;

function print(name: string, runs: readonly Rows[]) {
  const commands = [...new Set(runs.flatMap((run) => Object.keys(run)))];
  console.log(
    `\n${name} (${runs.length} runs of ${cycles} cycles; µs per cycle: median, least [runs])`,
  );
  for (const command of commands) {
    const usecs = runs.map((run) => run[command]?.usec ?? 0);
    const calls = runs[0]?.[command]?.calls;
    const shown = usecs.map((usec) => usec.toFixed(2)).join(" ");
    const callText =
      calls === undefined || Number.isNaN(calls) ? "" : `  calls ${calls.toFixed(2)}`;
    console.log(
      `  ${command.padEnd(18)} ${(median(usecs) ?? Number.NaN).toFixed(2).padStart(7)} ${Math.min(
        ...usecs,
      )
        .toFixed(2)
        .padStart(6)}  [${shown}]${callText}`,
    );
  }
}

async function main() {
  const client = new Redis(values.url as string);
  await client.flushdb();
  const subjects = [
    rawSubject(client),
    haspSubject(values.url as string, "hasp", RedisLockAdapter),
    semaphoreSubject(values.url as string),
  ];
  if (values.before !== undefined) {
    // Rounds interleave the subjects, so a busy machine weighs on each alike.
    const root = resolve(values.before, "src/lock/adapters/redis/index.js");
    const before: { RedisLockAdapter: typeof RedisLockAdapter } = await import(root);
    subjects.push(haspSubject(values.url as string, "hasp-before", before.RedisLockAdapter));
    const semaphoreRoot = resolve(values.before, "src/semaphore/adapters/redis/index.js");
    const semaphoreBefore: { RedisSemaphoreAdapter: typeof RedisSemaphoreAdapter } = await import(
      semaphoreRoot
    );
    subjects.push(
      semaphoreSubject(
        values.url as string,
        "semaphore-before",
        semaphoreBefore.RedisSemaphoreAdapter,
      ),
    );
  }
  const results = new Map<string, Rows[]>();
  for (let run = 0; run < Number(values.runs); run += 1) {
    for (const subject of subjects) {
      const rows = await measure(client, subject);
      results.set(subject.name, [...(results.get(subject.name) ?? []), rows]);
    }
  }
  for (const [name, runs] of results) {
    print(name, runs);
  }
  // Each round's ratio to the raw baseline of the same round, then their median.
  const rawRuns = results.get("raw") ?? [];
  for (const [name, runs] of results) {
    const ratios = runs.map((run, i) => (run.total?.usec ?? 0) / (rawRuns[i]?.total?.usec ?? 0));
    const shown = ratios.map((ratio) => ratio.toFixed(2)).join(" ");
    const least = Math.min(...ratios).toFixed(2);
    console.log(
      `${name} / raw: ×${(median(ratios) ?? Number.NaN).toFixed(2)} (least ×${least})  [${shown}]`,
    );
  }
  await client.flushdb();
  client.disconnect();
  process.exit(0);
}

await main();
