// The message a PostgreSQL release sends to the claim it handed the key to, on that claim's
// adapter's inbox, written once here for the trigger (SQL) and the inbox (TypeScript):
//
//   "<wait id>:<token>:<start ms>:<mac>"
//
// - start: when the hold began, in ms of the server's clock (floored);
// - mac: hex SHA-256 of "<secret>:" and the hex SHA-256 of "<secret>:<wait id>:<token>:<start>",
//   where the secret is the adapter's, kept in the table's "<table>:inboxes" (inbox, secret).
//
// NOTIFY needs no privilege, and a role that may read the lock table learns every inbox and wait
// id from `waiters`; one that LISTENs on an inbox hears its grants. The secret is in neither: it
// never travels, and it is not in the lock table, so only a role that may read "<table>:inboxes"
// (or write the lock table) can make a grant the waiter believes. A grant heard again names a wait
// that has ended (a wait is granted once; an adapter's wait ids are never reused, and a new
// adapter has a new inbox and secret). A wake-up (a wait without a claim) is "<wait id>" alone,
// and so is a grant to an inbox without a secret: the waiter then asks `check`.

import { createHash, timingSafeEqual } from "node:crypto";
import type { HeardGrant } from "../../wait-queue/wait-queue.js";

/** A message heard on an inbox: the wait it names, and the grant it proves (if it does). */
export type GrantMessage = { readonly waitId: string; readonly grant?: HeardGrant };

const GRANT = /^([0-9a-z]+):([1-9][0-9]{0,15}):([0-9]{1,16}):([0-9a-f]{64})$/;

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** The message's mac of `body` ("<wait id>:<token>:<start ms>") under `secret`. */
function mac(secret: string, body: string): string {
  return sha256(`${secret}:${sha256(`${secret}:${body}`)}`);
}

/** A wake-up: the wait id alone. */
const WAKE_UP = /^[0-9a-z]+$/;

/**
 * Reads a message heard on the inbox whose secret is `secret`: a grant only when its mac is
 * right (a wrong one only wakes the wait it names, which then asks the table); `undefined` when
 * it is neither a grant's shape nor a wake-up's.
 */
export function readGrantMessage(payload: string, secret: string): GrantMessage | undefined {
  const match = GRANT.exec(payload);
  if (match === null) {
    return WAKE_UP.test(payload) ? { waitId: payload } : undefined;
  }
  const [, waitId = "", token = "", start = "", heard = ""] = match;
  const expected = mac(secret, `${waitId}:${token}:${start}`);
  if (!timingSafeEqual(Buffer.from(heard), Buffer.from(expected))) {
    return { waitId };
  }
  const fencingToken = Number(token);
  if (!Number.isSafeInteger(fencingToken)) {
    return { waitId };
  }
  return { waitId, grant: { fencingToken, startedAtMs: Number(start) } };
}

/**
 * PL/pgSQL: the message to the claim granted by the trigger, from its `waitId`, `token`,
 * `startMs` (expressions) and `secret` (the inbox's, NULL: none, send the wait id alone).
 */
export function grantMessageSql(grant: {
  waitId: string;
  token: string;
  startMs: string;
  secret: string;
}): string {
  const body = `${grant.waitId} || ':' || ${grant.token} || ':' || ${grant.startMs}`;
  const hash = (text: string) => `encode(sha256(convert_to(${text}, 'UTF8')), 'hex')`;
  const signed = `${body} || ':' || ${hash(`${grant.secret} || ':' || ${hash(`${grant.secret} || ':' || ${body}`)}`)}`;
  return `coalesce(${signed}, ${grant.waitId})`;
}
