import { InvalidArgumentError } from "../errors/invalid-argument-error.js";
import type { EventListener, IEventBus, Unsubscribe } from "../event-bus/event-bus-contracts.js";
import { createKey, type IKey, type INamespace } from "../namespace/namespace.js";
import { storedStringProblem } from "../namespace/stored-string-problem.js";
import { OWNER_ID_LENGTH, randomOwnerHex } from "../primitive/owner.js";
import { codePoints, MAX_PROVEN_ID_LENGTH } from "../primitive/primitive-settings.js";
import { ProviderCore } from "../primitive/provider-core.js";
import type { ProviderEvents } from "../primitive/provider-events.js";
import type { ISerdeRegister } from "../serde/serde-contracts.js";
import { parseSettings } from "../settings/parse-settings.js";
import type { Task } from "../task/task.js";
import type { ITimeSpan, TimeSpan } from "../time-span/time-span.js";
import type { ILock, LockIdFactory } from "./contracts/lock.js";
import type { ILockAdapter } from "./contracts/lock-adapter.js";
import { LOCK_EVENTS, type LockEventMap } from "./contracts/lock-events.js";
import type {
  ILockListenable,
  ILockProvider,
  LockCreateSettings,
} from "./contracts/lock-provider.js";
import { Lock } from "./lock.js";
import type { LockContext } from "./lock-context.js";
import { LockReporter } from "./lock-reporter.js";
import { REPLACES_PROVIDER, registerLockProvider } from "./lock-serde-transformer.js";
import {
  LOCK_DEFAULTS,
  lockCreateSettingsSchema,
  lockProviderSettingsSchema,
} from "./lock-settings.js";

/**
 * A fresh generated owner: a public id and a secret proof (see `randomOwnerHex`). The adapter
 * stores the credential `id.proof`; what others are shown of it is the id (`publicOwner`), which
 * is not enough to act as the owner.
 */
function newLock(context: LockContext, key: IKey, ttl: TimeSpan | null, givenId?: string): Lock {
  const hex = randomOwnerHex();
  const id = givenId ?? hex.slice(0, OWNER_ID_LENGTH);
  return new Lock(context, key, `${id}.${hex.slice(OWNER_ID_LENGTH)}`, ttl, id);
}

/**
 * The public id `createLockId` made, checked: it is stored (with the proof) as the owner, so it
 * must be a string a backend stores as it is, short enough for the credential to fit.
 */
function createdLockId(createLockId: LockIdFactory): string {
  const id: unknown = typeof createLockId === "function" ? createLockId() : createLockId.invoke();
  const problem = lockIdProblem(id);
  if (problem !== undefined) {
    throw new InvalidArgumentError(
      `LockProvider settings: createLockId ${problem}, got ${typeof id === "string" ? JSON.stringify(id) : String(id)}`,
      [{ path: "createLockId", message: problem }],
    );
  }
  return id as string;
}

function lockIdProblem(id: unknown): string | undefined {
  if (typeof id !== "string") {
    return "must return a string";
  }
  if (id.length === 0) {
    return "must not return an empty string";
  }
  if (codePoints(id) > MAX_PROVEN_ID_LENGTH) {
    return `must return at most ${MAX_PROVEN_ID_LENGTH} characters`;
  }
  return storedStringProblem(id);
}

/** `providerId`, or daiso-core's `serdeTransformerName` for it, or the namespace. */
function providerIdOf(settings: {
  providerId?: string | undefined;
  serdeTransformerName?: string | undefined;
  namespace: INamespace;
}): string {
  const { providerId, namespace } = settings;
  const serdeTransformerName = settings.serdeTransformerName || undefined;
  if (
    providerId !== undefined &&
    serdeTransformerName !== undefined &&
    providerId !== serdeTransformerName
  ) {
    throw new InvalidArgumentError(
      `LockProvider settings: providerId ("${providerId}") and serdeTransformerName ("${serdeTransformerName}") name the same thing differently; give one of them`,
      [{ path: "serdeTransformerName", message: "must equal providerId when both are given" }],
    );
  }
  return providerId ?? serdeTransformerName ?? namespace.toString();
}

