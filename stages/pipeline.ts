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
import { UsageError } from "../core/errors.ts";
import { newRunId, RUN_ID_PATTERN } from "../core/run_id.ts";
import type { RunContext, RunSummary, StageResult } from "../core/run_context.ts";
import {
  observeRunFinished,
  observeRunStarted,
  observeStageFinished,
  observeStageStarted,
} from "../observability/run_observer.ts";
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
  await observeRunStarted(ctx, { command: options.command ?? "run", stages: [...chosen] });
  let plan: ExtractPlan | undefined;
  const step = async (name: StageName, fn: () => Promise<StageResult>) => {
    if (!chosen.has(name)) return;
    observeStageStarted(ctx, name);
    const result = await fn();
    summary.stages.push(result);
    await observeStageFinished(ctx, result);
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
    await observeRunFinished(ctx, summary, { error: e });
    throw e;
  }
  summary.durationMs = performance.now() - started;
  await observeRunFinished(ctx, summary);
  return summary;
}
