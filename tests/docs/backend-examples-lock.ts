/**
 * The docs' examples use fixed keys and tables (`invoice:42`, `hasp_locks`), so the source run
 * (tests/docs) and the package run (tests/package) of an example that talks to a server must not
 * overlap. Each holds this lock while it runs one: hasp itself, on an SQLite file that the
 * machine's processes share (a run that dies leaves a hold that expires with its TTL).
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import { KyselyLockAdapter } from "../../src/lock/adapters/kysely/index.js";
import { LockProvider } from "../../src/lock/index.js";
import { TimeSpan } from "../../src/time-span/index.js";

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

/** Runs `fn` while no other process runs a docs example against a server. */
export async function withBackendExampleLock<T>(fn: () => Promise<T>): Promise<T> {
  const { provider } = await open();
  return provider
    .create("docs-examples:backends")
    .runBlockingOrFail(fn, { time: TimeSpan.fromMinutes(5) });
}

export async function closeBackendExampleLock(): Promise<void> {
  const current = opened;
  opened = undefined;
  if (current !== undefined) await (await current).close();
}
