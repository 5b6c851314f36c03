import { randomBytes } from "node:crypto";
import type { QueryResult } from "kysely";
import type { TimeSpan } from "../../../time-span/time-span.js";
import { wholeMs } from "../../../timers/timers.js";
import { QueuedWaits } from "../../wait-queue/queued-waits.js";
import type { EntryClaimFields } from "../../wait-queue/wait-entry.js";
import type {
  HeardGrant,
  LeaveMode,
  QueueEntry,
  WaitCheck,
  WaitClaim,
  WaitHandOff,
  WaitQueue,
} from "../../wait-queue/wait-queue.js";
import type { RunnableStatement, SqlStatement } from "../sql-statement.js";
import { storedKey } from "../stored-key.js";
import { readGrantMessage } from "./postgres-grant-message.js";
import {
  type PgListenConnection,
  PostgresInbox,
  type PostgresInboxStatements,
} from "./postgres-inbox.js";

/** The arguments of `wait` and `claim`: a queue entry for the release to serve. */
export type PostgresWaitArgs = {
  /** The stored key. */
  key: string;
  /** The claim's holder id, "" without a claim. */
  owner: string;
  /** The claim's TTL in ms, "" for a hold without one, "-" for a wait without a claim. */
  ttl: string;
  /** The claim's limit in digits, "" without one (a single holder, or no claim). */
  limit: string;
  /** How long the entry stays valid, in ms from the server's now. */
  wait: number;
  /** The waiting adapter's channel, where the release tells it. */
  inbox: string;
  /** The wait's id within its adapter. */
  id: string;
};

/** The arguments of `leave` and `check`: one wait's queue entry. */
export type PostgresEntryArgs = {
  key: string;
  owner: string;
  /** The entry `wait` or `claim` answered. */
  entry: string;
};

/** The arguments of `leave`: one wait's queue entry, and what its end does with a grant. */
export type PostgresLeaveArgs = PostgresEntryArgs & {
  /** "keep" (the wait ran out) or "release" (an abort, close()). */
  mode: LeaveMode;
};

/**
 * A primitive's queue procedures on PostgreSQL, as the queue calls them (see the lock's
 * `KyselyLockStatements` for what each answers): `wait` answers `entry`, `remaining`; `claim`
 * answers `owner` (the claim's when it took or re-took a hold: `token`, negated when re-taken),
 * `token`, `remaining`, `entry`, `at`; `leave` answers `token`; `check` answers `state`,
 * `token`, `remaining`, `entry`.
 */
export type PostgresQueueStatements = {
  readonly wait: SqlStatement<PostgresWaitArgs>;
  readonly claim: SqlStatement<PostgresWaitArgs>;
  readonly leave: SqlStatement<PostgresLeaveArgs>;
  readonly check: SqlStatement<
    PostgresEntryArgs & {
      /** Ms left of the wait. */
      left: number;
    }
  >;
  readonly inbox: PostgresInboxStatements;
};

/** What the wait queue takes from its adapter. */
export type PostgresWaitQueueSettings = {
  /** The adapter's class name, for errors. */
  readonly adapter: string;
  /** The connection to `LISTEN` on (the adapter's `listener` setting). */
  readonly listener: PgListenConnection;
  readonly statements: PostgresQueueStatements;
  /** Runs a statement as the adapter runs its operations' (`waitForRelease` of `key`). */
  send<TRow>(
    statement: RunnableStatement,
    parameters: readonly unknown[],
    key: string,
  ): Promise<QueryResult<TRow>>;
  /** The adapter's `release` (of the claim's hold). */
  release(key: string, owner: string): Promise<boolean>;
};

/**
 * How far a server clock may run from ours while a wait lasts (NTP slews by 500 ppm at most):
 * taken off a signed grant's time left.
 */
const CLOCK_RATE_MARGIN = 0.001;

/** The server's clock as a claim read it: `serverMs` was read after `sentAt` (performance.now()). */
type ClockReading = { readonly sentAt: number; readonly serverMs: number };

/**
 * Whose wait, on which key: `owner` is "" for a wait without a claim; `ttlMs` the claim's
 * (`null`: never expires); `clock`, set by the claim that queued it.
 */
