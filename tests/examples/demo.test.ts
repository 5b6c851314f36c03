import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, test } from "vitest";

const run = promisify(execFile);

test("npm run demo: the workers never overlap and the final check passes", async () => {
  const demo = fileURLToPath(new URL("../../examples/demo.ts", import.meta.url));
  const { stdout } = await run(process.execPath, ["--import", "tsx", demo], { timeout: 30_000 });
  expect(stdout).toMatch(/ACQUIRED {5}report by ada \(fencing token \d+\)/);
  expect(stdout).toMatch(/UNAVAILABLE {2}report for dee/);
  expect(stdout).toMatch(
    /check: 10 critical sections, counter 10 \(lost updates: 0\), overlaps: 0, fencing tokens strictly increasing: yes → OK/,
  );
});
