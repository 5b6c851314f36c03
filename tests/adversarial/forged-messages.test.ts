// Adversarial: a forged hand-off. A release names the waiter it served on its adapter's channel
// ("<wait id>": no token, the grant is read from the store). Anyone who can publish on that
// channel (any client of the Redis server; on PostgreSQL, any role that can log in: NOTIFY needs
// no privilege) can send such a message while the key is held by someone else. The waiter may
// wake on it, but must not believe it holds the key, and the forged token (a huge one, which
// would make the guarded resource refuse every real holder after it) must never be its token.
// The message is read off the backend's own queue entry: `<deadline>:<ttl>:<inbox>:<wait
// id>:<owner>`.
//
// To know the forged message was heard before looking, a second wait of the same adapter (on
// another key) is handed its key by a real release just after: the adapter's channel delivers
// messages in the order they were sent.
import pg from "pg";
import { expect, onTestFinished, test } from "vitest";
import type { ILock } from "../../src/lock/contracts/lock.js";
import { LOCK_STATE } from "../../src/lock/contracts/lock-state.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { createRedisClient, uniqueName } from "../harness/backends.js";
import { describeWorlds, parseEntry, type World } from "./worlds.js";

const KEY = "forged";
const MARKER_KEY = "marker";
const LONG = TimeSpan.fromSeconds(30);
/** A forged token: above any real one, so a resource guarded by it would refuse the real holders. */
const FORGED_TOKEN = Number.MAX_SAFE_INTEGER;

type Settled = { done: false } | { done: true; value: boolean } | { done: true; error: unknown };

/** Starts a blocking acquire and follows how it ends. */
function follow(lock: ILock): { state: () => Settled; ended: Promise<Settled> } {
  let state: Settled = { done: false };
  const ended = Promise.resolve(lock.acquireBlocking({ time: LONG })).then(
    (value): Settled => {
      state = { done: true, value };
      return state;
    },
    (error: unknown): Settled => {
      state = { done: true, error };
      return state;
    },
  );
  return { state: () => state, ended };
}

/** Sends `message` on `channel` as an attacker of the world's backend would. */
type Forger = (channel: string, message: string) => Promise<void>;

async function forgedHandOff(world: World, forge: Forger): Promise<void> {
  const holders = world.provider();
  const holder = holders.create(KEY, { ttl: LONG });
  const markerHolder = holders.create(MARKER_KEY, { ttl: LONG });
  await holder.acquireOrFail();
  await markerHolder.acquireOrFail();

  // Both waits on one adapter: one inbox.
  const waiters = world.provider();
  const waiter = waiters.create(KEY, { ttl: LONG });
  const markerWaiter = waiters.create(MARKER_KEY, { ttl: LONG });
  const waiting = follow(waiter);
  const markerWaiting = follow(markerWaiter);
  await world.untilQueued(KEY, 1);
  await world.untilQueued(MARKER_KEY, 1);

  const [entry] = await world.entries(KEY);
  expect(entry, "the waiter's queue entry").toBeDefined();
  const { inbox, waitId, owner } = parseEntry(entry ?? "");
  // The entry holds the waiter's credential (its id, and a generated lock's proof).
  expect(owner.split(".")[0]).toBe(waiter.id);
  // A grant that names its own token, then the wait's id alone, which is what a release sends.
  await forge(inbox, `${FORGED_TOKEN}:${waitId}:${owner}`);
  await forge(inbox, waitId);

  // Sent after the forged message, on the same channel: once it is heard, so was the forgery.
  expect(await markerHolder.release()).toBe(true);
  expect(await markerWaiting.ended).toEqual({ done: true, value: true });

  const state = waiting.state();
  expect(
    state.done && "value" in state && state.value,
    "the waiter believes it holds the key another owner holds",
  ).toBe(false);
  expect(waiter.fencingToken).not.toBe(FORGED_TOKEN);
  expect(await holder.getState()).toMatchObject({ type: LOCK_STATE.ACQUIRED });

  // The real hand-off still comes, with a real token.
  expect(await holder.release()).toBe(true);
  const end = await waiting.ended;
  expect(end).toEqual({ done: true, value: true });
  expect(waiter.fencingToken).not.toBe(FORGED_TOKEN);
  expect(waiter.fencingToken).toBeLessThan(FORGED_TOKEN);
  expect(await waiter.getState()).toMatchObject({
    type: LOCK_STATE.ACQUIRED,
    fencingToken: waiter.fencingToken,
  });
  await waiter.release();
  await markerWaiter.release();
}

describeWorlds((fresh) => {
  test("a forged hand-off message does not make a waiter believe it holds a key held by another, nor give it the forged token", async (context) => {
    const world = fresh();
    const url = world.url;
    if (world.name === "memory" || url === undefined) {
      return context.skip("the memory adapter sends no messages");
    }
    if (world.name === "redis") {
      const attacker = createRedisClient(url);
      onTestFinished(() => attacker.quit().then(() => undefined));
      await forgedHandOff(world, async (channel, message) => {
        expect(await attacker.pubsub("CHANNELS", "hasp-lock-inbox-*")).toContain(channel);
        expect(await attacker.publish(channel, message), "the waiter's inbox heard it").toBe(1);
      });
      return;
    }
    // PostgreSQL: a role that may only read the lock table (to learn the wait's channel and
    // id), as a reporting user would.
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const role = uniqueName("forger");
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    await admin.query(`GRANT SELECT ON "${world.table}" TO ${role}`);
    const attackerUrl = new URL(url);
    attackerUrl.username = role;
    attackerUrl.password = "";
    const attacker = new pg.Client({ connectionString: attackerUrl.toString() });
    onTestFinished(async () => {
      await attacker.end().catch(() => {});
      await admin.query(`REVOKE ALL ON "${world.table}" FROM ${role}`);
      await admin.query(`DROP ROLE ${role}`);
      await admin.end();
    });
    await attacker.connect();
    await forgedHandOff(world, async (channel, message) => {
      const { rows } = await attacker.query<{ waiters: string[] }>(
        `SELECT waiters FROM "${world.table}" WHERE waiters IS NOT NULL`,
      );
      expect(rows.flatMap((row) => row.waiters).some((entry) => entry.includes(channel))).toBe(
        true,
      );
      await attacker.query("SELECT pg_notify($1, $2)", [channel, message]);
    });
  });
});
