// A plain-text table for the bench's stdout.

/** Columns are right-aligned (figures) except the first and the last, and those in `left`. */
export function renderTable(
  headers: readonly string[],
  rows: readonly string[][],
  left: readonly number[] = [],
): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((text, column) => {
        if (column === cells.length - 1) {
          return text;
        }
        const width = widths[column] ?? 0;
        return column === 0 || left.includes(column) ? text.padEnd(width) : text.padStart(width);
      })
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}
