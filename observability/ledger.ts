/**
 * The run ledger: every run and every stage's row accounting, stored in the
 * pipeline's own database (`_sluice.runs`, `_sluice.stage_tables`).
 *
 * @module
 */
import type { Engine } from "../core/engine.ts";
import type { RunContext, StageResult } from "../core/run_context.ts";

/** The version of Sluice written into the ledger. */
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
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.stage_tables (
    run_id VARCHAR, stage VARCHAR, layer VARCHAR, table_name VARCHAR, rows_in BIGINT,
    passed BIGINT, quarantined BIGINT, duplicates BIGINT, duration_ms DOUBLE,
    skipped BOOLEAN, details JSON)`);
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
    `INSERT INTO _sluice.runs VALUES ($run_id, $pipeline, $command, $trigger,
      $started::TIMESTAMPTZ, NULL, 'running', NULL, $hash, $version, version())`,
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
  options: { status: string; error?: string },
): Promise<void> {
  await ctx.db.run(
    `UPDATE _sluice.runs SET finished_at = $finished::TIMESTAMPTZ, status = $status,
      error = $error WHERE run_id = $run_id`,
    {
      run_id: ctx.runId,
      finished: ctx.clock.now().toISOString(),
      status: options.status,
      error: options.error ?? null,
    },
  );
}
