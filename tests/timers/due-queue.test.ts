import { describe, expect, test, vi } from "vitest";
import { type DueEntry, DueQueue } from "../../src/timers/due-queue.js";

function entry(name: string, fell: string[]): DueEntry {
  return {
    dueAt: 0,
    dueQueue: undefined,
    prevDue: undefined,
    nextDue: undefined,
    due: () => fell.push(name),
  };
}

describe("DueQueue", () => {
  test("entries fall due in the order they joined, each once; one that left never does", async () => {
    const fell: string[] = [];
    const [a, b, c] = ["a", "b", "c"].map((name) => entry(name, fell));
    DueQueue.join(a as DueEntry, 30);
    DueQueue.join(b as DueEntry, 30);
    DueQueue.join(c as DueEntry, 30);
    DueQueue.leave(a as DueEntry);
    await vi.waitFor(() => expect(fell).toEqual(["b", "c"]));
    expect(performance.now()).toBeGreaterThanOrEqual((c as DueEntry).dueAt);
    DueQueue.leave(b as DueEntry);
    expect(fell).toEqual(["b", "c"]);
  });

  test("delays used once leave nothing behind: a few idle queues at most, then none", async () => {
    const fell: string[] = [];
    const before = DueQueue.size;
    for (let i = 0; i < 100; i++) {
      const once = entry(`e${i}`, fell);
      DueQueue.join(once, 40 + i / 100);
      DueQueue.leave(once);
    }
    expect(DueQueue.size - before).toBeLessThanOrEqual(8);
    await vi.waitFor(() => expect(DueQueue.size).toBe(before), { timeout: 2_000 });
    expect(fell).toEqual([]);
  });
});
