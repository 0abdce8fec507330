/**
 * The run lifecycle, observed. The pipeline runner calls these four
 * functions and nothing else of observability; behind them:
 *
 * - lifecycle log events: `run_started`, `stage_started`, `stage_finished`,
 *   `run_finished` / `run_failed`, plus one `metric` event per sample;
 * - the run ledger (`_sluice.runs`, `_sluice.stage_tables`), the run
 *   manifest and the column statistics of every table written;
 * - metrics on the run's registry, exported at the end of the run to a
 *   Pushgateway and/or a node_exporter textfile as configured;
 * - OpenLineage START / COMPLETE / FAIL events for the run and each stage;
 * - the HTML run report, when `observability.report.path` is set.
 *
 * Exporting, lineage and the report never fail a run: their problems are
 * warnings with the run's id.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { observabilityDefaults } from "../core/config/mod.ts";
import type { ObservabilityConfig } from "../core/config/mod.ts";
import { redactSecrets } from "../core/config/mod.ts";
import { errorMessage } from "../core/errors.ts";
import type { RunContext, RunSummary, StageResult } from "../core/run_context.ts";
import { measureTable, readColumnStats } from "./column_stats.ts";
import { pushToGateway, writeFileAtomic, writeTextfile } from "./exporters.ts";
import {
  finishRunRecord,
  recordStageResult,
  SLUICE_VERSION,
  startRunRecord,
  tableExists,
} from "./ledger.ts";
import { groupStats, LineageEmitter, LineageEvents } from "./lineage.ts";
import { logFormatInUse } from "./logging.ts";
import { logMetrics, recordStage, RUN_STATUSES, sluiceMetrics } from "./metrics.ts";
import { CHECK_STATUSES } from "./metrics.ts";
import { buildReport } from "./report.ts";
import { retriesCounter } from "./retries.ts";
import { duckdbVersion, recordManifest, recordRunInputs } from "./run_manifest.ts";

/** Layers whose tables get column statistics when a stage writes them. */
const MEASURED_LAYERS = new Set(["silver", "gold"]);

interface RunState {
  command: string;
  /** Stages started and not finished, in start order (silver and gold may overlap). */
  running: string[];
  finished: StageResult[];
  lineage?: { events: LineageEvents; emitter: LineageEmitter };
}

const states = new WeakMap<RunContext, RunState>();
/** The final status {@linkcode observeRunFinished} wrote to a run's ledger row. */
const recorded = new WeakMap<RunContext, string>();

function settings(ctx: RunContext): ObservabilityConfig {
  return ctx.config.observability ?? observabilityDefaults();
}

function stateOf(ctx: RunContext): RunState {
  let s = states.get(ctx);
  if (!s) {
    s = { command: "run", running: [], finished: [] };
    states.set(ctx, s);
  }
  return s;
}

function runLog(ctx: RunContext, child = "run"): Logger {
  return ctx.logger.getChild(child);
}

async function safely(
  ctx: RunContext,
  what: string,
  event: string,
  fn: () => Promise<unknown>,
): Promise<void> {
  try {
    await fn();
  } catch (e) {
    runLog(ctx).warn(`could not ${what}: {error}`, {
      event,
      error: redactSecrets(errorMessage(e), ctx.config.secrets),
    });
  }
}

/**
 * The final status {@linkcode observeRunFinished} wrote to the run's ledger
 * row, or undefined when it has not (yet, or the write failed). The run
 * lifecycle then leaves the row alone: nothing to settle, no statement to run.
 *
 * @example
 * ```ts ignore
 * if (recordedStatus(ctx) === undefined) await settleRunRecord(ctx, { command, status });
 * ```
 */
export function recordedStatus(ctx: RunContext): string | undefined {
  return recorded.get(ctx);
}

/**
 * Records the start of a run: ledger row `running`, the run manifest, the
 * `run_started` event and the OpenLineage START event. With `ledger: false`
 * the caller writes the run's ledger row itself (the stream's runner does),
 * and the observer adds everything else.
 *
 * @example
 * ```ts ignore
 * await observeRunStarted(ctx, { command: "run", stages: ["extract"] });
 * ```
 */
