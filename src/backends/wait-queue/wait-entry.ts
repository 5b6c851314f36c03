// A wait's entry in its key's queue, as every backend that queues waits keeps it (Redis's
// `{K}:queue` list, PostgreSQL's `waiters` column), and the fragments of Lua and SQL that read
// and write it, so that the format is written once:
//
//   "<deadline ms>:<ttl>:<inbox>:<wait id>:<limit>:<owner>"
//
// - deadline: when the entry lapses, in ms of the server's clock; the wait's checks renew it in
//   place (a wait is known by the rest of its entry, which never changes);
// - ttl: the claim's TTL in ms, "" for a claim whose hold never expires, "-" for a wait without
//   a claim (woken to try, never handed the key);
// - inbox: the adapter's channel, where a release names the wait it served ("<wait id>");
// - limit: the claim's limit, for a primitive with several holders (a semaphore's slots), ""
//   for one with a single holder (the lock) and for a wait without a claim;
// - owner: the claim's holder id ("" without a claim). It is last, as the only field that may
//   hold ":"; the inbox, the wait id and the limit never do.

/**
 * How long a queue entry outlives the holder's expiry unless its wait renews it (it checks at
 * that expiry, which renews it): a live wait keeps its place however often the holder
 * refreshes, and one whose process died is skipped soon after the hold it waited on would have
 * ended. Each backend's queue sets entries' deadlines with it.
 */
export const ENTRY_GRACE_MS = 2_000;

/** The ttl field of a wait without a claim. */
export const NO_CLAIM_TTL = "-";

/** The ttl field of a claim whose hold never expires. */
export const NEVER_EXPIRES_TTL = "";

/** The limit field of a claim without a limit (a single holder), and of a wait without a claim. */
export const NO_LIMIT = "";

/** A claim in an entry: the hold it is handed, if it is first when the key is released. */
export type WaitEntryClaim = {
  /** The claim's holder id (a lock id, a slot id). */
  readonly owner: string;
  /** The hold's TTL in ms, counted from the hand-off; `null`: it never expires. */
  readonly ttlMs: number | null;
  /** The claim's limit (a whole number, at least 1); absent: a primitive with one holder. */
  readonly limit?: number;
};

/** One wait's entry, decoded. */
export type WaitEntry = {
  /** When the entry lapses, in ms of the server's clock. */
  readonly deadlineMs: number;
  /** The claim handed the key; `null`: a wait only woken to try. */
  readonly claim: WaitEntryClaim | null;
  /** The adapter's channel, where a release names the wait. */
  readonly inbox: string;
  /** The wait's name in its adapter's messages. */
  readonly waitId: string;
};

/**
 * The claim's fields as the scripts and statements take them: ARGV, or `:owner`, `:ttl` (and
 * `:limit` for a primitive with several holders).
 */
export type EntryClaimFields = {
  /** The claim's holder id, "" without a claim. */
  readonly owner: string;
  /** The ttl field (see {@link NO_CLAIM_TTL}, {@link NEVER_EXPIRES_TTL}). */
  readonly ttl: string;
  /** The limit field: the claim's limit in digits, or {@link NO_LIMIT}. */
  readonly limit: string;
};

/** The fields of a wait without a claim. */
export const NO_CLAIM: EntryClaimFields = { owner: "", ttl: NO_CLAIM_TTL, limit: NO_LIMIT };

/** A claim (or none) as the fields an entry is made of. */
export function claimFields(claim: WaitEntryClaim | null): EntryClaimFields {
  if (claim === null) {
    return NO_CLAIM;
  }
  return {
    owner: claim.owner,
    ttl: claim.ttlMs === null ? NEVER_EXPIRES_TTL : String(claim.ttlMs),
    limit: claim.limit === undefined ? NO_LIMIT : String(claim.limit),
  };
}

