/**
 * Every TypeScript block of README.md and docs/ against the package a user installs: the run's
 * packed hasp (tests/harness/packed-hasp.ts) in an app of its own, the drivers linked from this
 * repository's node_modules, and each block, alone, is
 * - type-checked as a strict `.ts` file of that app (`strict`, `noUncheckedIndexedAccess`,
 *   `exactOptionalPropertyTypes`, `module: nodenext`), all blocks in one program;
 * - run (a `ts` block) as the `.mjs` its types stripped give, with plain `node`.
 * tests/docs/docs-examples.test.ts does the same against the source, without a build.
 */
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { dirname, join } from "node:path";
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
import { childEnv, consumerProject } from "../harness/packed-hasp.js";
import { BACKENDS } from "../harness/services.js";

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

const blocks = docPageNames(root)
  .flatMap((name) => readDocPage(root, name).blocks)
  .filter(({ mode }) => mode === "run" || mode === "no-run");

let app = "";
let modules = new Map<(typeof blocks)[number], GeneratedModule>();
let diagnostics = new Map<GeneratedModule, string[]>();

beforeAll(async () => {
  app = await consumerProject("hasp-docs-app-");
  writeFileSync(join(app, "tsconfig.json"), JSON.stringify(APP_TSCONFIG, null, 2));
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
  if (app !== "") await rm(app, { recursive: true, force: true });
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
