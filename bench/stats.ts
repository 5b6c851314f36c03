// Small statistics for the bench: no dependency, no interpolation surprises.

/** The value at quantile `q` (0..1) of `values` (nearest rank); null when empty. */
export function quantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) {
    return null;
  }
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? null;
}

/** The median (mean of the two middle values for an even count); null when empty. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) {
    return null;
  }
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle] ?? 0;
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? 0) + upper) / 2;
}

export type Spread = { median: number; min: number; max: number };

/** Median, min and max of the non-null values; null when there is none. */
export function spread(values: ReadonlyArray<number | null | undefined>): Spread | null {
  const present = values.filter((value): value is number => typeof value === "number");
  const middle = median(present);
  if (middle === null) {
    return null;
  }
  return { median: middle, min: Math.min(...present), max: Math.max(...present) };
}
