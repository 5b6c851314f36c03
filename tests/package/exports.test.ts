/**
 * The public import paths and the source tree agree: every `exports` entry has its `src/.../index.ts`
 * and its types, and every `src/**\/index.ts` (the only files that may be entry points) is exported.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { describe, expect, test } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  exports: Record<string, unknown>;
};

const entries = Object.entries(manifest.exports).filter(([path]) => path !== "./package.json");

/** `./dist/<p>.js` → `<p>`, or undefined when the target has another shape. */
function distStem(target: unknown, extension: ".js" | ".d.ts"): string | undefined {
  if (typeof target !== "string" || !target.startsWith("./dist/") || !target.endsWith(extension)) {
    return undefined;
  }
  return target.slice("./dist/".length, -extension.length);
}

function indexFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name === "index.ts")
    .map((entry) => relative(root, join(entry.parentPath, entry.name)).split(sep).join("/"))
    .sort();
}

describe("package.json exports", () => {
  test("has entries besides ./package.json", () => {
    expect(entries.length).toBeGreaterThan(0);
    expect(manifest.exports["./package.json"]).toBe("./package.json");
  });

  test.each(entries)(
    "%s maps ./dist/<p>/index.js to an existing src/<p>/index.ts, with types first",
    (path, target) => {
      expect(path).toMatch(/^\.\/[a-z0-9-]+(\/[a-z0-9-]+)*$/);
      expect(typeof target).toBe("object");
      const conditions = target as Record<string, unknown>;
      // TypeScript reads conditions in order, so `types` must come before `default`.
      expect(Object.keys(conditions)).toEqual(["types", "default"]);

      const stem = distStem(conditions.default, ".js");
      expect(
        stem,
        `default target ${String(conditions.default)} is not ./dist/<p>.js`,
      ).toBeDefined();
      expect(stem).toMatch(/(^|\/)index$/);
      expect(conditions.types).toBe(`./dist/${stem}.d.ts`);
      expect(existsSync(join(root, "src", `${stem}.ts`)), `src/${stem}.ts is missing`).toBe(true);
    },
  );

  test("no two import paths share an entry file", () => {
    const stems = entries.map(([, target]) =>
      distStem((target as Record<string, unknown>).default, ".js"),
    );
    expect(new Set(stems).size).toBe(stems.length);
  });

  test("every src/**/index.ts is an exported entry point", () => {
    const exported = new Set(
      entries.map(
        ([, target]) => `src/${distStem((target as Record<string, unknown>).default, ".js")}.ts`,
      ),
    );
    const unexported = indexFiles(join(root, "src")).filter((file) => !exported.has(file));
    expect(unexported, "index.ts is reserved for public entry points").toEqual([]);
  });
});
