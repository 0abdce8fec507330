/**
 * Per-column profiling: the row count of a table and, for every column, the
 * NULL count and ratio, the number of distinct values, and the minimum and
 * maximum of numbers, dates and times. One table is one scan: a single
 * aggregate query over all its columns.
 *
 * Distinct counts are exact where that is cheap and an estimate where it is
 * not. DuckDB's estimate (`approx_count_distinct`, HyperLogLog) costs little
 * but is coarse on small sets (13 countries read as 15, 1,000 products as
 * 1,232), while an exact count costs little on small sets and a lot on large
 * ones. So a column is counted exactly when its table has at most
 * {@linkcode EXACT_DISTINCT_MAX_ROWS} rows, or when its previous profile
 * found at most {@linkcode EXACT_DISTINCT_MAX_VALUES} distinct values;
 * otherwise it is estimated.
 *
 * @module
 */
import type { Engine } from "../core/engine.ts";
import { qualified, rawIdent } from "../core/quote.ts";
import { isNumericType, isTemporalType } from "./_check_sql.ts";

/**
 * Tables with at most this many rows get exact distinct counts in every column.
 *
 * @example
 * ```ts
 * import { EXACT_DISTINCT_MAX_ROWS } from "./profile.ts";
 * const exact = (rows: number) => rows <= EXACT_DISTINCT_MAX_ROWS;
 * ```
 */
export const EXACT_DISTINCT_MAX_ROWS = 250_000;

/**
 * In larger tables, columns whose previous profile found at most this many
 * distinct values are counted exactly.
 *
 * @example
 * ```ts
 * import { EXACT_DISTINCT_MAX_VALUES } from "./profile.ts";
 * const exact = (previous: number) => previous <= EXACT_DISTINCT_MAX_VALUES;
 * ```
 */
export const EXACT_DISTINCT_MAX_VALUES = 50_000;

/** The profile of one column. */
export interface ColumnProfile {
  /** Column name. */
  column: string;
  /** DuckDB type. */
  type: string;
  /** Rows where the column is NULL. */
  nullCount: number;
  /** `nullCount / rowCount`; `null` for an empty table. */
  nullRatio: number | null;
  /** Distinct non-NULL values (exact or estimated, see `distinctExact`); `null` for nested types. */
  distinctApprox: number | null;
  /** True when `distinctApprox` was counted exactly. */
  distinctExact: boolean;
  /** Smallest value as text (numbers, dates and times only). */
  min: string | null;
  /** Largest value as text (numbers, dates and times only). */
  max: string | null;
}

/** The profile of one table in one run. */
export interface TableProfile {
  /** Layer: bronze, silver or gold. */
  layer: string;
  /** Table name. */
  table: string;
  /** Rows profiled. */
  rowCount: number;
  /** One entry per column, in table order. */
  columns: ColumnProfile[];
  /** Wall time of the profiling query in milliseconds. */
  durationMs: number;
}

/** Options of {@linkcode profileTable}. */
export interface ProfileOptions {
  /** SQL filter: profile only these rows (e.g. the batch a run landed in bronze). */
  scope?: string;
  /** Columns to leave out (e.g. bronze's bookkeeping columns). */
  exclude?: readonly string[];
}

/**
 * A column to profile and how to count its distinct values.
 *
 * @example
 * ```ts
 * import type { ProfileColumn } from "./profile.ts";
 * const column: ProfileColumn = { name: "status", type: "VARCHAR", exact: true };
 * ```
 */
export interface ProfileColumn {
  /** Column name. */
  name: string;
  /** DuckDB type. */
  type: string;
  /** Count distinct values exactly (default: estimate). */
  exact?: boolean;
}

const NESTED = /(\[\]|\[\d+\])$|^(STRUCT|MAP|UNION|LIST)/i;

/**
 * Builds the one aggregate query profiling `columns` of a table.
 *
 * @example
 * ```ts
 * import { profileSql } from "./profile.ts";
 * profileSql({ schema: "silver", table: "orders" }, [
 *   { name: "qty", type: "INTEGER", exact: true },
 *   { name: "order_id", type: "BIGINT" },
 * ]);
 * // SELECT count(*)::BIGINT AS n, count("qty")::BIGINT AS nn_0,
 * //   count(DISTINCT "qty")::BIGINT AS d_0, ..., approx_count_distinct("order_id") ...
 * ```
 */
