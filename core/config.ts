/**
 * Loads `pipeline.yaml`: parses the YAML, replaces `${VAR}` references from
 * the environment, validates against {@linkcode PipelineSchema}, checks what
 * the schema cannot (names that refer to each other, paths that must stay in
 * the lake) and makes every path absolute.
 *
 * Every problem found is reported at once, in file order, as a
 * {@linkcode ConfigError} whose lines read `FILE:LINE:COL key.path: problem`.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import {
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  Scalar,
  type ScalarTag,
  type YAMLError,
} from "yaml";
import type { z } from "zod";
import { levenshtein } from "./_levenshtein.ts";
import { type PipelineConfig, type PipelineInput, PipelineSchema } from "./config_schema.ts";
import { checkProblems } from "./config_quality.ts";
import { resolveStreaming, streamingPathProblems } from "./config_streaming.ts";
import { ConfigError, type ConfigProblem, SluiceError } from "./errors.ts";

/**
 * Options of {@linkcode loadConfig} and {@linkcode parseConfig}.
 *
 * @example
 * ```ts ignore
 * const env = new Map([["LAKE", "/srv/lake"]]);
 * const config = await loadConfig("pipeline.yaml", { env: (name) => env.get(name) });
 * ```
 */
export interface LoadConfigOptions {
  /**
   * Reads an environment variable for `${VAR}` references; returns
   * `undefined` when it is not set. Default: `Deno.env.get`.
   */
  env?: (name: string) => string | undefined;
}

/**
 * Reads, interpolates, validates and resolves a `pipeline.yaml` file.
 *
 * Relative paths (`lake`, `engine.database`, `engine.temp_directory`,
 * `sources.*.path`, `output.path`) are resolved against the folder of the
 * file. Throws a {@linkcode ConfigError} holding every problem found, each
 * with its line, column and key path; the file not being readable is a
 * problem too.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * import { ConfigError } from "./errors.ts";
 * try {
 *   const config = await loadConfig("pipeline.yaml");
 *   const where = config.lake; // absolute, resolved against the file's folder
 * } catch (e) {
 *   if (e instanceof ConfigError) e.problems.forEach((p) => p.line); // every problem, positioned
 * }
 * ```
 */
export async function loadConfig(
  file: string,
  options: LoadConfigOptions = {},
): Promise<PipelineConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new ConfigError(
      [{ file, line: 0, col: 0, path: "", message: `cannot read the config file: ${reason}` }],
      { cause: e, context: { file } },
    );
  }
  return parseConfig(text, file, options);
}

/**
 * Like {@linkcode loadConfig}, but from text already read. `file` names the
 * file in problems and its folder anchors relative paths.
 *
 * `${VAR}` and `${VAR:-default}` in any string value are replaced from the
 * environment (the default is used when `VAR` is unset or empty); `$${`
 * stands for a literal `${`. An unquoted value that becomes a number or
 * `true`/`false` after replacement is read as one (`threads: ${THREADS:-4}`).
 * A value tagged `!secret` is replaced the same way, listed in `secrets` and
 * never shown in a problem. When the YAML itself is malformed, only syntax
 * and `${VAR}` problems are reported.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * const config = parseConfig(
 *   [
 *     "pipeline: shop",
 *     "lake: ${LAKE:-./lake}",
 *     "sources:",
 *     "  orders: { format: csv, path: ./landing }",
 *   ].join("\n"),
 *   "/srv/shop/pipeline.yaml",
 *   { env: () => undefined },
 * );
 * config.lake; // "/srv/shop/lake"
 * config.engine.database; // "/srv/shop/lake/sluice.duckdb"
 * ```
 */
