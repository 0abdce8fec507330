/**
 * The data-quality history in the pipeline's own database:
 *
 * - `_sluice.check_results`: one row per check per run (append-only), so
 *   "% passing over the last 30 runs" is one query;
 * - `_sluice.check_failures`: up to `sample_size` failing rows per failing
 *   check per run, with their keys;
 * - `_sluice.profiles`: one row per column per table per run.
 *
 * Also the baselines read from that history (row count of the last
 * successful run, median of a profile figure over recent successful runs),
 * quarantine retention, and keeping a failed run's quarantine rows after its
 * transaction was rolled back.
 *
 * @module
 */
import { join } from "node:path";
import type { QualityConfig } from "../core/config/mod.ts";
import { ensureDlqTable } from "../core/dlq.ts";
import type { Engine } from "../core/engine.ts";
import { ensureOnce } from "../core/ensure_once.ts";
import { literal, literalList, qualified } from "../core/quote.ts";
import type { RunContext } from "../core/run_context.ts";
import { ensureLedger } from "../observability/ledger.ts";
import type { CheckResult } from "./types.ts";
import type { TableProfile } from "./profile.ts";

/**
 * Creates the quality history tables (and the run ledger they join with) if
 * they do not exist.
 *
 * @example
 * ```ts ignore
 * await ensureQualityTables(db);
 * ```
 */
export async function ensureQualityTables(db: Engine): Promise<void> {
  await ensureLedger(db);
  await ensureOnce(db, "quality", () => createQualityTables(db));
}