/** An entry as the backends store it. */
export function encodeWaitEntry({ deadlineMs, claim, inbox, waitId }: WaitEntry): string {
  const { owner, ttl, limit } = claimFields(claim);
  return `${deadlineMs.toFixed(0)}:${ttl}:${inbox}:${waitId}:${limit}:${owner}`;
}

/** An entry as the backends store it, decoded; `undefined` when it is not one. */
export function decodeWaitEntry(text: string): WaitEntry | undefined {
  const [deadline, ttl, inbox, waitId, limit, ...owner] = text.split(":");
  if (
    limit === undefined ||
    waitId === undefined ||
    ttl === undefined ||
    inbox === undefined ||
    !/^\d+$/.test(deadline ?? "") ||
    !/^(\d*)$/.test(limit)
  ) {
    return undefined;
  }
  let claim: WaitEntryClaim | null = null;
  if (ttl !== NO_CLAIM_TTL) {
    if (ttl !== NEVER_EXPIRES_TTL && !/^\d+$/.test(ttl)) {
      return undefined;
    }
    const ttlMs = ttl === NEVER_EXPIRES_TTL ? null : Number(ttl);
    claim =
      limit === NO_LIMIT
        ? { owner: owner.join(":"), ttlMs }
        : { owner: owner.join(":"), ttlMs, limit: Number(limit) };
  }
  return { deadlineMs: Number(deadline), claim, inbox, waitId };
}

/**
 * Lua for the Redis scripts. Statements declare the locals they name; expressions read them.
 * Multi-line fragments are indented for the place the scripts put them.
 */
export const WAIT_ENTRY_LUA = {
  /** Statement: `sep`, the end of the deadline of the entry in `entry`. */
  findDeadline: "local sep = string.find(entry, ':', 1, true)",
  /** Expression: that entry's deadline (after `findDeadline`). */
  deadline: "tonumber(string.sub(entry, 1, sep - 1))",
  /**
   * Statements: that entry's `ttl`, `inbox` and `wait` (its id), and `idEnd` and `limitEnd`
   * (after `findDeadline`).
   */
  readFields: `local ttlEnd = string.find(entry, ':', sep + 1, true)
      local ttl = string.sub(entry, sep + 1, ttlEnd - 1)
      local inboxEnd = string.find(entry, ':', ttlEnd + 1, true)
      local inbox = string.sub(entry, ttlEnd + 1, inboxEnd - 1)
      local idEnd = string.find(entry, ':', inboxEnd + 1, true)
      local wait = string.sub(entry, inboxEnd + 1, idEnd - 1)
      local limitEnd = string.find(entry, ':', idEnd + 1, true)`,
  /** Expression: that entry's owner (after `readFields`). */
  owner: "string.sub(entry, limitEnd + 1)",
  /** Expression: that entry's limit field, "" without a limit (after `readFields`). */
  limit: "string.sub(entry, idEnd + 1, limitEnd - 1)",
  /** Expression: whether the ttl field `ttl` is a wait's without a claim. */
  noClaim: (ttl: string) => `${ttl} == '${NO_CLAIM_TTL}'`,
  /** Expression: whether the ttl field `ttl` is a claim's whose hold never expires. */
  neverExpires: (ttl: string) => `${ttl} == '${NEVER_EXPIRES_TTL}'`,
  /**
   * Statements: `lasts`, how long an entry stays queued from now: the wait's `left` ms, or the
   * holder's `pttl` plus the grace when that ends sooner.
   */
  lasts: `local lasts = left
    if pttl >= 0 and pttl + ${ENTRY_GRACE_MS} < left then
      lasts = pttl + ${ENTRY_GRACE_MS}
    end`,
  /**
   * Expression: a new entry, from a deadline (a number) and its fields (Lua strings; `limit`
   * absent: none, as the lock's).
   */
  encode: (
    deadline: string,
    fields: { ttl: string; inbox: string; id: string; owner: string; limit?: string },
  ) =>
    `string.format('%.0f', ${deadline}) .. ':' .. ${fields.ttl} .. ':'
      .. ${fields.inbox} .. ':' .. ${fields.id} .. ${
        fields.limit === undefined ? "'::'" : `':' .. ${fields.limit} .. ':'`
      } .. ${fields.owner}`,
  /**
   * Statements: `rest`, what follows the deadline in the entry `entry` (an expression), which
   * is what a wait is known by; and `mine()`, the index (from 0) and text of that wait's entry
   * in the list KEYS[3] now, or nil.
   */
  findMine: (
    entry: string,
  ) => `local rest = string.sub(${entry}, (string.find(${entry}, ':', 1, true)))
local function mine()
  for index, queued in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
    local sep = string.find(queued, ':', 1, true)
    if sep and string.sub(queued, sep) == rest then
      return index - 1, queued
    end
  end
  return nil
end`,
  /** Expression: the entry of `findMine`'s wait with a new deadline (a number). */
  renewed: (deadline: string) => `string.format('%.0f', ${deadline}) .. rest`,
} as const;

