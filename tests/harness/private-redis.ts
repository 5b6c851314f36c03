/**
 * A redis-server of the test's own, on a spare loopback port, for tests that kill and restart
 * Redis (the shared server must never be stopped). It keeps nothing on disk, like the machine's:
 * a restart forgets every hold. Free of vitest, so the torture CLI uses it too.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";

export class PrivateRedisServer {
  #child: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  /** Starts a server on a spare loopback port; resolves once it answers PING. */
  static async start(): Promise<PrivateRedisServer> {
    const server = new PrivateRedisServer(await sparePort());
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

  /**
   * Stops the server (SIGSTOP), as a stalled machine or a network holding its packets would:
   * connections stay open and every command waits, unanswered, until `resume()`.
   */
  pause(): void {
    this.#child?.kill("SIGSTOP");
  }

  /** Lets a paused server go on (SIGCONT): the commands that waited are answered. */
  resume(): void {
    this.#child?.kill("SIGCONT");
  }

  /** Kills the server (SIGKILL: a crash, not a shutdown) and waits for it to exit. */
  async stop(): Promise<void> {
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
