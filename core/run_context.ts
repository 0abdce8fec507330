/**
 * The run context: everything a stage needs, passed explicitly instead of
 * globals. Nothing here opens DuckDB or reads the clock at import time.
 *
 * @module
 */
import type { Logger, Registry } from "./npm_types.ts";
import type { Clock } from "./clock.ts";
import type { PipelineConfig } from "./config/mod.ts";
import type { Engine } from "./engine.ts";

/** Everything one run of a pipeline carries from stage to stage. */
export interface RunContext {
  /** The run's id (UUIDv7 or `--run-id`). */
  readonly runId: string;
  /** The loaded config. */
  readonly config: PipelineConfig;
  /** The sandboxed database. */
  readonly db: Engine;
  /** Logger with `run_id` and `pipeline` on every record. */
  readonly logger: Logger;
  /** Prometheus registry of this run (fresh per process). */
  readonly metrics: Registry;
  /** Time source. */
  readonly clock: Clock;
  /** When the run started. */
  readonly startedAt: Date;
  /** What started the run: `cli`, `cron`, `test`... */
  readonly trigger: string;
  /** Aborted when the run must stop at its next safe point (signal, time limit). */
  readonly signal?: AbortSignal;
}

/**
 * How the rows of one table moved through one stage. The stage checks that
 * `rowsIn === passed + quarantined + duplicates` before it commits.
 */
export interface TableResult {
  /** Layer: extract, bronze, silver, gold or output. */
  layer: string;
  /** Table (or source) name. */
  table: string;
  /** Rows that entered the stage. */
  rowsIn: number;
  /** Rows written onward. */
  passed: number;
  /** Rows sent to quarantine. */
  quarantined: number;
  /** Rows dropped as duplicates of a later version. */
  duplicates: number;
  /** Extra facts (files read, columns added, output path...). */
  details?: Record<string, unknown>;
}

/** What one stage did in a run. */
export interface StageResult {
  /** Stage name. */
  stage: string;
  /** Wall time in milliseconds. */
  durationMs: number;
  /** One entry per table the stage touched. */
  tables: TableResult[];
  /** True when there was nothing to do. */
  skipped?: boolean;
}

/** What a batch run did. */
export interface RunSummary {
  /** The run's id. */
  runId: string;
  /** `success` or `failed`. */
  status: "success" | "failed";
  /** Wall time in milliseconds. */
  durationMs: number;
  /** Each stage's result, in order. */
  stages: StageResult[];
  /** True when no source had a new file (nothing was rebuilt). */
  noop: boolean;
}
