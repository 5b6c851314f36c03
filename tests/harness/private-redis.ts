/**
 * A redis-server of the test's own, on a spare loopback port, for tests that kill and restart
 * Redis (the shared server must never be stopped). It keeps nothing on disk, like the machine's.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { Redis } from "ioredis";
import { expect, vi } from "vitest";

export class PrivateRedisServer {
  #child: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  /** Starts a server on a free port and resolves once it answers PING. */
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
    const failed = new Promise<never>((_, reject) => {
      child.once("error", (error) => reject(new Error(`redis-server: ${error.message}`)));
      child.once("exit", (code) => reject(new Error(`redis-server exited with ${code}`)));
    });
    failed.catch(() => {});
    await Promise.race([
      failed,
      vi.waitFor(
        async () => {
          const probe = new Redis({
            port: this.port,
            lazyConnect: true,
            retryStrategy: () => null,
          });
          probe.on("error", () => {});
          try {
            await probe.connect();
            expect(await probe.ping()).toBe("PONG");
          } finally {
            probe.disconnect();
          }
        },
        { timeout: 10_000, interval: 50 },
      ),
    ]);
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