type Waiter = {
  readonly key: string;
  readonly stored: string;
  readonly owner: string;
  readonly ttlMs: number | null;
  clock?: ClockReading;
};

type ClaimRow = {
  owner: string | null;
  token: number | string | bigint;
  remaining: unknown;
  entry: string | null;
  at: number | string;
};
type CheckRow = { state: number | null; token: unknown; remaining: unknown; entry: string | null };

/**
 * PostgreSQL's `waitForRelease`: a wait queues in the lock's row (the `wait` and `claim`
 * procedures), where the release statement's trigger hands the key to the oldest claim (or
 * wakes the oldest wait without one) and names it with `pg_notify` on its adapter's inbox, a
 * `LISTEN` channel of this queue's own. A message is only a wake-up: the wait asks `check`.
 */
export class PostgresWaitQueue {
  readonly #settings: PostgresWaitQueueSettings;
  readonly #inbox: PostgresInbox;
  /** The waits under way, told of their hand-offs on the inbox. */
  readonly #waits = new QueuedWaits();
  /** Per stored key, the last `wait` statement sent: each waits for the one before. */
  readonly #joins = new Map<string, Promise<unknown>>();

  constructor(settings: PostgresWaitQueueSettings) {
    this.#settings = settings;
    const secret = randomBytes(16).toString("hex");
    this.#inbox = new PostgresInbox({
      connection: settings.listener,
      // Random, so that two adapters (processes) never share one: a message reaches one.
      channel: `hasp_inbox_${randomBytes(12).toString("hex")}`,
      secret,
      statements: settings.statements.inbox,
      onMessage: (payload) => {
        const message = readGrantMessage(payload, secret);
        if (message !== undefined) {
          this.#waits.heard(message.waitId, message.grant);
        }
      },
      // The listening connection was lost: releases meanwhile told nobody. Once listening again
      // (or not: the checks need no listener), every wait asks whether it was handed the key (a
      // wait that was only woken waits out its time, or the next release).
      onLost: () => this.#waits.recheck(() => this.#inbox.listen(), { ifListenFails: "check" }),
    });
  }

  /** The adapter's `waitForRelease`: waits for `key`'s release, at most `maxWait`. */
  wait(
    key: string,
    maxWait: TimeSpan,
    signal: AbortSignal,
    claim: WaitClaim | undefined,
  ): Promise<WaitHandOff | undefined> {
    return this.#waits.waitForRelease({
      adapter: this.#settings.adapter,
      maxWait,
      signal,
      claim,
      queue: (fields) => this.#queue(key, fields),
      listen: () => this.#inbox.listen(),
    });
  }

  /**
   * Ends the waits under way (leaving the queue as aborted waits do, failing with an error naming
   * close()) and stops listening; a later wait fails at once.
   */
  async close(): Promise<void> {
    const ending = this.#waits.close(this.#settings.adapter);
    await this.#inbox.close();
    await ending;
  }

  /** The key's queue in its row, for one wait: the `wait`, `claim`, `leave` and `check` procedures. */
  #queue(key: string, { owner, ttl, limit }: EntryClaimFields): WaitQueue {
    const stored = storedKey(key);
    const waiter: Waiter = { key, stored, owner, ttlMs: ttl === "" ? null : Number(ttl) };
    const inbox = this.#inbox.channel;
    return {
      join: (maxWaitMs, id) =>
        this.#join(waiter, {
          key: stored,
          owner,
          ttl,
          limit,
          wait: wholeMs(maxWaitMs),
          inbox,
          id,
        }),
      leave: (entry: string, mode: LeaveMode) => this.#leave(waiter, entry, mode),
      // PostgreSQL keeps a hold's expiry in its row: its check serves only a hold that expired,
      // whatever `serve` says.
      check: (entry: string, leftMs: number) => this.#check(waiter, entry, leftMs),
      giveBack: () => this.#settings.release(key, owner),
      granted: (grant) => signedHandOff(waiter, grant),
    };
  }

  /**
   * One after the other per key, so the queue keeps the order of this process's waits
   * (concurrent statements on a pool can reach the server in any order).
   */
  #join(waiter: Waiter, args: PostgresWaitArgs): Promise<number | QueueEntry> {
    const { stored } = waiter;
    const joined = (this.#joins.get(stored) ?? Promise.resolve()).then(() =>
      this.#sendJoin(waiter, args),
    );
    const settled = joined.catch(() => {});
    this.#joins.set(stored, settled);
    settled.then(() => {
      if (this.#joins.get(stored) === settled) {
        this.#joins.delete(stored);
      }
    });
    return joined;
  }

  async #sendJoin(waiter: Waiter, args: PostgresWaitArgs): Promise<number | QueueEntry> {
    const { wait, claim } = this.#settings.statements;
    if (waiter.owner === "") {
      const result = await this.#settings.send<{ entry: string | null; remaining: unknown }>(
        wait,
        wait.parameters(args),
        waiter.key,
      );
      // No entry: the key is free, to be tried.
      const row = result.rows[0];
      return row?.entry == null ? 0 : queueEntry(row.entry, row.remaining);
    }
    const sentAt = performance.now();
    const result = await this.#settings.send<ClaimRow>(claim, claim.parameters(args), waiter.key);
    const row = result.rows[0];
    if (row === undefined) {
      throw new Error(`the claim statement of "${waiter.key}" answered no row`);
    }
    waiter.clock = { sentAt, serverMs: Number(row.at) };
    if (row.owner === waiter.owner) {
      return Number(row.token);
    }
    return row.entry === null ? 0 : queueEntry(row.entry, row.remaining);
  }

  async #leave({ key, stored, owner }: Waiter, entry: string, mode: LeaveMode): Promise<number> {
    const { leave } = this.#settings.statements;
    const result = await this.#settings.send<{ token: number | string }>(
      leave,
      leave.parameters({ key: stored, owner, entry, mode }),
      key,
    );
    // With "release", the procedure itself freed a hold handed to this very wait (0).
    return Number(result.rows[0]?.token ?? 0);
  }

  async #check({ key, stored, owner }: Waiter, entry: string, leftMs: number): Promise<WaitCheck> {
    const { check } = this.#settings.statements;
    const result = await this.#settings.send<CheckRow>(
      check,
      check.parameters({ key: stored, owner, entry, left: Math.ceil(leftMs) }),
      key,
    );
    const row = result.rows[0];
    if (row?.state === 1) {
      const fencingToken = Number(row.token);
      if (row.remaining == null) {
        return { state: "granted", fencingToken };
      }
      return { state: "granted", fencingToken, remainingMs: Math.max(0, Number(row.remaining)) };
    }
    if (row?.state === 0 && row.entry !== null) {
      return { state: "queued", ...queueEntry(row.entry, row.remaining) };
    }
    return { state: "gone" };
  }
}

