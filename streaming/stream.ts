/**
 * The stream loop: micro-batches from a landing folder into a table with an
 * exactly-once checkpoint, an event-time watermark and a dead-letter queue.
 *
 * Each batch reads complete lines from the next files (a big file spans
 * batches by byte offset), then in ONE DuckDB transaction: stages the lines,
 * parses and validates them in SQL, appends the good rows to
 * `silver.<target>`, malformed and late rows to `silver.<dlq>`, emits the
 * windows the watermark closed, and writes the checkpoint (files and
 * offsets done, max event time, watermark, batch id). That single commit is
 * the exactly-once guarantee: a crash at any moment leaves either all of a
 * batch or none of it, and the next run resumes from the last commit.
 * Cleaning source files and exporting Parquet follow the commit and are
 * idempotent.
 *
 * @module
 */
import { getLogger, type Logger } from "@logtape/logtape";
import type { StreamingConfig } from "../core/config/mod.ts";
import { isJetStreaming, sizeBytes } from "../core/config/mod.ts";
import { formatDuration, parseDuration } from "../core/duration.ts";
import { ensureDlqTable } from "../core/dlq.ts";
import {
  ConfigError,
  type ConfigProblem,
  ConservationError,
  DataLossError,
  errorMessage,
  UsageError,
} from "../core/errors.ts";
import { ident, literal, literalList, qualified } from "../core/quote.ts";
import type { RunContext } from "../core/run_context.ts";
import { writeLedgerReplica } from "../core/ledger_replica.ts";
import { guardSql } from "../core/sql_guard.ts";
import { finishRunRecord, startRunRecord } from "../observability/ledger.ts";
import { type StreamMetrics, streamMetrics } from "./_metrics.ts";
import { cleanFinishedFiles, reconcileArchive } from "./_clean.ts";
import { classifySql, eventTimeOf, lateDetailSql, lateSql, usSql } from "./_sql.ts";
import { requireKnownCrashPoint } from "../core/crash_seam.ts";
import { crashIfAt, logStreamFailed, reasonsText, sleep, usToDate } from "./_runner.ts";
import {
  type Checkpoint,
  ensureStreamTables,
  type FileProgress,
  type FileState,
  loadCheckpoint,
  loadFileStates,
  markFileLost,
  partialFile,
  saveCheckpoint,
  saveFileProgress,
  verifyCheckpoint,
} from "./checkpoint.ts";
import { exportBatches } from "./export.ts";
import { checkPartialFile, discoverFiles, type LandingFile } from "./source.ts";
import { SEQ_SLICE, stageBatch, type Staged, type StageFile } from "./_stage.ts";
import { emitWindows, ensureWindowTables, WINDOW_SCHEMA } from "./windows.ts";
import { ensureTargetTable } from "./_target.ts";

export { ensureTargetTable };

/**
 * How a `sluice stream` run decides when to stop.
 *
 * @example
 * ```ts
 * import { STREAM_TRIGGERS } from "./stream.ts";
 * STREAM_TRIGGERS; // ["once", "available-now", "interval"]
 * ```
 */
export const STREAM_TRIGGERS = ["once", "available-now", "interval"] as const;
/** One trigger: `once` (one batch), `available-now` (every pending file), `interval`. */
export type StreamTrigger = (typeof STREAM_TRIGGERS)[number];

/**
 * The steps of a batch where the crash seam (`SLUICE_CRASH_AT=<step>@<batch>`,
 * core/crash_seam.ts) can kill the process:
 * `planned` (files chosen, nothing read), `read` (lines staged inside the
 * transaction), `appended` (rows appended to target and DLQ, not committed),
 * `checkpointed` (checkpoint written, not committed), `committed` (right after
 * the commit), `cleaned` (after clean_source), `exported` (after the export).
 *
 * @example
 * ```ts
 * import { CRASH_STEPS } from "./stream.ts";
 * CRASH_STEPS.indexOf("appended") < CRASH_STEPS.indexOf("committed"); // true
 * ```
 */
export const CRASH_STEPS = [
  "planned",
  "read",
  "appended",
  "checkpointed",
  "committed",
  "cleaned",
  "exported",
] as const;
/** One crash step. */
export type CrashStep = (typeof CRASH_STEPS)[number];

/** While a backlog is worked off, the ledger replica is refreshed at most this often. */
const REPLICA_EVERY_MS = 5_000;

/** Options of {@linkcode runStream}. */
export interface StreamOptions {
  /** When to stop: `once`, `available-now` (default) or `interval`. */
  trigger?: StreamTrigger;
  /** Aborting finishes the current batch (never half-commits one) and stops. */
  signal?: AbortSignal;
  /** Stop after this many batches (all triggers). */
  maxBatches?: number;
}

