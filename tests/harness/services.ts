/**
 * Finds the real services the tests run against, once per run (vitest's globalSetup calls
 * {@link resolveServices}). For each backend, in order:
 *
 * 1. its URL variable (`REDIS_URL`, `POSTGRES_URL`, `MYSQL_URL`, `MONGODB_URL`): when set it is
 *    authoritative, and an unreachable URL is reported rather than replaced by another server;
 * 2. the local default port;
 * 3. a testcontainers container, when a Docker engine answers.
 *
 * Every attempt really connects with the real driver, bounded by a short timeout, and closes its
 * connection. `HASP_BACKENDS=redis,postgres` limits which backends are resolved.
 */
import { existsSync } from "node:fs";
import { request } from "node:http";
import { homedir, userInfo } from "node:os";
import { join } from "node:path";

export const BACKENDS = ["redis", "postgres", "mysql", "mongodb"] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Backends whose absence fails a run under `CI=true` (MongoDB is never required). */
export const REQUIRED_IN_CI: readonly BackendName[] = ["redis", "postgres", "mysql"];

export type Env = Readonly<Record<string, string | undefined>>;

export type ServiceResolution = {
  readonly name: BackendName;
  readonly status: "resolved" | "missing" | "filtered-out";
  /** The URL to connect to; set only when `status` is `"resolved"`. */
  readonly url: string | undefined;
  readonly source: "env" | "default" | "container" | undefined;
  /** Every attempt made, in order, each with its outcome. */
  readonly attempts: readonly string[];
};

/** What the global setup hands to test files for each backend (through vitest's `inject`). */
export type ProvidedService = {
  /** The resolved URL, or null when the backend's tests are skipped. */
  readonly url: string | null;
  /** Whether it was found, not found, or left out by `HASP_BACKENDS`. */
  readonly status: ServiceResolution["status"];
  /** Which attempts were made and how each ended, for skip messages. */
  readonly summary: string;
};

declare module "vitest" {
  interface ProvidedContext {
    haspServices: Record<BackendName, ProvidedService>;
  }
}

export type DockerStatus =
  | { readonly available: true; readonly endpoint: string }
  | { readonly available: false; readonly reason: string };

export type ProbeOutcome = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export type ResolveServicesSettings = {
  readonly env: Env;
  /** Bound on each connection attempt. @default 2000 */
  readonly timeoutMs?: number;
  /** Bound on starting one container, image pull included. @default 180000 */
  readonly containerTimeoutMs?: number;
  /** Replaces the local default URLs (the harness's own tests point them at dead ports). */
  readonly defaultUrls?: Readonly<Partial<Record<BackendName, string>>>;
  /** How to find a Docker engine; called at most once, and only if a backend needs it. */
  readonly detectDocker?: () => Promise<DockerStatus>;
};

export type ServiceResolutions = {
  readonly services: Readonly<Record<BackendName, ServiceResolution>>;
  /** Stops every container this resolution started. */
  stop(): Promise<void>;
};

type StartedService = { readonly url: string; readonly image: string; stop(): Promise<void> };

/** The variable that, when set, is the only URL tried for each backend. */
export const URL_VARIABLES = {
  redis: "REDIS_URL",
  postgres: "POSTGRES_URL",
  mysql: "MYSQL_URL",
  mongodb: "MONGODB_URL",
} as const satisfies Record<BackendName, string>;

/** Where each backend listens on a developer machine or in CI. */
export const DEFAULT_URLS = {
  redis: "redis://127.0.0.1:6379",
  postgres: "postgres://postgres@127.0.0.1:5432/test",
  mysql: "mysql://root@127.0.0.1:3306/test",
  mongodb: "mongodb://127.0.0.1:27017/test",
} as const satisfies Record<BackendName, string>;

type BackendSpec = {
  readonly probe: (url: string, timeoutMs: number) => Promise<void>;
  readonly startContainer: () => Promise<StartedService>;
};

export const DEFAULT_PROBE_TIMEOUT_MS = 2_000;
const DEFAULT_CONTAINER_TIMEOUT_MS = 180_000;

class DeadlineError extends Error {
  override name = "DeadlineError" as const;
  constructor(readonly timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
  }
}

/**
 * Races `work` against a timer. The caller closes whatever `work` holds; a late rejection of `work`
 * is swallowed here so that abandoning it never becomes an unhandled rejection.
 */
