/**
 * A stream as a long-running process: `sluice stream`. Runs the stream in
 * the run lifecycle (`withRun`, which also owns SIGINT/SIGTERM: the first
 * finishes the batch in flight and stops, a second exits at once) and
 * serves `/metrics` and `/healthz` while it runs, when
 * `observability.metrics.server` is set.
 *
 * @module
 */
import type { PipelineConfig } from "../core/config/mod.ts";
import { withMetricsServer } from "./_serve_metrics.ts";
import { runStreamPipeline, type RunStreamPipelineOptions } from "./run.ts";
import type { StreamSummary } from "./stream.ts";

/** Options of {@linkcode serveStream}: those of `runStreamPipeline`. */
export type ServeStreamOptions = RunStreamPipelineOptions;

/**
 * Runs the pipeline's stream until its trigger is done or the run is
 * stopped, with the metrics server up while it runs and closed before it
 * returns. Signals are the run lifecycle's (`run.handleSignals`): the first
 * SIGINT/SIGTERM finishes the batch in flight and stops the stream.
 *
 * @example
 * ```ts ignore
 * import { loadConfig, serveStream } from "../mod.ts";
 * const summary = await serveStream(await loadConfig("pipeline.yaml"), {
 *   trigger: "interval",
 *   run: { handleSignals: true },
 * });
 * ```
 */
export async function serveStream(
  config: PipelineConfig,
  options: ServeStreamOptions = {},
): Promise<StreamSummary> {
  return await runStreamPipeline(config, { ...options, onOpen: withMetricsServer(options.onOpen) });
}