/** What one committed batch did. */
export interface BatchResult {
  /** Batch id (checkpoint sequence). */
  batchId: number;
  /** Files read from. */
  files: number;
  /** Files read to their end. */
  filesFinished: number;
  /** Records (lines) read, blank lines included. */
  recordsRead: number;
  /** Rows appended to the target. */
  written: number;
  /** Rows written to the dead-letter queue. */
  deadLettered: number;
  /** Dead letters by reason. */
  byReason: Record<string, number>;
  /** Blank lines skipped. */
  blank: number;
  /** Bytes read. */
  bytesRead: number;
  /** Watermark after the batch, or null before any event. */
  watermark: Date | null;
  /** Largest valid event time so far, or null. */
  maxEventTime: Date | null;
  /** Window rows emitted, by window. */
  windowsEmitted: Record<string, number>;
  /** Wall time in milliseconds. */
  durationMs: number;
  /** Landing files not yet read to their end after the batch. */
  filesPending: number;
  /** Bytes of those files not yet read. */
  bytesBehind: number;
}

/** What a stream run did. */
export interface StreamSummary {
  /** The run's id. */
  runId: string;
  /** Checkpoint name. */
  stream: string;
  /** The trigger used. */
  trigger: StreamTrigger;
  /** Why it stopped: `done` (nothing left for the trigger), `signal`, `max_batches`. */
  stoppedBy: "done" | "signal" | "max_batches";
  /** Batches committed. */
  batches: number;
  /** Records read. */
  recordsRead: number;
  /** Rows appended to the target. */
  written: number;
  /** Rows dead-lettered. */
  deadLettered: number;
  /** Dead letters by reason. */
  byReason: Record<string, number>;
  /** Partly read files skipped as lost (fail_on_data_loss: false). */
  dataLoss: number;
  /** Watermark at the end, or null. */
  watermark: Date | null;
  /** Last committed batch id. */
  lastBatchId: number;
  /** Wall time in milliseconds. */
  durationMs: number;
}

/** The files a batch may read, and the backlog. */
interface BatchPlan {
  /** Candidate files in stream order: partly read ones first, then new complete ones. */
  files: StageFile[];
  /** Files not yet read to their end. */
  filesPending: number;
  /** Their unread bytes. */
  bytesBehind: number;
  /** Files of the snapshot that are not complete yet. */
  incomplete: LandingFile[];
}

/** How the staged lines were classified. */
interface BatchCounts {
  /** Lines classified. */
  total: number;
  /** Valid rows, late ones included. */
  valid: number;
  /** Blank lines. */
  blank: number;
  /** Late rows. */
  late: number;
  /** Dead letters by reason. */
  byReason: Record<string, number>;
  /** Largest event time of a valid row in the batch (µs), or null. */
  maxEventUs: number | null;
}

/** Paths the checkpoint holds as done or lost: never read again. */
function finishedPaths(states: Map<string, FileState>): Set<string> {
  const out = new Set<string>();
  for (const st of states.values()) if (st.status !== "partial") out.add(st.path);
  return out;
}

/** Drops the batch's temporary tables. */
async function dropStaging(db: RunContext["db"]): Promise<void> {
  for (
    const t of ["_sluice_late", "_sluice_rows", "_sluice_lines", "_sluice_slices", "_sluice_badenc"]
  ) {
    await db.run(`DROP TABLE IF EXISTS ${t}`);
  }
}

/**
 * The streaming config of a loaded pipeline, or a {@linkcode ConfigError}
 * saying that `sluice stream` needs a `streaming:` section.
 *
 * @example
 * ```ts ignore
 * const s = requireStreaming(config);
 * s.target; // "events"
 * ```
 */
export function requireStreaming(config: RunContext["config"]): StreamingConfig {
  if (config.streaming === undefined) {
    throw new ConfigError([{
      file: config.file,
      line: 0,
      col: 0,
      path: "streaming",
      message: "missing the streaming: section (source, columns, target, dlq, checkpoint, " +
        "watermark and fail_on_data_loss are required to stream)",
    }]);
  }
  if (isJetStreaming(config.streaming)) {
    throw new UsageError(
      `Cannot read stream "${config.streaming.checkpoint}" from a landing folder: its source is ` +
        "JetStream (run it with runJetStream, `sluice stream --worker-id ID`)",
    );
  }
  return config.streaming as StreamingConfig;
}

/** Name clashes between the stream's tables and the batch pipeline's tables. */
function clashes(config: RunContext["config"], s: StreamingConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const at = (path: string, message: string) => {
    const { line, col } = config.locate?.(path) ?? { line: 0, col: 0 };
    problems.push({ file: config.file, line, col, path, message });
  };
  const silver = Object.keys(config.silver);
  const quarantine = silver.map((t) => `${t}__quarantine`);
  for (const key of ["target", "dlq"] as const) {
    const name = s[key];
    if (silver.includes(name) || quarantine.includes(name)) {
      at(
        `streaming.${key}`,
        `"${name}" is already a silver table of the batch pipeline (pick another name)`,
      );
    }
  }
  for (const name of Object.keys(s.windows)) {
    if (Object.hasOwn(config.gold, name)) {
      at(`streaming.windows.${name}`, `"${name}" is already a gold model (pick another name)`);
    }
  }
  return problems;
}

