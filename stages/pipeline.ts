/**
 * Runs the stages of a batch run in order: extract → bronze → silver → gold
 * → output, inside a run that `withRun` (`runtime/with_run.ts`) opened.
 * Every run is recorded in the ledger with its per-stage row accounting.
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
import { crashPoint } from "../core/crash_seam.ts";
import {
  DiskFullError,
  errorMessage,
  QualityGateError,
  SluiceError,
  SourceError,
  stopErrorOf,
} from "../core/errors.ts";
import { qualitySettings } from "../core/config/mod.ts";
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
  type SilverWrite,
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
import { checkMissingFiles } from "./landed_files.ts";
import { retractMissing } from "./retract.ts";
import { output } from "./output.ts";
import { silver, type StagedSilverTable, stageSilver } from "./silver.ts";
import { finishWal } from "./_wal.ts";
import { runStatusOf } from "../runtime/with_run.ts";

/** The stages of a batch run, in order. */
export const STAGES = ["extract", "bronze", "silver", "gold", "output"] as const;
/** One stage name. */
export type StageName = (typeof STAGES)[number];

/** What a batch run did, with its data-quality results. */
export interface PipelineRunSummary extends RunSummary {
  /** Every check result of the run (bronze, silver, gold), in order. */
  checks: CheckResult[];
  /** True when the run succeeded but its final CHECKPOINT failed (the WAL keeps the commits). */
  checkpointFailed?: boolean;
}

/** What a run was doing when it failed: the first chosen stage that did not finish. */
function failedStep(chosen: ReadonlySet<StageName>, summary: PipelineRunSummary): string {
  const done = new Set(summary.stages.map((s) => s.stage));
  const doing: Record<StageName, string> = {
    extract: "listing the source files",
    bronze: "landing bronze",
    silver: "building silver",
    gold: "building gold",
    output: "publishing the output",
  };
  const stage = STAGES.find((s) => chosen.has(s) && !done.has(s));
  return stage ? doing[stage] : "recording the run's end in the ledger";
}

/**
 * A file extract listed that bronze could not open (moved or deleted in
 * between, or its folder with it), as a {@linkcode SourceError} naming it.
 * The source's landing transaction rolled back: nothing of it was landed.
 */
function vanishedFile(e: unknown, plan: ExtractPlan | undefined): SourceError | undefined {
  const message = errorMessage(e);
  if (
    plan === undefined ||
    !(e instanceof Deno.errors.NotFound ||
      /No such file or directory|No files found/i.test(message))
  ) return undefined;
  for (const sp of plan.sources) {
    for (const f of [...sp.newFiles, ...sp.reingest]) {
      if (!message.includes(f.path)) continue;
      return new SourceError(
        `Cannot load source "${sp.source}": file ${f.path} was moved or deleted after extract ` +
          `listed it; nothing of "${sp.source}" was landed by this run (put it back, or run ` +
          `again to plan without it)`,
        { cause: e, context: { source: sp.source, file: f.path } },
      );
    }
  }
  return undefined;
}

/** Runs `fn`; a full disk becomes a DiskFullError saying it happened while `activity`. */
async function whileDoing<T>(ctx: RunContext, activity: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw DiskFullError.from(e, ctx.config.lake)?.during(activity) ?? e;
  }
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
 * Landed files that vanished from their folder are handled by each
 * source's `on_missing` right after extract (`retract` takes their bronze
 * rows out; silver follows in its transaction). `fullRefresh` rebuilds
 * silver from every bronze row still there (`sluice run --full-refresh`).
 *
 * @example
 * ```ts ignore
 * const summary = await runPipeline(ctx, { stages: ["extract", "bronze"] });
 * ```
 */
export async function runPipeline(
  ctx: RunContext,
  options: { stages?: readonly StageName[]; command?: string; fullRefresh?: boolean } = {},
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
  await whileDoing(
    ctx,
    "recording the run's start in the ledger",
    () => observeRunStarted(ctx, { command: options.command ?? "run", stages: [...chosen] }),
  );
  crashPoint("run_recorded");
  let plan: ExtractPlan | undefined;
  const step = async (name: StageName, fn: () => Promise<StageResult>) => {
    if (!chosen.has(name)) return;
    observeStageStarted(ctx, name);
    const result = await fn();
    summary.stages.push(result);
    await observeStageFinished(ctx, result);
    crashPoint("stage_recorded");
  };
  try {
    await step("extract", async () => {
      const r = await extract(ctx);
      plan = r.plan;
      return r.result;
    });
    crashPoint("extracted");
    let retractedMissing = 0;
    if (chosen.has("extract")) {
      const { retract } = await checkMissingFiles(ctx);
      if (chosen.has("bronze")) {
        retractedMissing = Object.values(await retractMissing(ctx, retract)).flat().length;
      }
    }
    const nothingNew = plan !== undefined && retractedMissing === 0 && !options.fullRefresh &&
      plan.sources.every((s) => s.newFiles.length === 0 && s.reingest.length === 0);
    if (nothingNew && await lastRunSucceeded(ctx)) {
      summary.noop = true;
      log.info("no new files, nothing to do", { event: "run_noop" });
    } else {
      let landed: StageResult | undefined;
      await step("bronze", async () => (landed = await bronze(ctx, { plan })));
      if (landed) await auditBronze(ctx, landed, summary);
      crashPoint("bronze_audited");
      if (chosen.has("silver") || chosen.has("gold")) {
        await buildAndAudit(ctx, chosen, summary, { fullRefresh: options.fullRefresh });
      }
      await step("output", () => output(ctx));
    }
  } catch (caught) {
    // A full disk names what it stopped: "no space left on X while Y"; a listed file
    // that vanished before bronze read it names the file.
    // A run stopped at a safe point (time limit, signal) records the stop, not the
    // stage error that reported the interrupted statement.
    const e = stopErrorOf(ctx.signal) ??
      DiskFullError.from(caught, ctx.config.lake)?.during(failedStep(chosen, summary)) ??
      vanishedFile(caught, plan) ?? caught;
    // A run stopped at a safe point (time limit, signal) still records its end.
    if (ctx.signal?.aborted) ctx.db.resume();
    summary.status = "failed";
    summary.durationMs = performance.now() - started;
    await observeRunFinished(ctx, summary, { error: e, status: runStatusOf(e) });
    throw e;
  }
  summary.durationMs = performance.now() - started;
  crashPoint("run_finishing");
  await recordSuccess(ctx, summary);
  crashPoint("run_finished");
  await checkpointAfterSuccess(ctx, summary);
  crashPoint("checkpointed");
  return summary;
}

