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
import { literal, qualified, rawIdent } from "../core/quote.ts";
import { isNumericType, isTemporalType } from "./_check_sql.ts";

/** A figure read back from DuckDB: a number, or null. */
const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
/** A min/max read back as text, or null. */
const text = (v: unknown) => (v === null || v === undefined ? null : String(v));

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
  /**
   * How the figures were obtained: `full` (one scan of the table) or
   * `incremental` (row and NULL counts and min/max from the previous
   * stored profile plus the appended rows; distinct counts recomputed over
   * the whole table, exactly as a full profile counts them). Unset: `full`.
   */
  method?: "full" | "incremental";
  /** With method `full` under `quality.scope: changed`: why not incremental. */
  fullReason?: string;
}

/** Options of {@linkcode profileTable}. */
export interface ProfileOptions {
  /** SQL filter: profile only these rows (e.g. the batch a run landed in bronze). */
  scope?: string;
  /** Columns to leave out (e.g. bronze's bookkeeping columns). */
  exclude?: readonly string[];
  /**
   * SQL filter (over alias `t`) of the rows appended since the previous
   * stored profile, when the table only gained rows: row and NULL counts and
   * min/max are then the previous profile's combined with those rows'
   * (method `incremental`), when the previous profile can be shown to be of
   * the table before this run; otherwise a full profile.
   */
  appended?: { filter: string; runId: string };
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
  options: { scope?: string; figures?: "all" | "distinct" | "additive" } = {},
): string {
  const parts = ["count(*)::BIGINT AS n"];
  const figures = options.figures ?? "all";
  columns.forEach((c, i) => {
    const q = rawIdent(c.name);
    if (figures !== "distinct") parts.push(`count(${q})::BIGINT AS nn_${i}`);
    const distinct = c.exact ? `count(DISTINCT ${q})` : `approx_count_distinct(${q})`;
    if (figures !== "additive") {
      parts.push(NESTED.test(c.type) ? `NULL::BIGINT AS d_${i}` : `${distinct}::BIGINT AS d_${i}`);
    }
    if (figures === "distinct") return;
    const ordered = isNumericType(c.type) || isTemporalType(c.type);
    parts.push(ordered ? `CAST(min(${q}) AS VARCHAR) AS mn_${i}` : `NULL::VARCHAR AS mn_${i}`);
    parts.push(ordered ? `CAST(max(${q}) AS VARCHAR) AS mx_${i}` : `NULL::VARCHAR AS mx_${i}`);
  });
  return `SELECT ${parts.join(", ")} FROM ${qualified(ref.schema, ref.table)} AS t` +
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

/** The latest stored profile of a table, when it is of a successful run that last wrote it. */
async function previousProfile(
  db: Engine,
  ref: { layer: string; table: string },
  runId: string,
): Promise<{ rowCount: number; columns: ColumnProfile[] } | string> {
  const stored = await db.one(
    `SELECT 1 AS x FROM duckdb_tables() WHERE database_name = current_database()
       AND schema_name = '_sluice' AND table_name = 'profiles'`,
  );
  if (!stored) return "no previous profile";
  const rows = await db.all<Record<string, unknown>>(
    `WITH last AS (SELECT run_id FROM _sluice.profiles
       WHERE layer = $layer AND table_name = $table AND run_id <> $run
       ORDER BY profiled_at DESC, run_id DESC LIMIT 1),
     writer AS (SELECT run_id FROM _sluice.silver_progress
       WHERE table_name = $table AND run_id <> $run
       ORDER BY processed_at DESC, run_id DESC LIMIT 1)
     SELECT p.column_name, p.column_type, p.row_count, p.null_count, p.null_ratio,
       p.distinct_approx, p.min_value, p.max_value,
       (SELECT count(*) FROM _sluice.runs AS r WHERE r.run_id = p.run_id
         AND r.command = 'run' AND r.status = 'success') AS ok,
       p.run_id = (SELECT run_id FROM writer) AS last_writer
     FROM _sluice.profiles AS p
     WHERE p.layer = $layer AND p.table_name = $table AND p.run_id = (SELECT run_id FROM last)`,
    { layer: ref.layer, table: ref.table, run: runId },
  );
  if (rows.length === 0) return "no previous profile";
  if (rows.some((r) => Number(r.ok) === 0)) return "previous profile not of a successful run";
  if (rows.some((r) => r.last_writer !== true)) return "table written since the previous profile";
  return {
    rowCount: Number(rows[0].row_count),
    columns: rows.map((r) => ({
      column: String(r.column_name),
      type: String(r.column_type),
      nullCount: Number(r.null_count),
      nullRatio: num(r.null_ratio),
      distinctApprox: num(r.distinct_approx),
      distinctExact: false,
      min: text(r.min_value),
      max: text(r.max_value),
    })),
  };
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
  let fullReason: string | undefined;
  if (options.appended !== undefined) {
    const inc = await incremental(db, ref, columns, options.appended);
    if (typeof inc !== "string") return { ...inc, durationMs: performance.now() - started };
    fullReason = inc;
  }
  const row = (await db.one(profileSql(ref, columns, { scope: options.scope }))) ?? {};
  const n = Number(row.n ?? 0);
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
    ...(options.appended !== undefined ? { method: "full" as const, fullReason } : {}),
  };
}

