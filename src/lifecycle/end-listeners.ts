// One "end" listener per client, however many of hasp's adapters follow it: a connection an
// adapter duplicated from a client ends when that client ends (a process that quit its own
// client must exit), and EventEmitter warns from the eleventh listener of one event.

/** What following needs of a client: its "end" event (ioredis emits it once it will not reconnect). */
export type EndingClient = {
  once(event: "end", listener: () => void): unknown;
  removeListener(event: "end", listener: () => void): unknown;
};

/** Per client, who to tell when it ends, behind one "end" listener on it. */
const followed = new WeakMap<EndingClient, { followers: Set<() => void>; ended: () => void }>();

/** Calls `onEnd` once `client` ends; returns the function that stops following it. */
export function followEnd(client: EndingClient, onEnd: () => void): () => void {
  let entry = followed.get(client);
  if (entry === undefined) {
    const followers = new Set<() => void>();
    const ended = () => {
      followed.delete(client);
      for (const follower of [...followers]) {
        follower();
      }
    };
    client.once("end", ended);
    entry = { followers, ended };
    followed.set(client, entry);
  }
  const { followers, ended } = entry;
  followers.add(onEnd);
  return () => {
    followers.delete(onEnd);
    if (followers.size === 0 && followed.get(client) === entry) {
      client.removeListener("end", ended);
      followed.delete(client);
    }
  };
}
