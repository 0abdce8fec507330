/**
 * Typed errors. Every failure kind has its own class, carries context, says
 * whether retrying can help (`transient`) and maps to a documented exit code.
 *
 * Exit codes: 0 ok, 1 failed, 2 usage or config error, 3 data-quality gate
 * failed, 75 another run holds the pipeline's lock (EX_TEMPFAIL).
 *
 * @module
 */

/** Exit codes of the `sluice` command, as documented in the README. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  qualityGate: 3,
  locked: 75,
} as const;

/** Options shared by all Sluice errors. */
export interface SluiceErrorOptions {
  /** The error that caused this one. */
  cause?: unknown;
  /** Structured context (table, file, column...) for logs. */
  context?: Record<string, unknown>;
}

/**
 * Base class of every error Sluice raises on purpose.
 *
 * @example
 * ```ts
 * import { SluiceError } from "./errors.ts";
 * const e = new SluiceError("Cannot load source \"orders\": file is empty");
 * const retry = e.transient; // false: a terminal failure
 * const code = e.exitCode; // 1
 * ```
 */
export class SluiceError extends Error {
  /** A short stable name of the failure kind, e.g. `config`. */
  readonly kind: string = "failed";
  /** True when the same action may succeed if retried later. */
  readonly transient: boolean = false;
  /** Process exit code for the CLI. */
  readonly exitCode: number = EXIT.failed;
  /** Structured context for logs. */
  readonly context: Record<string, unknown>;

  /** Creates an error with a message and optional cause and context. */
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.context = options.context ?? {};
  }
}

/** One problem found in a config file, with its position. */
export interface ConfigProblem {
  /** The config file. */
  file: string;
  /** 1-based line, 0 when unknown. */
  line: number;
  /** 1-based column, 0 when unknown. */
  col: number;
  /** Dotted key path, e.g. `silver.orders.columns.quantity.type`. */
  path: string;
  /** What is wrong and what would be valid. */
  message: string;
}

/**
 * Formats a config problem as `FILE:LINE:COL key.path: problem`.
 *
 * @example
 * ```ts
 * import { formatConfigProblem } from "./errors.ts";
 * formatConfigProblem({ file: "p.yaml", line: 3, col: 5, path: "lake", message: "required" });
 * // "p.yaml:3:5 lake: required"
 * ```
 */