async function withDeadline<T>(timeoutMs: number, work: Promise<T>): Promise<T> {
  work.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function probeRedis(url: string, timeoutMs: number): Promise<void> {
  const { Redis } = await import("ioredis");
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    // How long disconnect() waits for the server to close the socket before destroying it.
    disconnectTimeout: 100,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // connect() rejects with a bare "Connection is closed."; the cause arrives as an "error" event.
  let socketError: unknown;
  client.on("error", (error) => {
    socketError ??= error;
  });
  try {
    await withDeadline(
      timeoutMs,
      (async () => {
        await client.connect();
        await client.ping();
      })(),
    ).catch((error: unknown) => {
      throw error instanceof DeadlineError ? error : (socketError ?? error);
    });
  } finally {
    // disconnect() closes the socket at once; quit() would wait for an answer that may never come.
    client.disconnect();
  }
}

async function probePostgres(url: string, timeoutMs: number): Promise<void> {
  const { default: pg } = await import("pg");
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
  });
  client.on("error", () => undefined);
  try {
    await withDeadline(
      timeoutMs,
      (async () => {
        await client.connect();
        await client.query("select 1");
      })(),
    );
  } finally {
    // end() sends Terminate and waits for the server to close; a server that never answers would
    // keep the socket, so give it a moment, then cut it.
    await withDeadline(500, client.end()).catch(() => undefined);
    (
      client as unknown as { connection?: { stream?: { destroy(): void } } }
    ).connection?.stream?.destroy();
  }
}

async function probeMysql(url: string, timeoutMs: number): Promise<void> {
  // The callback API hands back the connection at once, so it can be destroyed mid-handshake.
  const { default: mysql } = await import("mysql2");
  const connection = mysql.createConnection({ uri: url, connectTimeout: timeoutMs });
  connection.on("error", () => undefined);
  try {
    await withDeadline(
      timeoutMs,
      new Promise<void>((resolve, reject) => {
        connection.query("select 1", (error) => (error ? reject(error) : resolve()));
      }),
    );
  } finally {
    connection.destroy();
  }
}

async function probeMongodb(url: string, timeoutMs: number): Promise<void> {
  const { MongoClient } = await import("mongodb");
  const client = new MongoClient(url, {
    serverSelectionTimeoutMS: timeoutMs,
    connectTimeoutMS: timeoutMs,
    socketTimeoutMS: timeoutMs,
  });
  try {
    await withDeadline(timeoutMs, client.db().command({ ping: 1 }));
  } finally {
    await withDeadline(1_000, client.close(true)).catch(() => undefined);
  }
}

const SPECS: Readonly<Record<BackendName, BackendSpec>> = {
  redis: {
    probe: probeRedis,
    startContainer: async () => {
      const image = "redis:7-alpine";
      const { RedisContainer } = await import("@testcontainers/redis");
      const container = await new RedisContainer(image).start();
      return {
        url: container.getConnectionUrl(),
        image,
        stop: async () => void (await container.stop()),
      };
    },
  },
  postgres: {
    probe: probePostgres,
    startContainer: async () => {
      const image = "postgres:16-alpine";
      const { PostgreSqlContainer } = await import("@testcontainers/postgresql");
      const container = await new PostgreSqlContainer(image).withDatabase("test").start();
      return {
        url: container.getConnectionUri(),
        image,
        stop: async () => void (await container.stop()),
      };
    },
  },
  mysql: {
    probe: probeMysql,
    startContainer: async () => {
      const image = "mariadb:11";
      const { MariaDbContainer } = await import("@testcontainers/mariadb");
      const container = await new MariaDbContainer(image).withDatabase("test").start();
      // The module builds a mariadb:// URL; mysql2 and the tests expect mysql://.
      const url = container.getConnectionUri(true).replace(/^mariadb:/, "mysql:");
      return { url, image, stop: async () => void (await container.stop()) };
    },
  },
  mongodb: {
    probe: probeMongodb,
    startContainer: async () => {
      const image = "mongo:7";
      const { MongoDBContainer } = await import("@testcontainers/mongodb");
      const container = await new MongoDBContainer(image).start();
      const url = `${container.getConnectionString()}/test?directConnection=true`;
      return { url, image, stop: async () => void (await container.stop()) };
    },
  },
};