async function createQualityTables(db: Engine): Promise<void> {
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.check_results (
    run_id VARCHAR, layer VARCHAR, table_name VARCHAR, check_name VARCHAR, check_type VARCHAR,
    severity VARCHAR, column_name VARCHAR, status VARCHAR, failing_rows BIGINT,
    total_rows BIGINT, threshold VARCHAR, message VARCHAR, checked_at TIMESTAMPTZ)`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.check_failures (
    run_id VARCHAR, table_name VARCHAR, check_name VARCHAR, row_key VARCHAR, sample JSON,
    layer VARCHAR)`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.profiles (
    run_id VARCHAR, layer VARCHAR, table_name VARCHAR, column_name VARCHAR, column_type VARCHAR,
    row_count BIGINT, null_count BIGINT, null_ratio DOUBLE, distinct_approx BIGINT,
    min_value VARCHAR, max_value VARCHAR, profiled_at TIMESTAMPTZ)`);
}

const v = (x: string | number | null | Date) => literal(x);

/**
 * Appends check results (and the failing samples of failing checks) of a run.
 *
 * @example
 * ```ts ignore
 * await recordCheckResults(db, ctx.runId, results);
 * ```
 */
export async function recordCheckResults(
  db: Engine,
  runId: string,
  results: readonly CheckResult[],
): Promise<void> {
  if (results.length === 0) return;
  await ensureQualityTables(db);
  const rows = results.map((r) =>
    `(${
      [
        v(runId),
        v(r.layer),
        v(r.table),
        v(r.check),
        v(r.type),
        v(r.severity),
        v(r.column),
        v(r.status),
        v(r.failingRows),
        v(r.totalRows),
        v(r.threshold),
        v(r.message),
        v(r.checkedAt),
      ].join(", ")
    })`
  );
  await db.run(`INSERT INTO _sluice.check_results VALUES ${rows.join(",\n")}`);
  const samples = results.flatMap((r) =>
    r.samples.map((s) =>
      `(${v(runId)}, ${v(r.table)}, ${v(r.check)}, ${v(s.rowKey)}, ${v(s.sample)}::JSON, ${
        v(r.layer)
      })`
    )
  );
  if (samples.length > 0) {
    await db.run(`INSERT INTO _sluice.check_failures VALUES ${samples.join(",\n")}`);
  }
}

/**
 * Appends table profiles of a run, one row per column.
 *
 * @example
 * ```ts ignore
 * await recordProfiles(db, ctx.runId, profiles, ctx.clock.now());
 * ```
 */
export async function recordProfiles(
  db: Engine,
  runId: string,
  profiles: readonly TableProfile[],
  at: Date,
): Promise<void> {
  const rows = profiles.flatMap((p) =>
    p.columns.map((c) =>
      `(${
        [
          v(runId),
          v(p.layer),
          v(p.table),
          v(c.column),
          v(c.type),
          v(p.rowCount),
          v(c.nullCount),
          c.nullRatio === null ? "NULL" : `${v(c.nullRatio)}::DOUBLE`,
          v(c.distinctApprox),
          v(c.min),
          v(c.max),
          v(at),
        ].join(", ")
      })`
    )
  );
  if (rows.length === 0) return;
  await ensureQualityTables(db);
  await db.run(`INSERT INTO _sluice.profiles VALUES ${rows.join(",\n")}`);
}

const SUCCESSFUL_RUNS = `SELECT run_id, started_at FROM _sluice.runs
  WHERE command = 'run' AND status = 'success'`;

/**
 * Rows a `row_count` check counted in the most recent successful run that
 * recorded it (other than `runId`), or `undefined`.
 *
 * @example
 * ```ts ignore
 * await lastRowCount(db, { layer: "silver", table: "orders", check: "row_count", runId });
 * ```
 */
export async function lastRowCount(
  db: Engine,
  key: { layer: string; table: string; check: string; runId: string },
): Promise<number | undefined> {
  await ensureQualityTables(db);
  const row = await db.one<{ n: number }>(
    `SELECT c.total_rows AS n FROM _sluice.check_results AS c
     JOIN (${SUCCESSFUL_RUNS}) AS r ON r.run_id = c.run_id
     WHERE c.layer = $layer AND c.table_name = $table AND c.check_name = $check
       AND c.run_id <> $run AND c.total_rows IS NOT NULL
     ORDER BY r.started_at DESC LIMIT 1`,
    { layer: key.layer, table: key.table, check: key.check, run: key.runId },
  );
  return row === undefined ? undefined : Number(row.n);
}

/**
 * A profile figure a drift check compares with its recent history.
 *
 * @example
 * ```ts
 * import type { DriftMetric } from "./history.ts";
 * const metric: DriftMetric = "null_ratio";
 * ```
 */
export type DriftMetric = "row_count" | "null_ratio" | "distinct_count";

const METRIC_SQL: Readonly<Record<DriftMetric, string>> = {
  row_count: "max(p.row_count)",
  null_ratio: "max(p.null_ratio) FILTER (WHERE p.column_name = $column)",
  distinct_count: "max(p.distinct_approx) FILTER (WHERE p.column_name = $column)",
};

/**
 * The median of a profile figure over the last `runs` successful runs
 * (other than `runId`) that profiled the table, and how many runs it used.
 *
 * @example
 * ```ts ignore
 * const { median, runs } = await driftBaseline(db, {
 *   layer: "silver", table: "orders", column: "email", metric: "null_ratio", runs: 7, runId,
 * });
 * ```
 */
export async function driftBaseline(
  db: Engine,
  key: {
    layer: string;
    table: string;
    column?: string;
    metric: DriftMetric;
    runs: number;
    runId: string;
  },
): Promise<{ median: number | null; runs: number }> {
  await ensureQualityTables(db);
  const row = await db.one<{ median: number | null; n: number }>(
    `WITH per_run AS (
       SELECT p.run_id, any_value(r.started_at) AS started_at, ${METRIC_SQL[key.metric]} AS v
       FROM _sluice.profiles AS p JOIN (${SUCCESSFUL_RUNS}) AS r ON r.run_id = p.run_id
       WHERE p.layer = $layer AND p.table_name = $table AND p.run_id <> $run
       GROUP BY p.run_id
     ), recent AS (
       SELECT v FROM per_run WHERE v IS NOT NULL ORDER BY started_at DESC LIMIT $runs
     )
     SELECT median(v)::DOUBLE AS median, count(*)::BIGINT AS n FROM recent`,
    {
      layer: key.layer,
      table: key.table,
      run: key.runId,
      runs: key.runs,
      ...(key.metric === "row_count" ? {} : { column: key.column ?? "" }),
    },
  );
  return { median: row?.median ?? null, runs: Number(row?.n ?? 0) };
}

/** The quarantine tables of the configured silver tables that exist. */
async function quarantineTables(ctx: RunContext): Promise<string[]> {
  const names = Object.keys(ctx.config.silver).map((t) => `${t}__quarantine`);
  if (names.length === 0) return [];
  const rows = await ctx.db.all<{ t: string }>(
    `SELECT table_name AS t FROM duckdb_tables()
     WHERE database_name = current_database() AND schema_name = 'silver'
       AND list_contains(${literalList(names)}, table_name)`,
  );
  return rows.map((r) => String(r.t)).sort();
}

/**
 * Applies `quality.quarantine_retention`: per quarantine table, keeps the
 * rows of the `runs` most recent runs and drops rows older than `days`.
 * Returns the rows removed per table.
 *
 * @example
 * ```ts ignore
 * await pruneQuarantine(ctx, { runs: 30 });
 * ```
 */
export async function pruneQuarantine(
  ctx: RunContext,
  retention: QualityConfig["quarantine_retention"],
): Promise<Record<string, number>> {
  const removed: Record<string, number> = {};
  if (!retention || (retention.runs === undefined && retention.days === undefined)) return removed;
  for (const table of await quarantineTables(ctx)) {
    const q = qualified("silver", table);
    let n = 0;
    if (retention.days !== undefined) {
      n += await ctx.db.run(
        `DELETE FROM ${q} WHERE _quarantined_at < $now::TIMESTAMPTZ - to_days(${
          literal(retention.days)
        })`,
        { now: ctx.clock.now().toISOString() },
      );
    }
    if (retention.runs !== undefined) {
      n += await ctx.db.run(
        `DELETE FROM ${q} WHERE _run_id NOT IN (
           SELECT _run_id FROM ${q} GROUP BY _run_id
           ORDER BY max(_quarantined_at) DESC, _run_id DESC LIMIT ${literal(retention.runs)})`,
      );
    }
    if (n > 0) removed[table] = n;
  }
  return removed;
}

/** A run's quarantine rows of one table, written aside before a rollback. */
export interface QuarantineEvidence {
  /** Quarantine table, e.g. `orders__quarantine`. */
  table: string;
  /** Parquet file holding the rows. */
  file: string;
  /** Rows in the file. */
  rows: number;
}

/**
 * Copies the rows this run put in each quarantine table to Parquet files in
 * the engine's spill folder, so they survive the rollback of a failed run.
 *
 * @example
 * ```ts ignore
 * const evidence = await saveQuarantineEvidence(ctx);
 * ```
 */
export async function saveQuarantineEvidence(ctx: RunContext): Promise<QuarantineEvidence[]> {
  const saved: QuarantineEvidence[] = [];
  for (const table of await quarantineTables(ctx)) {
    const q = qualified("silver", table);
    const n = (await ctx.db.one<{ n: number }>(
      `SELECT count(*)::BIGINT AS n FROM ${q} WHERE _run_id = $run`,
      { run: ctx.runId },
    ))?.n ?? 0;
    if (Number(n) === 0) continue;
    const file = join(ctx.config.engine.temp_directory, `quarantine_${ctx.runId}_${table}.parquet`);
    await Deno.mkdir(ctx.config.engine.temp_directory, { recursive: true });
    await ctx.db.run(
      `COPY (SELECT * FROM ${q} WHERE _run_id = ${literal(ctx.runId)}) TO ${
        literal(file)
      } (FORMAT parquet)`,
    );
    saved.push({ table, file, rows: Number(n) });
  }
  return saved;
}

/**
 * Appends saved quarantine rows back (after the rollback) and deletes the
 * files. Returns the rows restored.
 *
 * @example
 * ```ts ignore
 * await restoreQuarantineEvidence(ctx, evidence);
 * ```
 */
export async function restoreQuarantineEvidence(
  ctx: RunContext,
  evidence: readonly QuarantineEvidence[],
): Promise<number> {
  let n = 0;
  for (const e of evidence) {
    await ensureDlqTable(ctx.db, "silver", e.table);
    n += await ctx.db.run(
      `INSERT INTO ${qualified("silver", e.table)} BY NAME SELECT * FROM read_parquet(${
        literal(e.file)
      })`,
    );
  }
  return n;
}

/**
 * Deletes the evidence files.
 *
 * @example
 * ```ts ignore
 * await removeEvidenceFiles(evidence);
 * ```
 */
export async function removeEvidenceFiles(evidence: readonly QuarantineEvidence[]): Promise<void> {
  for (const e of evidence) {
    await Deno.remove(e.file).catch(() => {});
  }
}
