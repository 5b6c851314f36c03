/**
 * The drivers are optional peers: the packed package installs without ioredis, kysely or mongodb,
 * and every import path that does not name a driver loads without them (the conformance suites,
 * which need vitest, excepted).
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

const run = promisify(execFile);
const root = join(import.meta.dirname, "..", "..");
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  name: string;
  exports: Record<string, unknown>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
};

const DRIVERS = ["ioredis", "kysely", "mongodb"] as const;
/** Import paths naming a driver belong to its adapter and are tested with the driver installed. */
const DRIVER_PATH = /redis|kysely|mongodb/;
/** The exported conformance suites import vitest, which whoever runs them has installed. */
const TEST_SUITES_PATH = /(^|\/)test-suites$/;

const paths = Object.keys(manifest.exports).filter((path) => path !== "./package.json");
const specifiers = paths
  .filter((path) => !DRIVER_PATH.test(path) && !TEST_SUITES_PATH.test(path))
  .map((path) => `${manifest.name}${path.slice(1)}`);

describe("package.json peers", () => {
  test.each([...DRIVERS, ...(paths.some((path) => TEST_SUITES_PATH.test(path)) ? ["vitest"] : [])])(
    "%s is an optional peer dependency",
    (peer) => {
      expect(manifest.peerDependencies?.[peer], `peerDependencies.${peer}`).toBeDefined();
      expect(manifest.peerDependenciesMeta?.[peer]?.optional, `peerDependenciesMeta.${peer}`).toBe(
        true,
      );
    },
  );
});

/**
 * npm passes its own config to scripts as npm_* variables (prefix, cache, ...); a nested npm
 * inheriting them could act on this repository instead of the temp project.
 */
function childEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith("npm_")),
  );
}

async function npm(args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run("npm", args, {
      cwd,
      env: childEnv(),
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`npm ${args.join(" ")} failed in ${cwd}:\n${stdout ?? ""}\n${stderr ?? ""}`, {
      cause: error,
    });
  }
}

describe("a consumer without the optional drivers", () => {
  const temporary: string[] = [];
  let project: string;

  beforeAll(async () => {
    await npm(["run", "build"], root);

    const packDir = await mkdtemp(join(tmpdir(), "hasp-pack-"));
    temporary.push(packDir);
    const packed = JSON.parse(
      await npm(["pack", "--json", "--pack-destination", packDir], root),
    ) as { filename: string }[];
    const tarball = join(packDir, packed[0]?.filename ?? "");

    project = await mkdtemp(join(tmpdir(), "hasp-consumer-"));
    temporary.push(project);
    await writeFile(
      join(project, "package.json"),
      JSON.stringify({ name: "hasp-consumer", private: true, type: "module" }),
    );
    await npm(["install", "--prefer-offline", "--no-audit", "--no-fund", tarball], project);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  test("installs the package but none of ioredis, kysely, mongodb", () => {
    expect(existsSync(join(project, "node_modules", manifest.name, "package.json"))).toBe(true);
    const present = DRIVERS.filter((driver) => existsSync(join(project, "node_modules", driver)));
    expect(present).toEqual([]);
  });

  test("imports every export whose path does not name a driver", async () => {
    expect(specifiers.length).toBeGreaterThan(0);
    // Each import is attempted, so one failure does not hide the others.
    const script = `
      const results = {};
      for (const specifier of ${JSON.stringify(specifiers)}) {
        try {
          const module = await import(specifier);
          results[specifier] = Object.keys(module).length > 0 ? "ok" : "exports nothing";
        } catch (error) {
          results[specifier] = String(error?.stack ?? error);
        }
      }
      process.stdout.write(JSON.stringify(results));
    `;
    const { stdout } = await run(process.execPath, ["--input-type=module", "--eval", script], {
      cwd: project,
      env: childEnv(),
    });
    const results = JSON.parse(stdout) as Record<string, string>;
    expect(results).toEqual(Object.fromEntries(specifiers.map((specifier) => [specifier, "ok"])));
  });
}, 120_000);
