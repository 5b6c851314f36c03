/**
 * Every TypeScript block of README.md and docs/ against the package a user installs: hasp is
 * built and packed once, the tarball installed once into a fresh app (the drivers linked from this
 * repository's node_modules), and each block, alone, is
 * - type-checked as a strict `.ts` file of that app (`strict`, `noUncheckedIndexedAccess`,
 *   `exactOptionalPropertyTypes`, `module: nodenext`), all blocks in one program;
 * - run (a `ts` block) as the `.mjs` its types stripped give, with plain `node`.
 * tests/docs/docs-examples.test.ts does the same against the source, without a build.
 */
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { closeBackendExampleLock, withBackendExampleLock } from "../docs/backend-examples-lock.js";
import {
  backendsOf,
  blockFileStem,
  buildModule,
  docPageNames,
  type GeneratedModule,
  readDocPage,
  runModule,
  stripTypes,
  typeCheck,
  urlReplacements,
} from "../docs/docs-examples.js";
import { serviceUrl } from "../harness/backends.js";
import { BACKENDS } from "../harness/services.js";

const execute = promisify(execFile);
const root = join(import.meta.dirname, "..", "..");
const RUN_TIMEOUT_MS = 20_000;
const serviceUrls = new Map(BACKENDS.map((name) => [name, serviceUrl(name)] as const));

/** What the docs' blocks import besides hasp, linked from this repository's node_modules. */
const LINKED = [
  "ioredis",
  "kysely",
  "pg",
  "mysql2",
  "better-sqlite3",
  "mongodb",
  "vitest",
  "@types/node",
  "@types/pg",
  "@types/better-sqlite3",
];

/** A strict user's tsconfig.json. */
const APP_TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    lib: ["ES2023"],
    module: "NodeNext",
    moduleResolution: "NodeNext",
    types: ["node"],
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    isolatedModules: true,
    skipLibCheck: true,
    noEmit: true,
  },
  include: ["examples"],
};

/**
 * npm passes its own config to scripts as npm_* variables (prefix, cache, ...); a nested npm
 * inheriting them could act on this repository instead of the temp app.
 */
function childEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith("npm_")),
  );
}

async function command(file: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await execute(file, args, {
      cwd,
      env: childEnv(),
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(
      `${file} ${args.join(" ")} failed in ${cwd}:\n${stdout ?? ""}\n${stderr ?? ""}`,
      {
        cause: error,
      },
    );
  }
}

const blocks = docPageNames(root)
  .flatMap((name) => readDocPage(root, name).blocks)
  .filter(({ mode }) => mode === "run" || mode === "no-run");

const temporary: string[] = [];
let app = "";
let modules = new Map<(typeof blocks)[number], GeneratedModule>();
let diagnostics = new Map<GeneratedModule, string[]>();

beforeAll(async () => {
  // Built into a stage of its own, so that no other test's `npm run build` races with this one.
  const stage = await mkdtemp(join(tmpdir(), "hasp-stage-"));
  const packDir = await mkdtemp(join(tmpdir(), "hasp-pack-"));
  app = await mkdtemp(join(tmpdir(), "hasp-docs-app-"));
  temporary.push(stage, packDir, app);
  await command(
    process.execPath,
    [
      join(root, "node_modules", "typescript", "bin", "tsc"),
      "-p",
      join(root, "tsconfig.build.json"),
      "--outDir",
      join(stage, "dist"),
    ],
    root,
  );
  for (const file of ["package.json", "README.md", "LICENSE"]) {
    if (existsSync(join(root, file))) copyFileSync(join(root, file), join(stage, file));
  }
  const packed = JSON.parse(
    await command("npm", ["pack", "--json", "--pack-destination", packDir], stage),
  ) as { filename: string }[];
  const tarball = join(packDir, packed[0]?.filename ?? "");

  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({ name: "hasp-docs-app", private: true, type: "module" }),
  );
  writeFileSync(join(app, "tsconfig.json"), JSON.stringify(APP_TSCONFIG, null, 2));
  await command(
    "npm",
    ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", tarball],
    app,
  );
  for (const name of LINKED) {
    const link = join(app, "node_modules", name);
    mkdirSync(dirname(link), { recursive: true });
    if (!existsSync(link)) symlinkSync(join(root, "node_modules", name), link, "dir");
  }

  const examples = join(app, "examples");
  mkdirSync(examples);
  modules = new Map(
    blocks.map((block) => [
      block,
      buildModule(block, {
        fileName: join(examples, `${blockFileStem(block)}.ts`),
        replacements: urlReplacements(backendsOf(block), serviceUrls),
      }),
    ]),
  );
  const config = ts.parseJsonConfigFileContent(
    APP_TSCONFIG,
    ts.sys,
    app,
    undefined,
    join(app, "tsconfig.json"),
  );
  for (const module of modules.values()) {
    writeFileSync(module.fileName, module.text);
    if (module.block.mode === "run") {
      writeFileSync(module.fileName.replace(/\.ts$/, ".mjs"), stripTypes(module, config.options));
    }
  }
  diagnostics = typeCheck([...modules.values()], config.options);
}, 240_000);

afterAll(async () => {
  await closeBackendExampleLock();
  await Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true })));
});

test("the docs have blocks to check against the package", () => {
  expect(blocks.length).toBeGreaterThan(0);
});

for (const page of [...new Set(blocks.map(({ page }) => page))]) {
  describe(page, () => {
    for (const block of blocks.filter((candidate) => candidate.page === page)) {
      const title = `${block.page}:${block.fenceLine} (\`\`\`${block.infoString})`;

      test(`${title} type-checks alone in a strict app (nodenext)`, () => {
        const module = modules.get(block);
        if (module === undefined) throw new Error(`${title} was not generated`);
        const failures = diagnostics.get(module) ?? [];
        if (failures.length > 0) {
          throw new Error(
            `${title}: ${failures.length} problem(s) with the installed package, under ` +
              `${join(app, "tsconfig.json")} (${module.fileName}):\n\n${failures.join("\n\n")}`,
          );
        }
      });

      if (block.mode !== "run") continue;
      test(
        `${title} runs alone as .mjs and exits`,
        async (context) => {
          const module = modules.get(block);
          if (module === undefined) throw new Error(`${title} was not generated`);
          const needs = backendsOf(block);
          const missing = needs.filter((backend) => serviceUrls.get(backend) === undefined);
          if (missing.length > 0) {
            const summary = missing
              .map(
                (backend) =>
                  inject("haspServices")?.[backend].summary ?? `${backend}: not resolved`,
              )
              .join("; ");
            console.warn(
              `[docs examples, package] SKIPPING the run of ${title}: it needs ${missing.join(", ")} (${summary}); it is still type-checked`,
            );
            context.skip(`needs ${missing.join(", ")} (${summary})`);
          }
          const run = () =>
            runModule(module, {
              cwd: app,
              args: ["--enable-source-maps", module.fileName.replace(/\.ts$/, ".mjs")],
              timeoutMs: RUN_TIMEOUT_MS,
              env: childEnv(),
            });
          const outcome = await (needs.length > 0 ? withBackendExampleLock(run) : run());
          if (!outcome.ok) throw new Error(outcome.message);
        },
        2 * RUN_TIMEOUT_MS + 10_000, // it may wait for the source run of an example
      );
    }
  });
}
