/**
 * Turns the TypeScript blocks of the Markdown docs into modules that are type-checked and run by
 * `docs-examples.test.ts` (against the source) and `tests/package/docs-examples.test.ts`
 * (against the packed package); see "Docs examples" in CONTRIBUTING.md.
 *
 * Each block is a module on its own, as a reader who copies it gets it: it has its imports, its
 * setup and its clean-up, and no block sees another's names. For the source run the public paths
 * (`hasp/time-span`) are rewritten through package.json's `exports` to the source file
 * (`./dist/time-span/index.js` → `src/time-span/index.ts`), so the docs keep the paths users write
 * and no build is needed. Every generated line remembers where it came from in the Markdown, so
 * type errors and stack traces point at the page and line a reader edits.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import ts from "typescript";
import { BACKENDS, type BackendName, DEFAULT_URLS } from "../harness/services.js";

/**
 * What a block's info string asks for: ```` ```ts ```` (checked and run), ```` ```ts no-run ````
 * (checked), ```` ```ts fragment ```` (a piece of a program, e.g. a signature) and
 * ```` ```ts ignore ```` (cannot compile yet): neither, each with a note saying why.
 */
export const BLOCK_MODES = ["run", "no-run", "fragment", "ignore"] as const;
export type BlockMode = (typeof BLOCK_MODES)[number];

const LANGUAGES: readonly string[] = ["ts", "typescript"];
const FLAGS: readonly string[] = ["no-run", "fragment", "ignore"];

export type CodeBlock = {
  /** The page, relative to the repository root, with `/` separators: `docs/task.md`. */
  readonly page: string;
  /** 1-based line of the opening fence in the page. */
  readonly fenceLine: number;
  readonly mode: BlockMode;
  readonly infoString: string;
  /** The code, with the fence's indentation removed; its first line is `fenceLine + 1`. */
  readonly code: string;
  /** Columns of indentation removed from each line (a fence inside a list item). */
  readonly indent: number;
  /** The HTML comment right above the fence, if any (the reason a block is ignored). */
  readonly note: string | undefined;
};

export type DocPage = {
  readonly page: string;
  /** The TypeScript blocks, in order; other languages (`sh`, `json`) are not collected. */
  readonly blocks: readonly CodeBlock[];
  /** Malformed fences and flags, each as `page:line: message`. */
  readonly problems: readonly string[];
};

const FENCE = /^( {0,3})(`{3,}|~{3,})(.*)$/;

/** The fenced TypeScript blocks of one Markdown file. */
export function readDocPage(root: string, page: string): DocPage {
  const lines = readFileSync(join(root, page), "utf8").split(/\r?\n/);
  const blocks: CodeBlock[] = [];
  const problems: string[] = [];

  for (let index = 0; index < lines.length; index += 1) {
    const opening = FENCE.exec(lines[index] ?? "");
    if (opening === null) continue;
    const [, indentText = "", fence = "", rawInfo = ""] = opening;
    // A backtick fence's info string may not contain a backtick (CommonMark): ```x``` is inline code.
    if (fence.startsWith("`") && rawInfo.includes("`")) continue;
    const fenceLine = index + 1;
    const closing = new RegExp(`^ {0,3}${fence[0] === "`" ? "`" : "~"}{${fence.length},}\\s*$`);
    let end = index + 1;
    while (end < lines.length && !closing.test(lines[end] ?? "")) end += 1;
    if (end >= lines.length) {
      problems.push(`${page}:${fenceLine}: this code fence is never closed`);
      break;
    }

    const infoString = rawInfo.trim();
    const [language = "", ...flags] = infoString.split(/\s+/);
    if (LANGUAGES.includes(language)) {
      const unknown = flags.filter((flag) => !FLAGS.includes(flag));
      if (unknown.length > 0) {
        problems.push(
          `${page}:${fenceLine}: unknown flag ${unknown.map((flag) => `"${flag}"`).join(", ")} in ` +
            `"${infoString}"; a TypeScript block is \`ts\`, \`ts no-run\`, \`ts fragment\` or \`ts ignore\``,
        );
      } else if (flags.length > 1) {
        problems.push(`${page}:${fenceLine}: "${infoString}": give one flag at most`);
      } else {
        const mode = (flags[0] ?? "run") as BlockMode;
        const indent = indentText.length;
        const code = lines
          .slice(index + 1, end)
          .map((line) => line.replace(new RegExp(`^ {0,${indent}}`), ""))
          .join("\n");
        const note = noteAbove(lines, index);
        if ((mode === "ignore" || mode === "fragment") && note === undefined) {
          problems.push(
            `${page}:${fenceLine}: a \`ts ${mode}\` block is not checked, so it needs an HTML ` +
              "comment right above it saying why (<!-- … -->)",
          );
        }
        blocks.push({ page, fenceLine, mode, infoString, code, indent, note });
      }
    }
    index = end;
  }
  return { page, blocks, problems };
}