/**
 * Runs a stream with the given trigger over the pipeline's `streaming:`
 * section and returns what it did. Open the run with `openRun` (which adds
 * the landing, archive and export folders to the sandbox) and close it
 * afterwards.
 *
 * @example
 * ```ts ignore
 * import { loadConfig, openRun, runStream } from "../mod.ts";
 * const ctx = await openRun(await loadConfig("pipeline.yaml"), { trigger: "cron" });
 * try {
 *   const summary = await runStream(ctx, { trigger: "available-now" });
 *   const shown = [summary.written, summary.byReason];
 * } finally {
 *   ctx.db.close();
 * }
 * ```
 */
export async function runStream(
  ctx: RunContext,
  options: StreamOptions = {},
): Promise<StreamSummary> {
  requireKnownCrashPoint(CRASH_STEPS);
  const runner = new StreamRunner(ctx, options);
  return await runner.run();
}

class StreamRunner {
  readonly ctx: RunContext;
  readonly s: StreamingConfig;
  readonly options: StreamOptions;
  readonly trigger: StreamTrigger;
  readonly stream: string;
  readonly log: Logger;
  readonly metrics: StreamMetrics;
  readonly labels: { pipeline: string; stream: string };
  readonly delayMs: number;
  readonly settleMs: number;
  readonly maxBytes: number;
  batchesStarted = 0;
  /** When this run last wrote the ledger replica (its next write adds only newer dead letters). */
  replicaAt: Date | undefined;
  /** `performance.now()` of the last replica write. */
  replicaMs = -Infinity;
  summary: StreamSummary;

  constructor(ctx: RunContext, options: StreamOptions) {
    this.ctx = ctx;
    this.s = requireStreaming(ctx.config);
    this.options = options;
    this.trigger = options.trigger ?? "available-now";
    if (!(STREAM_TRIGGERS as readonly string[]).includes(this.trigger)) {
      throw new UsageError(
        `Cannot stream with trigger ${JSON.stringify(this.trigger)} (valid: ${
          STREAM_TRIGGERS.join(", ")
        })`,
      );
    }
    this.stream = this.s.checkpoint;
    this.log = getLogger(["sluice", "stream"]).with({
      run_id: ctx.runId,
      pipeline: ctx.config.pipeline,
      stage: "stream",
      stream: this.stream,
    });
    this.metrics = streamMetrics(ctx.metrics);
    this.labels = { pipeline: ctx.config.pipeline, stream: this.stream };
    this.delayMs = parseDuration(this.s.watermark.delay);
    this.settleMs = parseDuration(this.s.source.settle);
    // Offsets inside a batch are 32-bit; a batch reads at most 1 GiB.
    this.maxBytes = Math.min(sizeBytes(this.s.max_bytes_per_trigger), 1 << 30);
    this.summary = {
      runId: ctx.runId,
      stream: this.stream,
      trigger: this.trigger,
      stoppedBy: "done",
      batches: 0,
      recordsRead: 0,
      written: 0,
      deadLettered: 0,
      byReason: {},
      dataLoss: 0,
      watermark: null,
      lastBatchId: 0,
      durationMs: 0,
    };
  }

  get db() {
    return this.ctx.db;
  }

  async run(): Promise<StreamSummary> {
    const started = performance.now();
    const problems = clashes(this.ctx.config, this.s);
    if (problems.length > 0) throw new ConfigError(problems);
    await startRunRecord(this.ctx, { command: "stream" });
    try {
      await this.prepare();
      await verifyCheckpoint(this.db, this.stream, { target: this.s.target, dlq: this.s.dlq });
      await reconcileArchive(this.db, this.s, {
        stream: this.stream,
        runId: this.ctx.runId,
        pipeline: this.ctx.config.pipeline,
      });
      const cp = await loadCheckpoint(this.db, this.stream, {
        runId: this.ctx.runId,
        now: this.ctx.clock.now(),
      });
      this.summary.lastBatchId = cp.batchId;
      this.summary.watermark = usToDate(cp.watermarkUs);
      this.log.info("stream started", {
        event: "stream_started",
        trigger: this.trigger,
        batch_id: cp.batchId,
        watermark: this.summary.watermark?.toISOString() ?? null,
        target: `silver.${this.s.target}`,
        dlq: `silver.${this.s.dlq}`,
      });
      // Finish what a crashed run committed but did not clean or export.
      await this.afterCommit(cp.batchId);
      await this.loop();
    } catch (e) {
      this.summary.durationMs = performance.now() - started;
      await finishRunRecord(this.ctx, { status: "failed", error: errorMessage(e) }).catch(() => {});
      await this.replica().catch(() => {});
      logStreamFailed(this.log, e, this.summary.batches);
      throw e;
    }
    this.summary.durationMs = performance.now() - started;
    await finishRunRecord(this.ctx, { status: "success" });
    await this.db.checkpoint();
    await this.replica();
    this.log.info("stream stopped", {
      event: "stream_stopped",
      reason: this.summary.stoppedBy,
      batches: this.summary.batches,
      records_read: this.summary.recordsRead,
      written: this.summary.written,
      dead_lettered: this.summary.deadLettered,
      by_reason: this.summary.byReason,
      watermark: this.summary.watermark?.toISOString() ?? null,
      duration_ms: Math.round(this.summary.durationMs),
    });
    return this.summary;
  }

