/**
 * Typed errors. Every failure kind has its own class, carries context, says
 * whether retrying can help (`transient`) and maps to a documented exit code.
 *
 * Exit codes: 0 ok, 1 failed, 2 usage or config error, 3 data-quality gate
 * failed, 65 a stream checkpoint contradicts its data, 75 another run holds the pipeline's lock (EX_TEMPFAIL), 124 the run
 * passed its `max_runtime`, 130 stopped by SIGINT, 143 stopped by SIGTERM.
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
  damaged: 74,
  checkpoint: 65,
  timedOut: 124,
  sigint: 130,
  sigterm: 143,
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
 * Another run of the pipeline holds its run lock and the overlap policy is
 * `fail` (or `wait` ran out of time). Names the holder.
 *
 * @example
 * ```ts
 * import { OverlapError } from "./errors.ts";
 * throw new OverlapError(
 *   "Cannot start run: pid 4242 on host db1 holds the lock since 2026-01-01T03:00:00.000Z",
 * );
 * ```
 */
export class OverlapError extends LockHeldError {
  /** The failure kind. */
  override readonly kind: string = "overlap";
}

/**
 * The run passed its time limit (`--max-runtime`, `run.max_runtime`) and
 * stopped at the next safe point; nothing new was published.
 *
 * @example
 * ```ts
 * import { TimedOutError } from "./errors.ts";
 * const e = new TimedOutError("Run stopped: it passed its max_runtime of 10m");
 * e.exitCode; // 124
 * ```
 */
export class TimedOutError extends SluiceError {
  /** The failure kind. */
  override readonly kind: string = "timed_out";
  /** The CLI exit code. */
  override readonly exitCode: number = EXIT.timedOut;
  /** The run status recorded in the ledger. */
  readonly runStatus: string = "timed_out";
  /** What the run returned, when it stopped cleanly between two steps (a stream's summary). */
  result?: unknown;
}

/**
 * The stop that `signal` carries, when it aborted for a time limit or a
 * signal: what a run stopped at a safe point records and exits with, even
 * when the statement it interrupted was reported wrapped in a stage's own
 * error (`Cannot load source "orders": Run stopped by SIGTERM`). Undefined
 * when the signal did not abort or aborted for another reason.
 *
 * @example
 * ```ts
 * import { CancelledError, stopErrorOf } from "./errors.ts";
 * const c = new AbortController();
 * c.abort(new CancelledError("Run stopped by SIGTERM", { signal: "SIGTERM" }));
 * stopErrorOf(c.signal)?.runStatus; // "cancelled"
 * ```
 */
export function stopErrorOf(
  signal: AbortSignal | undefined,
): TimedOutError | CancelledError | undefined {
  if (!signal?.aborted) return undefined;
  const reason: unknown = signal.reason;
  return reason instanceof TimedOutError || reason instanceof CancelledError ? reason : undefined;
}

/**
 * The run was stopped by SIGINT or SIGTERM at the next safe point; its
 * open transaction was rolled back and nothing partial was published.
 *
 * @example
 * ```ts
 * import { CancelledError } from "./errors.ts";
 * const e = new CancelledError("Run stopped by SIGTERM", { signal: "SIGTERM" });
 * e.exitCode; // 143
 * ```
 */
export class CancelledError extends SluiceError {
  /** The failure kind. */
  override readonly kind: string = "cancelled";
  /** The CLI exit code: 130 for SIGINT, 143 for SIGTERM. */
  override readonly exitCode: number;
  /** The run status recorded in the ledger. */
  readonly runStatus: string = "cancelled";
  /** The signal that stopped the run. */
  readonly signal: "SIGINT" | "SIGTERM";
  /** What the run returned, when it stopped cleanly between two steps (a stream's summary). */
  result?: unknown;
  /** Creates the error for the signal that stopped the run. */
  constructor(
    message: string,
    options: SluiceErrorOptions & { signal: "SIGINT" | "SIGTERM" },
  ) {
    super(message, options);
    this.signal = options.signal;
    this.exitCode = options.signal === "SIGINT" ? EXIT.sigint : EXIT.sigterm;
  }
}

/**
 * The run did not start because another run holds the pipeline's lock and
 * the overlap policy is `skip`. Exit code 0: skipping is what was asked.
 *
 * @example
 * ```ts
 * import { RunSkippedError } from "./errors.ts";
 * const e = new RunSkippedError("Skipped run: pid 4242 on host db1 holds the lock");
 * e.exitCode; // 0
 * ```
 */
