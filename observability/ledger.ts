/**
 * The run ledger: every run and every stage's row accounting, stored in the
 * pipeline's own database.
 *
 * | table | one row per |
 * | --- | --- |
 * | `_sluice.runs` | run: command, trigger, start, end, status, error, versions, config hash |
 * | `_sluice.stage_tables` | stage and table of a run: rows in, passed, quarantined, duplicates, duration |
 * | `_sluice.run_manifests` | run: Sluice, DuckDB and Deno versions, config file and hash, SQL model hashes |
 * | `_sluice.run_inputs` | input file a run read: path, size, mtime, SHA-256 |
 * | `_sluice.column_stats` | column of a table a run wrote: rows, nulls, null ratio, approx. distinct |
 *
 * The data-quality tables (`_sluice.check_results`, `_sluice.check_failures`,
 * `_sluice.profiles`) are written by the quality gate; readers here use them
 * when they exist.
 *
 * @module
 */
import type { Engine } from "../core/engine.ts";
import type { RunContext, StageResult } from "../core/run_context.ts";

import { SLUICE_VERSION } from "../core/version.ts";
import { ensureOnce } from "../core/ensure_once.ts";
/** The version of Sluice written into the ledger (defined in `core/version.ts`). */
export { SLUICE_VERSION };

/**
 * Creates the ledger tables if they do not exist.
 *
 * @example
 * ```ts
 * import { openEngine } from "../core/engine.ts";
 * import { ensureLedger } from "./ledger.ts";
 * const db = await openEngine(":memory:", { allowedDirectories: ["/tmp"], schemas: ["_sluice"] });
 * await ensureLedger(db);
 * ```
 */
export async function ensureLedger(db: Engine): Promise<void> {
  await ensureOnce(db, "ledger", () => createLedger(db));
}