  /** Creates the checkpoint, target, DLQ and window tables. */
  async prepare(): Promise<void> {
    // The SQL guard: window aggregates are user SQL (validate refuses the same).
    for (const [name, w] of Object.entries(this.s.windows)) {
      for (const [agg, sql] of Object.entries(w.aggregates)) {
        await guardSql(this.db, sql, {
          what: `window "${name}" aggregate "${agg}"`,
          kind: "expression",
        });
      }
    }
    await ensureStreamTables(this.db);
    await this.db.run(`CREATE SCHEMA IF NOT EXISTS ${ident(WINDOW_SCHEMA)}`);
    await ensureTargetTable(this.ctx, this.s);
    await ensureDlqTable(this.db, "silver", this.s.dlq);
    try {
      await ensureWindowTables(this.db, this.s);
    } catch (e) {
      const name = Object.keys(this.s.windows)[0];
      const path = `streaming.windows${name ? `.${name}` : ""}`;
      const { line, col } = this.ctx.config.locate?.(path) ?? { line: 0, col: 0 };
      throw new ConfigError([{
        file: this.ctx.config.file,
        line,
        col,
        path,
        message: `a window does not bind against silver.${this.s.target}: ${errorMessage(e)}`,
      }], { cause: e });
    }
  }

  get aborted(): boolean {
    return this.options.signal?.aborted ?? false;
  }

  async loop(): Promise<void> {
    const max = this.options.maxBatches ?? Infinity;
    const snapshot = this.trigger === "available-now" ? await this.snapshot() : undefined;
    const intervalMs = parseDuration(this.s.trigger_interval);
    let waits = 0;
    while (true) {
      if (this.aborted) {
        this.summary.stoppedBy = "signal";
        return;
      }
      if (this.summary.batches >= max) {
        this.summary.stoppedBy = "max_batches";
        return;
      }
      const t0 = performance.now();
      const result = await this.batch(snapshot);
      if (this.trigger === "once") return;
      if (this.trigger === "available-now") {
        if (result !== "empty") {
          waits = 0;
          continue;
        }
        // Files of the snapshot still being written: wait for them to settle.
        const plan = await this.plan(snapshot);
        if (
          plan.incomplete.length === 0 || this.s.source.marker_suffix !== undefined || waits >= 10
        ) {
          if (plan.incomplete.length > 0) {
            this.log.warn("files not complete, left for the next run", {
              event: "files_not_complete",
              files: plan.incomplete.length,
            });
          }
          return;
        }
        waits++;
        await sleep(Math.max(100, this.settleMs / 2), this.options.signal);
        continue;
      }
      // interval: the next batch starts one interval after this one started.
      await sleep(intervalMs - (performance.now() - t0), this.options.signal);
    }
  }

  /** The files pending when an available-now run starts. */
  async snapshot(): Promise<Set<string>> {
    const states = await loadFileStates(this.db, this.stream);
    const files = await discoverFiles(this.s, {
      now: this.ctx.clock.now(),
      skip: finishedPaths(states),
    });
    const out = new Set<string>();
    for (const f of files) {
      const st = states.get(f.path);
      if (st === undefined || st.status === "partial") out.add(f.path);
    }
    for (const st of states.values()) if (st.status === "partial") out.add(st.path);
    return out;
  }

  crash(step: CrashStep): void {
    crashIfAt(this.log, { step, batch: this.batchesStarted });
  }

  async dataLoss(state: FileState, loss: { kind: string; detail: string }): Promise<void> {
    const text = `${state.path} ${loss.detail}`;
    if (this.s.fail_on_data_loss) {
      throw new DataLossError(
        `Cannot continue stream "${this.stream}": ${text} (fail_on_data_loss: true; restore the ` +
          `file, or set fail_on_data_loss: false to skip the rest of it)`,
        { context: { file: state.path, kind: loss.kind } },
      );
    }
    await markFileLost(this.db, this.stream, state.path, `${loss.kind}: ${loss.detail}`);
    this.metrics.dataLoss.inc({ ...this.labels, kind: loss.kind });
    this.summary.dataLoss++;
    this.log.warn("data loss: skipping the rest of a partly read file", {
      event: "data_loss",
      file: state.path,
      kind: loss.kind,
      detail: loss.detail,
      bytes_read: state.offset,
    });
  }

