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
import { dirname, resolve } from "node:path";
import { type Document, LineCounter, parseDocument } from "yaml";
import { type PipelineConfig, type PipelineInput, PipelineSchema } from "./schema.ts";
import { resolveStreaming, streamingPathProblems } from "./streaming.ts";
import { ConfigError, SluiceError } from "../errors.ts";
import { defaultEnv, isPermissionError, redactSecrets, SECRET_TAG } from "./_env_secrets.ts";
import { issueProblems } from "./_issue_messages.ts";
import { dropEmptyOptionals } from "./_schema_walk.ts";
import { semanticProblems } from "./_semantic_checks.ts";
import { isRecord, yamlProblem, YamlTreeReader } from "./_yaml_positions.ts";
import { resolveEngine } from "./engine.ts";
import { resolveObservability } from "./observability.ts";
import { resolveOutput } from "./output.ts";
import { resolveSources } from "./sources.ts";

export { redactSecrets } from "./_env_secrets.ts";
export { closest } from "./_hint.ts";

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
 * import { loadConfig } from "./load.ts";
 * import { ConfigError } from "../errors.ts";
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
 * import { parseConfig } from "./load.ts";
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

  const reader = new YamlTreeReader(file, lineCounter, doc, options.env ?? defaultEnv);
  const { positions } = reader;
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
    problems.push(yamlProblem(error, text, positions));
  }

  let input: PipelineInput | undefined;
  if (doc.errors.length === 0) {
    dropEmptyOptionals(raw, []);
    const result = PipelineSchema.safeParse(raw);
    const schemaProblems = result.success
      ? []
      : issueProblems(result.error.issues, raw, { positions, seen: reader });
    problems.push(...schemaProblems.filter((p) => !taken.has(p.path)));
    for (const p of schemaProblems) taken.add(p.path);
    const semantic = semanticProblems(raw, { dir, positions, seen: reader });
    problems.push(...semantic.filter((p) => !taken.has(p.path)));
    if (result.success) input = result.data;
    if (input?.streaming) {
      for (const [key, message] of streamingPathProblems(resolveStreaming(input.streaming, dir))) {
        const keyPath = ["streaming", ...key.split(".")];
        problems.push({ file, ...positions.locate(keyPath), path: keyPath.join("."), message });
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
    value: (path: string) => positions.locate(path.split(".")),
    enumerable: false,
  });
  return config;
}

function resolveConfig(
  input: PipelineInput,
  file: string,
  dir: string,
  secrets: string[],
): PipelineConfig {
  const lake = resolve(dir, input.lake);
  const resolved: Omit<PipelineConfig, "hash"> = {
    ...input,
    file,
    dir,
    lake,
    engine: resolveEngine(input.engine, { dir, lake }),
    sources: resolveSources(input.sources, dir),
    output: resolveOutput(input.output, { dir, lake }),
    secrets,
  };
  // A !secret path is also secret once made absolute (error messages show that form).
  const secretPaths = [
    input.lake,
    input.engine.database,
    input.engine.temp_directory,
    input.output?.path,
    ...Object.values(input.sources).map((src) => src.path),
  ];
  for (const p of secretPaths) {
    if (p !== undefined && secrets.includes(p)) {
      const abs = resolve(dir, p);
      if (!secrets.includes(abs)) secrets.push(abs);
    }
  }
  if (input.observability) resolved.observability = resolveObservability(input.observability, dir);
  if (input.streaming) resolved.streaming = resolveStreaming(input.streaming, dir);
  const { file: _file, dir: _dir, secrets: _secrets, ...hashed } = resolved;
  const hash = createHash("sha256").update(canonicalJson(hashed, secrets)).digest("hex");
  return { ...resolved, hash };
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
