import { wholeMs } from "../../timers/timers.js";
import { WAIT_ENTRY_LUA } from "../wait-queue/wait-entry.js";
import type { LeaveMode, QueueEntry, WaitCheck, WaitQueue } from "../wait-queue/wait-queue.js";

/**
 * WAIT's reply: a token (negated: the claim owner's own hold, re-taken; 0: free, for a wait
 * without a claim), or the queued entry and the PTTL of what it waits on (-1: never expires,
 * -2: nothing held).
 */
export type RedisWaitReply = number | [entry: string, pttl: number];

/** CHECK's reply: {1, token, pttl}: handed the hold; {0, pttl, entry}: still queued; {-1, 0}: gone. */
export type RedisCheckReply = [state: number, value: number, third?: string | number];

/**
 * One wait's scripts on its key, the keys, claim and inbox bound: what every primitive's Redis
 * adapter that queues waits provides, each with the replies the lock's scripts give (see
 * redis-lock-scripts.ts: WAIT_SCRIPT, LEAVE_SCRIPT, CHECK_SCRIPT, RELEASE_SCRIPT).
 */
export type RedisWaitScripts = {
  /**
   * Takes the key for the claim at once (a token; negated: the claim owner's own hold, re-taken;
   * 0: free, for a wait without a claim), or queues the wait: its entry, and the PTTL of what it
   * waits on (-1: never expires, -2: nothing held).
   */
  wait(maxWaitMs: string, waitId: string): Promise<RedisWaitReply>;
  /** Ends the wait: the claim's token if it keeps the hold it was handed, else 0. */
  leave(entry: string, mode: LeaveMode): Promise<number>;
  /** {1, token, pttl}: handed the hold; {0, pttl, entry}: still queued (renewed); {-1, 0}: gone. */
  check(entry: string, leftMs: string, serve: "0" | "1"): Promise<RedisCheckReply>;
  /** Releases the claim's hold (taken by `wait` for a wait aborted meanwhile). */
  release(): Promise<unknown>;
};

/** The key's queue in Redis for one wait, over its scripts. */
export function redisWaitQueue(scripts: RedisWaitScripts): WaitQueue {
  return {
    join: (maxWaitMs, waitId) =>
      scripts.wait(String(wholeMs(maxWaitMs)), waitId).then((reply) => {
        if (typeof reply === "number") {
          return reply;
        }
        const [entry, pttl] = reply;
        return holderLeft(entry, pttl);
      }),
    leave: (entry, mode) => scripts.leave(entry, mode),
    check: (entry, leftMs, serve) =>
      scripts.check(entry, String(Math.ceil(leftMs)), serve ? "1" : "0").then(toWaitCheck),
    giveBack: () => scripts.release(),
  };
}

/** A check's answer: {1, token, pttl} granted, {0, pttl, entry} queued, {-1, 0} gone. */
function toWaitCheck([state, value, third]: RedisCheckReply): WaitCheck {
  if (state === 1) {
    const pttl = Number(third ?? -1);
    return pttl >= 0
      ? { state: "granted", fencingToken: value, remainingMs: pttl }
      : { state: "granted", fencingToken: value };
  }
  if (state === 0 && typeof third === "string") {
    return { state: "queued", ...holderLeft(third, value) };
  }
  return { state: "gone" };
}

/** A queued entry, with the holder's PTTL as the wait takes it (-1: never expires; -2: no hold). */
function holderLeft(entry: string, pttl: number): QueueEntry {
  if (pttl === -2) {
    return { entry };
  }
  return { entry, holderLeftMs: pttl < 0 ? Number.POSITIVE_INFINITY : pttl };
}

/** Lua statements: the queue `queue` (a KEYS expression) lasts at least `lasts` ms from now. */
const keepQueueFor = (queue: string) => `if redis.call('PTTL', ${queue}) < lasts then
    redis.call('PEXPIRE', ${queue}, lasts)
  end`;

/**
 * Lua every primitive's WAIT and CHECK scripts end with, over the list `queue` (a KEYS
 * expression), given `nowMs`, `left` (the wait's ms left) and `pttl` (what the wait waits on:
 * -1 never expires, -2 nothing held): the entry's deadline is the wait's end, or the grace past
 * the holder's expiry when that comes sooner (WAIT_ENTRY_LUA.lasts), and the list expires with
 * its latest deadline.
 */
export const REDIS_QUEUE_LUA = {
  /** Statements: appends a new entry (its `fields` as WAIT_ENTRY_LUA.encode takes them), and returns {entry, pttl}. */
  joinAndReturn: (queue: string, fields: Parameters<typeof WAIT_ENTRY_LUA.encode>[1]) =>
    `${WAIT_ENTRY_LUA.lasts}
  local entry = ${WAIT_ENTRY_LUA.encode("nowMs + lasts", fields)}
  redis.call('RPUSH', ${queue}, entry)
  ${keepQueueFor(queue)}
  return {entry, pttl}`,
  /**
   * Statements opening every LEAVE (after WAIT_ENTRY_LUA.findMine): an entry still queued was
   * handed nothing; it is taken out, and the script returns 0.
   */
  leaveIfQueued: (queue: string) => `local _, queued = mine()
if queued then
  redis.call('LREM', ${queue}, 1, queued)
  return 0
end`,
  /**
   * Statements: renews in place the entry at `index` (after WAIT_ENTRY_LUA.findMine), and
   * returns {0, pttl, renewed entry}.
   */
  renewAndReturn: (queue: string) => `${WAIT_ENTRY_LUA.lasts}
  local renewed = ${WAIT_ENTRY_LUA.renewed("nowMs + lasts")}
  redis.call('LSET', ${queue}, index, renewed)
  ${keepQueueFor(queue)}
  return {0, pttl, renewed}`,
} as const;