/** The URL with any password masked, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === "") return url;
    parsed.password = "***";
    return parsed.toString();
  } catch {
    return url;
  }
}

function findErrorCode(error: unknown, depth = 0): string | undefined {
  if (depth > 4 || typeof error !== "object" || error === null) return undefined;
  const { code, cause, errors } = error as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return code;
  for (const inner of [cause, ...(Array.isArray(errors) ? errors : [])]) {
    const found = findErrorCode(inner, depth + 1);
    if (found !== undefined) return found;
  }
  const message = error instanceof Error ? error.message : "";
  return /\b(E(?:CONNREFUSED|CONNRESET|HOSTUNREACH|NETUNREACH|NOTFOUND|TIMEDOUT|PIPE|ACCES|NOENT))\b/.exec(
    message,
  )?.[1];
}

/** A short, stable description of why a connection attempt failed. */
export function describeFailure(error: unknown, timeoutMs: number): string {
  if (error instanceof DeadlineError) return error.message;
  const message = error instanceof Error ? error.message || error.name : String(error);
  const code = findErrorCode(error);
  if (code === "ECONNREFUSED") return "refused (ECONNREFUSED)";
  if (code === "ETIMEDOUT" || /timed? ?out|timeout/i.test(message)) {
    return `timed out after ${timeoutMs} ms (${message})`;
  }
  return code !== undefined && !message.includes(code)
    ? `failed (${code}): ${message}`
    : `failed: ${message}`;
}

/** Connects to `url` with the backend's real driver and runs a trivial command, within `timeoutMs`. */
export async function probeService(
  name: BackendName,
  url: string,
  timeoutMs: number = DEFAULT_PROBE_TIMEOUT_MS,
): Promise<ProbeOutcome> {
  try {
    new URL(url);
  } catch {
    return { ok: false, reason: "is not a valid URL" };
  }
  try {
    await SPECS[name].probe(url, timeoutMs);
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: describeFailure(error, timeoutMs) };
  }
}

/**
 * Which backends `HASP_BACKENDS` selects (all when unset or empty). Unknown names throw, since a
 * typo would otherwise silently skip every test of a backend.
 */
export function selectBackends(env: Env): {
  readonly selected: readonly BackendName[];
  readonly filter: string | undefined;
} {
  const filter = env.HASP_BACKENDS?.trim();
  if (filter === undefined || filter === "") return { selected: BACKENDS, filter: undefined };
  const names = filter
    .split(",")
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== "");
  const unknown = names.filter((name) => !(BACKENDS as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new Error(
      `HASP_BACKENDS=${filter} names unknown backend(s) ${unknown.join(", ")}; known: ${BACKENDS.join(", ")}`,
    );
  }
  return { selected: BACKENDS.filter((name) => names.includes(name)), filter };
}

/** Whether `CI` is set to a true-ish value (`CI=false` and `CI=0` are not CI). */
export function isCi(env: Env): boolean {
  const value = env.CI?.trim().toLowerCase();
  return value !== undefined && value !== "" && value !== "false" && value !== "0";
}

/** One line: the backend, then each attempt and its outcome. */
export function summarizeResolution(resolution: ServiceResolution): string {
  return `${resolution.name}: ${resolution.attempts.join("; ")}`;
}

function pingDocker(endpoint: string, timeoutMs: number): Promise<void> {
  const target = endpoint.startsWith("unix://")
    ? { socketPath: endpoint.slice("unix://".length) }
    : (() => {
        const parsed = new URL(endpoint.replace(/^tcp:/, "http:"));
        return { host: parsed.hostname, port: Number(parsed.port || 2375) };
      })();
  const req = request({ ...target, path: "/_ping", method: "GET", agent: false });
  const answered = new Promise<void>((resolve, reject) => {
    req.on("error", reject);
    // Any HTTP answer means an engine listens (a TLS-only one answers 400); testcontainers does the rest.
    req.on("response", (response) => {
      response.resume();
      resolve();
    });
  });
  req.end();
  return withDeadline(timeoutMs, answered).finally(() => req.destroy());
}

/**
 * Looks for a Docker engine the way testcontainers does (DOCKER_HOST, then the usual sockets) and
 * pings it, within `timeoutMs`. Never loads testcontainers.
 */
