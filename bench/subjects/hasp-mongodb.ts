// hasp on MongoDB: `LockProvider` + `MongodbLockAdapter` (and `SemaphoreProvider` +
// `MongodbSemaphoreAdapter`) over a driver client of its own per client (pool of 10, as the
// baseline's), each collection made by its `init()` once. MongoDB has no
// release signal: blocking acquires poll at 10 ms, the baseline's interval.

import type { MongoClient } from "mongodb";
import { MongodbLockAdapter } from "../../src/lock/adapters/mongodb/index.js";
import { MongodbSemaphoreAdapter } from "../../src/semaphore/adapters/mongodb/index.js";
import { benchDatabase, createMongoClient, dropCollectionsStartingWith } from "../mongodb.js";
import type { SubjectDefinition } from "../types.js";
import { haspClient } from "./hasp.js";
import { withSemaphore } from "./hasp-semaphore.js";
import { POLL_MS } from "./polled-section.js";

export const haspMongodb: SubjectDefinition = {
  name: "hasp-mongodb",
  backend: "mongodb",
  baseline: false,
  description: `LockProvider + MongodbLockAdapter, a mongodb client (pool of 10) per client, ${POLL_MS} ms polling`,
  semaphore: `SemaphoreProvider + MongodbSemaphoreAdapter on the same client: one findOneAndUpdate per acquire, ${POLL_MS} ms polling`,
  async setup(env) {
    const url = env.mongodbUrl;
    if (url === undefined) {
      throw new Error("hasp-mongodb needs MongoDB");
    }
    const name = `${env.tablePrefix}_hasp`;
    const clients: MongoClient[] = [];
    let created: Promise<void> | undefined;
    // Made once, before any slot is taken (the TTL index creates the collection).
    let semaphoresCreated: Promise<void> | undefined;
    const initSemaphores = (adapter: MongodbSemaphoreAdapter) => {
      semaphoresCreated ??= adapter.init();
      return semaphoresCreated;
    };
    return {
      async connect() {
        const client = createMongoClient(url, env.counters);
        clients.push(client);
        const collection = benchDatabase(client).collection(name);
        const adapter = new MongodbLockAdapter({ collection });
        created ??= adapter.init();
        await created;
        const semaphores = benchDatabase(client).collection(`${name}_semaphores`);
        return withSemaphore(
          haspClient(adapter, env, POLL_MS),
          async () => {
            const semaphoreAdapter = new MongodbSemaphoreAdapter({ collection: semaphores });
            await initSemaphores(semaphoreAdapter);
            return semaphoreAdapter;
          },
          env,
          POLL_MS,
        );
      },
      async close() {
        await Promise.all(clients.map((client) => client.close()));
        if (!env.keepTables) {
          await dropCollectionsStartingWith(url, name);
        }
      },
    };
  },
};
