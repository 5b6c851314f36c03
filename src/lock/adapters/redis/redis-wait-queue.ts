import type { EntryClaimFields } from "../../../backends/wait-queue/wait-entry.js";
import type { QueueEntry, WaitCheck, WaitQueue } from "../../../backends/wait-queue/wait-queue.js";
import { wholeMs } from "../../../timers/timers.js";
import type { RedisLockCommands } from "./redis-lock-commands.js";

/** The keys of one lock, in the order the scripts take them. */
export type RedisLockKeys = readonly [hold: string, fence: string, queue: string];

/**
 * The key's queue in Redis, for one wait whose entry holds `claim`, told on `inbox`: WAIT_SCRIPT,
 * LEAVE_SCRIPT, CHECK_SCRIPT, RELEASE_SCRIPT.
 */
export function redisWaitQueue(
  commands: RedisLockCommands,
  [hold, fence, queue]: RedisLockKeys,
  claim: EntryClaimFields,
  inbox: string,
): WaitQueue {
  return {
    join: (maxWaitMs, waitId) => {
      const asked = wholeMs(maxWaitMs);
      return commands
        .hasp_lock_wait(hold, fence, queue, claim.owner, claim.ttl, String(asked), inbox, waitId)
        .then((reply) => {
          if (typeof reply === "number") {
            return reply;
          }
          const [entry, pttl] = reply;
          return holderLeft(entry, pttl);
        });
    },
    leave: (entry, mode) => commands.hasp_lock_leave(hold, fence, queue, entry, claim.owner, mode),
    check: (entry, leftMs, serve) =>
      commands
        .hasp_lock_check(
          hold,
          fence,
          queue,
          entry,
          claim.owner,
          String(Math.ceil(leftMs)),
          serve ? "1" : "0",
        )
        .then(toWaitCheck),
    giveBack: () => commands.hasp_lock_release(hold, fence, queue, claim.owner),
  };
}

/** A check's answer: {1, token, pttl} granted, {0, pttl, entry} queued, {-1, 0} gone. */
function toWaitCheck([state, value, third]: [number, number, (string | number)?]): WaitCheck {
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
