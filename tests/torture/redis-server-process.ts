/**
 * A redis-server of the torture run's own, killed (SIGKILL) and restarted mid-run. Like
 * tests/harness/private-redis.ts, but free of vitest so that `npm run torture` can use it too.
 * It keeps nothing on disk: a restart forgets every hold, as a crash of the machine's would.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";

export class RedisServerProcess {
  #child: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  /** Starts a server on a spare loopback port; resolves once it answers PING. */
  static async start(): Promise<RedisServerProcess> {
    const server = new RedisServerProcess(await sparePort());
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** (Re)starts the server on its port; resolves once it answers PING. */
  async start(): Promise<void> {
    const child = spawn(
      "redis-server",
      ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: "ignore" },
    );
    this.#child = child;
    let failure: Error | undefined;
    child.once("error", (error) => {
      failure = new Error(`redis-server: ${error.message}`);
    });
    child.once("exit", (code, signal) => {
      failure ??= new Error(`redis-server exited (${code ?? signal})`);
    });
    const deadline = performance.now() + 10_000;
    for (;;) {
      if (failure !== undefined) {
        throw failure;
      }
      if (await answersPing(this.port)) {
        return;
      }
      if (performance.now() > deadline) {
        throw new Error(`redis-server on port ${this.port} did not answer within 10 s`);
      }
      await sleep(20);
    }
  }

  /** Kills the server (SIGKILL: a crash, not a shutdown) and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
      return;
    }
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }
}

async function answersPing(port: number): Promise<boolean> {
  const probe = new Redis({
    port,
    host: "127.0.0.1",
    lazyConnect: true,
    retryStrategy: () => null,
  });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

function sparePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === "object" && address !== null
          ? resolve(address.port)
          : reject(new Error("no spare port")),
      );
    });
  });
}