/** The text of an HTML comment that ends on the last non-blank line above `fenceIndex`. */
function noteAbove(lines: readonly string[], fenceIndex: number): string | undefined {
  let last = fenceIndex - 1;
  while (last >= 0 && (lines[last] ?? "").trim() === "") last -= 1;
  if (last < 0 || !(lines[last] ?? "").trimEnd().endsWith("-->")) return undefined;
  let first = last;
  while (first >= 0 && !(lines[first] ?? "").includes("<!--")) first -= 1;
  if (first < 0) return undefined;
  const text = lines
    .slice(first, last + 1)
    .join(" ")
    .replace(/^.*?<!--/, "")
    .replace(/-->\s*$/, "");
  return text.replace(/\s+/g, " ").trim();
}

/**
 * Maps the package's public import paths to its source files, through package.json's `exports`:
 * `hasp/time-span` → `./dist/time-span/index.js` → `<root>/src/time-span/index.ts`.
 */
export type PublicPathResolver = (
  specifier: string,
) =>
  | { readonly kind: "other" }
  | { readonly kind: "source"; readonly file: string }
  | { readonly kind: "unknown"; readonly message: string };

export function createPublicPathResolver(root: string): PublicPathResolver {
  const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    name: string;
    exports?: Record<string, string | Record<string, string>>;
  };
  const { name } = manifest;
  const exportsMap = manifest.exports ?? {};

  return (specifier) => {
    if (specifier !== name && !specifier.startsWith(`${name}/`)) return { kind: "other" };
    const key = `.${specifier.slice(name.length)}`;
    const target = exportsMap[key];
    const entry = typeof target === "string" ? target : (target?.import ?? target?.default);
    if (entry === undefined) {
      return {
        kind: "unknown",
        message: `"${specifier}" is not a public path of ${name}: package.json "exports" has no "${key}"`,
      };
    }
    const built = /^\.\/dist\/(.+)\.js$/.exec(entry);
    const file = built === null ? undefined : join(root, "src", `${built[1]}.ts`);
    if (file === undefined || !existsSync(file)) {
      return {
        kind: "unknown",
        message: `"${specifier}" maps to ${entry} in package.json "exports", which has no source file under src/`,
      };
    }
    return { kind: "source", file };
  };
}

/** Where a line of a generated module came from. */
export type SourceLocation = { readonly block: CodeBlock; readonly line: number };

export type GeneratedModule = {
  readonly block: CodeBlock;
  /** Absolute path of the `.ts` file to write. */
  readonly fileName: string;
  readonly text: string;
  /** For each 0-based line of `text`, the Markdown line it came from (none for glue lines). */
  readonly lineMap: ReadonlyArray<SourceLocation | undefined>;
  /** Imports that could not be resolved, as `page:line: message`. */
  readonly problems: readonly string[];
};

export type BuildModuleSettings = {
  readonly fileName: string;
  /**
   * Rewrites the public paths to the source files (no build needed); without it they are kept,
   * for a project that has the package installed.
   */
  readonly resolvePublicPath?: PublicPathResolver;
  /** Text to substitute in the code, e.g. the docs' Redis URL by the one the harness found. */
  readonly replacements?: ReadonlyArray<readonly [from: string, to: string]>;
};

/** A name for the files of a block: `docs/adapters/sql.md` line 52 → `docs-adapters-sql-52`. */
export function blockFileStem(block: CodeBlock): string {
  return `${block.page.replace(/\.md$/, "").replaceAll("/", "-")}-${block.fenceLine}`;
}

/**
 * One block alone as a module: what a reader gets by copying it. Its lines keep their numbers
 * (after one header line); only the module paths of its imports are rewritten.
 */
