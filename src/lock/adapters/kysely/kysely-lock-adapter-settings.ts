import type { Kysely } from "kysely";
import * as v from "valibot";
import {
  checkedDialect,
  kyselySettingsEntries,
  listenerSchema,
} from "../../../backends/kysely/kysely-adapter-settings.js";
import type { PgListenConnection } from "../../../backends/kysely/postgres/postgres-inbox.js";
import { mustBe, parseSettings, settingsObject } from "../../../settings/parse-settings.js";
import type { ITimeSpan } from "../../../time-span/time-span.js";
import type { KyselyLockDialect } from "./kysely-lock-statements.js";

/** The settings of {@link KyselyLockAdapter}; only `kysely` is required. */
export type KyselyLockAdapterSettings = {
  /**
   * A Kysely instance on PostgreSQL, MySQL/MariaDB or SQLite. Not a transaction: every statement
   * must commit on its own, or other processes would not see a hold until the caller commits.
   * The adapter never destroys it: it is yours.
   */
  // biome-ignore lint/suspicious/noExplicitAny: the adapter brings its own table, not the caller's schema
  kysely: Kysely<any>;
  /**
   * The table, created by `init()`: letters, digits and `_`, starting with a letter or `_`, at
   * most 48 characters.
   * @default "hasp_locks"
   */
  tableName?: string;
  /**
   * The SQL dialect. Detected from Kysely's built-in dialect adapters (and dialects built on
   * them); set it for a third-party dialect that speaks one of these.
   * @default detected
   */
  dialect?: KyselyLockDialect;
  /**
   * MySQL family only: whether the server answers `INSERT ... ON DUPLICATE KEY UPDATE ...
   * RETURNING` (MariaDB 10.5+). Without it (MySQL), an acquire that finds the key held needs a
   * second statement, a read, to learn the holder.
   * @default detected with `SELECT VERSION()` on first use
   */
  returning?: boolean;
  /**
   * MySQL family only: whether acquire, release, refresh, forceRelease and getState run as
   * prepared statements: each is prepared once per connection (`PREPARE`), then every call is
   * an `EXECUTE ... USING` its values, still one statement, which the server does not parse
   * again. MariaDB only (10.2+): MySQL's `EXECUTE` takes user variables only, a second
   * statement. Turn it off behind a proxy that does not keep a session's prepared statements.
   * @default on for MariaDB (detected, or implied by `returning: true`), off for MySQL
   */
  prepared?: boolean;
  /**
   * PostgreSQL only: a connection for `LISTEN` (a connected `pg.Client`, or a `pg.Pool` from
   * which one client is checked out and kept), so that blocking acquires queue in the lock's
   * row and the release statement itself hands the key to the oldest (first come, first
   * served; no polling, no retry), telling it with `pg_notify` on a channel of this adapter's
   * own. Give it a connection of its own: a listening connection cannot serve queries through
   * a pooler in transaction mode. Without it, waiting is bounded by the holder's TTL and the
   * interval.
   *
   * It stays yours: end it as you would without hasp. A pool's `end()` is not held up by the
   * client the adapter checked out (given back within 100 ms of `end()`, pg.Pool's `ending`
   * flag telling), and a `pg.Client` you end is let go; `close()` is not needed first. Blocking
   * acquires under way then stop hearing releases, and later ones fail.
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
  ...kyselySettingsEntries("hasp_locks"),
  listener: listenerSchema,
  returning: v.optional(v.boolean(mustBe("a boolean"))),
  prepared: v.optional(v.boolean(mustBe("a boolean"))),
});

/** The settings as parsed, with the dialect they fit. */
export type ParsedKyselyLockAdapterSettings = Omit<
  v.InferOutput<typeof settingsSchema>,
  "dialect"
> & {
  readonly dialect: KyselyLockDialect;
};

/**
 * Parses the settings and finds the dialect (set, or told by Kysely's adapter) they fit.
 * @throws InvalidArgumentError as KyselyLockAdapter's constructor says.
 */
export function parseKyselyLockAdapterSettings(
  settings: KyselyLockAdapterSettings,
): ParsedKyselyLockAdapterSettings {
  const parsed = parseSettings("KyselyLockAdapter settings", settingsSchema, settings);
  const dialect = checkedDialect("KyselyLockAdapter", {
    ...parsed,
    mysqlOnly: { returning: parsed.returning, prepared: parsed.prepared },
  });
  return { ...parsed, dialect };
}
