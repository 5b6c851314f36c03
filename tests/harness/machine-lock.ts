/**
 * A lock every process of the machine sees: hasp itself, on an SQLite file in the temp directory
 * (a run that dies leaves a hold that expires with its TTL). The docs' examples take it so that
 * two runs of one example never overlap; the package tests take it to build hasp once per run.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import { KyselyLockAdapter } from "../../src/lock/adapters/kysely/index.js";
import { LockProvider } from "../../src/lock/index.js";
import { TimeSpan } from "../../src/time-span/index.js";

// The file keeps the name it had when only the docs' examples used it, so runs of older
// checkouts still exclude each other.
const FILE = join(tmpdir(), "hasp-docs-examples-lock.sqlite");

let opened: Promise<{ provider: LockProvider; close: () => Promise<void> }> | undefined;

function open() {
  opened ??= (async () => {
    const kysely = new Kysely({ dialect: new SqliteDialect({ database: new Database(FILE) }) });
    const adapter = new KyselyLockAdapter({ kysely });
    await adapter.init();
    const provider = new LockProvider({ adapter, defaultTtl: TimeSpan.fromMinutes(1) });
    return {
      provider,
      close: async () => {
        await provider.close();
        await kysely.destroy();
      },
    };
  })();
  return opened;
}

/** Runs `fn` while no other process of the machine holds `key`, waiting at most `wait` for it. */
export async function withMachineLock<T>(
  key: string,
  fn: () => Promise<T>,
  wait: TimeSpan,
): Promise<T> {
  const { provider } = await open();
  return provider.create(key).runBlockingOrFail(fn, { time: wait });
}

export async function closeMachineLock(): Promise<void> {
  const current = opened;
  opened = undefined;
  if (current !== undefined) await (await current).close();
}
