// Adversarial: one owner waiting twice. A lock (or two locks given the same lockId) runs two
// blocking acquires while another lock holds the key; the release hands the key to the first
// wait; the second is aborted. Its leaving must not give away the hold the first wait was
// handed (the owner is the same: a leave that releases "the key if it was handed to this
// owner" frees the first wait's hold): a stranger's acquire must then fail.
import { expect, test } from "vitest";
import type { ILock } from "../../src/lock/contracts/lock.js";
import { LOCK_STATE } from "../../src/lock/contracts/lock-state.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { describeWorlds, eventually } from "./worlds.js";

const KEY = "double";
const LONG = TimeSpan.fromSeconds(30);

/** What a task settled with: its value, or its error. */
function outcome<T>(task: PromiseLike<T>): Promise<{ value: T } | { error: unknown }> {
  return Promise.resolve(task).then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

describeWorlds((fresh) => {
  for (const shape of ["one lock", "two locks with the same lockId"] as const) {
    test(`${shape}: two waits, the first handed the key, the second aborted: the first still holds it and a stranger cannot take it`, async () => {
      const world = fresh();
      const holder = world.provider().create(KEY, { ttl: LONG });
      const owners = world.provider();
      const first = owners.create(KEY, { ttl: LONG, lockId: "owner-7" });
      const second =
        shape === "one lock" ? first : owners.create(KEY, { ttl: LONG, lockId: "owner-7" });
      const stranger = world.provider().create(KEY, { ttl: LONG });
      await holder.acquireOrFail();

      const firstWait = outcome(first.acquireBlocking({ time: LONG }));
      await world.untilQueued(KEY, 1);
      const giveUp = new AbortController();
      const reason = new Error("the second wait gave up");
      const secondWait = outcome(second.acquireBlocking({ time: LONG }).withSignal(giveUp.signal));
      await world.untilQueued(KEY, 2);

      expect(await holder.release()).toBe(true);
      expect(await firstWait, "the first wait is handed the key").toEqual({ value: true });
      const token = first.fencingToken;
      expect(token).not.toBeNull();

      giveUp.abort(reason);
      // Aborted, or granted before the abort (the owner's own live hold): either is fine.
      const secondEnd = await secondWait;
      expect([reason, true]).toContainEqual(
        "error" in secondEnd ? secondEnd.error : secondEnd.value,
      );
      // The second wait has left the queue (its entry taken out in the step that decides
      // what its leaving does to the key).
      await eventually(async () => expect(await world.queued(KEY)).toBe(0));

      await expectHeldBy(first, token, stranger);
      expect(await first.release()).toBe(true);
    });
  }
});

/** `owner` holds the key with `token` and `stranger` cannot take it. */
async function expectHeldBy(owner: ILock, token: number | null, stranger: ILock): Promise<void> {
  expect(await stranger.acquire(), "a stranger takes the key its owner believes it holds").toBe(
    false,
  );
  expect(await owner.getState()).toMatchObject({ type: LOCK_STATE.ACQUIRED, fencingToken: token });
  expect(await stranger.getState()).toMatchObject({
    type: LOCK_STATE.UNAVAILABLE,
    owner: owner.id,
  });
}
