// The shared queued wait (src/backends/wait-queue/) on its own, with a queue that is
// not a backend: what its timer does when the backend never answers. The backends' own tests
// cover the rest.
import { describe, expect, test, vi } from "vitest";
import { QueuedWaits } from "../../src/backends/wait-queue/queued-waits.js";
import type { WaitQueue } from "../../src/backends/wait-queue/wait-queue.js";

const never = new Promise<never>(() => {});

const unanswered: WaitQueue = {
  join: () => never,
  leave: () => never,
  check: () => never,
  giveBack: () => never,
};

describe("QueuedWait", () => {
  test("a wait whose listener never comes ends at its time, even when its timer fires before performance.now() says the time has come", async () => {
    // Timers may fire a little early against performance.now() (libuv's loop time is cached):
    // here, once the wait has its deadline, the clock lags 5 ms behind when its timer fires.
    const now = performance.now.bind(performance);
    const waits = new QueuedWaits();
    const started = now();
    const waiting = waits.start(new AbortController().signal, 100, unanswered, never);
    const lagging = vi.spyOn(performance, "now").mockImplementation(() => now() - 5);
    try {
      const ended = await Promise.race([
        waiting.then(() => "ended"),
        new Promise((resolve) => setTimeout(resolve, 2_000, "still waiting")),
      ]);
      expect(ended).toBe("ended");
      expect(now() - started).toBeLessThan(2_000);
      expect(waits.size).toBe(0);
    } finally {
      lagging.mockRestore();
    }
  });
});