export function buildModule(block: CodeBlock, settings: BuildModuleSettings): GeneratedModule {
  const { fileName, resolvePublicPath, replacements = [] } = settings;
  const problems: string[] = [];
  let code = block.code;
  for (const [from, to] of replacements) code = code.replaceAll(from, to);

  if (resolvePublicPath !== undefined) {
    const source = ts.createSourceFile("block.ts", code, ts.ScriptTarget.Latest, true);
    const edits: Array<{ start: number; end: number; text: string }> = [];
    for (const statement of source.statements) {
      const specifier =
        ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)
          ? statement.moduleSpecifier
          : undefined;
      if (specifier === undefined || !ts.isStringLiteral(specifier)) continue;
      const resolved = resolvePublicPath(specifier.text);
      if (resolved.kind === "unknown") {
        const { line } = source.getLineAndCharacterOfPosition(specifier.getStart(source));
        problems.push(`${block.page}:${block.fenceLine + 1 + line}: ${resolved.message}`);
      } else if (resolved.kind === "source") {
        const path = relative(dirname(fileName), resolved.file).split(sep).join("/");
        const target = (path.startsWith(".") ? path : `./${path}`).replace(/\.ts$/, ".js");
        edits.push({
          start: specifier.getStart(source),
          end: specifier.end,
          text: JSON.stringify(target),
        });
      }
    }
    // From the end, so earlier positions stay valid; a path never spans lines.
    for (const { start, end, text } of edits.reverse()) {
      code = code.slice(0, start) + text + code.slice(end);
    }
  }

  const header = `// Generated from ${block.page}:${block.fenceLine} (\`\`\`${block.infoString}) by tests/docs: edit the Markdown, not this file.`;
  const lines = code.split("\n");
  return {
    block,
    fileName,
    text: `${[header, ...lines].join("\n")}\n`,
    lineMap: [
      undefined,
      ...lines.map((_, offset) => ({ block, line: block.fenceLine + 1 + offset })),
    ],
    problems,
  };
}

/** The Markdown location of a 0-based line of a generated module, as `page:line`. */
export function locate(module: GeneratedModule, line: number, column?: number): string {
  const location = module.lineMap[line];
  if (location === undefined) {
    return `${module.block.page}:${module.block.fenceLine} (line ${line + 1} of the generated ${module.fileName})`;
  }
  const columnText = column === undefined ? "" : `:${column + 1 + location.block.indent}`;
  return `${location.block.page}:${location.line}${columnText}`;
}

/** The compiler options of the repository's tsconfig.json, which the docs are checked with. */
export function repositoryCompilerOptions(root: string): ts.CompilerOptions {
  const configPath = join(root, "tsconfig.json");
  const config = ts.readConfigFile(configPath, ts.sys.readFile.bind(ts.sys));
  if (config.error !== undefined) {
    throw new Error(ts.formatDiagnostic(config.error, formatHost(root)));
  }
  return ts.parseJsonConfigFileContent(config.config, ts.sys, root, undefined, configPath).options;
}

/**
 * Type-checks the modules in one program (one block is not another's context: each is its own
 * module), and returns each module's diagnostics, formatted with the Markdown page and line.
 */
export function typeCheck(
  modules: readonly GeneratedModule[],
  options: ts.CompilerOptions,
): Map<GeneratedModule, string[]> {
  const program = ts.createProgram({
    rootNames: modules.map(({ fileName }) => fileName),
    options: { ...options, noEmit: true, incremental: false },
  });
  const host = formatHost(process.cwd());
  const global = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()].map(
    (diagnostic) => ts.formatDiagnostic(diagnostic, host).trim(),
  );

  const results = new Map<GeneratedModule, string[]>();
  for (const module of modules) {
    const file = program.getSourceFile(module.fileName);
    if (file === undefined) throw new Error(`${module.fileName} is not in the program`);
    const diagnostics = [
      ...program.getSyntacticDiagnostics(file),
      ...program.getSemanticDiagnostics(file),
    ];
    results.set(module, [
      ...global,
      ...diagnostics.map((diagnostic) => formatDiagnostic(module, file, diagnostic)),
    ]);
  }
  return results;
}

function formatHost(root: string): ts.FormatDiagnosticsHost {
  return {
    getCanonicalFileName: (fileName) => fileName,
    getCurrentDirectory: () => root,
    getNewLine: () => "\n",
  };
}

function formatDiagnostic(
  module: GeneratedModule,
  file: ts.SourceFile,
  diagnostic: ts.Diagnostic,
): string {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n  ");
  const kind = ts.DiagnosticCategory[diagnostic.category].toLowerCase();
  if (diagnostic.start === undefined) {
    return `${locate(module, 0)}: ${kind} TS${diagnostic.code}: ${message}`;
  }
  if (diagnostic.file !== undefined && diagnostic.file !== file) {
    return ts.formatDiagnostic(diagnostic, formatHost(process.cwd())).trim();
  }
  const { line, character } = file.getLineAndCharacterOfPosition(diagnostic.start);
  const code = (module.text.split("\n")[line] ?? "").trim();
  return `${locate(module, line, character)}: ${kind} TS${diagnostic.code}: ${message}\n    ${code}`;
}