/** The part of the entry `entry` (SQL text) after its deadline: what its wait is known by. */
function sqlRest(entry: string): string {
  return `substr(${entry}, strpos(${entry}, ':'))`;
}

/**
 * SQL for PostgreSQL's statements (the `waiters text[]` column), and PL/pgSQL for its hand-off
 * trigger. Expressions, over the named parameters `:ttl`, `:inbox`, `:id` and `:entry`.
 */
export const WAIT_ENTRY_SQL = {
  /**
   * A new entry: `deadline` (ms, bigint), then `:ttl`, `:inbox`, `:id`, `limit` (text; absent:
   * none, as the lock's) and `owner`.
   */
  encode: (deadline: string, owner: string, limit?: string) =>
    `(${deadline})::text || ':' || :ttl || ':' || :inbox || ':' || :id || ${
      limit === undefined ? "'::'" : `':' || ${limit} || ':'`
    } || ${owner}`,
  /** The entry `entry` with a new deadline (ms, bigint). */
  renewed: (deadline: string, entry = ":entry") => `(${deadline})::text || ${sqlRest(entry)}`,
  /** The entry in the array `queue` of the same wait as `entry` (NULL: none). */
  mine: (queue = "waiters", entry = ":entry") => `(SELECT w FROM unnest(${queue}) AS w
    WHERE ${sqlRest("w")} = ${sqlRest(entry)} LIMIT 1)`,
  /**
   * An entry's deadline: `left` ms from `nowMs`, or the grace past the holder's `expiresAt`
   * when the hold is live (`live`) and that comes sooner (the waiter renews it by checking then).
   */
  deadline: (nowMs: string, left: string, hold: { live: string; expiresAt: string }) =>
    `CASE WHEN ${hold.live} AND ${hold.expiresAt} IS NOT NULL
    THEN least(${nowMs} + ${left}, ${hold.expiresAt} + ${ENTRY_GRACE_MS}) ELSE ${nowMs} + ${left} END`,
  /** PL/pgSQL: the fields of the entry `entry` as a text[] (read with `fields`). */
  split: (entry: string) => `string_to_array(${entry}, ':')`,
  /** PL/pgSQL: the fields in `parts`, a `split` entry. */
  fields: (parts: string) => ({
    deadlineMs: `${parts}[1]::bigint`,
    noClaim: `${parts}[2] = '${NO_CLAIM_TTL}'`,
    ttlMs: `nullif(${parts}[2], '${NEVER_EXPIRES_TTL}')::bigint`,
    inbox: `${parts}[3]`,
    waitId: `${parts}[4]`,
    /** The limit (int), NULL without one. */
    limit: `nullif(${parts}[5], '${NO_LIMIT}')::int`,
    owner: `array_to_string(${parts}[6:], ':')`,
  }),
} as const;