/** Settings of {@link LockProvider}, validated once by its constructor. */
export type LockProviderSettings = {
  /** Where locks live: `MemoryLockAdapter`, `RedisLockAdapter`, `KyselyLockAdapter`, … */
  adapter: ILockAdapter;
  /**
   * Prefixes every key, so that providers with different namespaces never contend. Any object
   * with `create(key)` and `toString()` (daiso-core's `Namespace`) works too; the keys it makes
   * are checked like hasp's own.
   * @default new Namespace(["hasp", "lock"])
   */
  namespace?: INamespace;
  /**
   * The TTL of locks created without one; `null`: they never expire.
   * @default 5 minutes
   */
  defaultTtl?: ITimeSpan | null;
  /**
   * How long blocking acquires keep trying when not told.
   * @default 1 minute
   */
  defaultBlockingTime?: ITimeSpan;
  /**
   * The pause between blocking attempts when the adapter cannot signal a release.
   * @default 100 ms
   */
  defaultBlockingInterval?: ITimeSpan;
  /**
   * Serdes on which to register this provider's locks, so `serde.serialize(lock)` and a lock
   * inside an event payload cross process boundaries. Give every process the same settings.
   * @default none: the locks cannot be serialized
   */
  serde?: ISerdeRegister | ISerdeRegister[];
  /**
   * Where lock events are dispatched and listened to.
   * @default an in-process bus (`MemoryEventBusAdapter`)
   */
  eventBus?: IEventBus<LockEventMap>;
  /**
   * Tells this provider's locks apart from another provider's on a shared serde. Processes
   * that hand locks to each other must agree on it.
   * @default `serdeTransformerName` when given, else the namespace, as a string
   */
  providerId?: string;
  /**
   * daiso-core's name for `providerId`; an empty string (daiso's default) means "not given".
   * Give one or the other, or both alike.
   * @default ""
   */
  serdeTransformerName?: string;
  /**
   * Makes the public id (`lock.id`) of each lock created without a `lockId`: a function, or an
   * object with `invoke()`. Each lock still gets its own secret proof, so the id names the owner
   * without being able to act as it, and two locks given the same id are still two owners (give
   * both the same `lockId` to share a hold). It must return a non-empty string of at most 222
   * characters, well-formed UTF-16 without NUL; `create` throws `InvalidArgumentError` otherwise.
   * @default 128 random bits as 32 hex digits
   */
  createLockId?: LockIdFactory;
  /**
   * The TTL that `refresh()` and `refreshOrFail()` give when called without one. `run*`'s
   * keep-alive always refreshes with the lock's own TTL.
   * @default the lock's own TTL
   */
  defaultRefreshTime?: ITimeSpan;
};

/**
 * Creates locks on one adapter, and is the place to listen to their events.
 *
 * @example
 * const provider = new LockProvider({ adapter: new MemoryLockAdapter(), defaultTtl: TimeSpan.fromSeconds(30) });
 * const lock = provider.create("order:42");
 * await lock.runOrFail(async ({ fencingToken }) => chargeOrder(42, fencingToken));
 */
export class LockProvider implements ILockProvider {
  readonly #context: LockContext;
  readonly #namespace: INamespace;
  readonly #createLockId: LockIdFactory | undefined;
  readonly #defaultTtl: TimeSpan | null;
  readonly #events: ProviderEvents<LockEventMap>;
  readonly #providerId: string;
  readonly #core: ProviderCore<ILockAdapter, LockEventMap, LockReporter>;
  /** Listening only: the provider's own listening methods, without `create` and `close`. */
  readonly events: ILockListenable;

