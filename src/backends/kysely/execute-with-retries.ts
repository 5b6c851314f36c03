import { setTimeout as sleep } from "node:timers/promises";
import type { QueryResult } from "kysely";
import type { ISqlStatementRunner } from "./sql-dialect.js";
import type { RunnableStatement } from "./sql-statement.js";

/** Transient failures a single statement can still meet under contention: retried in place. */
const TRANSIENT_CODES = new Set([
  "40001", // PostgreSQL serialization_failure (a SERIALIZABLE default isolation)
  "40P01", // PostgreSQL deadlock_detected
  "ER_LOCK_DEADLOCK", // MySQL 1213: InnoDB can deadlock concurrent upserts of one key
  "SQLITE_BUSY", // another process holds the database file's write lock past busy_timeout
]);
/** The driver's codes for a missing table or procedure: `init()` (or the migration) never ran. */
const MISSING_SCHEMA_CODES = new Set([
  "42P01", // PostgreSQL undefined_table
  "42883", // PostgreSQL undefined_function (no procedure of this signature)
  "ER_NO_SUCH_TABLE", // MySQL 1146
  "ER_SP_DOES_NOT_EXIST", // MySQL 1305
]);
/** Tries of a statement that met a transient failure; the pauses between grow to 128 ms. */
const MAX_STATEMENT_ATTEMPTS = 12;

/**
 * Runs one statement on `dialect`, again on the transient failures a lone statement can still
 * meet (it was rolled back whole). For a primitive's operation (`operation`, on `key`), a missing
 * table or procedure becomes the dialect's missing-schema error (the primitive's backend error,
 * naming its adapter's `init()`); any other failure is thrown as the driver gave it.
 */
export function executeWithRetries<TRow>(
  dialect: ISqlStatementRunner,
  statement: RunnableStatement,
  parameters: readonly unknown[],
  operation?: string,
  key = "",
): Promise<QueryResult<TRow>> {
  // The first try has no async frame of its own: nearly every statement succeeds on it.
  return dialect
    .execute<TRow>(statement, parameters)
    .catch((error: unknown) => retry<TRow>(error, dialect, statement, parameters, operation, key));
}

/** After the first try failed with `error`: throws it, or tries again while it is transient. */
async function retry<TRow>(
  error: unknown,
  dialect: ISqlStatementRunner,
  statement: RunnableStatement,
  parameters: readonly unknown[],
  operation: string | undefined,
  key: string,
): Promise<QueryResult<TRow>> {
  let failure = error;
  for (let attempt = 1; ; attempt++) {
    if (operation !== undefined && isMissingSchema(failure)) {
      throw dialect.missingSchemaError(failure, operation, key);
    }
    if (attempt >= MAX_STATEMENT_ATTEMPTS || !isTransient(failure)) {
      throw failure;
    }
    // A random pause, growing with each conflict, spreads the contenders out (full jitter).
    await sleep(Math.random() * 2 ** Math.min(attempt, 7));
    try {
      return await dialect.execute<TRow>(statement, parameters);
    } catch (next) {
      failure = next;
    }
  }
}

function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && TRANSIENT_CODES.has(code);
}

/** A statement that failed because `init()` (or the migration) never ran. */
function isMissingSchema(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === "string" && MISSING_SCHEMA_CODES.has(code)) {
    return true;
  }
  // SQLite has no code of its own for it: SQLITE_ERROR is any error in the SQL.
  return (
    code === "SQLITE_ERROR" && typeof message === "string" && message.startsWith("no such table")
  );
}
