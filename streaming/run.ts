/**
 * One call that runs a stream in-process from a loaded config: opens the
 * run (sandboxed database, logger, metrics), runs the stream, closes the
 * database. Used by the CLI and by the benchmark.
 *
 * @module
 */
import type { PipelineConfig } from "../core/config_schema.ts";
import { openRun, type OpenRunOptions } from "../stages/pipeline.ts";
import { runStream, type StreamOptions, type StreamSummary } from "./stream.ts";

/** Options of {@linkcode runStreamPipeline}: how to stream, and how to open the run. */
export interface RunStreamPipelineOptions extends StreamOptions {
  /** Run id, clock, what started the run (`cli`, `cron`, `bench`) and metrics registry. */
  run?: OpenRunOptions;
}

/**
 * Opens the pipeline's database, runs its stream, and closes the database,
 * even on failure.
 *
 * @example
 * ```ts ignore
 * import { loadConfig, runStreamPipeline } from "../mod.ts";
 * const config = await loadConfig("bench/stream/pipeline.yaml");
 * const t0 = performance.now();
 * const s = await runStreamPipeline(config, { trigger: "available-now" });
 * const shown = [s.recordsRead / ((performance.now() - t0) / 1000), "events/s"];
 * ```
 */
export async function runStreamPipeline(
  config: PipelineConfig,
  options: RunStreamPipelineOptions = {},
): Promise<StreamSummary> {
  // A stream runs for long: DuckDB's own checkpoints keep its WAL small.
  const ctx = await openRun(config, { ...options.run, checkpointThreshold: null });
  try {
    return await runStream(ctx, options);
  } finally {
    ctx.db.close();
  }
}