  /** @throws InvalidArgumentError on bad settings, or a provider id already taken on a serde. */
  constructor(settings: LockProviderSettings) {
    const parsed = parseSettings("LockProvider settings", lockProviderSettingsSchema, settings);
    this.#namespace = parsed.namespace;
    this.#defaultTtl = parsed.defaultTtl;
    this.#createLockId = parsed.createLockId;
    this.#providerId = providerIdOf(parsed);
    const replacing = (settings as { [REPLACES_PROVIDER]?: boolean })[REPLACES_PROVIDER] === true;
    this.#core = new ProviderCore({
      kind: "lock",
      names: Object.values(LOCK_EVENTS),
      fallback: LOCK_DEFAULTS.namespace,
      parsed,
      reporter: (bus, isListened, adapter) => new LockReporter(bus, isListened, adapter),
      register: (serde, provider) =>
        registerLockProvider(serde, this.#providerId, provider, replacing),
    });
    this.#context = this.#core.context;
    this.#events = this.#core.events;
    this.events = this.#events.listening;
  }

  /** The id under which this provider's locks are serialized. */
  get providerId(): string {
    return this.#providerId;
  }

  create(key: string, settings?: LockCreateSettings): ILock {
    if (settings === undefined) {
      // The common call: nothing to validate but the key (the namespace checks it).
      return this.#newLock(createKey(this.#namespace, key), this.#defaultTtl);
    }
    const parsed = parseSettings("lock settings", lockCreateSettingsSchema, settings);
    const ttl = parsed.ttl === undefined ? this.#defaultTtl : parsed.ttl;
    const namespaced = createKey(this.#namespace, key);
    // An explicit lock id is its own credential: it has no proof.
    return parsed.lockId === undefined
      ? this.#newLock(namespaced, ttl)
      : new Lock(this.#context, namespaced, parsed.lockId, ttl);
  }

  #newLock(key: IKey, ttl: TimeSpan | null): Lock {
    const createLockId = this.#createLockId;
    return newLock(
      this.#context,
      key,
      ttl,
      createLockId === undefined ? undefined : createdLockId(createLockId),
    );
  }

  addListener<TName extends keyof LockEventMap & string>(
    event: TName,
    listener: EventListener<LockEventMap[TName]>,
  ): Promise<void> {
    return this.#events.addListener(event, listener);
  }

  removeListener<TName extends keyof LockEventMap & string>(
    event: TName,
    listener: EventListener<LockEventMap[TName]>,
  ): Promise<void> {
    return this.#events.removeListener(event, listener);
  }

  listenOnce<TName extends keyof LockEventMap & string>(
    event: TName,
    listener: EventListener<LockEventMap[TName]>,
  ): Promise<void> {
    return this.#events.listenOnce(event, listener);
  }

  subscribe<TName extends keyof LockEventMap & string>(
    event: TName,
    listener: EventListener<LockEventMap[TName]>,
  ): Promise<Unsubscribe> {
    return this.#events.subscribe(event, listener);
  }

  subscribeOnce<TName extends keyof LockEventMap & string>(
    event: TName,
    listener: EventListener<LockEventMap[TName]>,
  ): Promise<Unsubscribe> {
    return this.#events.subscribeOnce(event, listener);
  }

  asPromise<TName extends keyof LockEventMap & string>(
    event: TName,
    options?: { signal?: AbortSignal },
  ): Promise<LockEventMap[TName]> {
    return this.#events.asPromise(event, options);
  }

  asTask<TName extends keyof LockEventMap & string>(event: TName): Task<LockEventMap[TName]> {
    return this.#events.asTask(event);
  }

  /**
   * Closes the event bus the provider made (when none was given), then the adapter's own
   * resources through its `close()`, if it has one. Your clients, Kysely instance, pools and
   * event bus stay open: they are yours. See `ILockProvider.close`.
   */
  close(): Promise<void> {
    return this.#core.close();
  }

  /** `close()`, for `await using provider = new LockProvider(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