/**
 * The hand-off of a signed grant to `waiter`'s claim, with the hold's ms left now on the safe
 * side: the hold began `startedAtMs` on the server's clock, which on ours is no earlier than the
 * claim's send plus the server time from its statement to the grant (1 ms more: both are
 * floored), less what the two clocks may have drifted apart since.
 */
function signedHandOff(
  { ttlMs, clock }: Waiter,
  { fencingToken, startedAtMs }: HeardGrant,
): Extract<WaitCheck, { state: "granted" }> {
  // No TTL, or no claim's reading of the clock (a grant goes to a claim, which has one): the
  // caller counts the TTL from the wait's start.
  if (ttlMs === null || clock === undefined) {
    return { state: "granted", fencingToken };
  }
  const now = performance.now();
  const began = clock.sentAt + (startedAtMs - clock.serverMs - 1);
  const drift = (now - clock.sentAt) * CLOCK_RATE_MARGIN;
  const remainingMs = Math.min(ttlMs, ttlMs - (now - began) - drift);
  return { state: "granted", fencingToken, remainingMs: Math.max(0, remainingMs) };
}

/** A queued wait's entry, with the holder's remaining ms (-1: never expires; NULL: no hold). */
function queueEntry(entry: string, remaining: unknown): QueueEntry {
  if (remaining == null) {
    return { entry };
  }
  const ms = Number(remaining);
  return { entry, holderLeftMs: ms < 0 ? Number.POSITIVE_INFINITY : ms };
}