  /** Chooses the files a batch may read, in stream order, and measures the backlog. */
  async plan(snapshot: Set<string> | undefined): Promise<BatchPlan> {
    const states = await loadFileStates(this.db, this.stream);
    const listing = await discoverFiles(this.s, {
      now: this.ctx.clock.now(),
      skip: finishedPaths(states),
    });
    const byPath = new Map(listing.map((f) => [f.path, f]));
    const files: StageFile[] = [];
    const partials = [...states.values()].filter((st) => st.status === "partial")
      .sort((a, b) => a.firstBatch - b.firstBatch || (a.path < b.path ? -1 : 1));
    const lost = new Set<string>();
    for (const st of partials) {
      const check = await checkPartialFile(await partialFile(this.db, this.stream, st));
      if ("kind" in check) {
        await this.dataLoss(st, check);
        lost.add(st.path);
        continue;
      }
      files.push({ path: st.path, size: check.size, mtimeMs: check.mtimeMs, state: st });
    }
    const incomplete: LandingFile[] = [];
    for (const f of listing) {
      if (states.has(f.path)) continue;
      if (snapshot !== undefined && !snapshot.has(f.path)) continue;
      if (f.complete) files.push({ path: f.path, size: f.size, mtimeMs: f.mtimeMs });
      else incomplete.push(f);
    }
    let behind = 0;
    let pending = 0;
    for (const f of listing) {
      const st = states.get(f.path);
      if (st?.status === "done" || st?.status === "lost" || lost.has(f.path)) continue;
      pending++;
      behind += Math.max(0, f.size - (st?.offset ?? 0));
    }
    for (const st of partials) {
      if (!byPath.has(st.path) && !lost.has(st.path)) {
        pending++;
        behind += Math.max(0, st.size - st.offset);
      }
    }
    return { files, filesPending: pending, bytesBehind: behind, incomplete };
  }

  /** Plans, stages, classifies and commits one batch; "empty" when there was nothing to read. */
  async batch(snapshot: Set<string> | undefined): Promise<"committed" | "empty"> {
    const started = performance.now();
    const plan = await this.plan(snapshot);
    this.metrics.filesPending.set(this.labels, plan.filesPending);
    this.metrics.bytesBehind.set(this.labels, plan.bytesBehind);
    const empty = () => {
      this.log.debug("nothing to read", {
        event: "batch_empty",
        files_pending: plan.filesPending,
        incomplete: plan.incomplete.length,
      });
      return "empty" as const;
    };
    if (plan.files.length === 0) return empty();
    this.batchesStarted++;
    this.crash("planned");
    const staged = await stageBatch(this.db, this.s, plan.files, {
      files: this.s.max_files_per_trigger,
      lines: this.s.max_records_per_trigger,
      bytes: this.maxBytes,
    });
    if (staged.slices.length === 0) {
      this.batchesStarted--;
      return empty();
    }
    this.crash("read");
    const now = this.ctx.clock.now();
    const cp = await loadCheckpoint(this.db, this.stream, { runId: this.ctx.runId, now });
    const batchId = cp.batchId + 1;
    const counts = await this.classify(staged, cp);
    const read = performance.now();
    const result = await this.db.transaction(() =>
      this.commitBatch({ plan, staged, counts, cp, batchId, now })
    );
    this.crash("committed");
    const committed = performance.now();
    await dropStaging(this.db);
    await this.afterCommit(batchId, { backlog: result.filesPending > 0 });
    result.durationMs = performance.now() - started;
    this.record(result, {
      read_ms: Math.round(read - started),
      commit_ms: Math.round(committed - read),
      after_commit_ms: Math.round(performance.now() - committed),
    });
    return "committed";
  }

  /** Parses, validates and marks late rows of the staged lines (temporary tables). */
  async classify(staged: Staged, cp: Checkpoint): Promise<BatchCounts> {
    const db = this.db;
    const s = this.s;
    const bad = staged.badUtf8 ? "__seq IN (SELECT seq FROM _sluice_badenc)" : "false";
    const csvHeader = s.source.format === "csv" && (s.source.options?.header ?? true);
    // A CSV file's line 1 is its header, staged only to read the field names.
    const lines = s.source.format === "csv"
      ? `(SELECT l.slice::BIGINT * ${SEQ_SLICE} + l.ln AS __seq, l.slice AS __slice, l.ln AS __ln,
          l.line AS __line, s.hdr AS __hdr, ${bad} AS __bad
        FROM _sluice_lines AS l JOIN _sluice_slices AS s ON l.slice = s.slice
        ${csvHeader ? "WHERE l.ln > 1" : ""})`
      : `(SELECT l.slice::BIGINT * ${SEQ_SLICE} + l.ln AS __seq, l.slice AS __slice, l.ln AS __ln,
          l.line AS __line, NULL::VARCHAR[] AS __hdr, ${bad} AS __bad FROM _sluice_lines AS l)`;
    const keep = ["__slice", "__ln"];
    const et = eventTimeOf(s);
    await db.run(`CREATE OR REPLACE TEMP TABLE _sluice_rows AS ${classifySql(s, { lines, keep })}`);
    const rows = await db.all<
      & { code: string | null; n: number; lo: number | null; hi: number | null }
      & Record<string, unknown>
    >(
      `SELECT __code AS code, count(*) AS n, epoch_us(min(${et})) AS lo, epoch_us(max(${et})) AS hi
       FROM _sluice_rows GROUP BY 1`,
    );
    const counts: BatchCounts = {
      total: 0,
      valid: 0,
      blank: 0,
      late: 0,
      byReason: {},
      maxEventUs: null,
    };
    let lo: number | null = null;
    let hi: number | null = null;
    for (const { code, n, lo: l, hi: h } of rows) {
      counts.total += n;
      if (code === null) {
        counts.valid = n;
        lo = l === null ? null : Number(l);
        hi = h === null ? null : Number(h);
      } else if (code === "blank") counts.blank = n;
      else counts.byReason[code] = n;
    }
    // No row can be late when even the oldest is within the delay of the newest event time
    // seen (the watermark at arrival never exceeds that); then the running max is skipped.
    counts.maxEventUs = hi;
    const newest = Math.max(cp.maxEventTimeUs ?? -Infinity, hi ?? -Infinity);
    const possible = lo !== null && lo < newest - this.delayMs * 1000;
    await db.run(
      `CREATE OR REPLACE TEMP TABLE _sluice_late AS ${
        lateSql({
          rows: "_sluice_rows",
          maxEventTimeUs: cp.maxEventTimeUs,
          delayMs: this.delayMs,
          et,
          order: "__slice, __ln",
          keep,
        })
      }${possible ? "" : " LIMIT 0"}`,
    );
    if (possible) {
      const late = (await db.one<{ n: number }>(`SELECT count(*) AS n FROM _sluice_late`))?.n ?? 0;
      counts.late = late;
      if (late > 0) counts.byReason.late = late;
    }
    if (counts.total !== staged.records) {
      throw new ConservationError(
        `Rows do not add up in stream "${this.stream}": ${staged.records} lines staged, ` +
          `${counts.total} classified`,
      );
    }
    return counts;
  }

