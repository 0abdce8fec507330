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

/**
 * The version of Sluice written into the ledger.
 *
 * @example
 * ```ts
 * import { SLUICE_VERSION } from "./ledger.ts";
 * const banner = `sluice ${SLUICE_VERSION}`;
 * ```
 */
export const SLUICE_VERSION = "0.1.0";

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
 * Marks a run finished with its status (`success`, `failed`, `quality_failed`).
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