/**
 * One CHECKPOINT per run folds the WAL into the database file. It comes
 * last: output reads the gold tables the commit left in memory rather than
 * the compressed blocks a checkpoint writes, each table is compressed and
 * written once, and closing the database finds nothing left to fold.
 *
 * A stop (signal, time limit) that comes once the run's success is recorded
 * does not undo it: the commits are safe in the WAL, which the next open
 * replays, so the checkpoint is left to the next run and the run exits 0.
 * A CHECKPOINT that fails (a full disk, an I/O error) does not undo it
 * either: the run stays a success, exits 0 and says so at error level
 * (`checkpoint_failed`), so a full disk is seen before the next run needs
 * the space.
 */
async function checkpointAfterSuccess(
  ctx: RunContext,
  summary: PipelineRunSummary,
): Promise<void> {
  if (!ctx.signal?.aborted) {
    try {
      await finishWal(ctx, { noop: summary.noop }); // a no-op run's small WAL stays (stages/_wal.ts)
    } catch (e) {
      if (!ctx.signal?.aborted) {
        summary.checkpointFailed = true;
        const full = DiskFullError.from(e, ctx.config.lake);
        ctx.logger.getChild("run").error(
          "the run succeeded but its CHECKPOINT failed; the commits are safe in the WAL and the " +
            "next run folds them: {error}",
          {
            event: "checkpoint_failed",
            error: errorMessage(e),
            error_kind: full ? full.kind : e instanceof SluiceError ? e.kind : "engine",
            wal_kept: true,
          },
        );
      }
    }
  }
  if (ctx.signal?.aborted) {
    ctx.db.resume();
    ctx.logger.getChild("run").warn(
      "stop requested after the run succeeded; checkpoint left to the next run",
      { event: "checkpoint_deferred" },
    );
  }
}

/**
 * Records a run whose every stage (output included) is done as `success`.
 * A stop (signal, time limit) that comes now cannot undo anything: the
 * commits and the published links stand. So the stop is set aside for the
 * ledger write and, when the stop interrupts that write (the listener runs
 * at any await), the write is made once more; a second signal exits the
 * process at once, so one retry is enough. The run then exits 0 and leaves
 * its checkpoint to the next run.
 */
async function recordSuccess(ctx: RunContext, summary: PipelineRunSummary): Promise<void> {
  if (ctx.signal?.aborted) ctx.db.resume();
  try {
    await observeRunFinished(ctx, summary);
  } catch (e) {
    if (!ctx.signal?.aborted) throw e;
    ctx.db.resume();
    await observeRunFinished(ctx, summary);
  }
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
  options: { fullRefresh?: boolean } = {},
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
      stagedSilver = await stageSilver(ctx, { fullRefresh: options.fullRefresh });
      stagingMs = performance.now() - t0;
      crashPoint("silver_staged");
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
          } else {
            built.push(
              await gold(staged, {
                fullRefresh: options.fullRefresh,
                // Silver's change set (undefined when silver did not run: full rebuild).
                changes: stagedSilver?.flatMap((s) => s.change ? [s.change] : []),
              }),
            );
          }
          const audit = await auditLayer(
            staged,
            layer,
            layer === "silver"
              ? {
                silverResults: built[built.length - 1].tables,
                silverWrites: silverWrites(stagedSilver),
              }
              : {},
          );
          audits.push(audit);
          const failed = gateFailures(audit.results);
          if (failed.length > 0) throw qualityGateError(failed, { layer, published: false });
        }
        const pruned = await pruneQuarantine(staged, settings.quarantine_retention);
        for (const [table, rows] of Object.entries(pruned)) {
          log.info("old quarantine rows pruned", { event: "quarantine_pruned", table, rows });
        }
        await recordAudits(staged, audits);
        crashPoint("gold_built");
      } catch (e) {
        // A stopped run (time limit, signal) ends now: no evidence to keep.
        if (chosen.has("silver") && !ctx.signal?.aborted) {
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
    crashPoint("gold_committed");
  } catch (e) {
    summary.checks.push(...audits.flatMap((a) => a.results));
    if (!ctx.signal?.aborted) await keepEvidence(ctx, audits, evidence);
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

/** What silver wrote per table, for `quality.scope: changed` (see `quality/gate.ts`). */
function silverWrites(staged: readonly StagedSilverTable[] | undefined): SilverWrite[] | undefined {
  return staged?.map((s) => ({
    table: s.name,
    rebuilt: !s.exists || s.fullRefresh,
    retracted: s.stale !== undefined,
    ...(s.change?.delta !== undefined ? { delta: s.change.delta } : {}),
  }));
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
