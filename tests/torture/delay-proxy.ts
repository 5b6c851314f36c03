/**
 * A TCP proxy on a spare loopback port that holds every chunk for `delayMs` before passing it
 * on, in each direction and in order: one worker of a torture run talks to its lock backend
 * through it, so that its every round trip is `2 × delayMs` slower. `cut()` drops every
 * connection at once, as a broken network would.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

export type DelayProxySettings = { host: string; port: number; delayMs: number };

export class DelayProxy {
  readonly #server: Server;
  /** Each open connection as its pair of sockets. */
  readonly #pairs = new Set<[Socket, Socket]>();
  #connections = 0;
  #port = 0;

  private constructor(settings: DelayProxySettings) {
    this.#server = createServer((client) => {
      this.#connections += 1;
      const upstream = connect({ host: settings.host, port: settings.port });
      const pair: [Socket, Socket] = [client, upstream];
      this.#pairs.add(pair);
      forward(client, upstream, settings.delayMs);
      forward(upstream, client, settings.delayMs);
      const forget = () => this.#pairs.delete(pair);
      client.once("close", forget);
      upstream.once("close", forget);
    });
  }

  /** Listens on a spare loopback port, forwarding to `host:port`. */
  static async start(settings: DelayProxySettings): Promise<DelayProxy> {
    const proxy = new DelayProxy(settings);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once("error", reject);
      proxy.#server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = proxy.#server.address();
    if (typeof address !== "object" || address === null) {
      throw new Error("the proxy has no port");
    }
    proxy.#port = address.port;
    return proxy;
  }

  get port(): number {
    return this.#port;
  }

  /** Connections accepted so far. */
  get connections(): number {
    return this.#connections;
  }

  /** `url` with its host and port replaced by the proxy's. */
  rewrite(url: string): string {
    const proxied = new URL(url);
    proxied.hostname = "127.0.0.1";
    proxied.port = String(this.#port);
    return proxied.toString();
  }

  /** Destroys every open connection (both sides); answers how many there were. */
  cut(): number {
    const pairs = [...this.#pairs];
    this.#pairs.clear();
    for (const [client, upstream] of pairs) {
      client.destroy();
      upstream.destroy();
    }
    return pairs.length;
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.cut();
    await closed;
  }
}

/** Passes `from`'s bytes to `to` after `delayMs`; its end and its failure too. */
function forward(from: Socket, to: Socket, delayMs: number): void {
  // Timers of one duration fire in the order they were set: the bytes keep their order.
  from.on("data", (chunk: Buffer) => {
    setTimeout(() => {
      if (!to.destroyed) {
        to.write(chunk);
      }
    }, delayMs);
  });
  from.once("end", () => {
    setTimeout(() => to.end(), delayMs);
  });
  // A failed side takes the other down with it (after the bytes already on their way).
  from.on("error", () => {});
  from.once("close", () => {
    setTimeout(() => to.destroy(), delayMs);
  });
}
