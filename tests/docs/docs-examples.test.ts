/**
 * Every TypeScript block in README.md and docs/*.md is type-checked, and run unless flagged, so
 * the docs cannot rot. The blocks of a page form one module (see docs-examples.ts), written to
 * tests/docs/.generated/ (gitignored, rewritten each run). The flags are explained in
 * DEVELOPERS.md, "Docs examples".
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, sep } from "node:path";
import { beforeAll, describe, expect, inject, test } from "vitest";
import { serviceUrl } from "../harness/backends.js";
import {
  buildModule,
  createPublicPathResolver,
  type DocPage,
  type GeneratedModule,
  readDocPage,
  runModule,
  typeCheck,
} from "./docs-examples.js";

const root = join(import.meta.dirname, "..", "..");
const generatedDir = join(import.meta.dirname, ".generated");
const RUN_TIMEOUT_MS = 20_000;
/** Where the docs say Redis is; replaced by the harness's Redis when that is elsewhere. */
const DOCS_REDIS_URL = "redis://127.0.0.1:6379";

type PagePlan = {
  readonly page: DocPage;
  /** Every block but the ignored ones: what is type-checked. */
  readonly check: GeneratedModule | undefined;
  /** The `ts` blocks only: what is run (and type-checked too when it differs from `check`). */
  readonly run: GeneratedModule | undefined;
  readonly needsRedis: boolean;
};

const pageNames = [
  "README.md",
  ...readdirSync(join(root, "docs"), { recursive: true, encoding: "utf8" })
    .map((name) => name.split(sep).join("/"))
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => `docs/${name}`),
];
const resolvePublicPath = createPublicPathResolver(root);
const redisUrl = serviceUrl("redis");

const plans: PagePlan[] = pageNames.map((name) => {
  const page = readDocPage(root, name);
  const checked = page.blocks.filter(({ mode }) => mode !== "ignore");
  const runnable = page.blocks.filter(({ mode }) => mode === "run");
  const needsRedis = runnable.some(({ code }) => code.includes(DOCS_REDIS_URL));
  const fileName = (suffix: string) =>
    join(generatedDir, `${name.replace(/\.md$/, "").replaceAll("/", "-")}${suffix}.ts`);
  return {
    page,
    needsRedis,
    check:
      checked.length === 0
        ? undefined
        : buildModule(name, checked, { fileName: fileName(""), resolvePublicPath }),
    run:
      runnable.length === 0
        ? undefined
        : buildModule(name, runnable, {
            fileName: fileName(".run"),
            resolvePublicPath,
            replacements:
              needsRedis && redisUrl !== undefined && redisUrl !== DOCS_REDIS_URL
                ? [[DOCS_REDIS_URL, redisUrl]]
                : [],
          }),
  };
});

/** Each module's formatted diagnostics, from one program over every generated module. */
let diagnostics = new Map<GeneratedModule, string[]>();

beforeAll(() => {
  rmSync(generatedDir, { recursive: true, force: true });
  mkdirSync(generatedDir, { recursive: true });
  const modules: GeneratedModule[] = [];
  for (const plan of plans) {
    for (const module of [plan.check, plan.run]) {
      if (module === undefined) continue;
      writeFileSync(module.fileName, module.text);
      modules.push(module);
    }
  }
  diagnostics = typeCheck(root, modules);

  for (const { page } of plans) {
    for (const block of page.blocks.filter(({ mode }) => mode === "ignore")) {
      console.warn(
        `[docs examples] NOT CHECKED ${page.page}:${block.fenceLine} (\`ts ignore\`): ${block.note ?? "no reason given"}`,
      );
    }
  }
}, 120_000);

test("the docs have TypeScript blocks to check (the fence parser finds them)", () => {
  const count = plans.reduce((total, { page }) => total + page.blocks.length, 0);
  expect(count).toBeGreaterThan(0);
});

for (const plan of plans) {
  const { page, check, run, needsRedis } = plan;
  if (page.blocks.length === 0 && page.problems.length === 0) continue;

  describe(page.page, () => {
    test("type-checks", () => {
      const checkMessages = check === undefined ? [] : (diagnostics.get(check) ?? []);
      // The runnable part leaves out `ts no-run` blocks: a `ts` block that uses one of their
      // names fails only there.
      const runMessages =
        run === undefined || check === undefined || run.text === check.text
          ? []
          : (diagnostics.get(run) ?? [])
              .filter((message) => !checkMessages.includes(message))
              .map(
                (message) =>
                  `${message}\n    (only when run: a \`ts\` block cannot use names from a \`ts no-run\` block)`,
              );
      const failures = [
        ...page.problems,
        ...(check?.problems ?? []),
        ...checkMessages,
        ...runMessages,
      ];
      if (failures.length > 0) {
        throw new Error(
          `${page.page}: ${failures.length} problem(s) in its TypeScript blocks ` +
            `(generated module: ${check?.fileName ?? run?.fileName ?? "none"}):\n\n${failures.join("\n\n")}`,
        );
      }
    });

    if (run !== undefined) {
      test(
        "runs",
        async (context) => {
          if (needsRedis && redisUrl === undefined) {
            const summary = inject("haspServices")?.redis.summary ?? "redis: not resolved";
            console.warn(
              `[docs examples] SKIPPING the run of ${page.page}: it needs Redis (${summary}); it is still type-checked`,
            );
            context.skip(`needs Redis (${summary})`);
          }
          const outcome = await runModule(root, run, RUN_TIMEOUT_MS);
          if (!outcome.ok) throw new Error(outcome.message);
        },
        RUN_TIMEOUT_MS + 10_000,
      );
    }

    for (const block of page.blocks.filter(({ mode }) => mode === "ignore")) {
      test.skip(`${page.page}:${block.fenceLine} is \`ts ignore\`: ${block.note ?? ""}`, () => {});
    }
  });
}
