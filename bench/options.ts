// `npm run bench -- [options]`: plain argv parsing, every mistake named.

import { type BackendName, SCENARIO_NAMES, type ScenarioName } from "./types.js";

export type BenchOptions = {
  readonly scenarios: readonly ScenarioName[];
  /** Empty: every subject. */
  readonly subjects: readonly string[];
  /** Empty: every backend. */
  readonly backends: readonly BackendName[];
  readonly rounds: number;
  readonly quick: boolean;
  readonly sharedClient: boolean;
  /** SQL: each subject's table kept between runs (`hasp_bench_kept_<subject>`), never dropped. */
  readonly keepRows: boolean;
  /** Every scenario's measured window, ms; unset: the scenario's own. */
  readonly windowMs: number | undefined;
  readonly help: boolean;
};

export const USAGE = `npm run bench -- [options]

  --scenario <names>   ${SCENARIO_NAMES.join(", ")} (comma-separated or repeated; default: all)
  --subject <names>    e.g. hasp-redis,raw-redis (default: all; a backend's raw baseline is
                       always added, since every figure is a ratio to it)
  --backend <names>    redis, memory, postgres, mysql, sqlite, mongodb (default: all)
  --rounds <n>         rounds of interleaved subjects (default: 3; 1 with --quick)
  --quick              short windows and one round: a smoke run, not a measurement
  --shared-client      contended scenarios: the 8 workers share one client (one process)
                       instead of one client each (8 processes, the default)
  --keep-rows          SQL: each subject keeps one table across children and runs
                       (hasp_bench_kept_<subject>), growing with every fresh key as a user's
                       does; the bench never drops it (drop it yourself to start over)
  --window <ms>        the measured window of every scenario (default: 800 ms for seq and
                       par64, 1.5 s contended; 100 to 60000)
  --help               this text
`;

const BACKENDS: readonly BackendName[] = [
  "redis",
  "memory",
  "postgres",
  "mysql",
  "sqlite",
  "mongodb",
];

export class OptionsError extends Error {
  override name = "OptionsError" as const;
}

function list(value: string): string[] {
  return value
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

function oneOf<T extends string>(
  values: readonly string[],
  allowed: readonly T[],
  what: string,
): T[] {
  return values.map((value) => {
    if (!(allowed as readonly string[]).includes(value)) {
      throw new OptionsError(`unknown ${what} "${value}" (known: ${allowed.join(", ")})`);
    }
    return value as T;
  });
}

export function parseOptions(
  argv: readonly string[],
  subjectNames: readonly string[],
): BenchOptions {
  const scenarios: string[] = [];
  const subjects: string[] = [];
  const backends: string[] = [];
  let rounds: number | undefined;
  let quick = false;
  let sharedClient = false;
  let keepRows = false;
  let windowMs: number | undefined;
  let help = false;
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index] ?? "";
    const [flag, inline] = argument.startsWith("--") ? argument.split(/=(.*)/s, 2) : [argument];
    const value = (): string => {
      if (inline !== undefined) {
        return inline;
      }
      index += 1;
      const next = argv[index];
      if (next === undefined || next.startsWith("--")) {
        throw new OptionsError(`${flag} needs a value`);
      }
      return next;
    };
    switch (flag) {
      case "--scenario":
      case "--scenarios":
        scenarios.push(...list(value()));
        break;
      case "--subject":
      case "--subjects":
        subjects.push(...list(value()));
        break;
      case "--backend":
      case "--backends":
        backends.push(...list(value()));
        break;
      case "--rounds": {
        const text = value();
        rounds = Number(text);
        if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) {
          throw new OptionsError(`--rounds must be an integer from 1 to 20, got "${text}"`);
        }
        break;
      }
      case "--quick":
        quick = true;
        break;
      case "--shared-client":
        sharedClient = true;
        break;
      case "--keep-rows":
        keepRows = true;
        break;
      case "--window": {
        const text = value();
        windowMs = Number(text);
        if (!Number.isInteger(windowMs) || windowMs < 100 || windowMs > 60_000) {
          throw new OptionsError(
            `--window must be an integer from 100 to 60000 (ms), got "${text}"`,
          );
        }
        break;
      }
      case "--help":
      case "-h":
        help = true;
        break;
      default:
        throw new OptionsError(`unknown option "${argument}"`);
    }
  }
  return {
    scenarios:
      scenarios.length === 0 ? SCENARIO_NAMES : oneOf(scenarios, SCENARIO_NAMES, "scenario"),
    subjects: oneOf(subjects, subjectNames, "subject"),
    backends: oneOf(backends, BACKENDS, "backend"),
    rounds: rounds ?? (quick ? 1 : 3),
    quick,
    sharedClient,
    keepRows,
    windowMs,
    help,
  };
}
