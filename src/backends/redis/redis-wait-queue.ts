import { wholeMs } from "../../timers/timers.js";
import type { LeaveMode, QueueEntry, WaitCheck, WaitQueue } from "../wait-queue/wait-queue.js";

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
  wait(maxWaitMs: string, waitId: string): Promise<number | [entry: string, pttl: number]>;
  /** Ends the wait: the claim's token if it keeps the hold it was handed, else 0. */
  leave(entry: string, mode: LeaveMode): Promise<number>;
  /** {1, token, pttl}: handed the hold; {0, pttl, entry}: still queued (renewed); {-1, 0}: gone. */
  check(
    entry: string,
    leftMs: string,
    serve: "0" | "1",
  ): Promise<[state: number, value: number, third?: string | number]>;
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
