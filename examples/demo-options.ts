// The demo's command line (demo.ts): its options, their checks and the usage text.
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DEMO_STORES, type DemoStoreName } from "./demo-protocol.js";

const DEFAULT_URLS = {
  redis: "redis://127.0.0.1:6379",
  postgres: "postgres://postgres@127.0.0.1:5432/test",
  mysql: "mysql://root@127.0.0.1:3306/test",
} as const;

const STORE_OF_SCHEME: Record<string, Exclude<DemoStoreName, "sqlite">> = {
  "redis:": "redis",
  "rediss:": "redis",
  "postgres:": "postgres",
  "postgresql:": "postgres",
  "mysql:": "mysql",
};

export const USAGE = `Usage: npm run demo -- [options]

Worker processes contend for a few lock keys through hasp. The timeline shows who holds which
key with which fencing token and who waits. One worker is killed (SIGKILL) while it holds a
key: the key stays taken until its TTL passes, then the next waiter gets it. The run ends by
checking the log of every critical section: no overlapping holds of a key, fencing tokens
strictly increasing.

Options:
  --store <name>   sqlite (the default: a file, no server), redis, postgres or mysql
  --url <url>      the server; without --store, the store follows from the URL's scheme
                   (default: ${DEFAULT_URLS.redis}, ${DEFAULT_URLS.postgres},
                   ${DEFAULT_URLS.mysql})
  --file <path>    sqlite: the database file (default: a new file in the temp directory,
                   deleted at the end)
  --keep           keep what the demo created (the SQLite file, the tables, the Redis keys)
  --workers <n>    worker processes, 1-32 (default 4)
  --keys <n>       keys they contend for, 1-26 (default 2)
  --sections <n>   critical sections per worker, 1-10000 (default 6)
  --duration <s>   run for this many seconds instead, 1-3600
  --ttl <s>        the locks' TTL in seconds, 0.5-60 (default 1.5): how long the killed
                   worker's key stays taken
  --no-kill        run without the fault
  --quiet          no timeline: the fault, the progress and the check only
  -h, --help       show this help

Examples:
  npm run demo
  npm run demo -- --workers 8 --keys 3 --duration 30 --quiet
  npm run demo -- --store redis
  npm run demo -- --url postgres://me:secret@db.example.com:5432/app

Exit status: 0 when the check passes; 1 when it fails, or the store cannot be reached; 2 for a
bad option.
`;

export class UsageError extends Error {}

export type DemoOptions = {
  store: DemoStoreName;
  /** The server URL, or the SQLite file. */
  target: string;
  keep: boolean;
  workers: number;
  keys: string[];
  /** Per worker; `null` with a duration. */
  sections: number | null;
  durationMs: number | null;
  ttlMs: number;
  kill: boolean;
  quiet: boolean;
};

export function parseOptions(argv: string[]): DemoOptions | "help" {
  let values: CommandLine;
  try {
    ({ values } = parseCommandLine(argv));
  } catch (error) {
    // Node's messages go on with advice about positionals that does not apply here.
    throw new UsageError((error as Error).message.split(". ")[0] ?? String(error));
  }
  if (values.help) {
    return "help";
  }
  const store = storeOf(values);
  if (values.file !== undefined && store !== "sqlite") {
    throw new UsageError("--file is for the sqlite store");
  }
  if (values.sections !== undefined && values.duration !== undefined) {
    throw new UsageError("give --sections or --duration, not both");
  }
  const workers = integer("--workers", values.workers, 4, 1, 32);
  const kill = !values["no-kill"];
  if (kill && workers < 2) {
    throw new UsageError(
      "--workers 1 leaves nobody to take over the killed worker's key: give 2 or more, or --no-kill",
    );
  }
  const keyCount = integer("--keys", values.keys, 2, 1, 26);
  const durationS =
    values.duration === undefined ? null : seconds("--duration", values.duration, 1, 3600);
  return {
    store,
    target:
      store === "sqlite"
        ? (values.file ?? join(tmpdir(), `hasp-demo-${randomBytes(4).toString("hex")}.db`))
        : (values.url ?? DEFAULT_URLS[store]),
    keep: values.keep ?? false,
    workers,
    keys: Array.from({ length: keyCount }, (_, i) => `key-${String.fromCharCode(97 + i)}`),
    sections: durationS === null ? integer("--sections", values.sections, 6, 1, 10_000) : null,
    durationMs: durationS === null ? null : durationS * 1000,
    ttlMs: (values.ttl === undefined ? 1.5 : seconds("--ttl", values.ttl, 0.5, 60)) * 1000,
    kill,
    quiet: values.quiet ?? false,
  };
}

/** The store from --store and --url (one may imply the other); SQLite without either. */
function storeOf(values: CommandLine): DemoStoreName {
  let store = values.store as DemoStoreName | undefined;
  if (store !== undefined && !DEMO_STORES.includes(store)) {
    throw new UsageError(`--store must be one of ${DEMO_STORES.join(", ")}, got "${store}"`);
  }
  if (values.url !== undefined) {
    let scheme: string;
    try {
      scheme = new URL(values.url).protocol;
    } catch {
      throw new UsageError(`--url must be a URL, got "${values.url}"`);
    }
    const implied = STORE_OF_SCHEME[scheme];
    if (store === "sqlite") {
      throw new UsageError("--url is for a server; give the SQLite file with --file");
    }
    if (implied === undefined || (store !== undefined && store !== implied)) {
      const expected = store === undefined ? "redis, postgres or mysql" : store;
      throw new UsageError(`--url must be a ${expected} URL, got "${redact(values.url)}"`);
    }
    store = implied;
  }
  return store ?? "sqlite";
}

const OPTIONS = {
  store: { type: "string" },
  url: { type: "string" },
  file: { type: "string" },
  keep: { type: "boolean" },
  workers: { type: "string" },
  keys: { type: "string" },
  sections: { type: "string" },
  duration: { type: "string" },
  ttl: { type: "string" },
  "no-kill": { type: "boolean" },
  quiet: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function parseCommandLine(argv: string[]) {
  return parseArgs({
    args: negativeValuesJoined(argv),
    strict: true,
    allowPositionals: false,
    options: OPTIONS,
  });
}

type CommandLine = ReturnType<typeof parseCommandLine>["values"];

/**
 * `--workers -3` as `--workers=-3`: Node's parser takes a value that starts with a dash for an
 * option, and refuses it as ambiguous; the option's own check then says what is wrong.
 */
function negativeValuesJoined(argv: string[]): string[] {
  const joined: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] as string;
    const next = argv[index + 1];
    const option = arg.startsWith("--") ? OPTIONS[arg.slice(2) as keyof typeof OPTIONS] : undefined;
    if (option?.type === "string" && next !== undefined && /^-[\d.]/.test(next)) {
      joined.push(`${arg}=${next}`);
      index++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

function integer(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) {
    return fallback;
  }
  const parsed = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!(parsed >= min && parsed <= max)) {
    throw new UsageError(`${name} must be a whole number from ${min} to ${max}, got "${value}"`);
  }
  return parsed;
}

function seconds(name: string, value: string, min: number, max: number): number {
  const parsed = /^\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN;
  if (!(parsed >= min && parsed <= max)) {
    throw new UsageError(
      `${name} must be a number of seconds from ${min} to ${max}, got "${value}"`,
    );
  }
  return parsed;
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") {
      parsed.password = "***";
    }
    return parsed.toString();
  } catch {
    return url;
  }
}