  /** Everything of one batch that must commit together, inside its transaction. */
  async commitBatch(
    b: {
      plan: BatchPlan;
      staged: Staged;
      counts: BatchCounts;
      cp: Checkpoint;
      batchId: number;
      now: Date;
    },
  ): Promise<BatchResult> {
    const db = this.db;
    const s = this.s;
    const { counts, cp, batchId, now, staged } = b;
    const at = literal(now.toISOString());
    const good = counts.valid - counts.late;
    const dead = counts.total - counts.valid - counts.blank + counts.late;
    const cols = Object.keys(s.columns).map((c) => `r.${ident(c)}`).join(", ");
    const notLate = counts.late > 0
      ? "AND NOT EXISTS (SELECT 1 FROM _sluice_late AS l WHERE l.__slice = r.__slice AND l.__ln = r.__ln)"
      : "";
    // The file name by slice number from a list literal: no join on the hot path.
    const paths = literalList(staged.slices.map((sl) => sl.file.path));
    const written = await db.run(
      `INSERT INTO ${qualified("silver", s.target)} BY NAME
       SELECT ${cols}, ${batchId}::BIGINT AS _batch_id, ${paths}[r.__slice + 1] AS _source_file,
         r.__ln AS _source_line, ${at}::TIMESTAMPTZ AS _ingested_at
       FROM _sluice_rows AS r
       WHERE r.__code IS NULL ${notLate}`,
    );
    const deadLettered = dead > 0 ? await this.writeDeadLetters(counts, at) : 0;
    if (written !== good || deadLettered !== dead) {
      throw new ConservationError(
        `Rows do not add up in batch ${batchId} of stream "${this.stream}": ${counts.total} lines, ` +
          `${written} written (expected ${good}), ${deadLettered} dead-lettered (expected ` +
          `${dead}), ${counts.blank} blank`,
        { context: { batch_id: batchId, ...counts } },
      );
    }
    this.crash("appended");
    // Late rows are below the max by definition, so the max over all valid rows is right.
    const batchMax = counts.maxEventUs;
    const maxEventTimeUs = batchMax === null
      ? cp.maxEventTimeUs
      : cp.maxEventTimeUs === null
      ? Number(batchMax)
      : Math.max(cp.maxEventTimeUs, Number(batchMax));
    const watermarkUs = maxEventTimeUs === null ? null : maxEventTimeUs - this.delayMs * 1000;
    const windowsEmitted = await emitWindows(db, s, {
      batchId,
      watermarkUs,
      now,
      stream: this.stream,
    });
    await this.saveProgress(staged, { batchId, now });
    await saveCheckpoint(db, this.stream, {
      batchId,
      maxEventTimeUs,
      watermarkUs,
      delayMs: this.delayMs,
      runId: this.ctx.runId,
      now,
    });
    const bytesRead = staged.slices.reduce((n, sl) => n + sl.end - sl.start, 0);
    const filesFinished = staged.slices.filter((sl) => sl.done).length;
    const pendingAfter = b.plan.filesPending - filesFinished;
    const result: BatchResult = {
      batchId,
      files: staged.slices.length,
      filesFinished,
      recordsRead: counts.total,
      written,
      deadLettered,
      byReason: counts.byReason,
      blank: counts.blank,
      bytesRead,
      watermark: usToDate(watermarkUs),
      maxEventTime: usToDate(maxEventTimeUs),
      windowsEmitted,
      durationMs: 0,
      filesPending: pendingAfter,
      bytesBehind: Math.max(0, b.plan.bytesBehind - bytesRead),
    };
    await this.recordBatch(result, { now, maxEventTimeUs, watermarkUs });
    this.crash("checkpointed");
    return result;
  }

