// The keys and namespaces a conformance suite uses: never another test's or another run's, and
// all of them known, so that the suite frees them after each test on a shared server.
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { expect, vi } from "vitest";
import { Namespace } from "../../namespace/namespace.js";
import { PATIENCE_MS, SUBSCRIBE_GRACE } from "./suite-timing.js";

let suiteCounter = 0;

/** The keys of one call of an adapter suite: each unique, each remembered until `takeUsed`. */
export class SuiteKeys {
  readonly #runPrefix: string;
  #keyCounter = 0;
  #used: string[] = [];

  /** `keyPrefix` comes first; a random part per call of the suite always follows it. */
  constructor(keyPrefix: string) {
    suiteCounter += 1;
    this.#runPrefix = `${keyPrefix}${randomBytes(6).toString("hex")}-${suiteCounter}:`;
  }

  /** A key no other test (or run) has used; freed after the test. */
  fresh(label = "key"): string {
    this.#keyCounter += 1;
    return this.track(`${this.#runPrefix}${this.#keyCounter}:${label}`);
  }

  /** Remembers a key the test made itself, to be freed after it. */
  track(key: string): string {
    this.#used.push(key);
    return key;
  }

  /** The keys used since the last call, forgotten here. */
  takeUsed(): string[] {
    const used = this.#used;
    this.#used = [];
    return used;
  }
}

let namespaceCounter = 0;

/** A fresh part for names that must not meet another test's (of this or another process). */
export function uniqueSuffix(): string {
  namespaceCounter += 1;
  return `${process.pid}-${Date.now().toString(36)}-${namespaceCounter}`;
}

/** A namespace no other test uses, under `root`. */
export function uniqueNamespace(root: string): Namespace {
  return new Namespace([root, uniqueSuffix()]);
}

/**
 * Resolves once `count` waits are queued on `key`, as `queuedWaits` counts them; without it, after
 * SUBSCRIBE_GRACE (enough for an adapter that queues a wait in the call itself). Fails the test
 * after PATIENCE_MS.
 */
export async function untilQueued(
  queuedWaits: ((key: string) => Promise<number>) | undefined,
  key: string,
  count: number,
): Promise<void> {
  if (queuedWaits === undefined) {
    await sleep(SUBSCRIBE_GRACE);
    return;
  }
  let queued = 0;
  try {
    await vi.waitFor(
      async () => {
        queued = await queuedWaits(key);
        if (queued < count) {
          throw new Error("not yet");
        }
      },
      { timeout: PATIENCE_MS, interval: 5 },
    );
  } catch {
    expect.fail(`${count} wait(s) were not queued on ${key} within ${PATIENCE_MS} ms (${queued})`);
  }
}

/** Edits the plain data of the one primitive in a serialized document. */
export function tamperSerialized(
  text: string,
  edit: (data: Record<string, unknown>) => void,
): string {
  const document = JSON.parse(text) as { body: { json: Record<string, unknown> } };
  edit(document.body.json);
  return JSON.stringify(document);
}
