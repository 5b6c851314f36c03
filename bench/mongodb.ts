// The MongoDB side of the bench: loopback only, resolved the way the test harness does it
// (MONGODB_URL when set, else 127.0.0.1:27017), a client per subject client with a command
// counter, and the clean-up of a child's collections.

import { type Db, MongoClient } from "mongodb";
import type { Counters } from "./types.js";

const CONNECT_TIMEOUT_MS = 2_000;
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);
/** The database every MongoDB subject writes its collections in. */
const DATABASE = "hasp_bench";
/** The driver's own traffic (monitoring, sessions), not the subject's. */
const NOT_COUNTED = new Set(["hello", "ismaster", "ping", "endsessions", "buildinfo"]);

export type MongodbProbe =
  | { found: true; url: string; version: string }
  | { found: false; url: string; reason: string };

/**
 * A client for a bench subject (pool of 10, as the SQL subjects'), counting every command it
 * sends in `counters` when given; the caller closes it.
 */
export function createMongoClient(url: string, counters?: Counters): MongoClient {
  const client = new MongoClient(url, {
    maxPoolSize: 10,
    serverSelectionTimeoutMS: CONNECT_TIMEOUT_MS,
    monitorCommands: counters !== undefined,
  });
  if (counters !== undefined) {
    client.on("commandStarted", (event) => {
      const name = event.commandName.toLowerCase();
      if (!NOT_COUNTED.has(name)) {
        counters.commands += 1;
        counters.byCommand[name] = (counters.byCommand[name] ?? 0) + 1;
      }
    });
  }
  return client;
}

/** The bench's database on `client`. */
export function benchDatabase(client: MongoClient) {
  return client.db(DATABASE);
}

/** Where MongoDB is, and whether it answers within 2 s. Only loopback addresses are accepted. */
export async function probeMongodb(): Promise<MongodbProbe> {
  const url = process.env.MONGODB_URL ?? "mongodb://127.0.0.1:27017";
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return { found: false, url, reason: "MONGODB_URL is not a URL" };
  }
  if (!LOOPBACK_HOSTS.has(host)) {
    return {
      found: false,
      url,
      reason: `${host} is not loopback; the bench measures loopback only`,
    };
  }
  const client = createMongoClient(url);
  try {
    const info = await client.db("admin").command({ buildInfo: 1 });
    return { found: true, url, version: `MongoDB ${String(info.version)}` };
  } catch (error) {
    return { found: false, url, reason: error instanceof Error ? error.message : String(error) };
  } finally {
    await client.close().catch(() => {});
  }
}

/** Drops the collections whose name starts with `prefix` (what a child left behind). */
export async function dropCollectionsStartingWith(url: string, prefix: string): Promise<void> {
  const client = createMongoClient(url);
  try {
    const database = benchDatabase(client);
    const collections = await database.listCollections({}, { nameOnly: true }).toArray();
    await Promise.all(
      collections
        .filter((collection) => collection.name.startsWith(prefix))
        .map((collection) => database.dropCollection(collection.name)),
    );
  } finally {
    await client.close();
  }
}

/** Creates a collection unless it exists (error 48, NamespaceExists). */
export async function createCollection(database: Db, name: string): Promise<void> {
  await database.createCollection(name).catch((error: unknown) => {
    if ((error as { code?: unknown } | null)?.code !== 48) {
      throw error;
    }
  });
}
