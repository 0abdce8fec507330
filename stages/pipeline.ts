/**
 * Opens a run (sandboxed database, logger, metrics, clock, run id) and runs
 * the stages in order: extract → bronze → silver → gold → output. Every run
 * is recorded in the ledger with its per-stage row accounting.
 *
 * Write, audit, publish: bronze lands and is audited on its own (raw
 * landing is kept; an error-level bronze check stops the run before
 * silver). Silver and gold are built in one DuckDB transaction, profiled and
 * checked there, and committed only when no error-level check failed;
 * otherwise the transaction is rolled back (readers keep the previous
 * tables), the checks' evidence is stored, nothing is published, and the
 * run ends with a `QualityGateError` (exit code 3). Output is published only
 * after the commit.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { Registry } from "prom-client";
import { type Clock, systemClock } from "../core/clock.ts";
import type { PipelineConfig } from "../core/config_schema.ts";
import { streamingDirectories } from "../core/config_streaming.ts";
import { openEngine } from "../core/engine.ts";
import { errorMessage, QualityGateError, UsageError } from "../core/errors.ts";
import { qualitySettings } from "../core/config_quality.ts";
import { newRunId, RUN_ID_PATTERN } from "../core/run_id.ts";
import type { RunContext, RunSummary, StageResult } from "../core/run_context.ts";
import {
  observeRunFinished,
  observeRunStarted,
  observeStageFinished,
  observeStageStarted,
} from "../observability/run_observer.ts";
import type { CheckResult } from "../quality/checks.ts";
import {
  auditLayer,
  gateFailures,
  type LayerAudit,
  qualityGateError,
  recordAudits,
  stagedEngine,
} from "../quality/gate.ts";
import {
  pruneQuarantine,
  type QuarantineEvidence,
  removeEvidenceFiles,
  restoreQuarantineEvidence,
  saveQuarantineEvidence,
} from "../quality/history.ts";
import { bronze } from "./bronze.ts";
import { extract, type ExtractPlan } from "./extract.ts";
import { gold } from "./gold.ts";
import { output } from "./output.ts";
import { silver, type StagedSilverTable, stageSilver } from "./silver.ts";

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
  metrics?: RunContext["metrics"];
  /**
   * WAL size at which DuckDB checkpoints by itself. Default `1GB`: a batch
   * run checkpoints once, at its end ({@linkcode runPipeline}), rather than
   * whenever 16 MiB of WAL piled up mid-run, which would write some tables
   * twice. Pass `null` for DuckDB's default (the long-running stream does).
   */
  checkpointThreshold?: string | null;
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
  if (config.streaming) { for (const d of streamingDirectories(config.streaming)) dirs.add(d); }
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
    ...(options.checkpointThreshold === null
      ? {}
      : { checkpointThreshold: options.checkpointThreshold ?? "1GB" }),
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

/** What a batch run did, with its data-quality results. */
export interface PipelineRunSummary extends RunSummary {
  /** Every check result of the run (bronze, silver, gold), in order. */
  checks: CheckResult[];
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
 * Silver and gold are built, audited and committed together; an
 * error-level check failure rolls them back, publishes nothing and throws
 * a `QualityGateError` (exit code 3, run status `quality_failed`). The
 * summary lists every check result, warnings included.
 *
 * @example
 * ```ts ignore
 * const summary = await runPipeline(ctx, { stages: ["extract", "bronze"] });
 * ```
 */
export async function runPipeline(
  ctx: RunContext,
  options: { stages?: readonly StageName[]; command?: string } = {},
): Promise<PipelineRunSummary> {
  const chosen = new Set(options.stages ?? STAGES);
  const log = ctx.logger.getChild("run");
  const started = performance.now();
  const summary: PipelineRunSummary = {
    runId: ctx.runId,
    status: "success",
    durationMs: 0,
    stages: [],
    noop: false,
    checks: [],
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
      let landed: StageResult | undefined;
      await step("bronze", async () => (landed = await bronze(ctx, { plan })));
      if (landed) await auditBronze(ctx, landed, summary);
      if (chosen.has("silver") || chosen.has("gold")) await buildAndAudit(ctx, chosen, summary);
      await step("output", () => output(ctx));
    }
  } catch (e) {
    summary.status = "failed";
    summary.durationMs = performance.now() - started;
    await observeRunFinished(ctx, summary, {
      error: e,
      ...(e instanceof QualityGateError ? { status: "quality_failed" } : {}),
    });
    throw e;
  }
  summary.durationMs = performance.now() - started;
  await observeRunFinished(ctx, summary);
  // One CHECKPOINT per run folds the WAL into the database file. It comes
  // last: output reads the gold tables the commit left in memory rather than
  // the compressed blocks a checkpoint writes, each table is compressed and
  // written once, and closing the database finds nothing left to fold.
  await ctx.db.checkpoint();
  return summary;
}

/**
 * Audits the batches bronze landed in this run. Bronze is raw landing and
 * stays; an error-level failure stops the run before silver.
 */
