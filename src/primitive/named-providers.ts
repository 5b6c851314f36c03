// What every primitive's provider factory does alike: one provider per named adapter, made up
// front (so a bad setting fails at start-up), and the choice of one by name or by default.

import { InvalidArgumentError } from "../errors/invalid-argument-error.js";
import type { INamespace } from "../namespace/namespace.js";

/** A factory's providers by adapter name, and the default name (if any). */
export type NamedProviders<TProvider> = {
  readonly providers: ReadonlyMap<string, TProvider>;
  readonly defaultName: string | undefined;
};

/**
 * Makes a provider per adapter with `make`, after checking the names.
 *
 * @param factory The factory's class name (`"LockProviderFactory"`), for errors.
 * @throws InvalidArgumentError on no adapters, or a default that is not one of them.
 */
export function makeNamedProviders<TAdapter, TProvider>(
  factory: string,
  adapters: Readonly<Record<string, TAdapter>> | undefined,
  defaultAdapter: string | undefined,
  make: (name: string, adapter: TAdapter) => TProvider,
): NamedProviders<TProvider> {
  const names = Object.keys(adapters ?? {});
  if (adapters === undefined || names.length === 0) {
    throw new InvalidArgumentError(`${factory} settings: adapters: name at least one adapter`, [
      { path: "adapters", message: "name at least one adapter" },
    ]);
  }
  if (defaultAdapter !== undefined && !names.includes(defaultAdapter)) {
    throw new InvalidArgumentError(
      `${factory} settings: defaultAdapter: "${defaultAdapter}" is not one of the configured adapters (${describeNames(names)})`,
      [{ path: "defaultAdapter", message: `must be one of ${describeNames(names)}` }],
    );
  }
  return {
    providers: new Map(names.map((name) => [name, make(name, adapters[name] as TAdapter)])),
    defaultName: defaultAdapter ?? (names.length === 1 ? names[0] : undefined),
  };
}

/** What a factory's settings are, as far as making its providers goes. */
type FactorySettings<TAdapter> = {
  readonly adapters: Readonly<Record<string, TAdapter>>;
  readonly defaultAdapter?: string | undefined;
  readonly namespace?: INamespace | undefined;
};

/** What a factory gives each provider it makes. */
export type FactoryProviderSettings<TAdapter> = Record<string | symbol, unknown> & {
  readonly adapter: TAdapter;
  readonly providerId: string;
};

/**
 * A factory's providers (see `makeNamedProviders`): each made by `make` with the factory's
 * settings but its own keys (and `ignored` ones), its adapter, and the provider id
 * `<namespace>#<name>`. A copy made by a `set…` method (`replaces` set in its settings) passes
 * `replaces` on: its providers take over the ids of those they replace on a serde.
 */
export function factoryProviders<TAdapter, TProvider>(
  factory: string,
  settings: FactorySettings<TAdapter>,
  options: { replaces: symbol; fallback: INamespace; ignored?: readonly string[] },
  make: (settings: FactoryProviderSettings<TAdapter>) => TProvider,
): NamedProviders<TProvider> {
  const { adapters, defaultAdapter, ...shared } = settings as FactorySettings<TAdapter> &
    Record<string | symbol, unknown>;
  const { replaces, fallback, ignored = [] } = options;
  const replacing = shared[replaces] === true;
  delete shared[replaces];
  for (const key of ignored) {
    delete shared[key];
  }
  const namespace = settings.namespace ?? fallback;
  return makeNamedProviders(factory, adapters, defaultAdapter, (name, adapter) =>
    make({
      ...shared,
      adapter,
      providerId: `${namespace.toString()}#${name}`,
      ...(replacing ? { [replaces]: true } : {}),
    }),
  );
}

/** A factory's settings with `change` made, marked as a copy's (see `factoryProviders`). */
export function changedSettings<TSettings extends object>(
  settings: TSettings,
  change: Partial<TSettings>,
  replaces: symbol,
): TSettings {
  return { ...settings, ...change, [replaces]: true };
}

/** Closes every provider of a factory. */
export async function closeProviders(
  named: NamedProviders<{ close(): Promise<void> }>,
): Promise<void> {
  await Promise.all([...named.providers.values()].map((provider) => provider.close()));
}

/**
 * The provider of the named adapter, or of the default one.
 * @throws InvalidArgumentError on an unknown name, or no name and no default.
 */
export function pickProvider<TProvider>(
  factory: string,
  { providers, defaultName }: NamedProviders<TProvider>,
  name: string | undefined,
): TProvider {
  const chosen = name ?? defaultName;
  const names = [...providers.keys()];
  if (chosen === undefined) {
    throw new InvalidArgumentError(
      `${factory}.use: no adapter named and no defaultAdapter configured; choose one of ${describeNames(names)}`,
    );
  }
  const provider = providers.get(chosen);
  if (provider === undefined) {
    throw new InvalidArgumentError(
      `${factory}.use: "${chosen}" is not one of the configured adapters (${describeNames(names)})`,
    );
  }
  return provider;
}

function describeNames(names: readonly string[]): string {
  return names.map((name) => `"${name}"`).join(", ");
}