export class RunSkippedError extends SluiceError {
  /** The failure kind. */
  override readonly kind: string = "skipped";
  /** The CLI exit code. */
  override readonly exitCode: number = EXIT.ok;
  /** The run status recorded in the ledger. */
  readonly runStatus: string = "skipped";
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
 * A JetStream stream lost messages no worker committed (purged, or its first
 * sequence moved past the consumer's committed floor) with
 * `fail_on_data_loss: true`. Names the missing sequence range; exit 66
 * (EX_NOINPUT).
 *
 * @example
 * ```ts
 * import { JetStreamDataLossError } from "./errors.ts";
 * const e = new JetStreamDataLossError(
 *   'Cannot continue stream "orders_v1": JetStream sequences 1001 to 1500 of ORDERS are gone',
 * );
 * e.exitCode; // 66
 * ```
 */
export class JetStreamDataLossError extends DataLossError {
  /** The CLI exit code. */
  override readonly exitCode: number = 66;
}

/**
 * A stream checkpoint contradicts the data it describes (batch ids behind
 * the target's, file offsets or line counts that do not match the rows
 * committed per file, files missing from `_sluice.stream_files`): it was
 * edited or damaged. The stream refuses to start rather than guess; exit 65
 * (EX_DATAERR).
 *
 * @example
 * ```ts
 * import { CheckpointError } from "./errors.ts";
 * const e = new CheckpointError(
 *   'Cannot start stream "events_v1": checkpoint batch_id 2 is behind silver.events (batch 5)',
 * );
 * e.exitCode; // 65
 * ```
 */
export class CheckpointError extends SluiceError {
  /** The failure kind. */
  override readonly kind: string = "checkpoint";
  /** The CLI exit code. */
  override readonly exitCode: number = EXIT.checkpoint;
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

/**
 * The disk under the lake (or the output, or a spill folder) is full. The
 * step that hit it committed nothing; what earlier steps committed stays.
 * Freeing space and running again finishes the work exactly once.
 *
 * @example
 * ```ts
 * import { DiskFullError } from "./errors.ts";
 * const e = DiskFullError.from(new Error("No space left on device (os error 28)"), "/lake");
 * e?.transient; // true
 * ```
 */
export class DiskFullError extends SluiceError {
  /** The failure kind. */
  override readonly kind: string = "disk_full";
  /** Retrying after space was freed succeeds. */
  override readonly transient: boolean = true;
  /** The file or folder that could not be written. */
  readonly path: string;
  /** Creates the error for the file or folder that could not be written. */
  constructor(message: string, options: SluiceErrorOptions & { path: string }) {
    super(message, options);
    this.path = options.path;
  }

  /**
   * A {@linkcode DiskFullError} when `e` (a DuckDB or an OS error) says the
   * disk is full, naming the file it names (else `fallbackPath`); otherwise
   * undefined.
   */
  static from(e: unknown, fallbackPath: string): DiskFullError | undefined {
    if (e instanceof DiskFullError) return e;
    const message = errorMessage(e);
    if (!/No space left on device|os error 28|ENOSPC|Disk quota exceeded/i.test(message)) {
      return undefined;
    }
    const named = /(?:file|directory) "([^"]+)"/.exec(message)?.[1] ??
      /: (?:open|write|mkdir|rename|symlink|copyfile) '([^']+)'/.exec(message)?.[1];
    const path = named ?? fallbackPath;
    return new DiskFullError(`no space left on ${path}`, { cause: e, path });
  }

  /** The same failure, saying what Sluice was doing: `no space left on X while Y; ...`. */
  during(activity: string): DiskFullError {
    return new DiskFullError(
      `Cannot finish the run: no space left on ${this.path} while ${activity}; the ` +
        `transaction in flight was rolled back, earlier commits are kept: free space there ` +
        `(or move the lake), then run again`,
      { cause: this.cause, path: this.path, context: { ...this.context, activity } },
    );
  }
}

/**
 * The database file or its write-ahead log (`<database>.wal`) is damaged:
 * DuckDB cannot read it back (a checksum mismatch, a file shorter than it
 * should be). Sluice changes neither file; the message names the file and
 * what to do. Exit code 74 (EX_IOERR).
 *
 * @example
 * ```ts
 * import { DatabaseDamagedError } from "./errors.ts";
 * const e = new DatabaseDamagedError("Cannot open database /lake/x.duckdb: ...", {
 *   path: "/lake/x.duckdb.wal",
 * });
 * e.exitCode; // 74
 * ```
 */
export class DatabaseDamagedError extends SluiceError {
  /** The failure kind. */
  override readonly kind: string = "database_damaged";
  /** The CLI exit code. */
  override readonly exitCode: number = EXIT.damaged;
  /** The damaged file. */
  readonly path: string;
  /** Creates the error for the damaged file. */
  constructor(message: string, options: SluiceErrorOptions & { path: string }) {
    super(message, options);
    this.path = options.path;
  }
}