export function formatConfigProblem(p: ConfigProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.col}` : p.file;
  return `${where} ${p.path || "(root)"}: ${p.message}`;
}

/**
 * The config is invalid. Holds every problem found, not just the first.
 *
 * @example
 * ```ts
 * import { ConfigError } from "./errors.ts";
 * const e = new ConfigError([{ file: "p.yaml", line: 1, col: 1, path: "lake", message: "required" }]);
 * const shown = e.message; // p.yaml:1:1 lake: required
 * ```
 */
export class ConfigError extends SluiceError {
  /** The failure kind. */
  override readonly kind: string = "config";
  /** The CLI exit code. */
  override readonly exitCode: number = EXIT.usage;
  /** Every problem, in file order. */
  readonly problems: ConfigProblem[];
  /** Creates the error from one or more problems. */
  constructor(problems: ConfigProblem[], options: SluiceErrorOptions = {}) {
    super(problems.map(formatConfigProblem).join("\n"), options);
    this.problems = problems;
  }
}

/**
 * The command line was used wrongly.
 *
 * @example
 * ```ts
 * import { UsageError } from "./errors.ts";
 * throw new UsageError("Cannot run: unknown stage \"brnze\" (valid: extract, bronze)");
 * ```
 */
export class UsageError extends SluiceError {
  /** The failure kind. */
  override readonly kind: string = "usage";
  /** The CLI exit code. */
  override readonly exitCode: number = EXIT.usage;
}

/**
 * A source could not be read: missing folder, unreadable or changed file.
 *
 * @example
 * ```ts
 * import { SourceError } from "./errors.ts";
 * throw new SourceError("Cannot load source \"orders\": file is empty");
 * ```
 */
export class SourceError extends SluiceError {
  /** The failure kind. */
  override readonly kind: string = "source";
}

/**
 * Bronze schema drift was found and the policy is `fail`.
 *
 * @example
 * ```ts
 * import { SchemaDriftError } from "./errors.ts";
 * throw new SchemaDriftError("Cannot land source \"orders\": column \"coupon\" is new");
 * ```
 */
export class SchemaDriftError extends SluiceError {
  /** The failure kind. */
  override readonly kind: string = "schema_drift";
}

/**
 * A stage's row accounting did not add up: rows were lost or invented.
 *
 * @example
 * ```ts
 * import { ConservationError } from "./errors.ts";
 * throw new ConservationError("Rows do not add up in silver \"orders\": 10 in, 9 out");
 * ```
 */
export class ConservationError extends SluiceError {
  /** The failure kind. */
  override readonly kind: string = "conservation";
}

/**
 * SQL tried to reach outside the DuckDB sandbox (files outside the lake and
 * declared source folders, or network access).
 *
 * @example
 * ```ts
 * import { SandboxError } from "./errors.ts";
 * throw new SandboxError("Cannot run model \"x\": /etc/passwd is outside the sandbox");
 * ```
 */
export class SandboxError extends SluiceError {
  /** The failure kind. */
  override readonly kind: string = "sandbox";
}

/**
 * A SQL statement failed inside DuckDB (bad model SQL, type errors...).
 *
 * @example
 * ```ts
 * import { EngineError } from "./errors.ts";
 * throw new EngineError("Cannot build gold \"revenue\": column \"x\" not found");
 * ```
 */
export class EngineError extends SluiceError {
  /** The failure kind. */
  override readonly kind: string = "engine";
  /** True for I/O-ish failures worth retrying; false for bad SQL. */
  override readonly transient: boolean;
  /** Creates the error; `transient` marks I/O-ish failures worth retrying. */
  constructor(message: string, options: SluiceErrorOptions & { transient?: boolean } = {}) {
    super(message, options);
    this.transient = options.transient ?? false;
  }
}

/**
 * Another process holds the pipeline's database lock. Retry later.
 *
 * @example
 * ```ts
 * import { LockHeldError } from "./errors.ts";
 * throw new LockHeldError("Cannot open lake/sluice.duckdb: another run holds its lock");
 * ```
 */
export class LockHeldError extends SluiceError {
  /** The failure kind. */
  override readonly kind: string = "locked";
  /** Whether a retry may help. */
  override readonly transient: boolean = true;
  /** The CLI exit code. */
  override readonly exitCode: number = EXIT.locked;
}

/**
 * One or more error-level data-quality checks failed; nothing was published.
 *
 * @example
 * ```ts
 * import { QualityGateError } from "./errors.ts";
 * throw new QualityGateError("Data-quality gate failed: silver.orders not_null(email) 12 rows");
 * ```
 */
export class QualityGateError extends SluiceError {
  /** The failure kind. */
  override readonly kind: string = "quality_gate";
  /** The CLI exit code. */
  override readonly exitCode: number = EXIT.qualityGate;
}

/**
 * A streaming source file the checkpoint holds as partly read was
 * truncated, removed or rewritten, and `fail_on_data_loss` is true. Not
 * transient: retrying reads the same damaged file.
 *
 * @example
 * ```ts
 * import { DataLossError } from "./errors.ts";
 * throw new DataLossError(
 *   'Cannot continue stream "events": /data/landing/a.ndjson was truncated to 10 bytes, 250 were read',
 * );
 * ```
 */
export class DataLossError extends SluiceError {
  /** The failure kind. */
  override readonly kind: string = "data_loss";
}

/**
 * Returns a short message for any thrown value.
 *
 * @example
 * ```ts
 * import { errorMessage } from "./errors.ts";
 * errorMessage(new Error("boom")); // "boom"
 * ```
 */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
