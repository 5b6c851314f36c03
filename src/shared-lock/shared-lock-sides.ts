// The two sides of a shared lock adapter, each seen as the shared `Hold` sees an adapter (release,
// refresh, the wait), so that the writer hold and the reader hold are plain `HoldFace`s with no
// branch on a side anywhere in `src/primitive/`. Made once per provider context.

import type { HoldReporter } from "../primitive/hold.js";
import type { TimeSpan } from "../time-span/time-span.js";
import type { ISharedLock } from "./contracts/shared-lock.js";
import type { ISharedLockAdapter } from "./contracts/shared-lock-adapter.js";
import type {
  SharedLockContext,
  SharedLockSide,
  SharedLockSideContext,
  SharedLockSides,
} from "./shared-lock-context.js";
import type { SharedLockReporter } from "./shared-lock-reporter.js";

/** The operation names the shared `Hold` reports, as each side's adapter method is named. */
const WRITER_OPERATIONS: Readonly<Record<string, string>> = {
  acquire: "acquireWriter",
  release: "releaseWriter",
  refresh: "refreshWriter",
};

const READER_OPERATIONS: Readonly<Record<string, string>> = {
  acquire: "acquireReader",
  release: "releaseReader",
  refresh: "refreshReader",
};

/** The adapter method a side's operation calls (`"acquire"` → `"acquireWriter"`). */
export function sideOperation(side: "writer" | "reader", operation: string): string {
  return (side === "writer" ? WRITER_OPERATIONS : READER_OPERATIONS)[operation] ?? operation;
}

function side(
  adapter: ISharedLockAdapter,
  release: (key: string, owner: string) => Promise<boolean>,
  refresh: (key: string, owner: string, ttl: TimeSpan) => Promise<boolean>,
): SharedLockSide {
  const base = {
    adapter,
    release,
    refresh,
    waitAcquires: adapter.waitAcquires === true,
    waitsPastExpiry: adapter.waitsPastExpiry === true,
  };
  // Absent, not undefined-valued, when the adapter has no wait: the blocking loop tests for it.
  const wait = adapter.waitForRelease;
  if (typeof wait !== "function") {
    return base;
  }
  return {
    ...base,
    waitForRelease: (key, maxWait, signal, claim) =>
      wait.call(adapter, key, maxWait, signal, claim),
  };
}

/** The provider's reporter, naming each operation as the side's adapter method. */
function sideReporter(
  reporter: SharedLockReporter,
  name: "writer" | "reader",
): HoldReporter<ISharedLock> {
  return {
    isListened: () => reporter.isListened(),
    emitNamed: (face, event, data) => reporter.emitNamed(face, event, data),
    backendError: (face, operation, error) =>
      reporter.backendError(face, sideOperation(name, operation), error),
    wrongAnswer: (face, operation, answer, value) =>
      reporter.wrongAnswer(face, sideOperation(name, operation), answer, value),
  };
}

function sideContext(
  context: SharedLockContext,
  name: "writer" | "reader",
  adapterSide: SharedLockSide,
): SharedLockSideContext {
  return {
    adapter: adapterSide,
    blockingTime: context.blockingTime,
    blockingInterval: context.blockingInterval,
    waits: context.waits,
    refreshTime: context.refreshTime,
    reporter: sideReporter(context.reporter, name),
  };
}

const SIDES = new WeakMap<SharedLockContext, SharedLockSides>();

/**
 * Both sides of a provider's context: made at its first call and kept with the context (a
 * revived shared lock of that provider gets the same ones).
 */
export function sharedLockSides(context: SharedLockContext): SharedLockSides {
  let sides = SIDES.get(context);
  if (sides === undefined) {
    const { adapter } = context;
    sides = Object.freeze({
      writer: sideContext(
        context,
        "writer",
        side(
          adapter,
          (key, owner) => adapter.releaseWriter(key, owner),
          (key, owner, ttl) => adapter.refreshWriter(key, owner, ttl),
        ),
      ),
      reader: sideContext(
        context,
        "reader",
        side(
          adapter,
          (key, owner) => adapter.releaseReader(key, owner),
          (key, owner, ttl) => adapter.refreshReader(key, owner, ttl),
        ),
      ),
    });
    SIDES.set(context, sides);
  }
  return sides;
}