export async function observeRunStarted(
  ctx: RunContext,
  options: { command: string; stages: readonly string[]; ledger?: boolean },
): Promise<void> {
  const state = stateOf(ctx);
  state.command = options.command;
  // The run's ledger row and manifest: one commit.
  await ctx.db.transaction(async () => {
    if (options.ledger !== false) await startRunRecord(ctx, { command: options.command });
    await recordManifest(ctx);
  });
  runLog(ctx).info("run started", {
    event: "run_started",
    command: options.command,
    stages: [...options.stages],
    trigger: ctx.trigger,
    config_hash: ctx.config.hash,
    sluice_version: SLUICE_VERSION,
  });
  const lineage = settings(ctx).lineage;
  if (lineage) {
    const events = new LineageEvents({
      runId: ctx.runId,
      config: ctx.config,
      namespace: lineage.namespace,
      command: options.command,
      trigger: ctx.trigger,
      startedAt: ctx.startedAt,
    });
    const emitter = new LineageEmitter(lineage, {
      logger: runLog(ctx, "lineage"),
      metrics: ctx.metrics,
      pipeline: ctx.config.pipeline,
    });
    state.lineage = { events, emitter };
    emitter.emit(events.runStart(ctx.clock.now()));
  }
}

/**
 * Logs `stage_started` and queues the stage's OpenLineage START event.
 *
 * @example
 * ```ts ignore
 * observeStageStarted(ctx, "silver");
 * ```
 */
export function observeStageStarted(ctx: RunContext, stage: string): void {
  const state = stateOf(ctx);
  state.running.push(stage);
  ctx.logger.getChild(stage).with({ stage }).info("stage started", { event: "stage_started" });
  const l = state.lineage;
  if (l) l.emitter.emit(l.events.stageStart(stage, ctx.clock.now()));
}

/**
 * Records a finished stage: metrics, ledger rows, column statistics of the
 * silver and gold tables it wrote, `stage_finished`, and the stage's
 * OpenLineage COMPLETE event with its datasets.
 *
 * @example
 * ```ts ignore
 * await observeStageFinished(ctx, result);
 * ```
 */
export async function observeStageFinished(ctx: RunContext, result: StageResult): Promise<void> {
  const state = stateOf(ctx);
  state.running = state.running.filter((s) => s !== result.stage);
  state.finished.push(result);
  const log = ctx.logger.getChild(result.stage).with({ stage: result.stage });
  recordStage(ctx.metrics, ctx.config.pipeline, result);
  await recordStageResult(ctx, result);
  for (const t of result.tables) {
    if (!MEASURED_LAYERS.has(t.layer)) continue;
    await safely(
      ctx,
      `measure the columns of ${t.layer}.${t.table}`,
      "column_stats_failed",
      () => measureTable(ctx, t.layer, t.table),
    );
  }
  log.info("stage finished", {
    event: "stage_finished",
    duration_ms: Math.round(result.durationMs),
    tables: result.tables.length,
    rows_in: result.tables.reduce((s, t) => s + t.rowsIn, 0),
    passed: result.tables.reduce((s, t) => s + t.passed, 0),
    quarantined: result.tables.reduce((s, t) => s + t.quarantined, 0),
    duplicates: result.tables.reduce((s, t) => s + t.duplicates, 0),
    skipped: result.skipped ?? false,
  });
  const l = state.lineage;
  if (l) {
    let stats = new Map();
    await safely(ctx, "read column statistics for lineage", "lineage_stats_failed", async () => {
      stats = groupStats(await readColumnStats(ctx.db, { runIds: [ctx.runId] }));
    });
    l.emitter.emit(l.events.stageComplete(result, ctx.clock.now(), stats));
  }
}

interface CheckRow extends Record<string, unknown> {
  layer: string;
  table_name: string;
  check_name: string;
  severity: string;
  status: string;
  failing_rows: number | null;
}

