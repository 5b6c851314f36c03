/**
 * The package as a user gets it: built, packed with `npm pack` and installed into a fresh project
 * without the optional drivers (once per run, shared with docs-examples.test.ts: see
 * tests/harness/packed-hasp.ts).
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { closeMachineLock } from "../harness/machine-lock.js";
import { childEnv, consumerProject, packedHasp } from "../harness/packed-hasp.js";

const run = promisify(execFile);
const root = join(import.meta.dirname, "..", "..");
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  name: string;
  license: string;
  repository: { type: string; url: string };
  homepage: string;
  bugs: { url: string };
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

/** Runs `node` in the consumer project; resolves to its output whatever the exit code. */
async function node(args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(process.execPath, args, { cwd, env: childEnv() });
  } catch (error) {
    const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
    return { stdout, stderr };
  }
}

function filesUnder(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(directory, join(entry.parentPath, entry.name)).split(sep).join("/"))
    .sort();
}

describe("package.json", () => {
  test.each([...DRIVERS, ...(paths.some((path) => TEST_SUITES_PATH.test(path)) ? ["vitest"] : [])])(
    "%s is an optional peer dependency",
    (peer) => {
      expect(manifest.peerDependencies?.[peer], `peerDependencies.${peer}`).toBeDefined();
      expect(manifest.peerDependenciesMeta?.[peer]?.optional, `peerDependenciesMeta.${peer}`).toBe(
        true,
      );
    },
  );

  test("repository, homepage and bugs name one repository", () => {
    const base = manifest.homepage.replace(/#readme$/, "");
    expect(base).toMatch(/^https:\/\/github\.com\/[^/]+\/[^/#]+$/);
    expect(manifest.repository).toEqual({ type: "git", url: `git+${base}.git` });
    expect(manifest.bugs.url).toBe(`${base}/issues`);
    // The docs' absolute links to files the package does not ship name the same repository.
    const markdown = ["README.md", ...filesUnder(join(root, "docs")).map((f) => `docs/${f}`)];
    const others = markdown.flatMap((file) =>
      [
        ...readFileSync(join(root, file), "utf8").matchAll(
          /https:\/\/github\.com\/[^/\s)]+\/hasp\b/g,
        ),
      ]
        .filter(([url]) => url !== base)
        .map(([url]) => `${file}: ${url}`),
    );
    expect(others).toEqual([]);
  });
});

describe("the packed package", () => {
  let project = "";
  /** Where the package is installed: `<project>/node_modules/hasp`. */
  let installed: string;
  let packedFiles: readonly string[];

  beforeAll(async () => {
    ({ packedFiles } = await packedHasp());
    project = await consumerProject("hasp-consumer-");
    installed = join(project, "node_modules", manifest.name);
  }, 240_000);

  afterAll(async () => {
    await closeMachineLock();
    if (project !== "") await rm(project, { recursive: true, force: true });
  });

  describe("its files", () => {
    test("are the build, its sources, the docs, README, LICENSE and package.json", () => {
      const topLevel = [...new Set(packedFiles.map((path) => path.split("/")[0]))].sort();
      expect(topLevel).toEqual(["LICENSE", "README.md", "dist", "docs", "package.json", "src"]);
      expect(packedFiles.filter((path) => /\.test\.ts$|^docs\/api\//.test(path))).toEqual([]);
      expect(filesUnder(installed)).toEqual(packedFiles);
    });

    test("LICENSE is the MIT licence package.json names", () => {
      expect(manifest.license).toBe("MIT");
      expect(readFileSync(join(installed, "LICENSE"), "utf8")).toMatch(/^MIT License\n/);
    });

    test("every source map leads to readable TypeScript source", () => {
      const maps = packedFiles.filter((path) => path.endsWith(".map"));
      expect(maps.length).toBeGreaterThan(0);
      const unreadable = maps.flatMap((map) => {
        const {
          sources,
          sourceRoot = "",
          sourcesContent,
        } = JSON.parse(readFileSync(join(installed, map), "utf8")) as {
          sources: string[];
          sourceRoot?: string;
          sourcesContent?: (string | null)[];
        };
        return sources.flatMap((source, index) => {
          if (typeof sourcesContent?.[index] === "string") return [];
          const file = resolve(dirname(join(installed, map)), sourceRoot, source);
          const readable =
            file.startsWith(installed + sep) &&
            file.endsWith(".ts") &&
            existsSync(file) &&
            statSync(file).size > 0;
          return readable ? [] : [`${map}: ${source}`];
        });
      });
      expect(unreadable).toEqual([]);
    });

    test("a stack trace through hasp names the line of hasp's source that threw", async () => {
      const script = `
        import { TimeSpan } from "${manifest.name}/time-span";
        try { TimeSpan.fromSeconds(Number.NaN); } catch (error) { process.stdout.write(error.stack); }
      `;
      const { stdout, stderr } = await node(
        ["--enable-source-maps", "--input-type=module", "--eval", script],
        project,
      );
      const frame = new RegExp(
        `node_modules/${manifest.name}/(src/[^:]+\\.ts):(\\d+):\\d+`.replaceAll("/", "[/\\\\]"),
      ).exec(stdout);
      expect(frame, `no hasp source frame in:\n${stdout}${stderr}`).not.toBeNull();
      const [, file = "", line = ""] = frame ?? [];
      const text = readFileSync(join(installed, file), "utf8").split("\n")[Number(line) - 1];
      expect(text).toMatch(/\bthrow\b|\bnew\b/);
    });

    test("every relative link of the shipped Markdown leads to a shipped file", () => {
      const broken = packedFiles
        .filter((path) => path.endsWith(".md"))
        .flatMap((page) =>
          [...readFileSync(join(installed, page), "utf8").matchAll(/\]\(([^)\s]+)\)/g)]
            .map(([, target = ""]) => target)
            .filter((target) => !/^([a-z]+:|#)/.test(target))
            .filter((target) => {
              const file = resolve(dirname(join(installed, page)), target.replace(/#.*$/, ""));
              return !file.startsWith(installed + sep) || !existsSync(file);
            })
            .map((target) => `${page}: ${target}`),
        );
      expect(broken).toEqual([]);
    });
  });

  describe("installed without the optional drivers", () => {
    test("has the package but none of ioredis, kysely, mongodb", () => {
      expect(existsSync(join(installed, "package.json"))).toBe(true);
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
      const { stdout, stderr } = await node(["--input-type=module", "--eval", script], project);
      expect(stdout, stderr).not.toBe("");
      const results = JSON.parse(stdout) as Record<string, string>;
      expect(results).toEqual(Object.fromEntries(specifiers.map((specifier) => [specifier, "ok"])));
    });
  });

  describe("what each entry point loads", () => {
    // Every entry point builds on these three; valibot (the settings schemas) is loaded only by
    // the entry points that parse settings. hasp/lock is the control: it must load it.
    const loadsValibot = { errors: false, "time-span": false, namespace: false, lock: true };
    // A resolve hook that refuses valibot: the import fails exactly when the entry point loads it.
    const refuseValibot = `export async function resolve(specifier, context, next) {
      if (specifier === "valibot") throw new Error("valibot was loaded");
      return next(specifier, context);
    }`;

    test.each(Object.entries(loadsValibot))("hasp/%s loads valibot: %s", async (path, expected) => {
      const script = `
        import { register } from "node:module";
        register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(refuseValibot)}`)});
        try {
          await import("${manifest.name}/${path}");
          process.stdout.write("false");
        } catch (error) {
          const refused = String(error).includes("valibot was loaded");
          process.stdout.write(refused ? "true" : String(error?.stack ?? error));
        }
      `;
      const { stdout, stderr } = await node(["--input-type=module", "--eval", script], project);
      expect(stdout, stderr).toBe(JSON.stringify(expected));
    });
  });

  describe("from CommonJS", () => {
    test("require() loads hasp/lock and a provider on the memory adapter takes a lock", async () => {
      const script = `
        const { LockProvider } = require("${manifest.name}/lock");
        const { MemoryLockAdapter } = require("${manifest.name}/lock/memory-lock-adapter");
        const provider = new LockProvider({ adapter: new MemoryLockAdapter() });
        const lock = provider.create("invoices");
        lock.acquire().then(async (acquired) => {
          const again = await provider.create("invoices").acquire();
          await lock.release();
          process.stdout.write(JSON.stringify({ acquired, again }));
        });
      `;
      await writeFile(join(project, "require-lock.cjs"), script);
      const { stdout, stderr } = await node(["require-lock.cjs"], project);
      expect(stdout, stderr).toBe(JSON.stringify({ acquired: true, again: false }));
    });

    /**
     * What the README says of TypeScript settings, checked with the repository's compiler on a
     * `.cts` file (CommonJS, so its imports become `require` calls).
     */
    test.each([
      { module: "nodenext", moduleResolution: "nodenext", error: undefined, outcome: "compiles" },
      { module: "preserve", moduleResolution: "bundler", error: undefined, outcome: "compiles" },
      { module: "node16", moduleResolution: "node16", error: "TS1479", outcome: "fails: TS1479" },
      { module: "commonjs", moduleResolution: "node10", error: "TS2307", outcome: "fails: TS2307" },
    ])(
      "a .cts file under module $module, moduleResolution $moduleResolution $outcome",
      async (settings) => {
        const name = `${settings.module}-${settings.moduleResolution}`;
        await writeFile(
          join(project, `${name}.cts`),
          `import { LockProvider } from "${manifest.name}/lock";\n` +
            `import { MemoryLockAdapter } from "${manifest.name}/lock/memory-lock-adapter";\n` +
            "export const provider = new LockProvider({ adapter: new MemoryLockAdapter() });\n",
        );
        await writeFile(
          join(project, `tsconfig.${name}.json`),
          JSON.stringify({
            compilerOptions: {
              module: settings.module,
              moduleResolution: settings.moduleResolution,
              strict: true,
              noEmit: true,
              skipLibCheck: true,
              types: [],
            },
            files: [`${name}.cts`],
          }),
        );
        const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
        const { stdout, stderr } = await node([tsc, "-p", `tsconfig.${name}.json`], project);
        if (settings.error === undefined) {
          expect(stdout + stderr).toBe("");
        } else {
          const codes = [...stdout.matchAll(/error (TS\d+)/g)].map(([, code]) => code);
          expect(codes.length, stdout + stderr).toBeGreaterThan(0);
          expect(new Set(codes)).toEqual(new Set([settings.error]));
        }
      },
    );
  });
}, 180_000);
