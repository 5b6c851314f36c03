// The format of a queued wait's entry (src/backends/wait-queue/wait-entry.ts): encoded and
// decoded in TypeScript, and read and written by its Lua (Redis) and SQL (PostgreSQL) fragments,
// which must agree with it.
import type { Redis } from "ioredis";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  claimFields,
  decodeWaitEntry,
  encodeWaitEntry,
  NO_CLAIM,
  WAIT_ENTRY_LUA,
  WAIT_ENTRY_SQL,
  type WaitEntry,
} from "../../src/backends/wait-queue/wait-entry.js";
import { defineRedisLockCommands } from "../../src/lock/adapters/redis/redis-lock-commands.js";
import {
  createPgPool,
  createRedisClient,
  describeWithBackend,
  uniqueName,
} from "../harness/backends.js";

const ENTRIES: readonly WaitEntry[] = [
  {
    deadlineMs: 1_765_000_000_123,
    claim: { owner: "lock-1", ttlMs: 30_000 },
    inbox: "hasp-lock-inbox-ab12",
    waitId: "7",
  },
  { deadlineMs: 5, claim: { owner: "tenant:job:42", ttlMs: null }, inbox: "i", waitId: "z" },
  { deadlineMs: 1_765_000_000_000, claim: null, inbox: "hasp_inbox_cd34", waitId: "1a" },
  {
    deadlineMs: 9,
    claim: { owner: "slot:a", ttlMs: 1_000, limit: 4 },
    inbox: "hasp-inbox-ef56",
    waitId: "b",
  },
  { deadlineMs: 10, claim: { owner: "", ttlMs: null, limit: 12 }, inbox: "i", waitId: "c" },
];

describe("wait entry", () => {
  test("an entry reads back as it was written, an owner holding ':' included", () => {
    for (const entry of ENTRIES) {
      expect(decodeWaitEntry(encodeWaitEntry(entry))).toEqual(entry);
    }
    expect(encodeWaitEntry(ENTRIES[1] as WaitEntry)).toBe("5::i:z::tenant:job:42");
    expect(encodeWaitEntry(ENTRIES[2] as WaitEntry)).toBe("1765000000000:-:hasp_inbox_cd34:1a::");
    expect(encodeWaitEntry(ENTRIES[3] as WaitEntry)).toBe("9:1000:hasp-inbox-ef56:b:4:slot:a");
  });

  test("a claim's fields: its ttl in ms, empty when its hold never expires, '-' without a claim", () => {
    expect(claimFields({ owner: "a", ttlMs: 250 })).toEqual({ owner: "a", ttl: "250", limit: "" });
    expect(claimFields({ owner: "a", ttlMs: null })).toEqual({ owner: "a", ttl: "", limit: "" });
    expect(claimFields({ owner: "a", ttlMs: 5, limit: 3 })).toEqual({
      owner: "a",
      ttl: "5",
      limit: "3",
    });
    expect(claimFields(null)).toEqual(NO_CLAIM);
  });

  test("text that is not an entry decodes to undefined", () => {
    for (const text of [
      "",
      "12",
      "12:5:inbox",
      "12:5:inbox:id",
      "x:5:inbox:id::owner",
      "12:5s:inbox:id::owner",
      "12:5:inbox:id:4x:owner",
    ]) {
      expect(decodeWaitEntry(text)).toBeUndefined();
    }
  });
});

