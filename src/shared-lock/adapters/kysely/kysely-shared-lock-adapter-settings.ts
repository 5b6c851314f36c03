import type { Kysely } from "kysely";
import type * as v from "valibot";
import {
  checkedDialect,
  kyselySettingsEntries,
  listenerSchema,
} from "../../../backends/kysely/kysely-adapter-settings.js";
import type { PgListenConnection } from "../../../backends/kysely/postgres/postgres-inbox.js";
import type { SqlDialectName } from "../../../backends/kysely/sql-statement.js";
import { parseSettings, settingsObject } from "../../../settings/parse-settings.js";
import type { ITimeSpan } from "../../../time-span/time-span.js";

/** The settings of {@link KyselySharedLockAdapter}; only `kysely` is required. */
export type KyselySharedLockAdapterSettings = {
  /**
   * A Kysely instance on PostgreSQL, MySQL/MariaDB or SQLite. Not a transaction: every statement
   * must commit on its own, or other processes would not see a hold until the caller commits.
   * The adapter never destroys it: it is yours.
   */
  // biome-ignore lint/suspicious/noExplicitAny: the adapter brings its own tables, not the caller's schema
  kysely: Kysely<any>;
  /**
   * The keys' table, created by `init()` with its readers' table `"<tableName>:readers"`: letters,
   * digits and `_`, starting with a letter or `_`, at most 48 characters.
   * @default "hasp_shared_locks"
   */
  tableName?: string;
  /**
   * The SQL dialect. Detected from Kysely's built-in dialect adapters (and dialects built on
   * them); set it for a third-party dialect that speaks one of these.
   * @default detected
   */
  dialect?: SqlDialectName;
  /**
   * PostgreSQL only: a connection for `LISTEN` (a connected `pg.Client`, or a `pg.Pool` from
   * which one client is checked out and kept), so that blocking acquires of both sides queue in
   * the key's row, in arrival order, and a release hands the key to the oldest waiting writer, or
   * slots to the readers queued before the next writer (first come, first served), telling them
   * with `pg_notify` on a channel of this adapter's own. Without it, a blocking writer records
   * its intent in the key's row, which keeps new readers out until it is served or lapses. As the
   * lock's `listener`: give it a connection of its own; it stays yours.
   * @default none
   */
  listener?: PgListenConnection;
  /**
   * Runs `removeExpired()` this often (a timer that does not keep the process alive), until
   * `close()`.
   * @default off
   */
  sweepInterval?: ITimeSpan;
  /**
   * Told about a periodic sweep that failed (the next one still runs).
   * @default console.warn
   */
  onSweepError?: (error: unknown) => void;
};

const settingsSchema = settingsObject({
  ...kyselySettingsEntries("hasp_shared_locks"),
  listener: listenerSchema,
});

/** The settings as parsed, with the dialect they fit. */
export type ParsedKyselySharedLockAdapterSettings = Omit<
  v.InferOutput<typeof settingsSchema>,
  "dialect"
> & {
  readonly dialect: SqlDialectName;
};

/**
 * Parses the settings and finds the dialect (set, or told by Kysely's adapter) they fit.
 * @throws InvalidArgumentError as KyselySharedLockAdapter's constructor says.
 */
export function parseKyselySharedLockAdapterSettings(
  settings: KyselySharedLockAdapterSettings,
): ParsedKyselySharedLockAdapterSettings {
  const parsed = parseSettings("KyselySharedLockAdapter settings", settingsSchema, settings);
  return { ...parsed, dialect: checkedDialect("KyselySharedLockAdapter", parsed) };
}
