/**
 * Column statistics of the tables a run wrote (rows, nulls, null ratio,
 * approximate distinct values), computed by DuckDB in one scan per table and
 * kept per run in `_sluice.column_stats`. They feed the null-ratio metric,
 * the OpenLineage data-quality facets and the report's null % heatmap.
 *
 * When the quality gate has profiled a table in the same run
 * (`_sluice.profiles`), readers prefer its figures.
 *
 * @module
 */
import type { Engine } from "../core/engine.ts";
import { literal, qualified, rawIdent } from "../core/quote.ts";
import type { RunContext } from "../core/run_context.ts";
import { ensureLedger, tableExists } from "./ledger.ts";

/** Statistics of one column in one run. */
export interface ColumnStat {
  /** Run that measured it. */
  run_id: string;
  /** silver or gold. */
  layer: string;
  /** Table name. */
  table_name: string;
  /** Column name. */
  column_name: string;
  /** DuckDB type. */
  column_type: string;
  /** Rows in the table. */
  row_count: number;
  /** Null values in the column. */
  null_count: number;
  /** null_count / row_count (null for an empty table). */
  null_ratio: number | null;
  /** Approximate number of distinct values. */
  distinct_approx: number | null;
}

/**
 * Measures every column of `layer.table` and records the figures for the
 * run. Returns the number of columns measured (0 when the table is gone, the
 * quality gate already profiled it in this run, or `quality.profiling` is false).
 *
 * @example
 * ```ts ignore
 * await measureTable(ctx, "silver", "orders"); // 9
 * ```
 */
export async function measureTable(
  ctx: RunContext,
  layer: string,
  table: string,
): Promise<number> {
  // Profiling switched off in config means no column scans at all.
  if (ctx.config.quality?.profiling === false) return 0;
  await ensureLedger(ctx.db);
  if (await tableExists(ctx.db, "_sluice", "profiles")) {
    const profiled = await ctx.db.one(
      `SELECT 1 AS x FROM _sluice.profiles WHERE run_id = $run_id AND layer = $layer
       AND table_name = $table LIMIT 1`,
      { run_id: ctx.runId, layer, table },
    );
    if (profiled) return 0; // the quality gate measured it already
  }
  const columns = await ctx.db.all<{ column_name: string }>(
    `SELECT column_name FROM duckdb_columns() WHERE schema_name = $layer AND table_name = $table
     ORDER BY column_index`,
    { layer, table },
  );
  if (columns.length === 0) return 0;
  const rowsAlias = "__sluice_rows";
  const structs = columns.map((c) => {
    const col = rawIdent(c.column_name);
    return `{nulls: count(*) - count(${col}), distinct_approx: approx_count_distinct(${col})} ` +
      `AS ${col}`;
  });
  await ctx.db.transaction(async () => {
    await ctx.db.run(
      `DELETE FROM _sluice.column_stats WHERE run_id = $run_id AND layer = $layer
       AND table_name = $table`,
      { run_id: ctx.runId, layer, table },
    );
    await ctx.db.run(
      `INSERT INTO _sluice.column_stats
       WITH agg AS (
         SELECT count(*) AS ${rowsAlias}, ${structs.join(", ")} FROM ${qualified(layer, table)}
       ), long AS (
         UNPIVOT agg ON COLUMNS(* EXCLUDE (${rowsAlias})) INTO NAME column_name VALUE s
       )
       SELECT $run_id, $layer, $table, l.column_name, c.data_type, l.${rowsAlias},
         l.s.nulls, CASE WHEN l.${rowsAlias} = 0 THEN NULL ELSE l.s.nulls / l.${rowsAlias} END,
         l.s.distinct_approx, ${literal(ctx.clock.now().toISOString())}::TIMESTAMPTZ
       FROM long l JOIN duckdb_columns() c
         ON c.schema_name = $layer AND c.table_name = $table AND c.column_name = l.column_name
       ORDER BY c.column_index`,
      { run_id: ctx.runId, layer, table },
    );
  });
  return columns.length;
}

/**
 * The column statistics of one run (or, with `history`, of the last runs):
 * the quality gate's profiles where it profiled a table in that run, the
 * figures measured here otherwise.
 *
 * @example
 * ```ts ignore
 * const stats = await readColumnStats(db, { runIds: [runId] });
 * ```
 */
export async function readColumnStats(
  db: Engine,
  options: { runIds: readonly string[] },
): Promise<ColumnStat[]> {
  if (options.runIds.length === 0) return [];
  const hasOwn = await tableExists(db, "_sluice", "column_stats");
  const hasProfiles = await tableExists(db, "_sluice", "profiles");
  if (!hasOwn && !hasProfiles) return [];
  // `run_id IN (...)`, not `list_contains([...], run_id)`: DuckDB pushes an IN
  // list into the scan, and this runs at the end of every run (no-op ones too).
  const ids = `(${options.runIds.map(literal).join(", ")})`;
  const parts: string[] = [];
  if (hasProfiles) {
    parts.push(
      `SELECT run_id, layer, table_name, column_name, column_type, row_count, null_count,
         null_ratio, distinct_approx, 0 AS pref
       FROM _sluice.profiles WHERE run_id IN ${ids}`,
    );
  }
  if (hasOwn) {
    parts.push(
      `SELECT run_id, layer, table_name, column_name, column_type, row_count, null_count,
         null_ratio, distinct_approx, 1 AS pref
       FROM _sluice.column_stats WHERE run_id IN ${ids}`,
    );
  }
  return await db.all<ColumnStat & Record<string, unknown>>(
    `WITH s AS (${parts.join(" UNION ALL ")}),
     best AS (SELECT run_id, layer, table_name, min(pref) AS pref FROM s GROUP BY ALL)
     SELECT s.run_id, s.layer, s.table_name, s.column_name, s.column_type,
       s.row_count::BIGINT AS row_count, s.null_count::BIGINT AS null_count,
       s.null_ratio::DOUBLE AS null_ratio, s.distinct_approx::BIGINT AS distinct_approx
     FROM s JOIN best USING (run_id, layer, table_name, pref)
     LEFT JOIN duckdb_columns() c
       ON c.schema_name = s.layer AND c.table_name = s.table_name AND c.column_name = s.column_name
     ORDER BY CASE s.layer WHEN 'bronze' THEN 0 WHEN 'silver' THEN 1 WHEN 'gold' THEN 2 ELSE 3 END,
       s.layer, s.table_name, c.column_index NULLS LAST, s.column_name, s.run_id`,
  );
}
