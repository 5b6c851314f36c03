import { createServer as createHttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  createMysqlPool,
  createPgPool,
  createRedisClient,
  describeWithBackend,
  uniqueName,
} from "./backends.js";
import {
  BACKENDS,
  type BackendName,
  DEFAULT_URLS,
  type DockerStatus,
  detectDocker,
  isCi,
  probeService,
  redactUrl,
  resolveServices,
  selectBackends,
  summarizeResolution,
  URL_VARIABLES,
} from "./services.js";

const PROBE_TIMEOUT_MS = 1_000;
const noDocker = async (): Promise<DockerStatus> => ({
  available: false,
  reason: "no Docker engine",
});

function urlFor(name: BackendName, port: number): string {
  const url = new URL(DEFAULT_URLS[name]);
  url.port = String(port);
  return url.toString();
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") throw new Error("no TCP address");
      resolve(address.port);
    });
  });
}

function close(server: { close(callback: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A loopback port nobody listens on: bound, then released. */
async function deadPort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  await close(server);
  return port;
}

function countResources(kind: string): number {
  return process.getActiveResourcesInfo().filter((resource) => resource === kind).length;
}

async function eventually(check: () => boolean, withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > until) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

describe("selectBackends", () => {
  test("selects every backend when HASP_BACKENDS is unset or empty", () => {
    expect(selectBackends({}).selected).toEqual(BACKENDS);
    expect(selectBackends({ HASP_BACKENDS: " " }).selected).toEqual(BACKENDS);
  });

  test("keeps only the listed backends, ignoring case and spaces", () => {
    expect(selectBackends({ HASP_BACKENDS: "redis,postgres" }).selected).toEqual([
      "redis",
      "postgres",
    ]);
    expect(selectBackends({ HASP_BACKENDS: " MySQL , mongodb," }).selected).toEqual([
      "mysql",
      "mongodb",
    ]);
  });

  test("rejects an unknown name instead of silently skipping its tests", () => {
    expect(() => selectBackends({ HASP_BACKENDS: "redis,postgresql" })).toThrow(
      /unknown backend\(s\) postgresql; known: redis, postgres, mysql, mongodb/,
    );
  });
});

describe("resolveServices", () => {
  test("reports the backends left out by HASP_BACKENDS without probing them", async () => {
    let dockerChecks = 0;
    const port = await deadPort();
    const { services, stop } = await resolveServices({
      env: { HASP_BACKENDS: "redis", REDIS_URL: urlFor("redis", port) },
      timeoutMs: PROBE_TIMEOUT_MS,
      detectDocker: async () => {
        dockerChecks += 1;
        return { available: false, reason: "no Docker engine" };
      },
    });
    await stop();

    expect(services.redis.status).toBe("missing");
    for (const name of ["postgres", "mysql", "mongodb"] as const) {
      expect(services[name]).toEqual({
        name,
        status: "filtered-out",
        url: undefined,
        source: undefined,
        attempts: ["filtered out by HASP_BACKENDS=redis"],
      });
    }
    // An explicit URL is authoritative: no fallback to the default port or to Docker.
    expect(services.redis.attempts).toHaveLength(1);
    expect(dockerChecks).toBe(0);
  });

  test.each(BACKENDS)("names an unreachable %s URL and why it failed", async (name) => {
    const url = urlFor(name, await deadPort());
    const started = Date.now();
    const { services } = await resolveServices({
      env: { HASP_BACKENDS: name, [URL_VARIABLES[name]]: url },
      timeoutMs: PROBE_TIMEOUT_MS,
      detectDocker: noDocker,
    });

    expect(Date.now() - started).toBeLessThan(3 * PROBE_TIMEOUT_MS);
    expect(services[name].status).toBe("missing");
    expect(summarizeResolution(services[name])).toBe(
      `${name}: ${URL_VARIABLES[name]}=${url} refused (ECONNREFUSED)`,
    );
  });

  test.each(BACKENDS)(
    "falls back from the URL variable to the default port, then Docker (%s)",
    async (name) => {
      const url = urlFor(name, await deadPort());
      const { services } = await resolveServices({
        env: { HASP_BACKENDS: name },
        timeoutMs: PROBE_TIMEOUT_MS,
        defaultUrls: { [name]: url },
        detectDocker: noDocker,
      });

      expect(summarizeResolution(services[name])).toBe(
        `${name}: ${URL_VARIABLES[name]} unset; ${url} refused (ECONNREFUSED); no Docker engine`,
      );
    },
  );
});

describe("probeService against a server that accepts and never answers", () => {
  let server: Server;
  let port: number;
  const accepted = new Set<Socket>();

  beforeAll(async () => {
    server = createServer((socket) => {
      accepted.add(socket);
      socket.on("close", () => accepted.delete(socket));
      // Read and drop whatever the client sends, so that its FIN is seen and the socket closes.
      socket.resume();
    });
    port = await listen(server);
  });

  afterAll(async () => {
    for (const socket of accepted) socket.destroy();
    await close(server);
  });

  test.each(BACKENDS)("%s: fails within the bound and leaves no open handle", async (name) => {
    const socketsBefore = countResources("TCPSocketWrap");
    const timersBefore = countResources("Timeout");
    const started = Date.now();

    const outcome = await probeService(name, urlFor(name, port), PROBE_TIMEOUT_MS);

    expect(Date.now() - started).toBeLessThan(2.5 * PROBE_TIMEOUT_MS);
    expect(outcome).toEqual({
      ok: false,
      reason: expect.stringMatching(/^timed out after 1000 ms/),
    });
    // The driver closed its end (the server saw every connection close) and kept no socket or timer.
    expect(await eventually(() => accepted.size === 0, 1_000)).toBe(true);
    expect(await eventually(() => countResources("TCPSocketWrap") <= socketsBefore, 1_000)).toBe(
      true,
    );
    expect(await eventually(() => countResources("Timeout") <= timersBefore, 1_000)).toBe(true);
  });
});

describe("detectDocker", () => {
  test("reports a DOCKER_HOST socket that does not exist", async () => {
    const status = await detectDocker({ DOCKER_HOST: "unix:///nonexistent/docker.sock" }, 1_000);
    expect(status).toEqual({
      available: false,
      reason: expect.stringMatching(
        /^no Docker engine \(unix:\/\/\/nonexistent\/docker\.sock .*ENOENT/,
      ),
    });
  });

  test("gives up on an endpoint that never answers, within the bound", async () => {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.resume();
    });
    const port = await listen(server);
    const started = Date.now();
    try {
      const status = await detectDocker({ DOCKER_HOST: `tcp://127.0.0.1:${port}` }, 500);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(status).toEqual({
        available: false,
        reason: `no Docker engine (tcp://127.0.0.1:${port} timed out after 500 ms)`,
      });
    } finally {
      for (const socket of sockets) socket.destroy();
      await close(server);
    }
  });

  test("finds an engine that answers /_ping", async () => {
    const paths: string[] = [];
    const server = createHttpServer((request, response) => {
      paths.push(request.url ?? "");
      response.end("OK");
    });
    const port = await listen(server as unknown as Server);
    try {
      const endpoint = `tcp://127.0.0.1:${port}`;
      expect(await detectDocker({ DOCKER_HOST: endpoint }, 1_000)).toEqual({
        available: true,
        endpoint,
      });
      expect(paths).toEqual(["/_ping"]);
    } finally {
      await close(server);
    }
  });
});

describe("the services resolved for this run", () => {
  for (const name of BACKENDS) {
    describeWithBackend(name, (url) => {
      test("answers, and resolves again from its URL variable", async () => {
        expect(await probeService(name, url)).toEqual({ ok: true });
        const { services } = await resolveServices({
          env: { HASP_BACKENDS: name, [URL_VARIABLES[name]]: url },
          detectDocker: noDocker,
        });
        expect(services[name]).toMatchObject({ status: "resolved", url, source: "env" });
      });
    });
  }
});

describe("uniqueName", () => {
  test("gives distinct, short, identifier-safe names", () => {
    const names = Array.from({ length: 500 }, (_, i) =>
      uniqueName(i % 2 ? "Lock Adapter/Redis" : ""),
    );
    expect(new Set(names).size).toBe(names.length);
    for (const name of [...names, uniqueName("x".repeat(100)), uniqueName("--")]) {
      expect(name).toMatch(/^hasp_t_[a-z0-9_]+$/);
      expect(name.length).toBeLessThanOrEqual(48);
    }
    expect(uniqueName("Lock Adapter/Redis")).toMatch(
      /^hasp_t_lock_adapter_redis_[a-z0-9]+_[a-z0-9]+$/,
    );
  });

  describeWithBackend("postgres", (url) => {
    test("works as an unquoted table name", async () => {
      const pool = createPgPool(url);
      const table = uniqueName("table name check");
      try {
        await pool.query(`create table ${table} (id int primary key)`);
        await pool.query(`insert into ${table} (id) values (1)`);
        const { rows } = await pool.query(`select count(*)::int as n from ${table}`);
        expect(rows).toEqual([{ n: 1 }]);
      } finally {
        await pool.query(`drop table if exists ${table}`);
        await pool.end();
      }
    });
  });

  describeWithBackend("mysql", (url) => {
    test("works as an unquoted table name", async () => {
      const pool = createMysqlPool(url);
      const table = uniqueName("table name check");
      try {
        await pool.query(`create table ${table} (id int primary key)`);
        await pool.query(`insert into ${table} (id) values (1)`);
        const [rows] = await pool.query(`select count(*) as n from ${table}`);
        expect(rows).toEqual([{ n: 1 }]);
      } finally {
        await pool.query(`drop table if exists ${table}`);
        await pool.end();
      }
    });
  });

  describeWithBackend("redis", (url) => {
    test("works as a key prefix", async () => {
      const client = createRedisClient(url);
      const key = `${uniqueName("key prefix check")}:lock`;
      try {
        expect(await client.set(key, "1", "PX", 10_000, "NX")).toBe("OK");
        expect(await client.get(key)).toBe("1");
      } finally {
        await client.del(key);
        await client.quit();
      }
    });
  });
});

describe("helpers", () => {
  test("redactUrl masks a password and leaves other URLs untouched", () => {
    expect(redactUrl("postgres://user:secret@127.0.0.1:5432/test")).toBe(
      "postgres://user:***@127.0.0.1:5432/test",
    );
    expect(redactUrl(DEFAULT_URLS.mysql)).toBe(DEFAULT_URLS.mysql);
  });

  test("isCi treats CI=false and CI=0 as not CI", () => {
    expect(isCi({ CI: "true" })).toBe(true);
    expect(isCi({ CI: "1" })).toBe(true);
    expect(isCi({ CI: "false" })).toBe(false);
    expect(isCi({ CI: "0" })).toBe(false);
    expect(isCi({})).toBe(false);
  });
});
