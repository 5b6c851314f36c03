import type { AdapterListener, IEventBusAdapter } from "../../event-bus-contracts.js";

/**
 * An in-process event bus transport. Payloads are handed over by reference: listeners see
 * the very object dispatched. Channels with no listener left are dropped, so nothing leaks.
 */
export class MemoryEventBusAdapter implements IEventBusAdapter {
  readonly #channels = new Map<string, Set<AdapterListener>>();

  async addListener(channel: string, listener: AdapterListener): Promise<void> {
    let listeners = this.#channels.get(channel);
    if (listeners === undefined) {
      listeners = new Set();
      this.#channels.set(channel, listeners);
    }
    listeners.add(listener);
  }

  async removeListener(channel: string, listener: AdapterListener): Promise<void> {
    const listeners = this.#channels.get(channel);
    listeners?.delete(listener);
    if (listeners?.size === 0) {
      this.#channels.delete(channel);
    }
  }

  async dispatch(channel: string, payload: unknown): Promise<void> {
    // A copy: a listener that removes itself (or adds another) does not disturb this round.
    for (const listener of [...(this.#channels.get(channel) ?? [])]) {
      listener(payload);
    }
  }
}