export function profileSql(
  ref: { schema: string; table: string },
  columns: readonly ProfileColumn[],
  options: { scope?: string } = {},
): string {
  const parts = ["count(*)::BIGINT AS n"];
  columns.forEach((c, i) => {
    const q = rawIdent(c.name);
    parts.push(`count(${q})::BIGINT AS nn_${i}`);
    const distinct = c.exact ? `count(DISTINCT ${q})` : `approx_count_distinct(${q})`;
    parts.push(NESTED.test(c.type) ? `NULL::BIGINT AS d_${i}` : `${distinct}::BIGINT AS d_${i}`);
    const ordered = isNumericType(c.type) || isTemporalType(c.type);
    parts.push(ordered ? `CAST(min(${q}) AS VARCHAR) AS mn_${i}` : `NULL::VARCHAR AS mn_${i}`);
    parts.push(ordered ? `CAST(max(${q}) AS VARCHAR) AS mx_${i}` : `NULL::VARCHAR AS mx_${i}`);
  });
  return `SELECT ${parts.join(", ")} FROM ${qualified(ref.schema, ref.table)}` +
    (options.scope ? ` WHERE ${options.scope}` : "");
}

/** Distinct counts of the table's columns in its latest stored profile. */
async function previousDistinct(
  db: Engine,
  ref: { layer: string; table: string },
): Promise<Map<string, number>> {
  const stored = await db.one(
    `SELECT 1 AS x FROM duckdb_tables() WHERE database_name = current_database()
       AND schema_name = '_sluice' AND table_name = 'profiles'`,
  );
  if (!stored) return new Map();
  const rows = await db.all<{ c: string; d: number | null }>(
    `SELECT column_name AS c, distinct_approx AS d FROM _sluice.profiles
     WHERE layer = $layer AND table_name = $table AND run_id = (
       SELECT run_id FROM _sluice.profiles WHERE layer = $layer AND table_name = $table
       ORDER BY profiled_at DESC LIMIT 1)`,
    { layer: ref.layer, table: ref.table },
  );
  return new Map(rows.filter((r) => r.d !== null).map((r) => [String(r.c), Number(r.d)]));
}

/**
 * Profiles one table with one scan. A table that does not exist has no
 * columns and a row count of 0.
 *
 * @example
 * ```ts ignore
 * const p = await profileTable(db, { layer: "silver", schema: "silver", table: "orders" });
 * const shown = [p.rowCount, p.columns.map((c) => [c.column, c.nullRatio])];
 * ```
 */
export async function profileTable(
  db: Engine,
  ref: { layer: string; schema: string; table: string },
  options: ProfileOptions = {},
): Promise<TableProfile> {
  const started = performance.now();
  const exclude = new Set(options.exclude ?? []);
  const found = (await db.all<{ name: string; type: string }>(
    `SELECT column_name AS name, data_type AS type FROM duckdb_columns()
     WHERE database_name = current_database() AND schema_name = $s AND table_name = $t
     ORDER BY column_index`,
    { s: ref.schema, t: ref.table },
  )).filter((c) => !exclude.has(c.name));
  if (found.length === 0) {
    return { layer: ref.layer, table: ref.table, rowCount: 0, columns: [], durationMs: 0 };
  }
  // Exact or estimated distinct counts: the table's size (a cheap count) and the last profile.
  const size = await db.one<{ n: number }>(
    `SELECT count(*)::BIGINT AS n FROM ${qualified(ref.schema, ref.table)}`,
  );
  const small = Number(size?.n ?? 0) <= EXACT_DISTINCT_MAX_ROWS;
  const before = small ? new Map<string, number>() : await previousDistinct(db, ref);
  const columns: ProfileColumn[] = found.map((c) => ({
    name: c.name,
    type: c.type,
    exact: small || (before.get(c.name) ?? Infinity) <= EXACT_DISTINCT_MAX_VALUES,
  }));
  const row = (await db.one(profileSql(ref, columns, { scope: options.scope }))) ?? {};
  const n = Number(row.n ?? 0);
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  const text = (v: unknown) => (v === null || v === undefined ? null : String(v));
  return {
    layer: ref.layer,
    table: ref.table,
    rowCount: n,
    columns: columns.map((c, i) => {
      const nulls = n - Number(row[`nn_${i}`] ?? 0);
      return {
        column: c.name,
        type: c.type,
        nullCount: nulls,
        nullRatio: n === 0 ? null : nulls / n,
        distinctApprox: num(row[`d_${i}`]),
        distinctExact: c.exact === true,
        min: text(row[`mn_${i}`]),
        max: text(row[`mx_${i}`]),
      };
    }),
    durationMs: performance.now() - started,
  };
}