async function createLedger(db: Engine): Promise<void> {
  await db.run(`CREATE SCHEMA IF NOT EXISTS _sluice`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.runs (
    run_id VARCHAR PRIMARY KEY, pipeline VARCHAR, command VARCHAR, trigger VARCHAR,
    started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, status VARCHAR, error VARCHAR,
    config_hash VARCHAR, sluice_version VARCHAR, duckdb_version VARCHAR)`);
  // Wall time measured by the runner (the clock may be a test clock).
  await db.run(`ALTER TABLE _sluice.runs ADD COLUMN IF NOT EXISTS duration_ms DOUBLE`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.stage_tables (
    run_id VARCHAR, stage VARCHAR, layer VARCHAR, table_name VARCHAR, rows_in BIGINT,
    passed BIGINT, quarantined BIGINT, duplicates BIGINT, duration_ms DOUBLE,
    skipped BOOLEAN, details JSON)`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.run_manifests (
    run_id VARCHAR PRIMARY KEY, pipeline VARCHAR, sluice_version VARCHAR, duckdb_version VARCHAR,
    duckdb_source_id VARCHAR, deno_version VARCHAR, config_file VARCHAR, config_hash VARCHAR,
    models JSON, recorded_at TIMESTAMPTZ)`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.run_inputs (
    run_id VARCHAR, source VARCHAR, path VARCHAR, size BIGINT, mtime_ms DOUBLE, sha256 VARCHAR,
    rows BIGINT, status VARCHAR)`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.column_stats (
    run_id VARCHAR, layer VARCHAR, table_name VARCHAR, column_name VARCHAR, column_type VARCHAR,
    row_count BIGINT, null_count BIGINT, null_ratio DOUBLE, distinct_approx BIGINT,
    computed_at TIMESTAMPTZ)`);
}

/**
 * True when `schema.table` exists (used for the optional data-quality tables).
 *
 * @example
 * ```ts ignore
 * if (await tableExists(db, "_sluice", "check_results")) { ... }
 * ```
 */
export async function tableExists(db: Engine, schema: string, table: string): Promise<boolean> {
  const row = await db.one(
    `SELECT 1 AS x FROM duckdb_tables() WHERE schema_name = $schema AND table_name = $table`,
    { schema, table },
  );
  return row !== undefined;
}

/**
 * Records the start of a run with status `running`.
 *
 * @example
 * ```ts ignore
 * await startRunRecord(ctx, { command: "run" });
 * ```
 */
export async function startRunRecord(
  ctx: RunContext,
  options: { command: string },
): Promise<void> {
  await ensureLedger(ctx.db);
  await ctx.db.run(
    `INSERT INTO _sluice.runs (run_id, pipeline, command, trigger, started_at, finished_at,
      status, error, config_hash, sluice_version, duckdb_version)
     VALUES ($run_id, $pipeline, $command, $trigger, $started::TIMESTAMPTZ, NULL, 'running', NULL,
      $hash, $version, version())`,
    {
      run_id: ctx.runId,
      pipeline: ctx.config.pipeline,
      command: options.command,
      trigger: ctx.trigger,
      started: ctx.startedAt.toISOString(),
      hash: ctx.config.hash,
      version: SLUICE_VERSION,
    },
  );
}

/**
 * Appends a stage's per-table figures to the ledger.
 *
 * @example
 * ```ts ignore
 * await recordStageResult(ctx, { stage: "silver", durationMs: 10, tables: [] });
 * ```
 */
export async function recordStageResult(ctx: RunContext, result: StageResult): Promise<void> {
  const tables = result.tables.length > 0 ? result.tables : [undefined];
  // One commit for the stage's rows, not one per table.
  await ctx.db.transaction(async () => {
    for (const t of tables) {
      await ctx.db.run(
        `INSERT INTO _sluice.stage_tables VALUES ($run_id, $stage, $layer, $table, $rows_in,
        $passed, $quarantined, $duplicates, $duration_ms, $skipped, $details::JSON)`,
        {
          run_id: ctx.runId,
          stage: result.stage,
          layer: t?.layer ?? result.stage,
          table: t?.table ?? null,
          rows_in: t?.rowsIn ?? 0,
          passed: t?.passed ?? 0,
          quarantined: t?.quarantined ?? 0,
          duplicates: t?.duplicates ?? 0,
          duration_ms: result.durationMs,
          skipped: result.skipped ?? false,
          details: JSON.stringify(t?.details ?? {}),
        },
      );
    }
  });
}

/**
 * Marks a run finished with its status (`success`, `failed`, `quality_failed`,
 * `timed_out`, `cancelled`; `skipped` and `abandoned` are written by
 * {@linkcode foldPendingRuns} and {@linkcode markAbandonedRuns}).
 *
 * @example
 * ```ts ignore
 * await finishRunRecord(ctx, { status: "success" });
 * ```
 */
export async function finishRunRecord(
  ctx: RunContext,
  options: { status: string; error?: string; finishedAt?: Date; durationMs?: number },
): Promise<void> {
  await ctx.db.run(
    `UPDATE _sluice.runs SET finished_at = $finished::TIMESTAMPTZ, status = $status,
      error = $error, duration_ms = $duration_ms WHERE run_id = $run_id`,
    {
      run_id: ctx.runId,
      finished: (options.finishedAt ?? ctx.clock.now()).toISOString(),
      status: options.status,
      error: options.error ?? null,
      duration_ms: options.durationMs ?? null,
    },
  );
}

/**
 * Gives a run's ledger row its final status when the code that ran it did
 * not (the run lifecycle calls it last, before the database closes): a row
 * still `running` is finished with `status`; a run that ended without a row
 * gets one, unless it succeeded (`sluice dlq list` records nothing). A row
 * already finished is left as it is.
 *
 * @example
 * ```ts ignore
 * await settleRunRecord(ctx, { command: "run", status: "cancelled", error: "SIGTERM" });
 * ```
 */
export async function settleRunRecord(
  ctx: RunContext,
  options: { command: string; status: string; error?: string; durationMs?: number },
): Promise<void> {
  const read = () =>
    ctx.db.one<{ status: string }>(
      `SELECT status FROM _sluice.runs WHERE run_id = $run_id`,
      { run_id: ctx.runId },
    );
  // Read first: a run that recorded its end needs no DDL (nor a writable database: its
  // CHECKPOINT may just have failed on a full disk). No ledger yet: make it, then read.
  let row: { status: string } | undefined;
  try {
    row = await read();
  } catch {
    await ensureLedger(ctx.db);
    row = await read();
  }
  if (row && row.status !== "running") return;
  // A row `running` was inserted by startRunRecord, which made the ledger; so does a new one.
  if (!row) {
    if (options.status === "success") return;
    await startRunRecord(ctx, { command: options.command });
  }
  await finishRunRecord(ctx, {
    status: options.status,
    error: options.error,
    durationMs: options.durationMs,
  });
}

/**
 * Marks every run still `running` in the ledger, other than `ctx`'s, as
 * `abandoned`: its process ended (killed, crashed, power loss) without
 * recording its end. Call it only while holding the run lock, so no other
 * run can be alive. `finished_at` stays empty (the real end is unknown);
 * `noticed_at` and the error say when and by which run it was noticed.
 * Returns the run ids marked.
 *
 * @example
 * ```ts ignore
 * const ids = await markAbandonedRuns(ctx);
 * ```
 */
export async function markAbandonedRuns(ctx: RunContext): Promise<string[]> {
  await ensureLedger(ctx.db);
  await ctx.db.run(`ALTER TABLE _sluice.runs ADD COLUMN IF NOT EXISTS noticed_at TIMESTAMPTZ`);
  const noticed = ctx.clock.now().toISOString();
  const rows = await ctx.db.all<{ run_id: string }>(
    `UPDATE _sluice.runs SET status = 'abandoned', noticed_at = $noticed::TIMESTAMPTZ,
       error = 'abandoned: its process ended without recording an end (noticed at ' || $noticed ||
         ' by run ' || $run_id || ')'
     WHERE status = 'running' AND run_id <> $run_id RETURNING run_id`,
    { noticed, run_id: ctx.runId },
  );
  return rows.map((r) => r.run_id);
}

/** A run that never opened the database (it skipped), waiting to be folded into the ledger. */
export interface PendingRunRecord {
  /** Run id. */
  run_id: string;
  /** Pipeline name. */
  pipeline: string;
  /** Command. */
  command: string;
  /** What started it. */
  trigger: string;
  /** Status: `skipped`. */
  status: string;
  /** Why (names the lock holder). */
  error: string | null;
  /** Start, ISO 8601. */
  started_at: string;
  /** End, ISO 8601. */
  finished_at: string;
  /** Config hash. */
  config_hash: string;
}

/**
 * The folder of run records written without the database (`<database>.pending`).
 *
 * @example
 * ```ts
 * import { pendingRunsDir } from "./ledger.ts";
 * pendingRunsDir("/data/lake/sluice.duckdb"); // "/data/lake/sluice.duckdb.pending"
 * ```
 */
export function pendingRunsDir(database: string): string {
  return `${database}.pending`;
}

/**
 * Records a run that did not get the database (a `skipped` run: another run
 * holds it) as one JSON file in {@linkcode pendingRunsDir}, written
 * atomically. The next run that takes the lock folds it into the ledger
 * ({@linkcode foldPendingRuns}).
 *
 * @example
 * ```ts ignore
 * await recordPendingRun(config.engine.database, record);
 * ```
 */
export async function recordPendingRun(database: string, record: PendingRunRecord): Promise<void> {
  const dir = pendingRunsDir(database);
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${dir}/.${record.run_id}.json.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(record) + "\n");
  await Deno.rename(tmp, `${dir}/${record.run_id}.json`);
}

/**
 * Folds the pending run records into `_sluice.runs` (one commit, a record
 * already there is kept) and then deletes their files. Call it while
 * holding the run lock. Returns how many were folded.
 *
 * @example
 * ```ts ignore
 * const folded = await foldPendingRuns(ctx);
 * ```
 */
export async function foldPendingRuns(ctx: RunContext): Promise<number> {
  const dir = pendingRunsDir(ctx.db.path);
  const files: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(".json") && !e.name.startsWith(".")) {
        files.push(`${dir}/${e.name}`);
      }
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
  if (files.length === 0) return 0;
  const records: PendingRunRecord[] = [];
  for (const f of files.sort()) {
    try {
      records.push(JSON.parse(await Deno.readTextFile(f)) as PendingRunRecord);
    } catch { /* a torn file cannot exist (written by rename); skip anything else */ }
  }
  await ensureLedger(ctx.db);
  await ctx.db.transaction(async () => {
    for (const r of records) {
      await ctx.db.run(
        `INSERT INTO _sluice.runs (run_id, pipeline, command, trigger, started_at, finished_at,
          status, error, config_hash, sluice_version, duckdb_version, duration_ms)
         VALUES ($run_id, $pipeline, $command, $trigger, $started::TIMESTAMPTZ,
          $finished::TIMESTAMPTZ, $status, $error, $hash, $version, version(),
          epoch_ms($finished::TIMESTAMPTZ) - epoch_ms($started::TIMESTAMPTZ))
         ON CONFLICT DO NOTHING`,
        {
          run_id: r.run_id,
          pipeline: r.pipeline,
          command: r.command,
          trigger: r.trigger,
          started: r.started_at,
          finished: r.finished_at,
          status: r.status,
          error: r.error,
          hash: r.config_hash,
          version: SLUICE_VERSION,
        },
      );
    }
  });
  for (const f of files) await Deno.remove(f).catch(() => {});
  return records.length;
}
