/**
 * One call that runs a JetStream worker in-process from a loaded config,
 * through the run lifecycle (`withRun`: run id, lock, sandboxed database,
 * ledger, close). Used by `sluice stream` for a `type: jetstream` source.
 *
 * @module
 */
import type { PipelineConfig } from "../../core/config/mod.ts";
import type { RunContext } from "../../core/run_context.ts";
import type { WithRunOptions } from "../../runtime/with_run.ts";
import { withStreamRun } from "../run.ts";
import { type JetStreamOptions, type JetStreamSummary, runJetStream } from "./worker.ts";

/** Options of {@linkcode runJetStreamPipeline}. */
export interface RunJetStreamPipelineOptions extends JetStreamOptions {
  /** Run id, clock, what started the run, metrics registry, signals... */
  run?: Omit<WithRunOptions, "kind">;
  /** Called with the open run before the worker starts (e.g. to serve its metrics). */
  onOpen?: (ctx: RunContext) => Promise<(() => Promise<void>) | void>;
}

/**
 * Opens the worker's lake (its shard), runs the JetStream worker, and
 * closes it, even on failure.
 *
 * @example
 * ```ts ignore
 * import { loadConfig, runJetStreamPipeline } from "../../mod.ts";
 * const config = await loadConfig("pipeline.yaml");
 * const s = await runJetStreamPipeline(config, { workerId: "w1", trigger: "available-now" });
 * ```
 */
export async function runJetStreamPipeline(
  config: PipelineConfig,
  options: RunJetStreamPipelineOptions = {},
): Promise<JetStreamSummary> {
  return await withStreamRun(
    config,
    options,
    (ctx, signal) => runJetStream(ctx, { ...options, signal }),
  );
}
