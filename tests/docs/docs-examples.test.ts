/**
 * Every TypeScript block in README.md and docs/*.md is type-checked, and run unless flagged, each
 * block alone, as a reader who copies it gets it, so the docs cannot rot. The modules are written
 * to tests/docs/.generated/ (gitignored, rewritten each run). The flags are explained in
 * CONTRIBUTING.md, "Docs examples"; tests/package/docs-examples.test.ts runs the same blocks
 * against the packed package.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { notRunReason, providedService, serviceUrl } from "../harness/backends.js";
import { notRunNote } from "../harness/backends-not-run.js";
import { BACKENDS, type BackendName } from "../harness/services.js";
import { closeBackendExampleLock, withBackendExampleLock } from "./backend-examples-lock.js";
import {
  backendsOf,
  blockFileStem,
  buildModule,
  type CodeBlock,
  createPublicPathResolver,
  type DocPage,
  docPageNames,
  type GeneratedModule,
  readDocPage,
  repositoryCompilerOptions,
  runModule,
  typeCheck,
  urlReplacements,
} from "./docs-examples.js";

const root = join(import.meta.dirname, "..", "..");
const generatedDir = join(import.meta.dirname, ".generated");
const RUN_TIMEOUT_MS = 20_000;
const serviceUrls = new Map(BACKENDS.map((name) => [name, serviceUrl(name)] as const));
const resolvePublicPath = createPublicPathResolver(root);

type BlockPlan = {
  readonly block: CodeBlock;
  /** The block alone as a module; undefined for a block that is not checked. */
  readonly module: GeneratedModule | undefined;
  /** The backends whose default URL it writes. */
  readonly needs: readonly BackendName[];
};

const pages: Array<{ page: DocPage; blocks: BlockPlan[] }> = docPageNames(root).map((name) => {
  const page = readDocPage(root, name);
  const blocks = page.blocks.map((block) => {
    const needs = backendsOf(block);
    const module =
      block.mode === "run" || block.mode === "no-run"
        ? buildModule(block, {
            fileName: join(generatedDir, `${blockFileStem(block)}.ts`),
            resolvePublicPath,
            replacements: urlReplacements(needs, serviceUrls),
          })
        : undefined;
    return { block, module, needs };
  });
  return { page, blocks };
});

/** Each module's formatted diagnostics, from one program over every generated module. */
let diagnostics = new Map<GeneratedModule, string[]>();

beforeAll(() => {
  rmSync(generatedDir, { recursive: true, force: true });
  mkdirSync(generatedDir, { recursive: true });
  const modules = pages.flatMap(({ blocks }) => blocks.flatMap(({ module }) => module ?? []));
  for (const module of modules) writeFileSync(module.fileName, module.text);
  diagnostics = typeCheck(modules, repositoryCompilerOptions(root));

  for (const { blocks } of pages) {
    for (const { block } of blocks.filter(({ module }) => module === undefined)) {
      console.warn(
        `[docs examples] NOT CHECKED ${block.page}:${block.fenceLine} (\`${block.infoString}\`): ${block.note ?? "no reason given"}`,
      );
    }
  }
}, 120_000);

afterAll(closeBackendExampleLock);

test("the docs have TypeScript blocks to check (the fence parser finds them)", () => {
  const count = pages.reduce((total, { blocks }) => total + blocks.length, 0);
  expect(count).toBeGreaterThan(0);
});

for (const { page, blocks } of pages) {
  if (blocks.length === 0 && page.problems.length === 0) continue;

  describe(page.page, () => {
    if (page.problems.length > 0) {
      test("has well-formed TypeScript fences", () => {
        throw new Error(page.problems.join("\n"));
      });
    }

    for (const { block, module, needs } of blocks) {
      const title = `${block.page}:${block.fenceLine} (\`\`\`${block.infoString})`;
      if (module === undefined) {
        test.skip(`${title} is not checked: ${block.note ?? ""}`, () => {});
        continue;
      }

      test(`${title} type-checks on its own`, () => {
        const failures = [...module.problems, ...(diagnostics.get(module) ?? [])];
        if (failures.length > 0) {
          throw new Error(
            `${title}: ${failures.length} problem(s) (generated module: ${module.fileName}):\n\n` +
              failures.join("\n\n"),
          );
        }
      });

      if (block.mode !== "run") continue;
      test(
        `${title} runs on its own and exits`,
        async (context) => {
          const missing = needs.filter((backend) => serviceUrls.get(backend) === undefined);
          if (missing.length > 0) {
            const summary = missing.map((backend) => providedService(backend).summary).join("; ");
            console.warn(
              `[docs examples] SKIPPING the run of ${title}: it needs ${missing.join(", ")} (${summary}); it is still type-checked`,
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
          const run = () =>
            runModule(module, {
              cwd: root,
              args: ["--import", "tsx", module.fileName],
              timeoutMs: RUN_TIMEOUT_MS,
            });
          const outcome = await (needs.length > 0 ? withBackendExampleLock(run) : run());
          if (!outcome.ok) throw new Error(outcome.message);
        },
        2 * RUN_TIMEOUT_MS + 10_000, // it may wait for the package run of an example
      );
    }
  });
}