export function parseConfig(
  text: string,
  file: string,
  options: LoadConfigOptions = {},
): PipelineConfig {
  const absFile = resolve(file);
  const dir = dirname(absFile);
  const lineCounter = new LineCounter();
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, {
      lineCounter,
      prettyErrors: false,
      customTags: [SECRET_TAG],
    });
  } catch (e) {
    if (isPermissionError(e)) {
      // The yaml package reads LOG_TOKENS and LOG_STREAM while parsing.
      throw new SluiceError(
        `Cannot parse ${file}: the YAML parser reads the environment variables LOG_TOKENS and ` +
          "LOG_STREAM (allow them with --allow-env=LOG_TOKENS,LOG_STREAM)",
        { cause: e, context: { file } },
      );
    }
    throw e;
  }

  const reader = new TreeReader(file, lineCounter, doc, options.env ?? defaultEnv);
  const raw = reader.read(doc.contents, []);
  const problems = reader.problems;
  // A value whose ${VAR} failed is not worth validating as well.
  const taken = new Set(problems.map((p) => p.path));

  // After the first syntax error the parser mostly reports its consequences;
  // duplicate keys are the exception, each one is a mistake of its own.
  const syntaxErrors = doc.errors.filter((e, i) =>
    e.code === "DUPLICATE_KEY" ||
    i === doc.errors.findIndex((f) => f.code !== "DUPLICATE_KEY")
  );
  for (const error of [...syntaxErrors, ...doc.warnings]) {
    problems.push(reader.yamlProblem(error, text));
  }

  let input: PipelineInput | undefined;
  if (doc.errors.length === 0) {
    dropEmptyOptionals(raw, []);
    const result = PipelineSchema.safeParse(raw);
    const schemaProblems = result.success ? [] : reader.issueProblems(result.error.issues, raw);
    problems.push(...schemaProblems.filter((p) => !taken.has(p.path)));
    for (const p of schemaProblems) taken.add(p.path);
    problems.push(...reader.semanticProblems(raw, dir).filter((p) => !taken.has(p.path)));
    if (result.success) input = result.data;
    if (input?.streaming) {
      for (const [key, message] of streamingPathProblems(resolveStreaming(input.streaming, dir))) {
        const keyPath = ["streaming", ...key.split(".")];
        problems.push({ file, ...reader.locate(keyPath), path: keyPath.join("."), message });
      }
    }
  }

  if (problems.length > 0 || input === undefined) {
    problems.sort((a, b) => a.line - b.line || a.col - b.col);
    throw new ConfigError(problems, { context: { file } });
  }
  const config = resolveConfig(input, absFile, dir, reader.secrets);
  // Positions for later checks (validate binds SQL and reports line:col).
  Object.defineProperty(config, "locate", {
    value: (path: string) => reader.locate(path.split(".")),
    enumerable: false,
  });
  return config;
}

/**
 * Replaces every occurrence of each secret value (of length 1 or more) in
 * `text` with `***`. Longer secrets are replaced first, so a secret that
 * contains another is hidden whole.
 *
 * @example
 * ```ts
 * import { redactSecrets } from "./config.ts";
 * redactSecrets("connect as admin:hunter2", ["hunter2"]); // "connect as admin:***"
 * ```
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  const ordered = [...new Set(secrets)].filter((s) => s.length > 0)
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const secret of ordered) out = out.replaceAll(secret, "***");
  return out;
}

/**
 * The candidate closest to `word` by edit distance (ignoring case), or
 * `undefined` when none is close enough to be a likely typo: at most 2 edits
 * (1 for words of up to 3 characters), or at most a third of the word's
 * length for long words, and fewer edits than the word has characters.
 *
 * @example
 * ```ts
 * import { closest } from "./config.ts";
 * closest("lakee", ["pipeline", "lake", "engine"]); // "lake"
 * closest("xyz", ["pipeline", "lake", "engine"]); // undefined
 * ```
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const limit = word.length <= 3 ? 1 : Math.max(2, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = levenshtein(lower, candidate.toLowerCase());
    if (d <= limit && d < word.length && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------

type Path = (string | number)[];

/** Offsets of a node in the text: its value and, for map entries, its key. */
interface Loc {
  value: number;
  key?: number;
}

/** `!secret` marks a scalar whose resolved value must never be shown. */
const SECRET_TAG: ScalarTag = {
  tag: "!secret",
  default: false,
  resolve: (value: string) => value,
};

const VARIABLE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

function defaultEnv(name: string): string | undefined {
  return Deno.env.get(name);
}

function isPermissionError(e: unknown): boolean {
  return e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied;
}

function pathKey(path: readonly (string | number | PropertyKey)[]): string {
  return path.map(String).join("\u0000");
}

