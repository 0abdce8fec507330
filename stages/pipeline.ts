/**
 * Opens a run (sandboxed database, logger, metrics, clock, run id) and runs
 * the stages in order: extract → bronze → silver → gold → output. Every run
 * is recorded in the ledger with its per-stage row accounting.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { Registry } from "prom-client";
import { type Clock, systemClock } from "../core/clock.ts";
import type { PipelineConfig } from "../core/config_schema.ts";
import { openEngine } from "../core/engine.ts";
import { errorMessage, UsageError } from "../core/errors.ts";
import { newRunId, RUN_ID_PATTERN } from "../core/run_id.ts";
import type { RunContext, RunSummary, StageResult } from "../core/run_context.ts";
import { finishRunRecord, recordStageResult, startRunRecord } from "../observability/ledger.ts";
import { recordStage, sluiceMetrics } from "../observability/metrics.ts";
import { bronze } from "./bronze.ts";
import { extract, type ExtractPlan } from "./extract.ts";
import { gold } from "./gold.ts";
import { output } from "./output.ts";
import { silver } from "./silver.ts";

/** The stages of a batch run, in order. */
export const STAGES = ["extract", "bronze", "silver", "gold", "output"] as const;
/** One stage name. */
export type StageName = (typeof STAGES)[number];

/** Options of {@linkcode openRun}. */
export interface OpenRunOptions {
  /** Run id; default a new UUIDv7. */
  runId?: string;
  /** Time source; default the system clock. */
  clock?: Clock;
  /** What started the run (`cli`, `cron`, `test`). Default `cli`. */
  trigger?: string;
  /** Metrics registry; default a fresh one. */
  metrics?: Registry;
}

/**
 * The folders the DuckDB sandbox allows: the lake, the output folder and
 * every source folder.
 *
 * @example
 * ```ts ignore
 * sandboxDirectories(config); // ["/data/lake", "/data/landing/orders"]
 * ```
 */
export function sandboxDirectories(config: PipelineConfig): string[] {
  const dirs = new Set([config.lake, config.output.path]);
  for (const s of Object.values(config.sources)) dirs.add(s.path);
  return [...dirs];
}

/**
 * Opens the pipeline's database (creating the lake folders) and returns the
 * run context. Close it with `ctx.db.close()`.
 *
 * @example
 * ```ts ignore
 * const ctx = await openRun(config, { trigger: "cron" });
 * try { await runPipeline(ctx); } finally { ctx.db.close(); }
 * ```
 */
export async function openRun(
  config: PipelineConfig,
  options: OpenRunOptions = {},
): Promise<RunContext> {
  const clock = options.clock ?? systemClock;
  if (options.runId !== undefined && !RUN_ID_PATTERN.test(options.runId)) {
    throw new UsageError(
      `Cannot use run id ${JSON.stringify(options.runId)}: use 1 to 64 letters, digits, _ . -`,
    );
  }
  const runId = options.runId ?? newRunId(clock);
  await Deno.mkdir(config.lake, { recursive: true });
  await Deno.mkdir(config.engine.temp_directory, { recursive: true });
  await Deno.mkdir(config.output.path, { recursive: true });
  const db = await openEngine(config.engine.database, {
    allowedDirectories: sandboxDirectories(config),
    threads: config.engine.threads,
    memoryLimit: config.engine.memory_limit,
    tempDirectory: config.engine.temp_directory,
    schemas: ["bronze", "silver", "gold", "_sluice"],
    searchPath: ["gold", "silver"],
  });
  const logger = getLogger(["sluice"]).with({ run_id: runId, pipeline: config.pipeline });
  return {
    runId,
    config,
    db,
    logger,
    metrics: options.metrics ?? new Registry(),
    clock,
    startedAt: clock.now(),
    trigger: options.trigger ?? "cli",
  };
}

