/**
 * A JetStream worker as a long-running process (`sluice stream
 * --worker-id ID` on a `type: jetstream` source): runs the worker in the run
 * lifecycle, serves `/metrics` and `/healthz` while it runs (when
 * `observability.metrics.server` is set), and stops on SIGINT/SIGTERM after
 * the batch in flight is committed and acked.
 *
 * @module
 */
import type { PipelineConfig } from "../../core/config/mod.ts";
import { withMetricsServer } from "../_serve_metrics.ts";
import { runJetStreamPipeline, type RunJetStreamPipelineOptions } from "./run.ts";
import type { JetStreamSummary } from "./worker.ts";

/**
 * Runs the pipeline's JetStream worker until its trigger is done or it is
 * stopped, with the metrics server up while it runs.
 *
 * @example
 * ```ts ignore
 * import { loadConfig, serveJetStream } from "../../mod.ts";
 * const s = await serveJetStream(await loadConfig("pipeline.yaml"), {
 *   workerId: "ingest-1",
 *   trigger: "interval",
 * });
 * ```
 */
export async function serveJetStream(
  config: PipelineConfig,
  options: RunJetStreamPipelineOptions = {},
): Promise<JetStreamSummary> {
  return await runJetStreamPipeline(config, {
    ...options,
    onOpen: withMetricsServer(options.onOpen),
  });
}
