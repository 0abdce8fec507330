/**
 * One call that runs a stream in-process from a loaded config, as one run
 * of the run lifecycle (`withRun`, kind `stream`: DuckDB's own automatic
 * checkpoints, since a stream runs for long). Used by the CLI and by the
 * benchmark.
 *
 * @module
 */
import type { PipelineConfig } from "../core/config/mod.ts";
import type { RunContext } from "../core/run_context.ts";
import { observeRunFinished, observeRunStarted } from "../observability/run_observer.ts";
import { runStatusOf, withRun, type WithRunOptions } from "../runtime/with_run.ts";
import { runStream, type StreamOptions, type StreamSummary } from "./stream.ts";

/** Options of {@linkcode runStreamPipeline}: how to stream, and how to open the run. */
export interface RunStreamPipelineOptions extends StreamOptions {
  /** Run id, clock, what started the run (`cli`, `cron`, `bench`), metrics registry... */
  run?: Omit<WithRunOptions, "kind">;
  /** Called with the open run before the stream starts (e.g. to serve its metrics). */
  onOpen?: (ctx: RunContext) => Promise<(() => Promise<void>) | void>;
}

/**
 * Opens the pipeline's database, runs its stream, and closes the database,
 * even on failure. `signal` (or `run.signal`) stops the stream after the
 * batch in flight. The run observer sees the stream as it sees a batch run
 * (run manifest, `sluice_run_status` and the other run metrics, metrics
 * exports, OpenLineage START and COMPLETE or FAIL); the stream's runner
 * writes its own ledger row.
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
  return await withStreamRun(
    config,
    options,
    (ctx, signal) => runStream(ctx, { ...options, signal }),
  );
}

/** What {@linkcode withStreamRun} needs of a stream runner's options. */
export interface StreamRunOptions {
  /** Stops the stream after the batch in flight. */
  signal?: AbortSignal;
  /** Run id, clock, what started the run, metrics registry, signals... */
  run?: Omit<WithRunOptions, "kind">;
  /** Called with the open run before the stream starts (e.g. to serve its metrics). */
  onOpen?: (ctx: RunContext) => Promise<(() => Promise<void>) | void>;
}

/**
 * Runs a stream (landing folder or JetStream) as one `stream` run of the run
 * lifecycle: `onOpen` before it, its cleanup after it (even on failure), the
 * run observer around it. `stream` gets the signal to stop on.
 *
 * @example
 * ```ts ignore
 * const s = await withStreamRun(config, {}, (ctx, signal) => runStream(ctx, { signal }));
 * ```
 */
export async function withStreamRun<T>(
  config: PipelineConfig,
  options: StreamRunOptions,
  stream: (ctx: RunContext, signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  const signal = options.signal ?? options.run?.signal;
  return await withRun(config, { ...options.run, signal, kind: "stream" }, async (ctx) => {
    const cleanup = await options.onOpen?.(ctx);
    try {
      // ctx.signal: the caller's signal, SIGINT/SIGTERM and the time limit, as withRun sees them.
      return await observedStream(ctx, () => stream(ctx, ctx.signal ?? signal));
    } finally {
      if (cleanup) await cleanup();
    }
  });
}

/**
 * Runs a stream (landing folder or JetStream) between the run observer's
 * start and finish, so it is recorded like a batch run; the stream's runner
 * writes its own ledger row (`ledger: false`).
 *
 * @example
 * ```ts ignore
 * const summary = await observedStream(ctx, () => runStream(ctx, { trigger: "once" }));
 * ```
 */
export async function observedStream<T>(ctx: RunContext, stream: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  await observeRunStarted(ctx, { command: "stream", stages: ["stream"], ledger: false });
  const summaryOf = (status: "success" | "failed") => ({
    runId: ctx.runId,
    status,
    durationMs: performance.now() - t0,
    stages: [],
    noop: false,
  });
  let summary: T;
  try {
    summary = await stream();
  } catch (e) {
    await observeRunFinished(ctx, summaryOf("failed"), {
      error: e,
      status: runStatusOf(e),
      ledger: false,
    });
    throw e;
  }
  await observeRunFinished(ctx, summaryOf("success"), { ledger: false });
  return summary;
}
