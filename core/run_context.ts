/**
 * The run context: everything a stage needs, passed explicitly instead of
 * globals. Nothing here opens DuckDB or reads the clock at import time.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Registry } from "prom-client";
import type { Clock } from "./clock.ts";
import type { PipelineConfig } from "./config_schema.ts";
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
}
