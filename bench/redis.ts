// The Redis side of the bench: loopback only, resolved the way the test harness does it
// (REDIS_URL when set, else 127.0.0.1:6379), with a command counter on each client.

import { Redis } from "ioredis";
import type { Counters } from "./types.js";

const CONNECT_TIMEOUT_MS = 2_000;
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

export type RedisProbe =
  | { found: true; url: string; version: string }
  | { found: false; url: string; reason: string };

/** An ioredis client for a bench subject; the caller closes it. */
export function createRedisClient(url: string): Redis {
  return new Redis(url, { connectTimeout: CONNECT_TIMEOUT_MS, maxRetriesPerRequest: 1 });
}

/** The name a script was given with `defineCommand`, from ioredis's own registry. */
function scriptNames(client: Redis): Map<string, string> {
  const defined = (client as unknown as { scriptsSet?: Record<string, { sha?: string }> })
    .scriptsSet;
  return new Map(
    Object.entries(defined ?? {}).flatMap(([name, script]) =>
      script.sha === undefined ? [] : [[script.sha, name] as const],
    ),
  );
}

/**
 * Counts every command `client` sends from now on (EVALSHA, and the EVAL of a NOSCRIPT
 * fallback, each count once), in all and by name (`counters.byCommand`; EVALSHA also by script
 * name). A subscriber made with `duplicate()` is not counted.
 */
export function countCommands(client: Redis, counters: Counters): void {
  const send = client.sendCommand.bind(client);
  const { byCommand } = counters;
  let names = scriptNames(client);
  const tally = (name: string) => {
    byCommand[name] = (byCommand[name] ?? 0) + 1;
  };
  client.sendCommand = ((...args: Parameters<Redis["sendCommand"]>) => {
    counters.commands += 1;
    const [command] = args;
    const name = command.name.toLowerCase();
    tally(name);
    if (name === "evalsha") {
      const sha = String(command.args[0]);
      if (!names.has(sha)) {
        names = scriptNames(client);
      }
      tally(`evalsha ${names.get(sha) ?? sha.slice(0, 8)}`);
    }
    return send(...args);
  }) as Redis["sendCommand"];
}

/**
 * Counts in `counters.attempts` every command `client` sends that `isAttempt` recognizes: the
 * acquire attempts of a peer library that makes them inside its own retry loop.
 */
export function countAttempts(
  client: Redis,
  counters: Counters,
  isAttempt: (name: string, args: readonly unknown[]) => boolean,
): void {
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((...args: Parameters<Redis["sendCommand"]>) => {
    const [command] = args;
    if (isAttempt(command.name, command.args)) {
      counters.attempts += 1;
    }
    return send(...args);
  }) as Redis["sendCommand"];
}

/** Where Redis is, and whether it answers within 2 s. Only loopback addresses are accepted. */
export async function probeRedis(): Promise<RedisProbe> {
  const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return { found: false, url, reason: "REDIS_URL is not a URL" };
  }
  if (!LOOPBACK_HOSTS.has(host)) {
    return {
      found: false,
      url,
      reason: `${host} is not loopback; the bench measures loopback only`,
    };
  }
  const client = new Redis(url, {
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    lazyConnect: true,
  });
  let cause: Error | undefined;
  client.on("error", (error: Error) => {
    cause ??= error;
  });
  try {
    await client.connect();
    const info = await client.info("server");
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
    return { found: true, url, version };
  } catch (error) {
    const reason = cause?.message ?? (error instanceof Error ? error.message : String(error));
    return { found: false, url, reason };
  } finally {
    client.disconnect();
  }
}

/** Deletes every key whose name contains `fragment` (SCAN + UNLINK, never FLUSHDB). */
export async function deleteKeysContaining(url: string, fragment: string): Promise<number> {
  const client = createRedisClient(url);
  let deleted = 0;
  try {
    let cursor = "0";
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `*${fragment}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) {
        deleted += await client.unlink(...keys);
      }
    } while (cursor !== "0");
  } finally {
    await client.quit();
  }
  return deleted;
}
