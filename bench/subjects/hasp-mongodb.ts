// hasp on MongoDB: `LockProvider` + `MongodbLockAdapter` over a driver client of its own per
// client (pool of 10, as the baseline's), its collection made by `init()` once. MongoDB has no
// release signal: blocking acquires poll at 10 ms, the baseline's interval.

import type { MongoClient } from "mongodb";
import { MongodbLockAdapter } from "../../src/lock/adapters/mongodb/index.js";
import { benchDatabase, createMongoClient, dropCollectionsStartingWith } from "../mongodb.js";
import type { SubjectDefinition } from "../types.js";
import { haspClient } from "./hasp.js";
import { POLL_MS } from "./polled-section.js";

export const haspMongodb: SubjectDefinition = {
  name: "hasp-mongodb",
  backend: "mongodb",
  baseline: false,
  description: `LockProvider + MongodbLockAdapter, a mongodb client (pool of 10) per client, ${POLL_MS} ms polling`,
  async setup(env) {
    const url = env.mongodbUrl;
    if (url === undefined) {
      throw new Error("hasp-mongodb needs MongoDB");
    }
    const name = `${env.tablePrefix}_hasp`;
    const clients: MongoClient[] = [];
    let created: Promise<void> | undefined;
    return {
      async connect() {
        const client = createMongoClient(url, env.counters);
        clients.push(client);
        const collection = benchDatabase(client).collection(name);
        const adapter = new MongodbLockAdapter({ collection });
        created ??= adapter.init();
        await created;
        return haspClient(adapter, env, POLL_MS);
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
