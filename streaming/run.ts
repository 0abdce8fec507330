/**
 * One call that runs a stream in-process from a loaded config: opens the
 * run (sandboxed database, logger, metrics), runs the stream, closes the
 * database. Used by the CLI and by the benchmark.
 *
 * @module
 */
import type { PipelineConfig } from "../core/config_schema.ts";
import type { RunContext } from "../core/run_context.ts";
import { openRun, type OpenRunOptions } from "../stages/pipeline.ts";
import { runStream, type StreamOptions, type StreamSummary } from "./stream.ts";

/** Options of {@linkcode runStreamPipeline}: how to stream, and how to open the run. */
export interface RunStreamPipelineOptions extends StreamOptions {
  /** Run id, clock, what started the run (`cli`, `cron`, `bench`) and metrics registry. */
  run?: OpenRunOptions;
}

/**
 * Opens a run for streaming: like `openRun`, but with DuckDB's own automatic
 * checkpoint (a stream runs for long, and those checkpoints keep its WAL
 * small), where a batch run checkpoints once at its end.
 *
 * @example
 * ```ts ignore
 * import { loadConfig, openStreamRun, runStream } from "../mod.ts";
 * const ctx = await openStreamRun(await loadConfig("pipeline.yaml"), { trigger: "cron" });
 * ```
 */
export async function openStreamRun(
  config: PipelineConfig,
  options: OpenRunOptions = {},
): Promise<RunContext> {
  return await openRun(config, { ...options, checkpointThreshold: null });
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
  const ctx = await openStreamRun(config, options.run);
  try {
    return await runStream(ctx, options);
  } finally {
    ctx.db.close();
  }
}