function dotted(path: readonly (string | number | PropertyKey)[]): string {
  return path.map(String).join(".");
}

function quoted(names: readonly string[]): string {
  return names.join(", ");
}

/** ` (did you mean "x"?)` or ` (valid: a, b)` or `` when there is nothing to list. */
function hint(word: string, candidates: readonly string[], label = "valid"): string {
  const guess = closest(word, candidates);
  if (guess !== undefined) return ` (did you mean "${guess}"?)`;
  return candidates.length > 0 ? ` (${label}: ${quoted(candidates)})` : "";
}

/** Offset where a parsed YAML node starts, if it has a range. */
function startOf(node: unknown): number | undefined {
  return (node as { range?: readonly number[] } | null | undefined)?.range?.[0];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function setKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Plain YAML 1.2 core-schema scalars an interpolated unquoted value may become. */
function retype(text: string): unknown {
  if (/^(?:true|True|TRUE)$/.test(text)) return true;
  if (/^(?:false|False|FALSE)$/.test(text)) return false;
  if (/^[-+]?[0-9]+$/.test(text)) return Number(text);
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/.test(text)) {
    return Number(text);
  }
  return text;
}

interface ZodSchemaNode {
  def?: {
    type?: string;
    shape?: Record<string, ZodSchemaNode>;
    valueType?: ZodSchemaNode;
    element?: ZodSchemaNode;
    innerType?: ZodSchemaNode;
    in?: ZodSchemaNode;
    getter?: () => ZodSchemaNode;
  };
}

const WRAPPERS = new Set(["optional", "nullable", "default", "prefault", "readonly", "catch"]);

function unwrapSchema(schema: ZodSchemaNode | undefined): ZodSchemaNode | undefined {
  let s = schema;
  for (let i = 0; i < 32 && s?.def; i++) {
    const def = s.def;
    if (WRAPPERS.has(def.type ?? "") || def.type === "nonoptional") s = def.innerType;
    else if (def.type === "pipe") s = def.in;
    else if (def.type === "lazy" && def.getter) s = def.getter();
    else break;
  }
  return s;
}

/** The zod schema of the value at `path`, walking objects, records and arrays. */
function schemaAt(path: readonly PropertyKey[]): ZodSchemaNode | undefined {
  let s: ZodSchemaNode | undefined = PipelineSchema as unknown as ZodSchemaNode;
  for (const segment of path) {
    s = unwrapSchema(s);
    const def = s?.def;
    if (def?.type === "object") s = def.shape?.[String(segment)];
    else if (def?.type === "record") s = def.valueType;
    else if (def?.type === "array") s = def.element;
    else return undefined;
  }
  return unwrapSchema(s);
}

/** The declared schema of the field at `path`, before unwrapping. */
function fieldSchema(path: readonly PropertyKey[]): ZodSchemaNode | undefined {
  if (path.length === 0) return undefined;
  const def = schemaAt(path.slice(0, -1))?.def;
  const last = path[path.length - 1];
  if (def?.type === "object") return def.shape?.[String(last)];
  if (def?.type === "record") return def.valueType;
  if (def?.type === "array") return def.element;
  return undefined;
}

/** Keys an object at `path` accepts, in schema order; empty when not an object. */
function validKeys(path: readonly PropertyKey[]): string[] {
  const def = schemaAt(path)?.def;
  return def?.type === "object" && def.shape ? Object.keys(def.shape) : [];
}

function lookup(root: unknown, path: readonly PropertyKey[]): { found: boolean; value: unknown } {
  let value = root;
  for (const segment of path) {
    if (Array.isArray(value) && typeof segment === "number" && segment < value.length) {
      value = value[segment];
    } else if (isRecord(value) && Object.hasOwn(value, String(segment))) {
      value = value[String(segment)];
    } else {
      return { found: false, value: undefined };
    }
  }
  return { found: true, value };
}

const EXPECTED: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  object: "a mapping (key: value pairs)",
  record: "a mapping (key: value pairs)",
  array: "a list",
};

/**
 * Walks the parsed YAML document into a plain value, interpolating scalars
 * and remembering where each path came from.
 */