/**
 * The module as plain JavaScript (`.mjs` beside the `.ts`), types stripped as a user's build
 * would, with an inline source map so that stack traces name the `.ts` lines.
 */
export function stripTypes(module: GeneratedModule, options: ts.CompilerOptions): string {
  const output = ts.transpileModule(module.text, {
    fileName: module.fileName,
    compilerOptions: {
      ...options,
      // What nodenext gives a `.ts` file of a `"type": "module"` app, which transpileModule,
      // seeing no package.json, cannot tell.
      module: ts.ModuleKind.ESNext,
      inlineSourceMap: true,
      inlineSources: true,
      sourceMap: false,
    },
    reportDiagnostics: false,
  });
  return output.outputText;
}

export type RunOutcome =
  | { readonly ok: true; readonly output: string }
  | { readonly ok: false; readonly message: string };

export type RunSettings = {
  /** Where the process runs (module resolution for `tsx` starts there too). */
  readonly cwd: string;
  /** Node's arguments: `["--import", "tsx", file.ts]` or `["--enable-source-maps", file.mjs]`. */
  readonly args: readonly string[];
  readonly timeoutMs: number;
  readonly env?: NodeJS.ProcessEnv;
};

/**
 * Runs a generated module with Node, killing it after `timeoutMs`. A failure's message has the
 * exit code (or the time-out), and stderr and stdout with each location in the generated file
 * followed by its Markdown page and line.
 */
export function runModule(module: GeneratedModule, settings: RunSettings): Promise<RunOutcome> {
  const { cwd, args, timeoutMs, env = process.env } = settings;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd,
      env: { ...env, NO_COLOR: "1", FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && !timedOut) {
        resolve({ ok: true, output: stdout + stderr });
        return;
      }
      const why = timedOut
        ? `did not exit within ${timeoutMs / 1000} s: it leaves something open (a client, a ` +
          "server, a timer) or waits forever; close what the example opens, or mark the block " +
          "`ts no-run`"
        : code === 13
          ? "exited with code 13: a top-level `await` never settled (nothing was left to wake " +
            "it: an event that never came, a promise never resolved)"
          : `exited with ${signal === null ? `code ${code}` : `signal ${signal}`}`;
      const { page, fenceLine } = module.block;
      const sections = [
        `${page}:${fenceLine}: the example ${why}`,
        `  (ran in ${cwd}: node ${args.join(" ")})`,
        stderr.trim() === "" ? "" : `--- stderr ---\n${annotate(module, stderr.trimEnd())}`,
        stdout.trim() === "" ? "" : `--- stdout ---\n${annotate(module, stdout.trimEnd())}`,
      ];
      resolve({ ok: false, message: sections.filter((section) => section !== "").join("\n") });
    });
  });
}

/** Follows each `<generated file>:line:column` in `output` with its Markdown location. */
function annotate(module: GeneratedModule, output: string): string {
  const name = module.fileName.split(sep).pop() ?? module.fileName;
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return output.replace(
    new RegExp(`${escaped}:(\\d+)(?::(\\d+))?\\)?`, "g"),
    (match, line, column) => {
      const where = locate(
        module,
        Number(line) - 1,
        column === undefined ? undefined : Number(column) - 1,
      );
      return `${match} [${where}]`;
    },
  );
}

/** README.md and every page under docs/, as paths relative to the root with `/`. */
export function docPageNames(root: string): string[] {
  return [
    "README.md",
    ...readdirSync(join(root, "docs"), { recursive: true, encoding: "utf8" })
      .map((name) => name.split(sep).join("/"))
      .filter((name) => name.endsWith(".md") && !name.startsWith("api/"))
      .sort()
      .map((name) => `docs/${name}`),
  ];
}

/**
 * The backends a block talks to: those whose local default URL (`redis://127.0.0.1:6379`, ...)
 * it writes. A run gets the harness's server instead when that is elsewhere, and is skipped when
 * the backend was not found.
 */
export function backendsOf(block: CodeBlock): BackendName[] {
  return BACKENDS.filter((backend) => block.code.includes(DEFAULT_URLS[backend]));
}

/** The substitutions that point a block's default URLs at the servers the harness found. */
export function urlReplacements(
  needs: readonly BackendName[],
  urls: ReadonlyMap<BackendName, string | undefined>,
): Array<readonly [string, string]> {
  return needs.flatMap((backend) => {
    const url = urls.get(backend);
    return url === undefined || url === DEFAULT_URLS[backend]
      ? []
      : [[DEFAULT_URLS[backend], url] as const];
  });
}
