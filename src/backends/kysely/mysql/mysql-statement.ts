import { createHash } from "node:crypto";
import { type SqlStatement, statement } from "../sql-statement.js";

/** What a MySQL-family server can do, deciding how a primitive's statements are written and run. */
export type MysqlServerOptions = {
  /** The upsert answers with `RETURNING` (MariaDB 10.5+). */
  readonly returning: boolean;
  /** The operations run as prepared statements (MariaDB 10.2+: `EXECUTE ... USING` values). */
  readonly prepared: boolean;
};

/**
 * An operation's statement on `table`, prepared on each connection when `prepared`: sent as
 * text, the server parses the statement and resolves its every expression at each call, which
 * cost about as much as running it.
 */
export function mysqlOperation<TArgs extends Record<string, unknown>>(
  table: string,
  name: string,
  text: string,
  prepared: boolean,
): SqlStatement<TArgs> {
  const plain = statement<TArgs>("mysql", text);
  if (!prepared) {
    return plain;
  }
  // The text's hash in the name: adapters on one pool whose SQL differs (other settings,
  // another hasp version) never run each other's statement.
  const digest = createHash("sha256").update(plain.sql).digest("hex").slice(0, 8);
  const quoted = `\`${table}:${name}:${digest}\``;
  const placeholders = plain.sql.split("?").length - 1;
  return {
    ...plain,
    prepared: {
      name: quoted,
      prepare: `PREPARE ${quoted} FROM ?`,
      execute: `EXECUTE ${quoted} USING ${Array(placeholders).fill("?").join(", ")}`,
    },
  };
}