/** Per-run figures read back from the database into the registry. */
async function recordRunFigures(ctx: RunContext, status: string): Promise<void> {
  const pipeline = ctx.config.pipeline;
  const m = sluiceMetrics(ctx.metrics);
  const duck = await duckdbVersion(ctx.db);
  m.buildInfo.set({ version: SLUICE_VERSION, duckdb_version: duck.version }, 1);
  if (status !== "success") {
    // Keep the previous success visible: a failed run never advances it.
    const prev = await ctx.db.one<{ t: number | null }>(
      `SELECT epoch(max(finished_at)) AS t FROM _sluice.runs
       WHERE pipeline = $pipeline AND status = 'success' AND command = $command`,
      { pipeline, command: stateOf(ctx).command },
    );
    if (prev?.t != null) m.lastSuccess.set({ pipeline }, Number(prev.t));
  }
  const totals = await ctx.db.all<{ status: string; n: number }>(
    `SELECT status, count(*) AS n FROM _sluice.runs
     WHERE pipeline = $pipeline AND status <> 'running' GROUP BY status ORDER BY status`,
    { pipeline },
  );
  for (const t of totals) m.runsTotal.inc({ pipeline, status: t.status }, t.n);
  for (const s of await readColumnStats(ctx.db, { runIds: [ctx.runId] })) {
    if (s.null_ratio === null) continue;
    m.nullRatio.set(
      { pipeline, layer: s.layer, table: s.table_name, column: s.column_name },
      s.null_ratio,
    );
  }
  if (await tableExists(ctx.db, "_sluice", "check_results")) {
    const checks = await ctx.db.all<CheckRow>(
      `SELECT layer, table_name, check_name, coalesce(severity, 'error') AS severity, status,
         failing_rows
       FROM _sluice.check_results WHERE run_id = $run_id
       QUALIFY row_number() OVER (PARTITION BY layer, table_name, check_name
         ORDER BY checked_at DESC) = 1`,
      { run_id: ctx.runId },
    );
    for (const c of checks) {
      const labels = {
        pipeline,
        layer: String(c.layer ?? ""),
        table: c.table_name,
        check: c.check_name,
        severity: c.severity,
      };
      for (const s of CHECK_STATUSES) {
        m.checkStatus.set({ ...labels, status: s }, s === c.status ? 1 : 0);
      }
      if (c.failing_rows !== null) m.checkFailingRows.set(labels, Number(c.failing_rows));
    }
  }
}

/**
 * Records the end of a run. In order: the ledger row and the input-file
 * manifest; the run's metrics (status, duration, last run, last success
 * only when successful, null ratios, checks, run totals); one `metric` log
 * event per sample; the textfile and Pushgateway exports; the OpenLineage
 * COMPLETE or FAIL events; the HTML report; and last `run_finished` or
 * `run_failed`. With `ledger: false` the ledger row is left to the caller
 * (see {@linkcode observeRunStarted}).
 *
 * @example
 * ```ts ignore
 * await observeRunFinished(ctx, summary, { error });
 * ```
 */
