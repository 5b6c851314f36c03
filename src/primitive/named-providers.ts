// What every primitive's provider factory does alike: one provider per named adapter, made up
// front (so a bad setting fails at start-up), and the choice of one by name or by default.

import { InvalidArgumentError } from "../errors/invalid-argument-error.js";

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