/** True when the previous run of this pipeline finished successfully. */
async function lastRunSucceeded(ctx: RunContext): Promise<boolean> {
  const row = await ctx.db.one<{ status: string }>(
    `SELECT status FROM _sluice.runs WHERE run_id <> $run_id AND command = 'run'
     ORDER BY started_at DESC LIMIT 1`,
    { run_id: ctx.runId },
  );
  return row?.status === "success";
}

/**
 * Runs the chosen stages (default all) in order, recording each in the
 * ledger and metrics. A stage failure marks the run failed and rethrows.
 *
 * @example
 * ```ts ignore
 * const summary = await runPipeline(ctx, { stages: ["extract", "bronze"] });
 * ```
 */
export async function runPipeline(
  ctx: RunContext,
  options: { stages?: readonly StageName[]; command?: string } = {},
): Promise<RunSummary> {
  const chosen = new Set(options.stages ?? STAGES);
  const log = ctx.logger.getChild("run");
  const started = performance.now();
  const summary: RunSummary = {
    runId: ctx.runId,
    status: "success",
    durationMs: 0,
    stages: [],
    noop: false,
  };
  await startRunRecord(ctx, { command: options.command ?? "run" });
  log.info("run started", { event: "run_started", stages: [...chosen], trigger: ctx.trigger });
  const metrics = sluiceMetrics(ctx.metrics);
  let plan: ExtractPlan | undefined;
  const step = async (name: StageName, fn: () => Promise<StageResult>) => {
    if (!chosen.has(name)) return;
    const slog = ctx.logger.getChild(name).with({ stage: name });
    slog.info("stage started", { event: "stage_started" });
    const result = await fn();
    summary.stages.push(result);
    recordStage(ctx.metrics, ctx.config.pipeline, result);
    await recordStageResult(ctx, result);
    slog.info("stage finished", {
      event: "stage_finished",
      duration_ms: Math.round(result.durationMs),
      tables: result.tables.length,
      rows_in: result.tables.reduce((s, t) => s + t.rowsIn, 0),
      skipped: result.skipped ?? false,
    });
  };
  try {
    await step("extract", async () => {
      const r = await extract(ctx);
      plan = r.plan;
      return r.result;
    });
    const nothingNew = plan !== undefined &&
      plan.sources.every((s) => s.newFiles.length === 0 && s.reingest.length === 0);
    if (nothingNew && await lastRunSucceeded(ctx)) {
      summary.noop = true;
      log.info("no new files, nothing to do", { event: "run_noop" });
    } else {
      await step("bronze", () => bronze(ctx, { plan }));
      await step("silver", () => silver(ctx));
      await step("gold", () => gold(ctx));
      await step("output", () => output(ctx));
    }
  } catch (e) {
    summary.status = "failed";
    summary.durationMs = performance.now() - started;
    metrics.runStatus.set({ pipeline: ctx.config.pipeline, status: "failed" }, 1);
    metrics.runDuration.set({ pipeline: ctx.config.pipeline }, summary.durationMs / 1000);
    await finishRunRecord(ctx, { status: "failed", error: errorMessage(e) }).catch(() => {});
    log.error("run failed", {
      event: "run_failed",
      error: errorMessage(e),
      error_kind: (e as { kind?: string }).kind ?? "internal",
      duration_ms: Math.round(summary.durationMs),
    });
    throw e;
  }
  summary.durationMs = performance.now() - started;
  metrics.runStatus.set({ pipeline: ctx.config.pipeline, status: "success" }, 1);
  metrics.runDuration.set({ pipeline: ctx.config.pipeline }, summary.durationMs / 1000);
  metrics.lastSuccess.set({ pipeline: ctx.config.pipeline }, ctx.clock.now().getTime() / 1000);
  await finishRunRecord(ctx, { status: "success" });
  log.info("run finished", {
    event: "run_finished",
    status: "success",
    duration_ms: Math.round(summary.durationMs),
    noop: summary.noop,
  });
  return summary;
}