describeWithBackend("redis", (url) => {
  let client: Redis;
  beforeAll(() => {
    client = createRedisClient(url);
  });
  afterAll(async () => {
    await client.quit();
  });

  test("the Lua fragments read an entry's fields as TypeScript wrote them", async () => {
    const script = `local entry = ARGV[1]
${WAIT_ENTRY_LUA.findDeadline}
local deadline = ${WAIT_ENTRY_LUA.deadline}
${WAIT_ENTRY_LUA.readFields}
local claim = ${WAIT_ENTRY_LUA.noClaim("ttl")} and 'none'
  or (${WAIT_ENTRY_LUA.neverExpires("ttl")} and 'forever' or 'ttl')
return {string.format('%.0f', deadline), claim, ttl, inbox, wait, ${WAIT_ENTRY_LUA.limit},
  ${WAIT_ENTRY_LUA.owner}}`;
    for (const entry of ENTRIES) {
      const reply = await client.eval(script, 0, encodeWaitEntry(entry));
      const { owner, ttl, limit } = claimFields(entry.claim);
      const claim = entry.claim === null ? "none" : entry.claim.ttlMs === null ? "forever" : "ttl";
      expect(reply).toEqual([
        String(entry.deadlineMs),
        claim,
        ttl,
        entry.inbox,
        entry.waitId,
        limit,
        owner,
      ]);
    }
  });

  test("the Lua encoder writes what TypeScript reads, with a limit or without", async () => {
    for (const entry of ENTRIES) {
      const { owner, ttl, limit } = claimFields(entry.claim);
      const withLimit = limit !== "";
      const script = `return ${WAIT_ENTRY_LUA.encode("tonumber(ARGV[1])", {
        ttl: "ARGV[2]",
        inbox: "ARGV[3]",
        id: "ARGV[4]",
        owner: "ARGV[5]",
        ...(withLimit ? { limit: "ARGV[6]" } : {}),
      })}`;
      const args = [String(entry.deadlineMs), ttl, entry.inbox, entry.waitId, owner, limit];
      const written = await client.eval(script, 0, ...args);
      expect(decodeWaitEntry(String(written))).toEqual(entry);
    }
  });

  test("the entry WAIT_SCRIPT queues decodes to the wait's claim, inbox and id", async () => {
    const commands = defineRedisLockCommands(client);
    const hold = `{${uniqueName("entry")}}`;
    const keys = [hold, `${hold}:fence`, `${hold}:queue`] as const;
    try {
      await commands.hasp_lock_acquire(keys[0], keys[1], "holder", "60000");
      const before = Date.now();
      const reply = await commands.hasp_lock_wait(...keys, "a:b", "500", "1000", "inbox-x", "9");
      if (typeof reply === "number") {
        throw new Error(`the key was not held: ${reply}`);
      }
      const decoded = decodeWaitEntry(reply[0]);
      expect(decoded).toMatchObject({
        claim: { owner: "a:b", ttlMs: 500 },
        inbox: "inbox-x",
        waitId: "9",
      });
      expect(decoded?.deadlineMs).toBeGreaterThanOrEqual(before);
      expect(decoded?.deadlineMs).toBeLessThanOrEqual(Date.now() + 1_000 + 1_000);
    } finally {
      await client.del(...keys);
    }
  });
});

describeWithBackend("postgres", (url) => {
  let pool: pg.Pool;
  beforeAll(() => {
    pool = createPgPool(url);
  });
  afterAll(async () => {
    await pool.end();
  });

  /** A fragment's named parameters as pg's numbered ones. */
  const numbered = (sql: string) =>
    sql
      .replaceAll(":ttl", "$1::text")
      .replaceAll(":inbox", "$2::text")
      .replaceAll(":id", "$3::text")
      .replaceAll(":entry", "$4::text")
      .replaceAll(":limit", "$6::text");

  test("the SQL fragments write an entry TypeScript reads, and read one it wrote", async () => {
    for (const entry of ENTRIES) {
      const text = encodeWaitEntry(entry);
      const { owner, ttl, limit } = claimFields(entry.claim);
      const fields = WAIT_ENTRY_SQL.fields("parts");
      const encoded =
        limit === ""
          ? WAIT_ENTRY_SQL.encode(String(entry.deadlineMs), "$5::text")
          : WAIT_ENTRY_SQL.encode(String(entry.deadlineMs), "$5::text", ":limit");
      const { rows } = await pool.query<Record<string, unknown>>(
        numbered(`SELECT ${encoded} AS written, ${fields.limit} AS claim_limit,
  ${WAIT_ENTRY_SQL.renewed("7")} AS renewed,
  ${WAIT_ENTRY_SQL.mine("ARRAY['1:x:y:z:', $4::text]")} AS mine,
  ${fields.deadlineMs} AS deadline, ${fields.noClaim} AS no_claim,
  CASE WHEN ${fields.noClaim} THEN NULL ELSE ${fields.ttlMs} END AS ttl_ms,
  ${fields.inbox} AS inbox, ${fields.waitId} AS wait_id, ${fields.owner} AS owner
FROM (SELECT ${WAIT_ENTRY_SQL.split("$4::text")} AS parts) AS entry`),
        [ttl, entry.inbox, entry.waitId, text, owner, ...(limit === "" ? [] : [limit])],
      );
      const row = rows[0];
      expect(decodeWaitEntry(String(row?.written))).toEqual(entry);
      expect(decodeWaitEntry(String(row?.renewed))).toEqual({ ...entry, deadlineMs: 7 });
      expect(row?.mine).toBe(text);
      expect(row).toMatchObject({
        deadline: String(entry.deadlineMs),
        no_claim: entry.claim === null,
        inbox: entry.inbox,
        wait_id: entry.waitId,
        claim_limit: limit === "" ? null : Number(limit),
        owner,
      });
      if (entry.claim !== null) {
        expect(row?.ttl_ms).toBe(entry.claim.ttlMs === null ? null : String(entry.claim.ttlMs));
      }
    }
  });
});