export async function observeRunFinished(
  ctx: RunContext,
  summary: RunSummary,
  options: { error?: unknown; status?: string; ledger?: boolean } = {},
): Promise<void> {
  const state = stateOf(ctx);
  const conf = settings(ctx);
  const pipeline = ctx.config.pipeline;
  const metrics = sluiceMetrics(ctx.metrics);
  const status = options.status ?? (options.error === undefined ? "success" : "failed");
  const error = options.error === undefined
    ? undefined
    : redactSecrets(errorMessage(options.error), ctx.config.secrets);
  const log = runLog(ctx);
  const finishedAt = ctx.clock.now();

  for (const s of new Set([...RUN_STATUSES, status])) {
    metrics.runStatus.set({ pipeline, status: s }, s === status ? 1 : 0);
  }
  metrics.runDuration.set({ pipeline }, summary.durationMs / 1000);
  metrics.lastRun.set({ pipeline }, finishedAt.getTime() / 1000);
  if (status === "success") metrics.lastSuccess.set({ pipeline }, finishedAt.getTime() / 1000);

  if (options.ledger === false) {
    // The caller has written the run's final ledger row.
  } else if (status === "success") {
    await finishRunRecord(ctx, { status, finishedAt, durationMs: summary.durationMs });
    recorded.set(ctx, status);
  } else {
    await safely(
      ctx,
      "record the failed run in the ledger",
      "ledger_write_failed",
      async () => {
        await finishRunRecord(ctx, { status, error, finishedAt, durationMs: summary.durationMs });
        recorded.set(ctx, status);
      },
    );
  }
  await safely(
    ctx,
    "record the run's input files",
    "manifest_write_failed",
    () => recordRunInputs(ctx),
  );
  await safely(
    ctx,
    "read the run's figures back for metrics",
    "metrics_failed",
    () => recordRunFigures(ctx, status),
  );

  if (conf.metrics.log) {
    await safely(
      ctx,
      "log the metrics",
      "metrics_failed",
      // JSON lines are for machines and carry every sample; a person at a
      // terminal sees them only with --log-level debug.
      () =>
        logMetrics(ctx.metrics, ctx.logger.getChild("metrics"), {
          level: logFormatInUse() === "text" ? "debug" : "info",
        }),
    );
  }
  const textfile = conf.metrics.textfile;
  if (textfile) {
    await safely(
      ctx,
      `write the metrics textfile ${textfile.path}`,
      "metrics_textfile_failed",
      async () => {
        const bytes = await writeTextfile(ctx.metrics, textfile.path);
        ctx.logger.getChild("metrics").info("metrics textfile written", {
          event: "metrics_textfile_written",
          path: textfile.path,
          bytes,
        });
      },
    );
  }
  const gw = conf.metrics.pushgateway;
  if (gw) {
    const mlog = ctx.logger.getChild("metrics");
    const r = await pushToGateway(ctx.metrics, {
      url: gw.url,
      job: gw.job,
      pipeline,
      timeoutMs: gw.timeout * 1000,
      retries: gw.retries,
      basicAuth: gw.basic_auth,
      onRetry: (attempt, reason, delayMs) => {
        mlog.warn("metrics push failed, retrying", {
          event: "retry",
          what: "pushgateway",
          attempt,
          delay_ms: delayMs,
          error: reason,
        });
        retriesCounter(ctx.metrics).inc({ pipeline, what: "pushgateway" });
      },
    });
    if (r.ok) {
      mlog.info("metrics pushed", {
        event: "metrics_pushed",
        url: r.groupUrl,
        attempts: r.attempts,
      });
    } else {
      mlog.warn("could not push metrics to the Pushgateway: {error}", {
        event: "metrics_push_failed",
        url: r.groupUrl,
        attempts: r.attempts,
        error: r.error,
      });
    }
  }

  const l = state.lineage;
  if (l) {
    let stats = new Map();
    await safely(ctx, "read column statistics for lineage", "lineage_stats_failed", async () => {
      stats = groupStats(await readColumnStats(ctx.db, { runIds: [ctx.runId] }));
    });
    const failure = options.error ?? (status === "success" ? undefined : new Error(status));
    if (failure !== undefined) {
      for (const stage of state.running) {
        l.emitter.emit(l.events.stageFail(stage, finishedAt, failure));
      }
    }
    l.emitter.emit(
      l.events.runEnd(finishedAt, { stages: state.finished, stats, error: failure }),
    );
    const d = await l.emitter.flush();
    runLog(ctx, "lineage").info("lineage events delivered", {
      event: "lineage_emitted",
      sent: d.sent,
      failed: d.failed,
      dropped: d.dropped,
    });
  }

  const reportPath = conf.report.path;
  if (reportPath) {
    await safely(ctx, `write the run report ${reportPath}`, "report_failed", async () => {
      const html = await buildReport(ctx.db, {
        pipeline,
        runId: ctx.runId,
        history: conf.report.history,
        failingSamples: conf.report.failing_samples,
        payloadMaxBytes: ctx.config.quality?.payload_max_bytes,
        generatedAt: ctx.clock.now(),
      });
      await writeFileAtomic(reportPath, html);
      runLog(ctx, "report").info("run report written", {
        event: "report_written",
        path: reportPath,
        bytes: html.length,
      });
    });
  }

  if (status === "success") {
    log.info("run finished", {
      event: "run_finished",
      status,
      duration_ms: Math.round(summary.durationMs),
      noop: summary.noop,
      stages: state.finished.length,
    });
  } else {
    log.error("run failed: {error}", {
      event: "run_failed",
      status,
      error,
      error_kind: (options.error as { kind?: string } | undefined)?.kind ?? "internal",
      failed_stage: state.running.at(-1),
      duration_ms: Math.round(summary.durationMs),
    });
  }
  states.delete(ctx);
}
