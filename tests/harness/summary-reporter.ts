import type { Reporter, TestCase, TestModule } from "vitest/node";
import { backendsNotRun, type NotRunReason } from "./backends-not-run.js";

/**
 * Prints one plain closing line, `tests: N passed, N failed, N skipped`, that any CI reading
 * logs understands (vitest's own summary is coloured and multi-part). When a backend's tests did
 * not run (no server, or left out by HASP_BACKENDS), a line per reason names each backend and how
 * many of its tests did not run, so that a missing server cannot hide in a green run; the rest
 * of the skips are tests that do not apply (an adapter without an optional capability, a
 * `ts ignore` docs block) or that a `-t` filter left out.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>) {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    /** reason → backend → tests not run. */
    const notRun = new Map<NotRunReason, Map<string, number>>();
    let notApplicable = 0;
    for (const module of testModules) {
      for (const testCase of module.children.allTests()) {
        const result = testCase.result();
        if (result.state === "passed") counts.passed += 1;
        else if (result.state === "failed") counts.failed += 1;
        else {
          counts.skipped += 1;
          const missing = missingBackends(
            testCase,
            result.state === "skipped" ? result.note : undefined,
          );
          for (const { backend, reason } of missing) {
            const perBackend = notRun.get(reason) ?? new Map<string, number>();
            perBackend.set(backend, (perBackend.get(backend) ?? 0) + 1);
            notRun.set(reason, perBackend);
          }
          if (missing.length === 0) notApplicable += 1;
        }
      }
      if (module.state() === "failed" && module.children.size === 0) {
        counts.failed += 1; // a file that failed to load
      }
    }
    counts.failed += unhandledErrors.length;
    const lines = [
      `tests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`,
    ];
    const reasons: NotRunReason[] = ["no server", "left out by HASP_BACKENDS"];
    for (const reason of reasons) {
      const perBackend = notRun.get(reason);
      if (perBackend === undefined) continue;
      const backends = [...perBackend].map(
        ([backend, count]) => `${backend} (${count} test${count === 1 ? "" : "s"})`,
      );
      lines.push(`  not run, ${reason}: ${backends.join(", ")}`);
    }
    if (notRun.size > 0) {
      lines.push(`  skipped otherwise (not applicable, or not selected): ${notApplicable}`);
    }
    process.stdout.write(`\n${lines.join("\n")}\n`);
  }
}

/** The backends whose absence kept `testCase` from running: from its suites' names, or its skip note. */
function missingBackends(testCase: TestCase, note: string | undefined) {
  for (let suite = testCase.parent; suite.type === "suite"; suite = suite.parent) {
    const missing = backendsNotRun(suite.name);
    if (missing.length > 0) return missing;
  }
  return note === undefined ? [] : backendsNotRun(note);
}
