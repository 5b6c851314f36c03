/** A value as an error message shows it: JSON where it can be, its type otherwise. */
export function describeValue(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value);
  }
  if (typeof value !== "object" || value === null) {
    return String(value);
  }
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return `an object (${value.constructor?.name ?? "no constructor"})`;
  }
}