async function auditBronze(
  ctx: RunContext,
  landed: StageResult,
  summary: PipelineRunSummary,
): Promise<void> {
  const sources = landed.tables.filter((t) => t.passed > 0).map((t) => t.table);
  if (sources.length === 0) return;
  const audit = await auditLayer(ctx, "bronze", { sources });
  summary.checks.push(...audit.results);
  await ctx.db.transaction(() => recordAudits(ctx, [audit]));
  const failed = gateFailures(audit.results);
  if (failed.length > 0) throw qualityGateError(failed, { layer: "bronze", published: false });
}

/**
 * Write and audit: builds silver and gold in one transaction on a staged
 * engine, audits each layer right after it is built, and commits only when
 * the gate passes. On any failure the transaction rolls back; the audits
 * done so far and the quarantine rows of the run are then stored in a
 * transaction of their own, so the evidence of a failed run is kept.
 */
async function buildAndAudit(
  ctx: RunContext,
  chosen: ReadonlySet<StageName>,
  summary: PipelineRunSummary,
): Promise<void> {
  const log = ctx.logger.getChild("quality");
  const staged: RunContext = { ...ctx, db: stagedEngine(ctx.db) };
  const settings = qualitySettings(ctx.config);
  const built: StageResult[] = [];
  const audits: LayerAudit[] = [];
  let evidence: QuarantineEvidence[] = [];
  const finishStages = async () => {
    for (const r of built) {
      summary.stages.push(r);
      await observeStageFinished(ctx, r);
    }
  };
  try {
    // Silver's rows are typed, checked and ranked into temp tables before
    // the transaction opens: DuckDB scans what a transaction created itself
    // on one thread only, and what was committed before on all of them.
    let stagedSilver: StagedSilverTable[] | undefined;
    let stagingMs = 0;
    if (chosen.has("silver")) {
      observeStageStarted(ctx, "silver");
      const t0 = performance.now();
      stagedSilver = await stageSilver(ctx);
      stagingMs = performance.now() - t0;
    }
    await ctx.db.transaction(async () => {
      try {
        for (const layer of ["silver", "gold"] as const) {
          if (!chosen.has(layer)) continue;
          if (layer === "gold") observeStageStarted(ctx, layer);
          if (layer === "silver") {
            const result = await silver(staged, { staged: stagedSilver });
            result.durationMs += stagingMs;
            built.push(result);
          } else built.push(await gold(staged));
          const audit = await auditLayer(staged, layer);
          audits.push(audit);
          const failed = gateFailures(audit.results);
          if (failed.length > 0) throw qualityGateError(failed, { layer, published: false });
        }
        const pruned = await pruneQuarantine(staged, settings.quarantine_retention);
        for (const [table, rows] of Object.entries(pruned)) {
          log.info("old quarantine rows pruned", { event: "quarantine_pruned", table, rows });
        }
        await recordAudits(staged, audits);
      } catch (e) {
        if (chosen.has("silver")) {
          try {
            evidence = await saveQuarantineEvidence(staged);
          } catch (saveError) {
            log.warn("could not keep the quarantine rows of the failed run", {
              event: "quality_evidence_failed",
              error: errorMessage(saveError),
            });
          }
        }
        throw e;
      }
    });
  } catch (e) {
    summary.checks.push(...audits.flatMap((a) => a.results));
    await keepEvidence(ctx, audits, evidence);
    await finishStages();
    if (e instanceof QualityGateError) {
      log.error("quality gate failed, nothing was published", {
        event: "quality_gate_failed",
        failed: (e.context.failed_checks as unknown[] | undefined)?.length ?? 0,
      });
    }
    throw e;
  } finally {
    await removeEvidenceFiles(evidence);
  }
  summary.checks.push(...audits.flatMap((a) => a.results));
  const results = audits.flatMap((a) => a.results);
  log.info("quality gate passed", {
    event: "quality_gate_passed",
    checks: results.length,
    warnings: results.filter((r) => r.status !== "pass").length,
    tables_profiled: audits.reduce((n, a) => n + a.profiles.length, 0),
  });
  await finishStages();
}

/** After a rollback: stores the failed run's audits and quarantine rows. */
async function keepEvidence(
  ctx: RunContext,
  audits: readonly LayerAudit[],
  evidence: readonly QuarantineEvidence[],
): Promise<void> {
  if (audits.length === 0 && evidence.length === 0) return;
  try {
    const restored = await ctx.db.transaction(async () => {
      const n = await restoreQuarantineEvidence(ctx, evidence);
      await recordAudits(ctx, audits);
      return n;
    });
    ctx.logger.getChild("quality").info("evidence of the failed run kept", {
      event: "quality_evidence_kept",
      check_results: audits.reduce((n, a) => n + a.results.length, 0),
      quarantined_rows: restored,
    });
  } catch (e) {
    ctx.logger.getChild("quality").warn("could not store the evidence of the failed run", {
      event: "quality_evidence_failed",
      error: errorMessage(e),
    });
  }
}