class TreeReader {
  readonly problems: ConfigProblem[] = [];
  readonly secrets: string[] = [];
  readonly #locs = new Map<string, Loc>();
  readonly #secretPaths = new Set<string>();
  readonly #envCache = new Map<string, { value?: string; denied?: boolean }>();
  readonly #active = new Set<unknown>();

  constructor(
    readonly file: string,
    readonly lineCounter: LineCounter,
    readonly doc: Document.Parsed,
    readonly env: (name: string) => string | undefined,
  ) {}

  /** Converts `node` (at `path`) to a plain value. */
  read(node: unknown, path: Path, at: Loc = { value: 0 }): unknown {
    if (node === null || node === undefined) {
      this.#locs.set(pathKey(path), at);
      return null;
    }
    if (isAlias(node)) {
      const target = node.resolve(this.doc);
      const here = { ...at, value: node.range?.[0] ?? at.value };
      if (target === undefined) return null; // the parser reports the unknown anchor
      if (this.#active.has(target)) {
        this.#add(here.value, path, `alias *${node.source} refers to a value that contains it`);
        return null;
      }
      this.#active.add(target);
      const value = this.read(target, path, here);
      this.#active.delete(target);
      this.#locs.set(pathKey(path), here);
      return value;
    }
    // An empty value (`key:`) is placed at its key rather than after the colon.
    const empty = isScalar(node) && node.value === null && !node.source;
    const start = empty ? at.value : startOf(node) ?? at.value;
    const loc: Loc = { ...at, value: start };
    this.#locs.set(pathKey(path), loc);
    if (isScalar(node)) return this.#scalar(node, path, loc);
    if (isMap(node)) {
      const obj: Record<string, unknown> = {};
      for (const pair of node.items) {
        const keyNode = pair.key;
        const keyStart = startOf(keyNode) ?? start;
        if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === "object") {
          this.#add(keyStart, path, "keys must be plain names");
          continue;
        }
        const key = String(keyNode.value);
        const at = { key: keyStart, value: keyStart };
        setKey(obj, key, this.read(pair.value, [...path, key], at));
      }
      return obj;
    }
    if (isSeq(node)) {
      return node.items.map((item, i) => {
        const itemStart = startOf(item) ?? start;
        if (isPair(item)) {
          // `[a: 1]` is a one-entry mapping inside a flow list.
          const key = isScalar(item.key) ? String(item.key.value) : "";
          const obj: Record<string, unknown> = {};
          setKey(obj, key, this.read(item.value, [...path, i, key], { value: itemStart }));
          return obj;
        }
        return this.read(item, [...path, i], { value: itemStart });
      });
    }
    return null;
  }

  #scalar(node: Scalar, path: Path, loc: Loc): unknown {
    const secret = node.tag === SECRET_TAG.tag;
    if (secret) this.#secretPaths.add(pathKey(path));
    if (typeof node.value !== "string") return node.value;
    const text = node.value;
    const value = this.#interpolate(text, loc.value, path);
    if (secret) {
      if (value.length > 0 && !this.secrets.includes(value)) this.secrets.push(value);
      return value;
    }
    if (node.type === Scalar.PLAIN && text.includes("${")) return retype(value);
    return value;
  }

  /** Replaces `${VAR}`, `${VAR:-default}` and `$${` in one scalar. */
  #interpolate(text: string, offset: number, path: Path): string {
    let out = "";
    let i = 0;
    while (i < text.length) {
      const dollar = text.indexOf("$", i);
      if (dollar < 0) {
        out += text.slice(i);
        break;
      }
      out += text.slice(i, dollar);
      if (text.startsWith("$${", dollar)) {
        out += "${";
        i = dollar + 3;
        continue;
      }
      if (!text.startsWith("${", dollar)) {
        out += "$";
        i = dollar + 1;
        continue;
      }
      const end = text.indexOf("}", dollar + 2);
      if (end < 0) {
        this.#add(
          offset,
          path,
          '"${" is not closed by "}" (write ${NAME} or ${NAME:-default}; write $${ for a literal ${)',
        );
        out += text.slice(dollar);
        break;
      }
      const reference = text.slice(dollar + 2, end);
      i = end + 1;
      const match = VARIABLE.exec(reference);
      if (!match) {
        this.#add(
          offset,
          path,
          `"\${${reference}}" is not a variable reference (write \${NAME} or \${NAME:-default} ` +
            "with a name of letters, digits and _; write $${ for a literal ${)",
        );
        continue;
      }
      const [, name, fallback] = match;
      const found = this.#readEnv(name);
      if (found.denied) {
        this.#add(
          offset,
          path,
          `environment variable "${name}" is not readable (allow it with --allow-env=${name})`,
        );
      } else if (found.value !== undefined && (found.value !== "" || fallback === undefined)) {
        out += found.value;
      } else if (fallback !== undefined) {
        out += fallback;
      } else {
        this.#add(
          offset,
          path,
          `environment variable "${name}" is not set (set it or write \${${name}:-default})`,
        );
      }
    }
    return out;
  }

  #readEnv(name: string): { value?: string; denied?: boolean } {
    let found = this.#envCache.get(name);
    if (found === undefined) {
      try {
        found = { value: this.env(name) };
      } catch (e) {
        if (!isPermissionError(e)) throw e;
        found = { denied: true };
      }
      this.#envCache.set(name, found);
    }
    return found;
  }

  /** A problem from the YAML parser. */
  yamlProblem(error: YAMLError, text: string): ConfigProblem {
    const offset = error.pos[0];
    let message: string;
    const flowIndicator = "{}[],".includes(text[offset] ?? "");
    const afterDollar = text[offset - 1] === "$" || /\$\{[^}\s]*$/.test(text.slice(0, offset));
    if (error.code === "DUPLICATE_KEY") {
      message = "this key appears more than once in the same mapping (keep one)";
    } else if (error.code === "MULTIPLE_DOCS") {
      message = 'the file must hold a single YAML document (remove the extra "---")';
    } else if (error.code === "TAG_RESOLVE_FAILED") {
      message = error.message.includes(SECRET_TAG.tag)
        ? "!secret can only mark a single value, not a mapping or a list"
        : `${error.message.replace(/^Unresolved tag: /, "unknown tag ")} (the only tag is !secret)`;
    } else if (flowIndicator && afterDollar) {
      message = `invalid YAML: ${error.message} (inside { } or [ ], quote a value that ` +
        'uses ${VAR}, e.g. path: "${LANDING}")';
    } else {
      message = `invalid YAML: ${error.message}`;
    }
    return this.#problem(offset, this.#pathNear(offset), message);
  }

  /** The path whose key or value starts closest before `offset`. */
  #pathNear(offset: number): string {
    let best = "";
    let bestOffset = -1;
    for (const [key, loc] of this.#locs) {
      for (const o of [loc.key, loc.value]) {
        if (o !== undefined && o <= offset && o > bestOffset) {
          best = key;
          bestOffset = o;
        }
      }
    }
    return best.split("\u0000").join(".");
  }

  /** Turns zod issues into positioned problems with helpful messages. */
  issueProblems(issues: readonly z.core.$ZodIssue[], raw: unknown): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    // "missing lake" is noise next to "unknown key lakee (did you mean lake?)".
    const suggested = new Set<string>();
    for (const issue of issues) {
      if (issue.code !== "unrecognized_keys") continue;
      const valid = validKeys(issue.path);
      for (const key of issue.keys) {
        const guess = closest(key, valid);
        if (guess !== undefined) suggested.add(pathKey([...issue.path, guess]));
      }
    }
    for (const issue of issues) {
      const path = issue.path;
      if (issue.code === "unrecognized_keys") {
        const valid = validKeys(path);
        for (const key of issue.keys) {
          const keyPath = [...path, key];
          const loc = this.#locs.get(pathKey(keyPath));
          problems.push(
            this.#problem(
              loc?.key ?? this.#offsetOf(path),
              dotted(keyPath),
              `unknown key "${key}"${hint(key, valid)}`,
            ),
          );
        }
        continue;
      }
      if (issue.code === "invalid_key") {
        const inner = issue.issues[0]?.message ?? issue.message;
        const loc = this.#locs.get(pathKey(path));
        problems.push(
          this.#problem(
            loc?.key ?? this.#offsetOf(path),
            dotted(path),
            `invalid name "${String(path.at(-1))}": ${inner}`,
          ),
        );
        continue;
      }
      const { found, value } = lookup(raw, path);
      if (!found && path.length > 0 && isRecord(lookup(raw, path.slice(0, -1)).value)) {
        if (suggested.has(pathKey(path))) continue;
        let expected = "";
        if (issue.code === "invalid_type") expected = ` (${EXPECTED[issue.expected] ?? "a value"})`;
        if (issue.code === "invalid_value") {
          expected = ` (one of ${quoted(issue.values.map(String))})`;
        }
        problems.push(
          this.#problem(
            this.#offsetOf(path),
            dotted(path),
            `missing required key "${String(path.at(-1))}"${expected}`,
          ),
        );
        continue;
      }
      problems.push(this.#problem(this.#offsetOf(path), dotted(path), this.#message(issue, value)));
    }
    return problems;
  }

  #message(issue: z.core.$ZodIssue, value: unknown): string {
    const secret = this.#secretPaths.has(pathKey(issue.path));
    const got = this.#describe(value, secret);
    switch (issue.code) {
      case "invalid_type": {
        const expected = EXPECTED[issue.expected] ?? issue.expected;
        let extra = "";
        if (issue.expected === "object" && issue.path.length === 0) {
          const needs = `it needs at least ${quoted(["pipeline", "lake", "sources"])}`;
          if (value === null || value === undefined) return `the file is empty (${needs})`;
          extra = ` (${needs})`;
        } else if (issue.expected === "number" || issue.expected === "int") {
          if (typeof value === "string" && !secret && /^\s*[-+]?\d+(\.\d+)?\s*$/.test(value)) {
            extra = " (remove the quotes)";
          } else if (typeof value === "number") {
            extra = " (no fractional part)";
          } else {
            extra = " (write digits without quotes, e.g. 4)";
          }
        } else if (issue.expected === "boolean") {
          extra = " (write true or false without quotes)";
        } else if (issue.expected === "array" && typeof value === "string") {
          extra = secret
            ? " (write a list: [a, b])"
            : ` (write a list: [${redactSecrets(value, this.secrets)}])`;
        } else if (issue.expected === "string" && typeof value !== "object") {
          extra = " (put it in quotes)";
        } else if (issue.expected === "object" && value === null) {
          const keys = validKeys(issue.path);
          if (keys.length > 0) extra = ` (valid keys: ${quoted(keys)})`;
        }
        return `expected ${expected}, got ${got}${extra}`;
      }
      case "invalid_value": {
        const options = issue.values.map(String);
        const guess = typeof value === "string" && !secret ? closest(value, options) : undefined;
        return `must be one of ${quoted(options)}, got ${got}` +
          (guess !== undefined ? ` (did you mean "${guess}"?)` : "");
      }
      case "too_small": {
        const min = Number(issue.minimum);
        const or = issue.inclusive === false ? "more than" : "at least";
        if (issue.origin === "string") {
          return min <= 1 ? "must not be empty" : `must be ${or} ${min} characters long`;
        }
        if (issue.origin === "array" || issue.origin === "set") {
          return min <= 1 && issue.inclusive !== false
            ? "must list at least one item"
            : `must list ${or} ${min} items`;
        }
        return `must be ${or} ${min}, got ${got}`;
      }
      case "too_big": {
        const max = Number(issue.maximum);
        const or = issue.inclusive === false ? "less than" : "at most";
        if (issue.origin === "string") {
          return `must be ${or} ${max} character${max === 1 ? "" : "s"} long, got ${got}`;
        }
        if (issue.origin === "array" || issue.origin === "set") {
          return `must list ${or} ${max} items`;
        }
        return `must be ${or} ${max}, got ${got}`;
      }
      case "invalid_format": {
        const generic = issue.message.startsWith("Invalid");
        const what = generic ? `must be a valid ${issue.format}` : issue.message;
        return `${what}, got ${got}`;
      }
      default:
        return issue.message;
    }
  }

  #describe(value: unknown, secret: boolean): string {
    if (value === undefined) return "nothing";
    if (value === null) return "an empty value";
    if (secret) return "a secret value (not shown)";
    if (typeof value === "string") {
      const shown = this.show(value);
      return `string ${shown.length > 80 ? `${shown.slice(0, 77)}..."` : shown}`;
    }
    if (typeof value === "number") return `number ${value}`;
    if (typeof value === "boolean") return `${value}`;
    if (Array.isArray(value)) return "a list";
    return "a mapping";
  }

  /** A value quoted for a message, with any secret inside it redacted. */
  show(value: string): string {
    return JSON.stringify(redactSecrets(value, this.secrets));
  }

  /** Checks the schema cannot express; tolerant of values of the wrong type. */
  semanticProblems(raw: unknown, dir: string): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    if (!isRecord(raw)) return problems;
    const at = (path: Path, message: string, onKey = false) => {
      const loc = this.#locs.get(pathKey(path));
      const offset = (onKey ? loc?.key : undefined) ?? loc?.value ?? this.#offsetOf(path);
      problems.push(this.#problem(offset, dotted(path), message));
    };
    const sources = isRecord(raw.sources) ? Object.keys(raw.sources) : [];
    const silver = isRecord(raw.silver) ? raw.silver : {};
    const gold = isRecord(raw.gold) ? raw.gold : {};

    for (const [name, table] of Object.entries(silver)) {
      if (!isRecord(table)) continue;
      const base = ["silver", name];
      if (typeof table.from === "string" && !sources.includes(table.from)) {
        at(
          [...base, "from"],
          `unknown source ${this.show(table.from)}${hint(table.from, sources, "declared sources")}`,
        );
      }
      const columns = isRecord(table.columns) ? Object.keys(table.columns) : undefined;
      if (columns !== undefined && columns.length > 0) {
        const checkColumn = (column: unknown, path: Path, role: string) => {
          if (typeof column === "string" && !columns.includes(column)) {
            at(
              path,
              `${role} column ${this.show(column)} is not among the declared columns` +
                hint(column, columns, "columns"),
            );
          }
        };
        if (Array.isArray(table.key)) {
          table.key.forEach((c, i) => checkColumn(c, [...base, "key", i], "key"));
        }
        checkColumn(table.order_by, [...base, "order_by"], "order_by");
      }
      const mode = table.mode;
      if ((mode === "merge" || mode === "scd2") && table.key === undefined) {
        at(
          [...base, "mode"],
          `mode ${mode} needs a key (add key: [column, ...] naming the columns that identify a row)`,
        );
      }
      if (table.order_by !== undefined && table.key === undefined) {
        at(
          [...base, "order_by"],
          "order_by needs a key (it picks the latest row among rows with the same key; " +
            "add key: [column, ...] or remove order_by)",
        );
      }
    }

    const silverNames = Object.keys(silver);
    for (const name of Object.keys(gold)) {
      if (silverNames.includes(name)) {
        at(
          ["gold", name],
          `gold model "${name}" has the same name as silver table "${name}" ` +
            "(silver and gold share one namespace; rename one)",
          true,
        );
      }
    }

    const tables = [...new Set([...silverNames, ...Object.keys(gold)])];
    const output = isRecord(raw.output) ? raw.output : undefined;
    if (output && isRecord(output.tables)) {
      for (const name of Object.keys(output.tables)) {
        if (tables.includes(name)) continue;
        at(
          ["output", "tables", name],
          `unknown table "${name}"` +
            (tables.length > 0
              ? hint(name, tables, "silver and gold tables")
              : " (no silver or gold tables are declared)"),
          true,
        );
      }
    }

    const engine = isRecord(raw.engine) ? raw.engine : undefined;
    if (typeof raw.lake === "string" && raw.lake.length > 0 && engine) {
      const lake = resolve(dir, raw.lake);
      for (const key of ["database", "temp_directory"]) {
        const value = engine[key];
        if (typeof value !== "string" || value.length === 0) continue;
        if (!isInside(lake, resolve(dir, value))) {
          const secret = this.#secretPaths.has(pathKey(["engine", key]));
          at(
            ["engine", key],
            `must be inside the lake folder ${this.show(lake)}` +
              (secret ? "" : `, got ${this.show(resolve(dir, value))}`) +
              " (the DuckDB sandbox only allows the lake and the source folders)",
          );
        }
      }
    }
    // Data-quality checks: names, columns and relationships targets.
    for (const p of checkProblems(raw, { hint })) at(p.path, p.message);
    return problems;
  }

  /** 1-based line and column of the value at a dotted path (or its nearest ancestor). */
  locate(path: readonly PropertyKey[]): { line: number; col: number } {
    return this.lineCounter.linePos(this.#offsetOf(path));
  }

  /** Offset of the value at `path`, or of its nearest ancestor that exists. */
  #offsetOf(path: readonly PropertyKey[]): number {
    for (let n = path.length; n >= 0; n--) {
      const loc = this.#locs.get(pathKey(path.slice(0, n)));
      if (loc !== undefined) return loc.value;
    }
    return 0;
  }

  #add(offset: number, path: Path, message: string): void {
    this.problems.push(this.#problem(offset, dotted(path), message));
  }

  #problem(offset: number, path: string, message: string): ConfigProblem {
    const { line, col } = this.lineCounter.linePos(offset);
    return { file: this.file, line, col, path, message };
  }
}