/**
 * The profile of a table that only gained the rows `appended.filter` selects
 * since its previous stored profile: that profile's row and NULL counts plus
 * the new rows', min/max combined (in the column's type), distinct counts
 * recomputed over the whole table. Or why it cannot be shown equal to a full
 * profile.
 */
async function incremental(
  db: Engine,
  ref: { layer: string; schema: string; table: string },
  columns: readonly ProfileColumn[],
  appended: { filter: string; runId: string },
): Promise<Omit<TableProfile, "durationMs"> | string> {
  const prev = await previousProfile(db, ref, appended.runId);
  if (typeof prev === "string") return prev;
  if (
    prev.columns.length !== columns.length ||
    prev.columns.some((c, i) => c.column !== columns[i].name || c.type !== columns[i].type)
  ) return "columns changed";
  // Additive figures of the appended rows, combined with the previous profile in one query.
  const delta = profileSql(ref, columns, { scope: appended.filter, figures: "additive" });
  const combine = columns.map((c, i) => {
    const ordered = isNumericType(c.type) || isTemporalType(c.type);
    if (!ordered) return `NULL::VARCHAR AS mn_${i}, NULL::VARCHAR AS mx_${i}`;
    const was = (v: string | null) =>
      v === null ? `NULL::${c.type}` : `CAST(${literal(v)} AS ${c.type})`;
    const p = prev.columns[i];
    return `CAST(least(${was(p.min)}, CAST(d.mn_${i} AS ${c.type})) AS VARCHAR) AS mn_${i}, ` +
      `CAST(greatest(${was(p.max)}, CAST(d.mx_${i} AS ${c.type})) AS VARCHAR) AS mx_${i}`;
  });
  const nn = columns.map((_, i) => `d.nn_${i}`);
  const ds = columns.map((_, i) => `w.d_${i}`);
  // One query: the appended rows' figures and the whole table's distinct counts.
  const row = (await db.one(
    `SELECT d.n AS dn, w.n AS n, ${[...nn, ...ds, ...combine].join(", ")}
     FROM (${delta}) AS d, (${profileSql(ref, columns, { figures: "distinct" })}) AS w`,
  )) ?? {};
  const whole = row;
  const n = Number(row.n ?? 0);
  if (prev.rowCount + Number(row.dn ?? 0) !== n) return "row count does not add up";
  return {
    layer: ref.layer,
    table: ref.table,
    rowCount: n,
    method: "incremental",
    columns: columns.map((c, i) => {
      const nulls = prev.columns[i].nullCount + Number(row.dn ?? 0) - Number(row[`nn_${i}`] ?? 0);
      return {
        column: c.name,
        type: c.type,
        nullCount: nulls,
        nullRatio: n === 0 ? null : nulls / n,
        distinctApprox: num(whole[`d_${i}`]),
        distinctExact: c.exact === true,
        min: text(row[`mn_${i}`]),
        max: text(row[`mx_${i}`]),
      };
    }),
  };
}
