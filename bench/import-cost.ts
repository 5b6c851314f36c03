// `npm run bench:import`: what loading hasp costs a process that takes one lock, measured in
// fresh processes beside a bare `node -e ""` of the same run. See bench/README.md.
//
//   npm run bench:import                      # 10 processes of each kind, builds dist/ when stale
//   npm run bench:import -- --runs 20
//   npm run bench:import -- --root ../other   # another checkout (its dist/, its node_modules)

import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { spread } from "./stats.js";

/**
 * Run in the package root, so `hasp/…` resolves through package.json#exports as it does for a
 * user. Prints the times inside the process: the imports, then a first lock taken and given
 * back (so a cost moved from import time to first use still shows), and when the imports began
 * (Node's own start-up). The CPU time of the imports (all threads) varies less than their wall
 * time when other work shares the cores.
 */
const CHILD_CODE = `
const start = performance.now();
const cpu = process.cpuUsage();
const { LockProvider } = await import("hasp/lock");
const { MemoryLockAdapter } = await import("hasp/lock/memory-lock-adapter");
const imported = performance.now();
const { user, system } = process.cpuUsage(cpu);
const lock = new LockProvider({ adapter: new MemoryLockAdapter() }).create("job");
await lock.acquireOrFail();
await lock.release();
const used = performance.now();
const cpuMs = (user + system) / 1000;
console.log(JSON.stringify({ start, importMs: imported - start, cpuMs, firstUseMs: used - imported }));
`;

type Options = { runs: number; root: string };

function parseArgs(argv: readonly string[]): Options {
  const options: Options = { runs: 10, root: fileURLToPath(new URL("..", import.meta.url)) };
  for (let index = 0; index < argv.length; index++) {
    const [flag, value] = [argv[index], argv[index + 1]];
    if (flag === "--runs" && value !== undefined && /^[1-9]\d*$/.test(value)) {
      options.runs = Number(value);
    } else if (flag === "--root" && value !== undefined) {
      options.root = resolve(value);
    } else {
      throw new Error(`usage: npm run bench:import -- [--runs <n>] [--root <package dir>]`);
    }
    index++;
  }
  return options;
}

function newestMtime(path: string): number {
  if (!statSync(path).isDirectory()) {
    return statSync(path).mtimeMs;
  }
  return Math.max(0, ...readdirSync(path).map((entry) => newestMtime(join(path, entry))));
}

function bytesIn(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) {
    return stat.size;
  }
  return readdirSync(path).reduce((sum, entry) => sum + bytesIn(join(path, entry)), 0);
}

/** The runtime dependencies a user installs with the package, found from its node_modules. */
function runtimeDependencies(root: string): Map<string, number> {
  const found = new Map<string, number>();
  const visit = (manifestPath: string) => {
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as {
      dependencies?: Record<string, string>;
    };
    for (const name of Object.keys(manifest.dependencies ?? {})) {
      const directory = join(root, "node_modules", name);
      if (!found.has(name) && existsSync(directory)) {
        found.set(name, bytesIn(directory));
        visit(join(directory, "package.json"));
      }
    }
  };
  visit(join(root, "package.json"));
  return found;
}

function buildWhenStale(root: string): void {
  const entry = join(root, "dist", "lock", "index.js");
  if (existsSync(entry) && statSync(entry).mtimeMs >= newestMtime(join(root, "src"))) {
    return;
  }
  process.stderr.write(`[bench:import] building ${root}dist …\n`);
  const build = spawnSync("npm", ["run", "build"], { cwd: root, stdio: "inherit" });
  if (build.status !== 0) {
    throw new Error("npm run build failed");
  }
}

/** Wall-clock ms of one fresh `node` process, and what it printed. */
function timed(root: string, args: readonly string[]): { ms: number; stdout: string } {
  const started = process.hrtime.bigint();
  const child = spawnSync(process.execPath, args, { cwd: root, encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (child.status !== 0) {
    throw new Error(`node ${args.join(" ")} failed:\n${child.stderr}`);
  }
  return { ms, stdout: child.stdout };
}

function main(): void {
  const { runs, root } = parseArgs(process.argv.slice(2));
  buildWhenStale(root);
  const bare: number[] = [];
  const whole: number[] = [];
  const imports: number[] = [];
  const importCpu: number[] = [];
  const firstUses: number[] = [];
  const starts: number[] = [];
  const loadBefore = loadavg()[0] ?? 0;
  // One of each first, unmeasured: the files are then in the page cache, as on a running server.
  for (let run = -1; run < runs; run++) {
    const bareRun = timed(root, ["-e", ""]);
    const haspRun = timed(root, ["--input-type=module", "-e", CHILD_CODE]);
    if (run >= 0) {
      const inside = JSON.parse(haspRun.stdout) as {
        start: number;
        importMs: number;
        cpuMs: number;
        firstUseMs: number;
      };
      bare.push(bareRun.ms);
      whole.push(haspRun.ms);
      imports.push(inside.importMs);
      importCpu.push(inside.cpuMs);
      firstUses.push(inside.firstUseMs);
      starts.push(inside.start);
    }
  }
  const loadAfter = loadavg()[0] ?? 0;
  const show = (values: readonly number[]) => {
    const figures = spread(values);
    return figures === null
      ? "-"
      : `${figures.median.toFixed(1)} ms (${figures.min.toFixed(1)}–${figures.max.toFixed(1)})`;
  };
  const overBare = whole.map((ms, index) => ms - (bare[index] ?? 0));
  const dependencies = runtimeDependencies(root);
  const dependencyBytes = [...dependencies.values()].reduce((sum, bytes) => sum + bytes, 0);
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(2)} MB`;
  console.log(
    [
      `hasp import cost: ${runs} fresh processes of each kind, interleaved; median (min–max)`,
      `  root: ${root}`,
      `  import("hasp/lock") + memory adapter, timed inside the process: ${show(imports)}`,
      `  the same imports' CPU time (user + system, all threads):        ${show(importCpu)}`,
      `  then a first lock acquired and released:                        ${show(firstUses)}`,
      `  Node's own start-up before the imports (performance.now()):     ${show(starts)}`,
      `  whole process, bare node -e "":                                 ${show(bare)}`,
      `  whole process, imports + first lock:                            ${show(whole)}`,
      `  whole process minus the bare node of the same pair:             ${show(overBare)}`,
      `  install: dist ${mb(bytesIn(join(root, "dist")))}, runtime dependencies ${mb(dependencyBytes)} (${[...dependencies.keys()].join(", ") || "none"})`,
      `  load average (1 min) before/after: ${loadBefore.toFixed(2)} / ${loadAfter.toFixed(2)}`,
    ].join("\n"),
  );
}

main();