  /** Writes the batch's dead letters (invalid and late rows) to the DLQ; returns how many. */
  async writeDeadLetters(counts: BatchCounts, at: string): Promise<number> {
    const db = this.db;
    const s = this.s;
    // With a mask, the classified rows carry the masked record text for the DLQ.
    const lateRows = counts.late === 0 ? "" : (s.mask ?? []).length > 0
      ? `UNION ALL
      SELECT l.__slice, l.__ln, 'late', ${lateDetailSql()}, r.__payload, l.__et, l.__wm
      FROM _sluice_late AS l JOIN _sluice_rows AS r ON r.__slice = l.__slice AND r.__ln = l.__ln`
      : `UNION ALL
      SELECT l.__slice, l.__ln, 'late', ${lateDetailSql()}, ln.line, l.__et, l.__wm
      FROM _sluice_late AS l JOIN _sluice_lines AS ln ON ln.slice = l.__slice AND ln.ln = l.__ln`;
    await db.run(
      `CREATE OR REPLACE TEMP TABLE _sluice_dead AS
       SELECT __slice AS slice, __ln AS ln, __code AS code, __detail AS detail,
         __payload AS payload, NULL::TIMESTAMPTZ AS et, NULL::TIMESTAMPTZ AS wm
       FROM _sluice_rows WHERE __code IS NOT NULL AND __code <> 'blank'
       ${lateRows}`,
    );
    // Byte offsets of dead letters: a running sum of line sizes within each slice.
    const deadLettered = await db.run(
      `INSERT INTO ${qualified("silver", s.dlq)} BY NAME
       SELECT md5(concat_ws('|', ${literal(this.stream)}, s.path, d.ln)) AS _dlq_id,
         ${literal(this.ctx.runId)} AS _run_id, ${literal(s.target)} AS _table,
         d.code AS _reason_code, d.detail AS _reason, d.payload AS _payload,
         s.path AS _source_file, d.ln AS _source_row, s.base + o.rel AS _source_offset,
         d.et AS _event_time, d.wm AS _watermark_at_arrival,
         epoch(d.wm) - epoch(d.et) AS _lateness_seconds, ${at}::TIMESTAMPTZ AS _quarantined_at
       FROM _sluice_dead AS d JOIN _sluice_slices AS s ON d.slice = s.slice
       JOIN (
         SELECT slice, ln, sum(nb) OVER (PARTITION BY slice ORDER BY ln ROWS UNBOUNDED PRECEDING)
           - nb AS rel
         FROM _sluice_lines
       ) AS o ON o.slice = d.slice AND o.ln = d.ln`,
    );
    await db.run(`DROP TABLE _sluice_dead`);
    return deadLettered;
  }

  /** Records how far each file of the batch was read (its slice, for a partial file). */
  async saveProgress(staged: Staged, options: { batchId: number; now: Date }): Promise<void> {
    const { batchId, now } = options;
    const progress: FileProgress[] = staged.slices.map((sl) => ({
      path: sl.file.path,
      size: sl.file.size,
      mtimeMs: sl.file.mtimeMs,
      offset: sl.end,
      lines: (sl.file.state?.lines ?? 0) + sl.linesConsumed,
      header: sl.header,
      status: sl.done ? "done" : "partial",
      known: sl.file.state !== undefined,
      slice: sl.done ? undefined : {
        start: sl.start,
        end: sl.end,
        firstLine: sl.firstLine,
        lines: sl.linesConsumed,
        sha256: sl.sha256!,
      },
    }));
    await saveFileProgress(this.db, this.stream, batchId, progress, { now });
  }

  /** The batch's row in `_sluice.stream_batches`. */
  async recordBatch(
    result: BatchResult,
    options: { now: Date; maxEventTimeUs: number | null; watermarkUs: number | null },
  ): Promise<void> {
    const { now, maxEventTimeUs, watermarkUs } = options;
    await this.db.run(
      `INSERT INTO _sluice.stream_batches VALUES ($stream, $batch, 'files', $run_id,
        $started::TIMESTAMPTZ, $now::TIMESTAMPTZ, $files, $finished, $read, $written, $dead, $blank,
        $by_reason::JSON, $bytes, ${usSql(maxEventTimeUs)}, ${usSql(watermarkUs)}, $windows, NULL)`,
      {
        stream: this.stream,
        batch: result.batchId,
        run_id: this.ctx.runId,
        started: now.toISOString(),
        now: now.toISOString(),
        files: result.files,
        finished: result.filesFinished,
        read: result.recordsRead,
        written: result.written,
        dead: result.deadLettered,
        blank: result.blank,
        by_reason: JSON.stringify(result.byReason),
        bytes: result.bytesRead,
        windows: Object.values(result.windowsEmitted).reduce((a, c) => a + c, 0),
      },
    );
  }

