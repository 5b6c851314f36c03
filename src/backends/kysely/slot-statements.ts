// The SQL on a table of slots that the semaphore ("<table>:slots", keyed by sem_key) and the
// shared lock's readers ("<table>:readers", keyed by sl_key) share: one row per slot,
//   <key column>, slot_id   primary key
//   token                   the slot's fencing token
//   slot_limit              the limit the slot was acquired with (each slot keeps its own)
//   expires_at              server time in ms (NULL: never expires)
// The texts read the same in every dialect but for its clock (`nowMs`, the server's time in ms).

import type { SqlStatement } from "./sql-statement.js";

/** How a dialect writes one operation's statement (MariaDB: prepared, under the operation's name). */
export type StatementWriter = <TArgs extends Record<string, unknown>>(
  operation: string,
  text: string,
) => SqlStatement<TArgs>;

/** Where the slots are: the table's key column, and the marker naming the slot's id. */
export type SlotColumns<TId extends string> = {
  /** The key column: `sem_key` or `sl_key`. */
  readonly key: string;
  /** The statement marker of the slot's id (`slot`: `:slot`). */
  readonly id: TId;
};

/** The arguments of a statement on one slot: the stored key and the slot's id. */
export type SlotArgs<TId extends string> = { key: string } & { [K in TId]: string };

/** The condition "the slot has not expired" at `now` (ms), on the slot row `row` (`"s."`). */
export function liveSlot(now: string, row = ""): string {
  return `(${row}expires_at IS NULL OR ${row}expires_at > ${now})`;
}

/**
 * The statements on the slots' table `s` (quoted) that read the same in every dialect but for
 * its clock: release (the caller's live slot), forceReleaseAll (every live slot of the key), and
 * getState (`taken`, `lim`, and the asking slot's `token` and `remaining`, -1: never expires).
 */
export function slotStatements<TId extends string>(
  write: StatementWriter,
  s: string,
  nowMs: string,
  { key, id }: SlotColumns<TId>,
): {
  release: SqlStatement<SlotArgs<TId>>;
  forceReleaseAll: SqlStatement<{ key: string }>;
  getState: SqlStatement<SlotArgs<TId>>;
} {
  const live = liveSlot(nowMs);
  return {
    release: write<SlotArgs<TId>>(
      "release",
      `DELETE FROM ${s} WHERE ${key} = :key AND slot_id = :${id} AND ${live}`,
    ),
    forceReleaseAll: write<{ key: string }>(
      "force_release_all",
      `DELETE FROM ${s} WHERE ${key} = :key AND ${live}`,
    ),
    getState: write<SlotArgs<TId>>(
      "get_state",
      `SELECT count(*) AS taken, min(slot_limit) AS lim,
        max(CASE WHEN slot_id = :${id} THEN token END) AS token,
        max(CASE WHEN slot_id = :${id} THEN coalesce(expires_at - ${nowMs}, -1) END) AS remaining
      FROM ${s} WHERE ${key} = :key AND ${live}`,
    ),
  };
}
