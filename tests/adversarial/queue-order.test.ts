// Adversarial: a queue that must keep its order under a holder that keeps refreshing a short
// TTL. A holder runs inside run() with a TTL of 300 ms (so it refreshes every 100 ms, and every
// wait is capped by an expiry that keeps moving); five waiters queue one after the other with
// runBlocking; a newcomer hammers acquire() all along. When the holder lets go, the waiters
// must be served in the order they queued, and the newcomer must not take the key while one
// of them still waits.
import { setImmediate as nextTurn } from "node:timers/promises";
import { expect, onTestFinished, test } from "vitest";
import { LOCK_EVENTS } from "../../src/lock/contracts/lock-events.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { describeWorlds, eventually } from "./worlds.js";

const KEY = "queue";
const WAITERS = 5;
/** Refreshes of the holder after the last waiter queued: each moved the expiry the waits knew. */
const REFRESHES_WHILE_QUEUED = 4;

describeWorlds((fresh) => {
  test(`${WAITERS} waiters queued behind a holder refreshing a 300 ms TTL are served in order, and a newcomer hammering acquire() never cuts in`, async () => {
    const world = fresh();
    const holderProvider = world.provider();
    const holder = holderProvider.create(KEY, { ttl: TimeSpan.fromMilliseconds(300) });
    let refreshes = 0;
    await holderProvider.addListener(LOCK_EVENTS.REFRESHED, () => {
      refreshes += 1;
    });

    /** Who is inside a critical section now; any overlap is recorded. */
    let inside: string | null = null;
    const overlaps: string[] = [];
    const enter = (name: string) => {
      if (inside !== null) {
        overlaps.push(`${name} entered while ${inside} held the key`);
      }
      inside = name;
    };
    const leave = () => {
      inside = null;
    };

    let letGo!: () => void;
    const holding = new Promise<void>((resolve) => {
      letGo = resolve;
    });
    let holderIn!: () => void;
    const holderEntered = new Promise<void>((resolve) => {
      holderIn = resolve;
    });
    // Started now (a task is lazy), awaited at the end.
    const holderRun = Promise.resolve(
      holder.run(async ({ signal }) => {
        enter("the holder");
        holderIn();
        await holding;
        leave();
        return signal.aborted;
      }),
    );
    await holderEntered;

    const served: number[] = [];
    const waiters: Array<Promise<unknown>> = [];
    for (let i = 0; i < WAITERS; i++) {
      const waiter = world.provider().create(KEY, { ttl: TimeSpan.fromSeconds(30) });
      waiters.push(
        Promise.resolve(
          waiter.runBlocking(
            async () => {
              enter(`waiter ${i}`);
              served.push(i);
              await nextTurn();
              leave();
            },
            { time: TimeSpan.fromSeconds(30) },
          ),
        ),
      );
      // In line behind the one before: it joins only once that one is queued.
      await world.untilQueued(KEY, i + 1);
    }

    const newcomer = world.provider().create(KEY, { ttl: TimeSpan.fromSeconds(30) });
    const cutIns: string[] = [];
    let attempts = 0;
    let stop = false;
    onTestFinished(() => {
      stop = true;
      letGo();
    });
    const hammering = (async () => {
      while (!stop) {
        attempts += 1;
        if (await newcomer.acquire()) {
          if (served.length < WAITERS) {
            cutIns.push(
              `the newcomer took the key with ${WAITERS - served.length} waiter(s) not yet served`,
            );
          }
          enter("the newcomer");
          leave();
          await newcomer.release();
        }
        // Lets timers run (on memory an acquire is only microtasks).
        await nextTurn();
      }
    })();

    const refreshedBefore = refreshes;
    await eventually(() => {
      expect(refreshes - refreshedBefore).toBeGreaterThanOrEqual(REFRESHES_WHILE_QUEUED);
      expect(attempts).toBeGreaterThanOrEqual(10);
    });
    letGo();
    expect(await holderRun, "the holder kept its hold to the end").toEqual([true, false]);
    const results = await Promise.all(waiters);
    stop = true;
    await hammering;

    expect(results.map((result) => (result as [boolean, unknown])[0])).toEqual(
      Array(WAITERS).fill(true),
    );
    expect(overlaps).toEqual([]);
    expect(cutIns).toEqual([]);
    expect(served, "served in the order they queued").toEqual([0, 1, 2, 3, 4]);
  }, 30_000);
});
