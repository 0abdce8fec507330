/**
 * The run lifecycle, observed: ledger rows, metrics and lifecycle log events
 * (`run_started`, `stage_started`, `stage_finished`, `run_finished`,
 * `run_failed`). The pipeline runner calls these four functions and nothing
 * else of observability, so exporters, lineage and reports hook in here.
 *
 * @module
 */
import { errorMessage } from "../core/errors.ts";
import type { RunContext, RunSummary, StageResult } from "../core/run_context.ts";
import { finishRunRecord, recordStageResult, startRunRecord } from "./ledger.ts";
import { recordStage, sluiceMetrics } from "./metrics.ts";

/**
 * Records the start of a run (ledger row `running`, `run_started` event).
 *
 * @example
 * ```ts ignore
 * await observeRunStarted(ctx, { command: "run", stages: ["extract"] });
 * ```
 */
export async function observeRunStarted(
  ctx: RunContext,
  options: { command: string; stages: readonly string[] },
): Promise<void> {
  await startRunRecord(ctx, { command: options.command });
  ctx.logger.getChild("run").info("run started", {
    event: "run_started",
    command: options.command,
    stages: [...options.stages],
    trigger: ctx.trigger,
  });
}

/**
 * Logs `stage_started` for a stage.
 *
 * @example
 * ```ts ignore
 * observeStageStarted(ctx, "silver");
 * ```
 */
export function observeStageStarted(ctx: RunContext, stage: string): void {
  ctx.logger.getChild(stage).with({ stage }).info("stage started", { event: "stage_started" });
}

/**
 * Records a finished stage: metrics, ledger rows, `stage_finished` event.
 *
 * @example
 * ```ts ignore
 * await observeStageFinished(ctx, result);
 * ```
 */
export async function observeStageFinished(ctx: RunContext, result: StageResult): Promise<void> {
  recordStage(ctx.metrics, ctx.config.pipeline, result);
  await recordStageResult(ctx, result);
  ctx.logger.getChild(result.stage).with({ stage: result.stage }).info("stage finished", {
    event: "stage_finished",
    duration_ms: Math.round(result.durationMs),
    tables: result.tables.length,
    rows_in: result.tables.reduce((s, t) => s + t.rowsIn, 0),
    skipped: result.skipped ?? false,
  });
}

/**
 * Records the end of a run: status metrics (the last-success timestamp only
 * on success), the ledger row, and `run_finished` or `run_failed`.
 *
 * @example
 * ```ts ignore
 * await observeRunFinished(ctx, summary, { error });
 * ```
 */
export async function observeRunFinished(
  ctx: RunContext,
  summary: RunSummary,
  options: { error?: unknown; status?: string } = {},
): Promise<void> {
  const pipeline = ctx.config.pipeline;
  const metrics = sluiceMetrics(ctx.metrics);
  const status = options.status ?? (options.error === undefined ? "success" : "failed");
  metrics.runStatus.set({ pipeline, status }, 1);
  metrics.runDuration.set({ pipeline }, summary.durationMs / 1000);
  const log = ctx.logger.getChild("run");
  if (status === "success") {
    metrics.lastSuccess.set({ pipeline }, ctx.clock.now().getTime() / 1000);
    await finishRunRecord(ctx, { status });
    log.info("run finished", {
      event: "run_finished",
      status,
      duration_ms: Math.round(summary.durationMs),
      noop: summary.noop,
    });
    return;
  }
  const error = options.error === undefined ? undefined : errorMessage(options.error);
  try {
    await finishRunRecord(ctx, { status, error });
  } catch (e) {
    log.warn("could not record the failed run in the ledger", {
      event: "ledger_write_failed",
      error: errorMessage(e),
    });
  }
  log.error("run failed", {
    event: "run_failed",
    status,
    error,
    error_kind: (options.error as { kind?: string } | undefined)?.kind ?? "internal",
    duration_ms: Math.round(summary.durationMs),
  });
}
