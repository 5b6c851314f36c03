// The root `prebench` script: installs the peer libraries of bench/package.json into
// bench/node_modules (`npm ci --prefix bench`) when they are missing or differ from
// bench/package-lock.json, so `npm run bench` works from a clean clone. Does nothing otherwise, so
// a run never reinstalls under another one that is still going.

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const BENCH = fileURLToPath(new URL(".", import.meta.url));
const WANTED = fileURLToPath(new URL("./package-lock.json", import.meta.url));
/** What npm last installed there (its hidden lockfile). */
const INSTALLED = fileURLToPath(new URL("./node_modules/.package-lock.json", import.meta.url));

type Lockfile = { packages?: Record<string, { version?: string }> };

/** Installed path → version, without the root entry; null when the file is absent or unreadable. */
function versions(file: string): Map<string, string | undefined> | null {
  try {
    const lockfile = JSON.parse(readFileSync(file, "utf8")) as Lockfile;
    return new Map(
      Object.entries(lockfile.packages ?? {})
        .filter(([path]) => path !== "")
        .map(([path, entry]) => [path, entry.version]),
    );
  } catch {
    return null;
  }
}

const wanted = versions(WANTED);
const installed = versions(INSTALLED);
const upToDate =
  wanted !== null &&
  installed !== null &&
  [...wanted].every(([path, version]) => installed.get(path) === version);

if (!upToDate) {
  process.stderr.write("[bench] installing the peer libraries: npm ci --prefix bench\n");
  const args = ["ci", "--prefix", BENCH, "--no-audit", "--no-fund"];
  // Under `npm run`, npm_execpath is npm's own script: no shell, whatever the platform.
  const npm = process.env.npm_execpath;
  const result =
    npm === undefined
      ? spawnSync("npm", args, { stdio: "inherit", shell: process.platform === "win32" })
      : spawnSync(process.execPath, [npm, ...args], { stdio: "inherit" });
  if (result.status !== 0) {
    process.stderr.write(
      "[bench] could not install the peer libraries; run `npm ci --prefix bench` and retry\n",
    );
    process.exitCode = 1;
  }
}
