/**
 * hasp as a user installs it, made once per run for every test file that asks: built into a
 * stage holding what `package.json#files` names (the repository's own `dist/` is left alone),
 * packed with `npm pack` and installed into a project without the optional drivers. The first
 * file to ask builds it under a machine lock; the others wait and read the result. A run that
 * selects no package test pays nothing: global-setup.ts only provides the run's directory, and
 * removes it at the end.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { inject } from "vitest";
import { TimeSpan } from "../../src/time-span/index.js";
import { withMachineLock } from "./machine-lock.js";

declare module "vitest" {
  interface ProvidedContext {
    /** An empty directory of this run's own, where the packed package is made. */
    haspPackDirectory: string;
  }
}

export type PackedHasp = {
  /** The `.tgz` that `npm pack` made. */
  readonly tarball: string;
  /** The paths in the tarball, sorted, as `npm pack --json` lists them. */
  readonly packedFiles: readonly string[];
  /** A project with only the tarball installed. Shared: copy it with {@link consumerProject}. */
  readonly consumer: string;
};

const root = join(import.meta.dirname, "..", "..");
const execute = promisify(execFile);
const RESULT = "packed.json";
const FAILURE = "failed.txt";
/** Files npm packs whatever `files` says; `dist` is built rather than copied. */
const ALWAYS_PACKED = /^(package\.json|readme|licen[cs]e|copying)(\..*)?$/i;

/**
 * npm passes its own config to scripts as npm_* variables (prefix, cache, ...); a nested npm
 * inheriting them could act on this repository instead of the temp project.
 */
export function childEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith("npm_")),
  );
}

/** Runs `file`; resolves to its stdout, or rejects with its whole output. */
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
      { cause: error },
    );
  }
}

let packed: Promise<PackedHasp> | undefined;

/** The run's packed hasp, made by whichever test file asks first. */
export function packedHasp(): Promise<PackedHasp> {
  packed ??= packOnce(inject("haspPackDirectory"));
  return packed;
}

/** A fresh temp project (`prefix…`) with the consumer's install; the caller removes it. */
export async function consumerProject(prefix: string): Promise<string> {
  const { consumer } = await packedHasp();
  const project = await mkdtemp(join(tmpdir(), prefix));
  await cp(join(consumer, "package.json"), join(project, "package.json"));
  await cp(join(consumer, "node_modules"), join(project, "node_modules"), {
    recursive: true,
    verbatimSymlinks: true,
  });
  return project;
}

async function packOnce(directory: string | undefined): Promise<PackedHasp> {
  if (directory === undefined || !existsSync(directory)) {
    throw new Error(
      "No haspPackDirectory was provided: run the package tests through vitest with tests/harness/global-setup.ts",
    );
  }
  return withMachineLock(
    `tests:packed-hasp:${directory}`,
    // Read and written under the lock, so whoever comes after the first finds its outcome.
    async () => {
      if (existsSync(join(directory, FAILURE))) {
        throw new Error(await readFile(join(directory, FAILURE), "utf8"));
      }
      if (existsSync(join(directory, RESULT))) {
        return JSON.parse(await readFile(join(directory, RESULT), "utf8")) as PackedHasp;
      }
      try {
        const result = await pack(directory);
        await writeFile(join(directory, RESULT), JSON.stringify(result));
        return result;
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        await writeFile(
          join(directory, FAILURE),
          `Packing hasp failed in another test file of this run:\n${reason}`,
        );
        throw error;
      }
    },
    TimeSpan.fromMinutes(5),
  );
}

async function pack(directory: string): Promise<PackedHasp> {
  const stage = join(directory, "stage");
  await stageSources(stage);
  // `npm pack` builds dist/ first (the prepack script), as it does for anyone who packs.
  const [manifest] = JSON.parse(
    await command("npm", ["pack", "--json", "--pack-destination", directory], stage),
  ) as { filename: string; files: { path: string }[] }[];
  if (manifest === undefined) throw new Error(`npm pack in ${stage} reported no package`);
  await rm(stage, { recursive: true, force: true });
  const tarball = join(directory, manifest.filename);

  const consumer = join(directory, "consumer");
  await mkdir(consumer);
  await writeFile(
    join(consumer, "package.json"),
    JSON.stringify({ name: "hasp-consumer", private: true, type: "module" }),
  );
  await command(
    "npm",
    ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", tarball],
    consumer,
  );
  return { tarball, packedFiles: manifest.files.map(({ path }) => path).sort(), consumer };
}

/**
 * Copies into `stage` what npm would consider packing from the repository (the top-level entries
 * `files` names, and those it always packs) plus what the build reads. `npm pack` then applies
 * `files` itself, so a wrong `files` shows in the tarball as it would on the registry.
 */
async function stageSources(stage: string): Promise<void> {
  const { files = [] } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    files?: string[];
  };
  const named = files.filter((entry) => !entry.startsWith("!")).map((entry) => entry.split("/")[0]);
  const copied = new Set(
    [
      ...named,
      ...readdirSync(root).filter(
        (name) => ALWAYS_PACKED.test(name) || /^tsconfig.*\.json$/.test(name),
      ),
      "src",
    ].filter((name): name is string => name !== undefined && name !== "dist"),
  );
  await mkdir(stage);
  for (const name of copied) {
    if (existsSync(join(root, name))) {
      await cp(join(root, name), join(stage, name), { recursive: true });
    }
  }
  // The build resolves its types (@types/node, the drivers') from here; npm never packs it.
  await symlink(join(root, "node_modules"), join(stage, "node_modules"), "dir");
}
