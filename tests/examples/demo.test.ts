// `npm run demo` (examples/demo.ts) run as a user runs it: a child process, on the embedded SQLite
// default and on each server the harness found.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { checkSections } from "../../examples/demo-check.js";
import { describeWithBackend } from "../harness/backends.js";

const DEMO = fileURLToPath(new URL("../../examples/demo.ts", import.meta.url));
/** A run starts five Node processes: generous, for a loaded machine with two cores. */
const RUN_TIMEOUT_MS = 60_000;

type DemoResult = { code: number | null; stdout: string; stderr: string };

function runDemo(args: readonly string[]): Promise<DemoResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", DEMO, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The run passed its own check, and the timeline shows the fault and the work going on. */
function expectVerifiedRunWithFault({ code, stdout, stderr }: DemoResult): void {
  expect(code, `stdout:\n${stdout}\nstderr:\n${stderr}`).toBe(0);
  // Not a terminal: plain lines, no colours or cursor movement.
  expect(stdout.includes("\u001b[")).toBe(false);

  const verdict = stdout.match(
    /^verification: (\d+) critical sections run in [\d.]+ s, overlaps found: 0, tokens strictly increasing: yes → OK$/m,
  );
  expect(verdict, stdout).not.toBeNull();
  const released = stdout.match(/^ +[\d.]+ {2}w\d+ +released /gm) ?? [];
  expect(Number(verdict?.[1])).toBe(released.length);

  const kill = stdout.match(
    /^ +[\d.]+ {2}(w\d+) +KILLED +(key-\w) +SIGKILL while holding token (\d+)/m,
  );
  expect(kill, stdout).not.toBeNull();
  const [, worker, key, token] = kill as RegExpMatchArray;
  // Someone waited for the dead worker's key, got it once its TTL had passed, and went on.
  expect(stdout).toMatch(new RegExp(`waiting +${key} +held by ${worker} \\(killed\\)`));
  expect(stdout).toMatch(
    new RegExp(`expired +${key} +the hold of the killed ${worker} ran out its TTL`),
  );
  expect(stdout).toContain(`its section never finished and is not counted`);
  expect(stdout).toMatch(
    new RegExp(`${key} was taken over after its TTL: w\\d+ got it .* and work went on`),
  );
  // The killed section is not among those counted.
  expect(stdout).not.toMatch(new RegExp(`${worker} +released +${key} +token ${token}\\b`));
  // A completed section per worker and round, except the killed worker's rest.
  const sectionsPerWorker = 6;
  expect(released.length).toBeLessThan(4 * sectionsPerWorker);

  expect(stdout).toContain(
    "tokens: fencing tokens, strictly increasing per key, seeded from the store's clock in µs (hence 16 digits)",
  );
  expect(stdout).toMatch(/acquired +key-\w +token \d{16}\b/);
  expect(timelineOutOfOrder(stdout)).toEqual([]);
}

/**
 * Timeline lines that contradict what happened: a "waiting ... held by wX" printed before wX's
 * "acquired" of the hold it saw (wX's last line on the key is not "acquired", and the hold was
 * fresh when seen, so it is not one that ended just before), or after the waiter's own
 * "acquired" of the key.
 */
function timelineOutOfOrder(stdout: string): string[] {
  const last = new Map<string, string>(); // "w1 key-a" → "acquired" | "released"
  const wrong: string[] = [];
  for (const line of stdout.split("\n")) {
    const event = /^ +[\d.]+ {2}(w\d+) +(\w+) +(key-\w) +(.*)$/.exec(line);
    if (event === null) continue;
    const [, worker, name, key, details] = event as unknown as [
      string,
      string,
      string,
      string,
      string,
    ];
    if (name === "acquired" || name === "released") {
      last.set(`${worker} ${key}`, name);
    }
    if (name !== "waiting") continue;
    if (last.get(`${worker} ${key}`) === "acquired") {
      wrong.push(`after its own acquire: ${line}`);
    }
    const seen = /^held by (w\d+)(?: \(killed\))?, TTL left ([\d.]+) s/.exec(details);
    const ttlS = 1.5;
    if (
      seen !== null &&
      Number(seen[2]) >= ttlS - 0.05 &&
      last.get(`${seen[1]} ${key}`) !== "acquired"
    ) {
      wrong.push(`before the hold it saw: ${line}`);
    }
  }
  return wrong;
}

