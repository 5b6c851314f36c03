// A PostgreSQL operation of a primitive: a PL/pgSQL procedure of its table's own, created by
// init() and run by one CALL. The procedure plans its SQL once per connection, where the
// statement itself, sent unnamed (as Kysely sends every query), would be parsed and planned at
// every call; and a CALL, unlike a SELECT of a function, is not planned itself. The answer is the
// procedure's INOUT parameters (the CALL passes NULLs): one row, NULL where the SQL found no row.

import { MARKER, type SqlStatement, statement } from "../sql-statement.js";

// date_part is double precision (extract is numeric since PostgreSQL 14: slower), exact to the
// µs here; statement_timestamp() is fixed for the whole statement.
export const NOW_US_EXPRESSION = "(date_part('epoch', statement_timestamp()) * 1000000)::bigint";
/** In a procedure's body: the server's time in µs, read once as it began. */
export const NOW_US = "now_us";
/** In a procedure's body: the server's time in ms, read once as it began. */
export const NOW_MS = "now_ms";
/** PostgreSQL's time in ms when the expression is evaluated (not when the statement began). */
export const CLOCK_MS = "(date_part('epoch', clock_timestamp()) * 1000)::bigint";

/** A procedure's parameter: its name (a `:marker` in the body) and its SQL type. */
export type Param = readonly [name: string, type: string];
/** A procedure of the table's own: the CALL the adapter sends, and its DDL. */
export type Procedure<TArgs extends Record<string, unknown>> = {
  readonly call: SqlStatement<TArgs>;
  readonly create: string;
  readonly drop: string;
};

/** PL/pgSQL `code` on lines of its own at a procedure body's indent ("" stays ""). */
function indented(code: string): string {
  return code === "" ? "" : `\n  ${code.replace(/\n/g, "\n  ")}`;
}

/**
 * The procedure `"<table>:<operation>"` taking `params` and answering `answers` (its INOUT
 * parameters, "name type, ..."), with `body`, whose :markers are the parameters, and `then`,
 * PL/pgSQL run once the answers are read (they are variables there), and `declare`, more
 * variables of the body's. A table name
 * has no ":", so no two tables' procedures share a name (with "_", table "a" and operation
 * "force_release" would be table "a_force"'s "release"). At most 62 characters: PostgreSQL keeps
 * 63.
 */
export function procedure<TArgs extends Record<string, unknown>>(
  table: string,
  operation: string,
  params: readonly Param[],
  answers: string,
  body: string,
  then = "",
  declare = "",
): Procedure<TArgs> {
  const name = `"${table}:${operation}"`;
  const columns = answers.split(", ").map((answer) => answer.split(" ") as [string, string]);
  const types = [...params, ...columns].map(([, type]) => type).join(", ");
  // The body's :markers become the parameters, named _key, ... (no column starts with _).
  // The answers are variables too: column names win over them in the body's SQL.
  const create = `CREATE OR REPLACE PROCEDURE ${name}(${[
    ...params.map(([param, type]) => `_${param} ${type}`),
    ...columns.map(([column, type]) => `INOUT ${column} ${type}`),
  ].join(", ")})
  LANGUAGE plpgsql AS $hasp$
#variable_conflict use_column
DECLARE
  now_us bigint := ${NOW_US_EXPRESSION};
  now_ms bigint := now_us / 1000;${indented(declare)}
BEGIN
  ${body.replace(MARKER, "_$1").replace(/\n/g, "\n  ")}
  INTO ${columns.map(([column]) => column).join(", ")};${indented(then)}
END
$hasp$`;
  const call = statement<TArgs>(
    "postgres",
    `CALL ${name}(${[
      ...params.map(([param, type]) => `:${param}::${type}`),
      ...columns.map(([, type]) => `NULL::${type}`),
    ].join(", ")})`,
  );
  return { call, create, drop: `DROP PROCEDURE IF EXISTS ${name}(${types})` };
}
