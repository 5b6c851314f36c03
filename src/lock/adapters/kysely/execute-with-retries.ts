import { setTimeout as sleep } from "node:timers/promises";
import type { QueryResult } from "kysely";
import type { ISqlLockDialect, RunnableStatement } from "./sql-lock-dialect.js";

/** Transient failures a single statement can still meet under contention: retried in place. */
const TRANSIENT_CODES = new Set([
  "40001", // PostgreSQL serialization_failure (a SERIALIZABLE default isolation)
  "40P01", // PostgreSQL deadlock_detected
  "ER_LOCK_DEADLOCK", // MySQL 1213: InnoDB can deadlock concurrent upserts of one key
  "SQLITE_BUSY", // another process holds the database file's write lock past busy_timeout
]);
/** Tries of a statement that met a transient failure; the pauses between grow to 128 ms. */
const MAX_STATEMENT_ATTEMPTS = 12;

/**
 * Runs one statement on `dialect`, again on the transient failures a lone statement can still
 * meet (it was rolled back whole); any other failure is thrown as the driver gave it.
 */
export async function executeWithRetries<TRow>(
  dialect: ISqlLockDialect,
  statement: RunnableStatement,
  parameters: readonly unknown[],
): Promise<QueryResult<TRow>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await dialect.execute<TRow>(statement, parameters);
    } catch (error) {
      if (attempt >= MAX_STATEMENT_ATTEMPTS || !isTransient(error)) {
        throw error;
      }
      // A random pause, growing with each conflict, spreads the contenders out (full jitter).
      await sleep(Math.random() * 2 ** Math.min(attempt, 7));
    }
  }
}

function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && TRANSIENT_CODES.has(code);
}