describe("npm run demo", () => {
  test(
    "8 workers on 2 keys without the fault: the timeline shows each wait after the hold it saw, and before the waiter's own",
    async () => {
      const { code, stdout, stderr } = await runDemo([
        "--workers",
        "8",
        "--sections",
        "20",
        "--no-kill",
      ]);
      expect(code, `stdout:\n${stdout}\nstderr:\n${stderr}`).toBe(0);
      expect(stdout).toMatch(/waiting +key-\w +held by w\d+/);
      expect(timelineOutOfOrder(stdout)).toEqual([]);
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "with no server: SQLite, one worker killed while holding, 0 overlaps, increasing tokens",
    async () => {
      expectVerifiedRunWithFault(await runDemo([]));
    },
    RUN_TIMEOUT_MS,
  );

  test("--help explains the options and exits 0", async () => {
    const { code, stdout } = await runDemo(["--help"]);
    expect(code).toBe(0);
    for (const option of ["--store", "--url", "--workers", "--keys", "--sections", "--duration"]) {
      expect(stdout).toContain(option);
    }
    expect(stdout).toContain("--ttl");
  });

  test.each([
    [["--bogus"], "demo: Unknown option '--bogus'"],
    [["--workers", "0"], 'demo: --workers must be a whole number from 1 to 32, got "0"'],
    [["--workers", "-3"], 'demo: --workers must be a whole number from 1 to 32, got "-3"'],
    [["--workers=-3"], 'demo: --workers must be a whole number from 1 to 32, got "-3"'],
    [["--ttl", "-0.5"], 'demo: --ttl must be a number of seconds from 0.5 to 60, got "-0.5"'],
    [["--ttl", "soon"], 'demo: --ttl must be a number of seconds from 0.5 to 60, got "soon"'],
    [
      ["--store", "oracle"],
      'demo: --store must be one of sqlite, redis, postgres, mysql, got "oracle"',
    ],
    [["--url", "http://x"], 'demo: --url must be a redis, postgres or mysql URL, got "http://x/"'],
    [["--sections", "3", "--duration", "3"], "demo: give --sections or --duration, not both"],
  ])("%j is refused with a clear error and the usage, exit 2", async (args, message) => {
    const { code, stdout, stderr } = await runDemo(args);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr.split("\n")[0]).toBe(message);
    expect(stderr).toContain("Usage: npm run demo -- [options]");
  });

  test("a server that does not answer: one line, exit 1", async () => {
    const { code, stdout, stderr } = await runDemo([
      "--store",
      "redis",
      "--url",
      "redis://127.0.0.1:1",
    ]);
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr).toMatch(
      /^demo: cannot reach redis at redis:\/\/127\.0\.0\.1:1: .*ECONNREFUSED.*\n$/,
    );
  });
});

describe("the demo's check of the section log", () => {
  const section = (worker: string, token: number, start: number, end: number) => ({
    key: "key-a",
    worker,
    token,
    start,
    end,
  });

  test("finds overlapping holds of a key", () => {
    const { overlaps, tokenErrors } = checkSections([
      section("w1", 10, 0, 100),
      section("w2", 11, 90, 150),
      { ...section("w3", 5, 95, 120), key: "key-b" },
    ]);
    expect(overlaps).toEqual([
      "key-a: w1 (token 10, 0.000-0.100 s) and w2 (token 11, 0.090-0.150 s) overlap",
    ]);
    expect(tokenErrors).toEqual([]);
  });

  test("finds a token that does not grow from one holder to the next", () => {
    const { overlaps, tokenErrors } = checkSections([
      section("w2", 11, 200, 300),
      section("w1", 11, 0, 100),
    ]);
    expect(overlaps).toEqual([]);
    expect(tokenErrors).toEqual([
      "key-a: w2 (token 11, 0.200-0.300 s) does not carry a greater token than w1 (token 11, 0.000-0.100 s)",
    ]);
  });
});

for (const store of ["redis", "postgres", "mysql"] as const) {
  describeWithBackend(store, (url) => {
    test(
      `--store ${store}: the same run against the server`,
      async () => {
        expectVerifiedRunWithFault(await runDemo(["--store", store, "--url", url]));
      },
      RUN_TIMEOUT_MS,
    );
  });
}