/**
 * Removes `key:` entries left empty (e.g. every line under `engine:` commented
 * out) where the key is optional or has a default, so they read as absent.
 */
function dropEmptyOptionals(value: unknown, path: PropertyKey[]): void {
  if (Array.isArray(value)) {
    value.forEach((item, i) => dropEmptyOptionals(item, [...path, i]));
  } else if (isRecord(value)) {
    for (const [key, item] of Object.entries(value)) {
      const keyPath = [...path, key];
      if (item === null) {
        const type = fieldSchema(keyPath)?.def?.type;
        if (type === "optional" || type === "default" || type === "prefault") delete value[key];
      } else {
        dropEmptyOptionals(item, keyPath);
      }
    }
  }
}

function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

function resolveConfig(
  input: PipelineInput,
  file: string,
  dir: string,
  secrets: string[],
): PipelineConfig {
  const lake = resolve(dir, input.lake);
  const sources: PipelineInput["sources"] = {};
  for (const [name, source] of Object.entries(input.sources)) {
    setKey(sources, name, { ...source, path: resolve(dir, source.path) });
  }
  const output = input.output ?? { keep_versions: 2, tables: {} };
  const resolved: Omit<PipelineConfig, "hash"> = {
    ...input,
    file,
    dir,
    lake,
    engine: {
      ...input.engine,
      database: input.engine.database === undefined
        ? resolve(lake, "sluice.duckdb")
        : resolve(dir, input.engine.database),
      temp_directory: input.engine.temp_directory === undefined
        ? resolve(lake, "tmp")
        : resolve(dir, input.engine.temp_directory),
    },
    sources,
    output: {
      ...output,
      path: output.path === undefined ? resolve(lake, "output") : resolve(dir, output.path),
    },
    secrets,
  };
  if (input.observability) resolved.observability = resolveObservability(input.observability, dir);
  if (input.streaming) resolved.streaming = resolveStreaming(input.streaming, dir);
  const { file: _file, dir: _dir, secrets: _secrets, ...hashed } = resolved;
  const hash = createHash("sha256").update(canonicalJson(hashed, secrets)).digest("hex");
  return { ...resolved, hash };
}

/** The `observability:` section with its file paths made absolute against `dir`. */
function resolveObservability(
  o: NonNullable<PipelineInput["observability"]>,
  dir: string,
): NonNullable<PipelineInput["observability"]> {
  const textfile = o.metrics.textfile;
  return {
    ...o,
    metrics: {
      ...o.metrics,
      ...(textfile ? { textfile: { ...textfile, path: resolve(dir, textfile.path) } } : {}),
    },
    ...(o.lineage?.file ? { lineage: { ...o.lineage, file: resolve(dir, o.lineage.file) } } : {}),
    report: { ...o.report, ...(o.report.path ? { path: resolve(dir, o.report.path) } : {}) },
  };
}

/** JSON with sorted keys and secrets replaced by `***`; stable across runs. */
function canonicalJson(value: unknown, secrets: readonly string[]): string {
  if (typeof value === "string") {
    return JSON.stringify(secrets.includes(value) ? "***" : redactSecrets(value, secrets));
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v, secrets)).join(",")}]`;
  if (isRecord(value)) {
    const entries = Object.keys(value).sort()
      .filter((k) => value[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k], secrets)}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}