  /**
   * Cleans finished files and exports committed batches (both idempotent),
   * then refreshes the ledger replica: after every batch that catches up,
   * and at most every {@link REPLICA_EVERY_MS} while a backlog is worked
   * off (a replica write costs tens of milliseconds).
   */
  async afterCommit(batchId: number, options: { backlog?: boolean } = {}): Promise<void> {
    const now = this.ctx.clock.now();
    const cleaned = await cleanFinishedFiles(this.db, this.s, { stream: this.stream, now });
    if (cleaned > 0) {
      this.log.info("source files cleaned", {
        event: "files_cleaned",
        files: cleaned,
        action: this.s.clean_source,
      });
    }
    this.crash("cleaned");
    if (this.s.export) {
      const cp = await loadCheckpoint(this.db, this.stream, { runId: this.ctx.runId, now });
      const r = await exportBatches(this.ctx, {
        stream: this.stream,
        exportedBatch: cp.exportedBatch,
        upToBatch: batchId,
      });
      if (r.files > 0) {
        this.log.info("batches exported to Parquet", {
          event: "export_published",
          batches: r.batches,
          files: r.files,
          rows: r.rows,
          path: this.s.export.path,
        });
      }
    }
    this.crash("exported");
    if (!options.backlog || performance.now() - this.replicaMs >= REPLICA_EVERY_MS) {
      await this.replica();
    }
  }

  /** Writes the ledger replica the read-only commands fall back to while the stream runs. */
  async replica(): Promise<void> {
    const t0 = performance.now();
    const r = await writeLedgerReplica(this.db, this.ctx.config, {
      at: this.ctx.clock.now(),
      since: this.replicaAt,
    });
    this.log.debug("ledger replica written", {
      event: "ledger_replica_written",
      path: r.path,
      tables: r.tables.length,
      since: this.replicaAt?.toISOString() ?? null,
      duration_ms: Math.round(performance.now() - t0),
    });
    this.replicaAt = r.at;
    this.replicaMs = performance.now();
  }

  record(r: BatchResult, timings: Record<string, number>): void {
    const sum = this.summary;
    sum.batches++;
    sum.recordsRead += r.recordsRead;
    sum.written += r.written;
    sum.deadLettered += r.deadLettered;
    for (const [k, v] of Object.entries(r.byReason)) sum.byReason[k] = (sum.byReason[k] ?? 0) + v;
    sum.watermark = r.watermark;
    sum.lastBatchId = r.batchId;
    const m = this.metrics;
    const l = this.labels;
    const now = this.ctx.clock.now();
    const lag = r.watermark === null ? null : (now.getTime() - r.watermark.getTime()) / 1000;
    m.batches.inc(l);
    m.recordsRead.inc(l, r.recordsRead);
    m.records.inc({ ...l, outcome: "written" }, r.written);
    m.records.inc({ ...l, outcome: "dead_lettered" }, r.deadLettered);
    m.records.inc({ ...l, outcome: "blank" }, r.blank);
    for (const [reason, n] of Object.entries(r.byReason)) m.deadLetters.inc({ ...l, reason }, n);
    for (const [window, n] of Object.entries(r.windowsEmitted)) {
      m.windowsEmitted.inc({ ...l, window }, n);
    }
    m.bytesRead.inc(l, r.bytesRead);
    m.filesFinished.inc(l, r.filesFinished);
    m.batchDuration.set(l, r.durationMs / 1000);
    m.batchId.set(l, r.batchId);
    if (r.watermark !== null) m.watermark.set(l, r.watermark.getTime() / 1000);
    if (lag !== null) m.watermarkLag.set(l, lag);
    m.filesPending.set(l, r.filesPending);
    m.bytesBehind.set(l, r.bytesBehind);
    m.lastCommit.set(l, now.getTime() / 1000);
    this.log.info("batch committed", {
      event: "batch_committed",
      batch_id: r.batchId,
      files: r.files,
      files_finished: r.filesFinished,
      records_read: r.recordsRead,
      written: r.written,
      dead_lettered: r.deadLettered,
      by_reason: r.byReason,
      blank: r.blank,
      bytes_read: r.bytesRead,
      duration_ms: Math.round(r.durationMs),
      ...timings,
      watermark: r.watermark?.toISOString() ?? null,
      watermark_lag_seconds: lag,
      windows_emitted: r.windowsEmitted,
      files_pending: r.filesPending,
      bytes_behind: r.bytesBehind,
    });
  }
}

/**
 * Formats a stream summary as a few readable lines.
 *
 * @example
 * ```ts ignore
 * const shown = formatStreamSummary(summary);
 * // stream events_v1 (available-now): 3 batches, 1,200 read, 1,150 written, 50 dead-lettered ...
 * ```
 */
export function formatStreamSummary(sum: StreamSummary): string {
  const n = (x: number) => x.toLocaleString("en-US");
  const reasons = reasonsText(sum.byReason);
  const lines = [
    `stream ${sum.stream} (${sum.trigger}): ${n(sum.batches)} batch${
      sum.batches === 1 ? "" : "es"
    }, ${n(sum.recordsRead)} read, ${n(sum.written)} written, ${n(sum.deadLettered)} dead-lettered${
      reasons ? ` (${reasons})` : ""
    } in ${formatDuration(sum.durationMs)}`,
    `last batch ${sum.lastBatchId}; watermark ${sum.watermark?.toISOString() ?? "none yet"}; ` +
    `stopped: ${sum.stoppedBy === "done" ? "nothing left to read" : sum.stoppedBy}`,
  ];
  if (sum.dataLoss > 0) lines.push(`data loss: ${n(sum.dataLoss)} partly read file(s) skipped`);
  return lines.join("\n");
}
