// The demo's terminal (demo.ts): the timeline in time order, and on a TTY a progress line.
export const seconds3 = (ms: number) => (ms / 1000).toFixed(3);
export const seconds2 = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/**
 * The terminal: timeline lines, held back a moment and printed in time order (reports of
 * different processes arrive in any order), and on a TTY one progress line kept at the bottom.
 */
export class Terminal {
  readonly #tty = process.stdout.isTTY === true;
  readonly #color = this.#tty && process.env.NO_COLOR === undefined && process.env.TERM !== "dumb";
  readonly #pending: Array<{ at: number; seq: number; line: () => string }> = [];
  #seq = 0;
  #progress = "";

  constructor(readonly quiet: boolean) {}

  get tty(): boolean {
    return this.#tty;
  }

  paint(code: string, text: string): string {
    return this.#color ? `\x1b[${code}m${text}\x1b[0m` : text;
  }

  /** A line printed now, above the progress line. */
  print(line = ""): void {
    this.#write(`${this.#clear()}${line}\n${this.#progress}`);
  }

  /** A timeline line at `at`; `line` runs when printed, so it names owners learned meanwhile. */
  add(at: number, line: () => string, important = false): void {
    if (!this.quiet || important) {
      this.#pending.push({ at, seq: this.#seq++, line });
    }
  }

  /** Prints the lines older than `before` (all of them by default). */
  flush(before = Number.POSITIVE_INFINITY): void {
    this.#pending.sort((a, b) => a.at - b.at || a.seq - b.seq);
    let count = 0;
    while (count < this.#pending.length && (this.#pending[count]?.at ?? 0) < before) {
      count++;
    }
    const lines = this.#pending.splice(0, count).map((entry) => `${entry.line()}\n`);
    if (lines.length > 0) {
      this.#write(`${this.#clear()}${lines.join("")}${this.#progress}`);
    }
  }

  /** On a TTY: replaces the progress line (empty: removes it). */
  progress(text: string): void {
    if (!this.#tty) {
      return;
    }
    const width = process.stdout.columns || 80;
    const line = text === "" ? "" : this.paint("2", text.slice(0, Math.max(width - 1, 20)));
    this.#write(`${this.#clear()}${line}`);
    this.#progress = line;
  }

  #clear(): string {
    return this.#progress === "" ? "" : "\r\x1b[2K";
  }

  #write(text: string): void {
    if (text !== "") {
      process.stdout.write(text);
    }
  }
}
