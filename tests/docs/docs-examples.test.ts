/**
 * Every TypeScript block in README.md and docs/*.md is type-checked, and run unless flagged, so
 * the docs cannot rot. The blocks of a page form one module (see docs-examples.ts), written to
 * tests/docs/.generated/ (gitignored, rewritten each run). The flags are explained in
 * DEVELOPERS.md, "Docs examples".
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, sep } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { notRunReason, providedService, serviceUrl } from "../harness/backends.js";
import { notRunNote } from "../harness/backends-not-run.js";
import { BACKENDS, type BackendName, DEFAULT_URLS } from "../harness/services.js";
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
/**
 * A page that writes a backend's local default URL (`redis://127.0.0.1:6379`,
 * `postgres://postgres@127.0.0.1:5432/test`, ...) gets the harness's server instead when that is
 * elsewhere, and its run is skipped when that backend was not found.
 */
const serviceUrls = new Map(BACKENDS.map((name) => [name, serviceUrl(name)] as const));

type PagePlan = {
  readonly page: DocPage;
  /** Every block but the ignored ones: what is type-checked. */
  readonly check: GeneratedModule | undefined;
  /** The `ts` blocks only: what is run (and type-checked too when it differs from `check`). */
  readonly run: GeneratedModule | undefined;
  /** The backends whose default URL the `ts` blocks write. */
  readonly needs: readonly BackendName[];
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

const plans: PagePlan[] = pageNames.map((name) => {
  const page = readDocPage(root, name);
  const checked = page.blocks.filter(({ mode }) => mode !== "ignore");
  const runnable = page.blocks.filter(({ mode }) => mode === "run");
  const needs = BACKENDS.filter((backend) =>
    runnable.some(({ code }) => code.includes(DEFAULT_URLS[backend])),
  );
  const fileName = (suffix: string) =>
    join(generatedDir, `${name.replace(/\.md$/, "").replaceAll("/", "-")}${suffix}.ts`);
  return {
    page,
    needs,
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
            replacements: needs.flatMap((backend) => {
              const url = serviceUrls.get(backend);
              return url === undefined || url === DEFAULT_URLS[backend]
                ? []
                : [[DEFAULT_URLS[backend], url] as const];
            }),
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
  const { page, check, run, needs } = plan;
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
          const missing = needs.filter((backend) => serviceUrls.get(backend) === undefined);
          if (missing.length > 0) {
            const summary = missing.map((backend) => providedService(backend).summary).join("; ");
            console.warn(
              `[docs examples] SKIPPING the run of ${page.page}: it needs ${missing.join(", ")} (${summary}); it is still type-checked`,
            );
            context.skip(
              notRunNote(
                missing.map((backend) => ({
                  backend,
                  reason: notRunReason(providedService(backend)),
                })),
                summary,
              ),
            );
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
