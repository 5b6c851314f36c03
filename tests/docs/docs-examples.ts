/**
 * Turns the TypeScript blocks of the Markdown docs into modules that are type-checked and run by
 * `docs-examples.test.ts` (see "Docs examples" in CONTRIBUTING.md).
 *
 * The blocks of one page form one module, in order, so a block can use names from an earlier one.
 * Imports are hoisted to the top and deduplicated per binding, and the public paths
 * (`hasp/time-span`) are rewritten through package.json's `exports` to the source file
 * (`./dist/time-span/index.js` → `src/time-span/index.ts`), so the docs keep the paths users write
 * and no build is needed. Every generated line remembers where it came from in the Markdown, so
 * type errors and stack traces point at the page and line a reader edits.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import ts from "typescript";

/** What a block's info string asks for: ```` ```ts ````, ```` ```ts no-run ````, ```` ```ts ignore ````. */
export const BLOCK_MODES = ["run", "no-run", "ignore"] as const;
export type BlockMode = (typeof BLOCK_MODES)[number];

const LANGUAGES: readonly string[] = ["ts", "typescript"];
const FLAGS: readonly string[] = ["no-run", "ignore"];

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
            `"${infoString}"; a TypeScript block is \`ts\`, \`ts no-run\` or \`ts ignore\``,
        );
      } else if (flags.length > 1) {
        problems.push(`${page}:${fenceLine}: "${infoString}": give one flag at most`);
      } else {
        const mode: BlockMode = flags[0] === "ignore" ? "ignore" : flags[0] ? "no-run" : "run";
        const indent = indentText.length;
        const code = lines
          .slice(index + 1, end)
          .map((line) => line.replace(new RegExp(`^ {0,${indent}}`), ""))
          .join("\n");
        const note = noteAbove(lines, index);
        if (mode === "ignore" && note === undefined) {
          problems.push(
            `${page}:${fenceLine}: a \`ts ignore\` block needs an HTML comment right above it ` +
              "saying why it cannot be checked yet (<!-- … -->)",
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
  readonly page: string;
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
  readonly resolvePublicPath: PublicPathResolver;
  /** Text to substitute in the code, e.g. the docs' Redis URL by the one the harness found. */
  readonly replacements?: ReadonlyArray<readonly [from: string, to: string]>;
};

type HoistedImport = { readonly text: string; readonly location: SourceLocation };

/** One module from the blocks of a page, in order: imports hoisted and deduplicated. */
export function buildModule(
  page: string,
  blocks: readonly CodeBlock[],
  settings: BuildModuleSettings,
): GeneratedModule {
  const { fileName, resolvePublicPath, replacements = [] } = settings;
  const imports: HoistedImport[] = [];
  const seenBindings = new Set<string>();
  const problems: string[] = [];
  const bodyLines: Array<{ text: string; location: SourceLocation | undefined }> = [];

  for (const block of blocks) {
    let code = block.code;
    for (const [from, to] of replacements) code = code.replaceAll(from, to);
    const source = ts.createSourceFile("block.ts", code, ts.ScriptTarget.Latest, true);
    const lineOf = (position: number) => source.getLineAndCharacterOfPosition(position).line;
    const spans: Array<readonly [start: number, end: number]> = [];
    for (const statement of source.statements) {
      if (!ts.isImportDeclaration(statement)) continue;
      const start = statement.getStart(source);
      const location = { block, line: block.fenceLine + 1 + lineOf(start) };
      const hoisted = hoistImport(statement, source, {
        seenBindings,
        fileName,
        resolvePublicPath,
        onProblem: (message) => problems.push(`${page}:${location.line}: ${message}`),
      });
      if (hoisted !== undefined) imports.push({ text: hoisted, location });
      spans.push([start, statement.end]);
    }
    // The body keeps every line of the block (an import leaves its line breaks), so line N of
    // the body is line N of the block. Cut from the end, so earlier positions stay valid.
    let body = code;
    for (const [start, end] of spans.reverse()) {
      body = body.slice(0, start) + body.slice(start, end).replace(/[^\n]/g, "") + body.slice(end);
    }
    bodyLines.push({
      text: `// ${page}:${block.fenceLine} (\`\`\`${block.infoString})`,
      location: undefined,
    });
    body.split("\n").forEach((text, offset) => {
      bodyLines.push({ text, location: { block, line: block.fenceLine + 1 + offset } });
    });
  }

  const lines: Array<{ text: string; location: SourceLocation | undefined }> = [
    {
      text: `// Generated from ${page} by tests/docs/docs-examples.test.ts: edit the Markdown, not this file.`,
      location: undefined,
    },
    ...imports.flatMap(({ text, location }) =>
      text.split("\n").map((line, offset) => ({
        text: line,
        location: { block: location.block, line: location.line + offset },
      })),
    ),
    ...bodyLines,
    { text: "export {};", location: undefined },
  ];
  return {
    page,
    fileName,
    text: `${lines.map(({ text }) => text).join("\n")}\n`,
    lineMap: lines.map(({ location }) => location),
    problems,
  };
}

type HoistSettings = {
  readonly seenBindings: Set<string>;
  readonly fileName: string;
  readonly resolvePublicPath: PublicPathResolver;
  readonly onProblem: (message: string) => void;
};

/**
 * The import statement to hoist, with a public path rewritten to its source file and the
 * bindings an earlier block already imported left out; undefined when nothing is left.
 */
function hoistImport(
  statement: ts.ImportDeclaration,
  source: ts.SourceFile,
  settings: HoistSettings,
): string | undefined {
  const { seenBindings, fileName, resolvePublicPath, onProblem } = settings;
  if (!ts.isStringLiteral(statement.moduleSpecifier)) return statement.getText(source);
  const specifier = statement.moduleSpecifier.text;
  const resolved = resolvePublicPath(specifier);
  let target = specifier;
  if (resolved.kind === "source") {
    const path = relative(dirname(fileName), resolved.file).split(sep).join("/");
    target = (path.startsWith(".") ? path : `./${path}`).replace(/\.ts$/, ".js");
  } else if (resolved.kind === "unknown") {
    onProblem(resolved.message);
  }

  const clause = statement.importClause;
  const bindings: Array<{ key: string; text: string; kind: "default" | "namespace" | "named" }> =
    [];
  if (clause === undefined) {
    bindings.push({ key: `${specifier}|side-effect`, text: "", kind: "named" });
  } else {
    if (clause.name !== undefined) {
      bindings.push({
        key: `${specifier}|default|${clause.name.text}`,
        text: clause.name.text,
        kind: "default",
      });
    }
    const named = clause.namedBindings;
    if (named !== undefined && ts.isNamespaceImport(named)) {
      bindings.push({
        key: `${specifier}|*|${named.name.text}`,
        text: `* as ${named.name.text}`,
        kind: "namespace",
      });
    } else if (named !== undefined) {
      for (const element of named.elements) {
        const imported = element.propertyName?.getText(source) ?? element.name.text;
        bindings.push({
          key: `${specifier}|${imported}|${element.name.text}`,
          text: element.getText(source),
          kind: "named",
        });
      }
    }
  }

  const fresh = bindings.filter(({ key }) => !seenBindings.has(key));
  for (const { key } of fresh) seenBindings.add(key);
  if (fresh.length === 0 && bindings.length > 0) return undefined;

  const quotedTarget = JSON.stringify(target);
  if (fresh.length === bindings.length) {
    // Verbatim (comments and line breaks kept), with only the module path replaced.
    const text = statement.getText(source);
    const from = statement.moduleSpecifier.getStart(source) - statement.getStart(source);
    return (
      text.slice(0, from) +
      quotedTarget +
      text.slice(statement.moduleSpecifier.end - statement.getStart(source))
    );
  }
  const typeOnly = clause?.isTypeOnly ? "type " : "";
  const defaults = fresh.filter(({ kind }) => kind !== "named").map(({ text }) => text);
  const named = fresh.filter(({ kind }) => kind === "named").map(({ text }) => text);
  const parts = [...defaults, ...(named.length > 0 ? [`{ ${named.join(", ")} }`] : [])];
  return `import ${typeOnly}${parts.join(", ")} from ${quotedTarget};`;
}

/** The Markdown location of a 0-based line of a generated module, as `page:line`. */
export function locate(module: GeneratedModule, line: number, column?: number): string {
  const location = module.lineMap[line];
  if (location === undefined) {
    return `${module.page} (line ${line + 1} of the generated ${module.fileName})`;
  }
  const columnText = column === undefined ? "" : `:${column + 1 + location.block.indent}`;
  return `${module.page}:${location.line}${columnText}`;
}

/**
 * Type-checks the modules in one program with the repository's compiler options, and returns
 * each module's diagnostics, formatted with the Markdown page and line.
 */
export function typeCheck(
  root: string,
  modules: readonly GeneratedModule[],
): Map<GeneratedModule, string[]> {
  const configPath = join(root, "tsconfig.json");
  const config = ts.readConfigFile(configPath, ts.sys.readFile.bind(ts.sys));
  if (config.error !== undefined) {
    throw new Error(ts.formatDiagnostic(config.error, formatHost(root)));
  }
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root, undefined, configPath);
  const program = ts.createProgram({
    rootNames: modules.map(({ fileName }) => fileName),
    options: { ...parsed.options, noEmit: true, incremental: false },
  });
  const global = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()].map(
    (diagnostic) => ts.formatDiagnostic(diagnostic, formatHost(root)).trim(),
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
    return `${module.page}: ${kind} TS${diagnostic.code}: ${message}`;
  }
  const { line, character } = file.getLineAndCharacterOfPosition(diagnostic.start);
  const code = (module.text.split("\n")[line] ?? "").trim();
  return `${locate(module, line, character)}: ${kind} TS${diagnostic.code}: ${message}\n    ${code}`;
}

export type RunOutcome =
  | { readonly ok: true; readonly output: string }
  | { readonly ok: false; readonly message: string };

/**
 * Runs a generated module with `node --import tsx` from `root`, killing it after `timeoutMs`.
 * A failure's message has the exit code (or the time-out), and stderr and stdout with each
 * location in the generated file followed by its Markdown page and line.
 */
export function runModule(
  root: string,
  module: GeneratedModule,
  timeoutMs: number,
): Promise<RunOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", module.fileName], {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
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
      const sections = [
        `${module.page}: the example ${why}`,
        `  (ran: node --import tsx ${relative(root, module.fileName)})`,
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
