import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, expect, test } from "vitest";
import { redisHoldKey } from "../../src/lock/adapters/redis/redis-lock-adapter.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { createRedisClient, describeWithBackend, uniqueName } from "../harness/backends.js";

const WORKERS = 4;
const SECTIONS = 50;
const WORKER = fileURLToPath(new URL("./fixtures/redis-worker.ts", import.meta.url));

/** What a worker appends to the shared log inside each critical section. */
type Section = { token: number; start: number; end: number; pid: number };

describeWithBackend("redis", (url) => {
  let client: Redis;

  beforeAll(() => {
    client = createRedisClient(url);
  });

  afterAll(async () => {
    await client.quit();
  });

  test(`${WORKERS} processes x ${SECTIONS} sections on one key: no lost update, increasing tokens, no overlap`, async () => {
    const namespace = uniqueName("xproc");
    const key = "job";
    const counterKey = `${namespace}:counter`;
    const logKey = `${namespace}:sections`;
    const hold = redisHoldKey(new Namespace(namespace).create(key).toString());
    const epoch = process.hrtime.bigint();
    const workers = Array.from({ length: WORKERS }, () =>
      startWorker([url, namespace, key, String(SECTIONS), String(epoch)]),
    );
    try {
      await Promise.all(workers.map((worker) => worker.ready));
      for (const worker of workers) {
        worker.child.stdin?.write("go\n");
      }
      const exits = await Promise.all(workers.map((worker) => worker.exited));
      expect(exits, workers.map((worker) => worker.stderr()).join("\n")).toEqual(
        Array.from({ length: WORKERS }, () => 0),
      );

      const total = WORKERS * SECTIONS;
      // No lost update: every read-modify-write saw the previous one's write.
      expect(await client.get(counterKey)).toBe(String(total));

      const log = (await client.lrange(logKey, 0, -1)).map((line) => JSON.parse(line) as Section);
      expect(log).toHaveLength(total);
      const perWorker = new Map<number, number>();
      for (const section of log) {
        perWorker.set(section.pid, (perWorker.get(section.pid) ?? 0) + 1);
      }
      expect([...perWorker.keys()].sort()).toEqual(workers.map((w) => w.child.pid).sort());
      expect([...perWorker.values()]).toEqual(Array.from({ length: WORKERS }, () => SECTIONS));

      // The tokens, in the order the sections wrote, are strictly increasing.
      for (let i = 1; i < log.length; i++) {
        const [before, after] = [log[i - 1], log[i]] as [Section, Section];
        expect(after.token, `section ${i} after section ${i - 1}`).toBeGreaterThan(before.token);
      }

      // No two sections overlap in time (sorted by start, each starts after every earlier end).
      const byStart = [...log].sort((a, b) => a.start - b.start);
      let latestEnd = Number.NEGATIVE_INFINITY;
      for (const section of byStart) {
        expect(section.start, `section of ${section.pid} (token ${section.token})`).toBeGreaterThan(
          latestEnd,
        );
        latestEnd = Math.max(latestEnd, section.end);
      }

      // The processes really contended: the key changed hands between them many times.
      const handoffs = log.filter((section, i) => i > 0 && section.pid !== log[i - 1]?.pid).length;
      console.log(
        `[cross-process redis] ${total} sections, ${handoffs} hand-offs between processes`,
      );
      expect(handoffs).toBeGreaterThanOrEqual(WORKERS);
    } finally {
      for (const worker of workers) {
        worker.kill();
      }
      await client.del(counterKey, logKey, hold, `${hold}:fence`);
    }
  }, 60_000);
});

/** A worker process; `ready` resolves at its "ready" line, `exited` to its exit code. */
function startWorker(args: string[]) {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", WORKER, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? String(signal)));
    child.once("error", (error) => resolve(error.message));
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.split("\n").includes("ready")) {
        resolve();
      }
    });
    void exited.then((code) =>
      reject(new Error(`worker ${child.pid} exited (${code}) before "ready": ${stderr}`)),
    );
  });
  return {
    child,
    ready,
    exited,
    stderr: () => (stderr === "" ? "" : `worker ${child.pid}: ${stderr}`),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
      }
    },
  };
}