export async function detectDocker(
  env: Env,
  timeoutMs: number = DEFAULT_PROBE_TIMEOUT_MS,
): Promise<DockerStatus> {
  const dockerHost = env.DOCKER_HOST?.trim();
  let endpoints: string[];
  if (dockerHost !== undefined && dockerHost !== "") {
    if (!/^(unix|tcp):\/\//.test(dockerHost)) {
      return {
        available: false,
        reason: `no Docker engine (DOCKER_HOST=${dockerHost} unsupported)`,
      };
    }
    endpoints = [dockerHost];
  } else {
    const sockets = [
      "/var/run/docker.sock",
      env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, "docker.sock") : undefined,
      join(homedir(), ".docker", "run", "docker.sock"),
      join(homedir(), ".docker", "desktop", "docker.sock"),
      join("/run", "user", String(userInfo().uid), "docker.sock"),
    ];
    endpoints = sockets
      .filter((path): path is string => path !== undefined && existsSync(path))
      .map((path) => `unix://${path}`);
    if (endpoints.length === 0) return { available: false, reason: "no Docker engine" };
  }
  const failures: string[] = [];
  for (const endpoint of endpoints) {
    try {
      await pingDocker(endpoint, timeoutMs);
      return { available: true, endpoint };
    } catch (error) {
      failures.push(`${endpoint} ${describeFailure(error, timeoutMs)}`);
    }
  }
  return { available: false, reason: `no Docker engine (${failures.join(", ")})` };
}

async function resolveOne(
  name: BackendName,
  env: Env,
  defaultUrl: string,
  timeoutMs: number,
  containerTimeoutMs: number,
  docker: () => Promise<DockerStatus>,
  started: StartedService[],
): Promise<ServiceResolution> {
  const spec = SPECS[name];
  const envVar = URL_VARIABLES[name];
  const attempts: string[] = [];
  const resolved = (url: string, source: ServiceResolution["source"]): ServiceResolution => ({
    name,
    status: "resolved",
    url,
    source,
    attempts,
  });
  const missing = (): ServiceResolution => ({
    name,
    status: "missing",
    url: undefined,
    source: undefined,
    attempts,
  });

  const fromEnv = env[envVar]?.trim();
  if (fromEnv !== undefined && fromEnv !== "") {
    const outcome = await probeService(name, fromEnv, timeoutMs);
    attempts.push(`${envVar}=${redactUrl(fromEnv)} ${outcome.ok ? "answered" : outcome.reason}`);
    return outcome.ok ? resolved(fromEnv, "env") : missing();
  }
  attempts.push(`${envVar} unset`);

  const local = await probeService(name, defaultUrl, timeoutMs);
  attempts.push(`${redactUrl(defaultUrl)} ${local.ok ? "answered" : local.reason}`);
  if (local.ok) return resolved(defaultUrl, "default");

  const status = await docker();
  if (!status.available) {
    attempts.push(status.reason);
    return missing();
  }
  let service: StartedService;
  const starting = spec.startContainer();
  try {
    service = await withDeadline(containerTimeoutMs, starting);
  } catch (error) {
    // A container that comes up after the deadline is stopped rather than left running.
    starting.then((late) => late.stop()).catch(() => undefined);
    attempts.push(
      `container on ${status.endpoint} did not start: ${describeFailure(error, containerTimeoutMs)}`,
    );
    return missing();
  }
  started.push(service);
  const outcome = await probeService(name, service.url, timeoutMs);
  attempts.push(
    `${service.image} container at ${redactUrl(service.url)} ${outcome.ok ? "answered" : outcome.reason}`,
  );
  return outcome.ok ? resolved(service.url, "container") : missing();
}

/** Resolves every selected backend (concurrently; each at most once). */
export async function resolveServices(
  settings: ResolveServicesSettings,
): Promise<ServiceResolutions> {
  const { env } = settings;
  const timeoutMs = settings.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const containerTimeoutMs = settings.containerTimeoutMs ?? DEFAULT_CONTAINER_TIMEOUT_MS;
  const { selected, filter } = selectBackends(env);

  let dockerStatus: Promise<DockerStatus> | undefined;
  const docker = () => {
    dockerStatus ??= (settings.detectDocker ?? (() => detectDocker(env, timeoutMs)))();
    return dockerStatus;
  };
  const started: StartedService[] = [];
  const stop = async () => {
    const services = started.splice(0);
    await Promise.allSettled(services.map((service) => service.stop()));
  };

  const entries = await Promise.all(
    BACKENDS.map(async (name): Promise<[BackendName, ServiceResolution]> => {
      if (!selected.includes(name)) {
        return [
          name,
          {
            name,
            status: "filtered-out",
            url: undefined,
            source: undefined,
            attempts: [`filtered out by HASP_BACKENDS=${filter}`],
          },
        ];
      }
      const defaultUrl = settings.defaultUrls?.[name] ?? DEFAULT_URLS[name];
      return [
        name,
        await resolveOne(name, env, defaultUrl, timeoutMs, containerTimeoutMs, docker, started),
      ];
    }),
  );
  return { services: Object.fromEntries(entries) as Record<BackendName, ServiceResolution>, stop };
}
