import { expect, test } from "vitest";
import { redisHoldKey } from "../../src/lock/adapters/redis/redis-lock-adapter.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { describeWithBackend } from "../harness/backends.js";
import { contend, SECTIONS, WORKERS } from "./contend.js";

describeWithBackend("redis", (url) => {
  test(`${WORKERS} processes x ${SECTIONS} sections on one key: no lost update, increasing tokens, no overlap`, async () => {
    await contend({ store: "redis", target: url }, async (connection, { name, key }) => {
      // The hold is gone; its fencing counter outlives it by design.
      const hold = redisHoldKey(new Namespace(name).create(key).toString());
      expect(connection.store).toBe("redis");
      if (connection.store === "redis") {
        await connection.redis.del(hold, `${hold}:fence`);
      }
    });
  }, 60_000);
});
