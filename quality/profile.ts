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
import { ensureOnce } from "../core/ensure_once.ts";
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
   * How the figures were obtained: `full` (one scan of the table),
   * `incremental` (the table only gained rows) or `delta` (a merge table's
   * change set: the old and new versions of the rows the run touched). The
   * last two start from the previous stored profile: row and NULL counts
   * exactly, min/max combined (read again over the table only for a column
   * whose old versions held the previous one); estimated distinct counts by
   * combining the stored HyperLogLog state of the column with the new rows'
   * (DuckDB's `approx_count_distinct` `EXPORT_STATE`, equal to an estimate
   * over the whole table), read again when old versions may have taken a
   * value away; exact distinct counts (small sets) read over the table.
   * Unset: `full`.
   */
  method?: "full" | "incremental" | "delta";
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
   * stored profile, when the table only gained rows: the profile is then
   * derived from the previous one and those rows (method `incremental`),
   * when the previous profile can be shown to be of the table before this
   * run; otherwise a full profile.
   */
  appended?: { filter: string; runId: string };
  /**
   * A temp table (quoted) with the table's columns plus `_sluice_old
   * BOOLEAN`: the old versions (true) and new versions (false) of every row
   * this run changed, such that the table now is the table before the run
   * minus the old versions plus the new ones (silver's change set of a
   * merge table). The profile is then derived from the previous one (method
   * `delta`) when that is shown to be of the table before this run: of a
   * successful run that was the table's last silver writer.
   */
  delta?: { table: string; runId: string };
  /**
   * Run id under which the HyperLogLog states of the estimated columns are
   * kept (`_sluice.profile_states`), so the next run can derive its profile.
   */
  keepStates?: string;
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
  options: { scope?: string; states?: boolean } = {},
): string {
  const parts = [
    "count(*)::BIGINT AS n",
    ...columns.flatMap((c, i) => columnParts(c, i, options.states ? "state" : "value")),
  ];
  return `SELECT ${parts.join(", ")} FROM ${qualified(ref.schema, ref.table)} AS t` +
    (options.scope ? ` WHERE ${options.scope}` : "");
}

/**
 * The aggregates of column `i`: its non-NULL count (`nn_i`), min and max
 * (`mn_i`, `mx_i`, as text, numbers and times only) and its distinct count:
 * `value` as `d_i`; `state`, the same but an estimate as its HyperLogLog
 * state `s_i` (`finalize` gives the estimate); `change`, only an estimate's
 * state (exact counts are not additive).
 */
function columnParts(
  c: ProfileColumn,
  i: number,
  distinct: "value" | "state" | "change",
): string[] {
  const q = rawIdent(c.name);
  const parts = [`count(${q})::BIGINT AS nn_${i}`];
  if (keepsState(c) && distinct !== "value") {
    parts.push(`approx_count_distinct(${q}) EXPORT_STATE AS s_${i}`);
  } else if (distinct !== "change") {
    parts.push(
      NESTED.test(c.type)
        ? `NULL::BIGINT AS d_${i}`
        : c.exact
        ? `count(DISTINCT ${q})::BIGINT AS d_${i}`
        : `approx_count_distinct(${q})::BIGINT AS d_${i}`,
    );
  }
  const ordered = isNumericType(c.type) || isTemporalType(c.type);
  parts.push(ordered ? `CAST(min(${q}) AS VARCHAR) AS mn_${i}` : `NULL::VARCHAR AS mn_${i}`);
  parts.push(ordered ? `CAST(max(${q}) AS VARCHAR) AS mx_${i}` : `NULL::VARCHAR AS mx_${i}`);
  return parts;
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

/** A stored profile: the run that made it and its figures. */
interface PreviousProfile {
  runId: string;
  rowCount: number;
  columns: ColumnProfile[];
}

/** The latest stored profile of a table, when it is of a successful run that last wrote it. */
async function previousProfile(
  db: Engine,
  ref: { layer: string; table: string },
  runId: string,
): Promise<PreviousProfile | string> {
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
     SELECT p.run_id, p.column_name, p.column_type, p.row_count, p.null_count, p.null_ratio,
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
    runId: String(rows[0].run_id),
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
 * Profiles one table with one scan (or from its previous profile and the
 * rows the run changed, see {@linkcode TableProfile.method}). A table that
 * does not exist has no columns and a row count of 0.
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
  const change = options.delta !== undefined
    ? {
      from: `${options.delta.table} AS t`,
      old: "t._sluice_old",
      delta: options.delta.table,
      runId: options.delta.runId,
    }
    : options.appended !== undefined
    ? {
      from: `${qualified(ref.schema, ref.table)} AS t WHERE ${options.appended.filter}`,
      old: "false",
      runId: options.appended.runId,
    }
    : undefined;
  if (change !== undefined) {
    const derived = await derive(db, ref, columns, change, Number(size?.n ?? 0));
    if (typeof derived !== "string") {
      return {
        ...derived,
        method: options.delta !== undefined ? "delta" : "incremental",
        durationMs: performance.now() - started,
      };
    }
    fullReason = derived;
  }
  const states = options.keepStates !== undefined && columns.some((c) => keepsState(c));
  const sql = profileSql(ref, columns, { scope: options.scope, states });
  let row: Record<string, unknown>;
  if (states) {
    await db.run(`CREATE OR REPLACE TEMP TABLE _sluice_profile AS ${sql}`);
    const list = [
      "n",
      ...columns.flatMap((c, i) => [`nn_${i}`, `mn_${i}`, `mx_${i}`, distinctOf(c, i)]),
    ];
    row = (await db.one(`SELECT ${list.join(", ")} FROM _sluice_profile`)) ?? {};
    await saveStates(db, ref, options.keepStates!, {
      from: "_sluice_profile",
      columns: columns.flatMap((c, i) => keepsState(c) ? [{ name: c.name, state: `s_${i}` }] : []),
    });
  } else {
    if (options.keepStates !== undefined) await dropStates(db, ref);
    row = (await db.one(sql)) ?? {};
  }
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
    ...(change !== undefined ? { method: "full" as const, fullReason } : {}),
  };
}

/** True for a column whose distinct count is an estimate with a state to keep. */
function keepsState(c: ProfileColumn): boolean {
  return !c.exact && !NESTED.test(c.type);
}

/** The select item giving column `i`'s distinct count as `d_i` from a row with states. */
function distinctOf(c: ProfileColumn, i: number): string {
  return keepsState(c) ? `finalize(s_${i})::BIGINT AS d_${i}` : `d_${i}`;
}

/**
 * Creates `_sluice.profile_states`: per table and column the HyperLogLog
 * state of its distinct estimate in the run that profiled it (the column's
 * type is DuckDB's `AGGREGATE_STATE`, made from a query since it has no
 * name to declare it by), with the DuckDB version that wrote it.
 */
async function ensureStates(db: Engine): Promise<void> {
  await ensureOnce(db, "profile_states", async () => {
    await db.run(`CREATE SCHEMA IF NOT EXISTS _sluice`);
    await db.run(`CREATE TABLE IF NOT EXISTS _sluice.profile_states AS
      SELECT NULL::VARCHAR AS layer, NULL::VARCHAR AS table_name, NULL::VARCHAR AS column_name,
        NULL::VARCHAR AS run_id, NULL::VARCHAR AS duckdb_version,
        approx_count_distinct(NULL::INTEGER) EXPORT_STATE AS state
      LIMIT 0`);
  });
}

/** Forgets a table's kept states (its profile was made without them). */
async function dropStates(db: Engine, ref: { layer: string; table: string }): Promise<void> {
  await ensureStates(db);
  await db.run(`DELETE FROM _sluice.profile_states WHERE layer = $l AND table_name = $t`, {
    l: ref.layer,
    t: ref.table,
  });
}

/** Replaces a table's kept states with the columns' states of one row of `from`. */
async function saveStates(
  db: Engine,
  ref: { layer: string; table: string },
  runId: string,
  source: { from: string; columns: { name: string; state: string }[] },
): Promise<void> {
  await dropStates(db, ref);
  if (source.columns.length === 0) return;
  const rows = source.columns.map((c) =>
    `SELECT ${literal(ref.layer)}, ${literal(ref.table)}, ${literal(c.name)}, ${literal(runId)},
       (SELECT library_version FROM pragma_version()), ${rawIdent(c.state)} FROM ${source.from}`
  );
  await db.run(`INSERT INTO _sluice.profile_states ${rows.join(" UNION ALL ")}`);
}

/**
 * The profile of a table derived from its previous stored profile and the
 * rows the run changed (`change.from`, aliased `t`, with `change.old` true
 * for an old version that the run replaced or took out; `change.delta` the
 * change-set table when there are old versions), or why it cannot be shown
 * equal to a full profile. See {@linkcode TableProfile.method}.
 */
async function derive(
  db: Engine,
  ref: { layer: string; schema: string; table: string },
  columns: readonly ProfileColumn[],
  change: { from: string; old: string; delta?: string; runId: string },
  rowsNow: number,
): Promise<Omit<TableProfile, "durationMs" | "method"> | string> {
  const prev = await previousProfile(db, ref, change.runId);
  if (typeof prev === "string") return prev;
  if (
    prev.columns.length !== columns.length ||
    prev.columns.some((c, i) => c.column !== columns[i].name || c.type !== columns[i].type)
  ) return "columns changed";
  const ordered = (c: ProfileColumn) => isNumericType(c.type) || isTemporalType(c.type);
  // Figures of the old and new versions, one row each, with the new rows' states.
  const parts = [
    `${change.old} AS old`,
    "count(*)::BIGINT AS n",
    ...columns.flatMap((c, i) => columnParts(c, i, "change")),
  ];
  await db.run(
    `CREATE OR REPLACE TEMP TABLE _sluice_profile_change AS
     SELECT ${parts.join(", ")} FROM ${change.from} GROUP BY 1`,
  );
  const sides = await db.all(
    `SELECT old, n, ${columns.flatMap((_, i) => [`nn_${i}`, `mn_${i}`, `mx_${i}`]).join(", ")}
     FROM _sluice_profile_change`,
  );
  const gone = sides.find((r) => r.old === true) ?? {};
  const added = sides.find((r) => r.old === false) ?? {};
  const count = (r: Record<string, unknown>, k: string) => Number(r[k] ?? 0);
  if (prev.rowCount - count(gone, "n") + count(added, "n") !== rowsNow) {
    return "row count does not add up";
  }
  const value = (v: unknown, c: ProfileColumn) =>
    v === null || v === undefined ? `NULL::${c.type}` : `CAST(${literal(String(v))} AS ${c.type})`;
  // Kept states of the previous profile's run, written by this DuckDB version.
  const kept = new Set(await stateColumns(db, ref, prev.runId));
  const usable = (c: ProfileColumn) => keepsState(c) && kept.has(c.name);
  // With old versions: may an estimated column have lost a value (an old
  // version's value that no new version has), and did an old version hold
  // the previous min or max (compared in the column's type)?
  const risk: Record<string, unknown> = count(gone, "n") > 0 && change.delta !== undefined
    ? (await db.one(`SELECT ${
      columns.flatMap((c, i) => {
        const q = rawIdent(c.name);
        const p = prev.columns[i];
        const out: string[] = [];
        if (usable(c)) {
          out.push(`(SELECT count(*) FROM ${change.delta} AS o WHERE o._sluice_old
            AND o.${q} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${change.delta} AS n
              WHERE NOT n._sluice_old AND n.${q} = o.${q}))::BIGINT > 0 AS lose_${i}`);
        }
        if (ordered(c)) {
          out.push(
            `coalesce(${value(gone[`mn_${i}`], c)} <= ${value(p.min, c)}, FALSE) AS lo_${i}`,
          );
          out.push(
            `coalesce(${value(gone[`mx_${i}`], c)} >= ${value(p.max, c)}, FALSE) AS hi_${i}`,
          );
        }
        return out;
      }).concat("TRUE AS ok").join(", ")
    }`)) ?? {}
    : {};
  // Read again over the whole table, in one scan: exact distinct counts,
  // estimates without a usable state, and a min/max an old version held.
  const whole: { sql: string; alias: string }[] = [];
  const recount = (c: ProfileColumn, i: number) => !usable(c) || risk[`lose_${i}`] === true;
  columns.forEach((c, i) => {
    const q = rawIdent(c.name);
    if (c.exact && !NESTED.test(c.type)) {
      whole.push({ sql: `count(DISTINCT ${q})::BIGINT`, alias: `d_${i}` });
    } else if (keepsState(c) && recount(c, i)) {
      whole.push({ sql: `approx_count_distinct(${q}) EXPORT_STATE`, alias: `s_${i}` });
    }
    if (risk[`lo_${i}`] === true) {
      whole.push({ sql: `CAST(min(${q}) AS VARCHAR)`, alias: `rmn_${i}` });
    }
    if (risk[`hi_${i}`] === true) {
      whole.push({ sql: `CAST(max(${q}) AS VARCHAR)`, alias: `rmx_${i}` });
    }
  });
  if (whole.length > 0) {
    await db.run(
      `CREATE OR REPLACE TEMP TABLE _sluice_profile AS SELECT ${
        whole.map((w) => `${w.sql} AS ${w.alias}`).join(", ")
      } FROM ${qualified(ref.schema, ref.table)}`,
    );
  }
  // Min/max: the previous combined with the new versions', or read again.
  const read = whole.filter((w) => !w.alias.startsWith("s_")).map((w) => w.alias);
  columns.forEach((c, i) => {
    if (!ordered(c)) return;
    const p = prev.columns[i];
    if (risk[`lo_${i}`] !== true) {
      read.push(
        `CAST(least(${value(p.min, c)}, ${value(added[`mn_${i}`], c)}) AS VARCHAR) AS rmn_${i}`,
      );
    }
    if (risk[`hi_${i}`] !== true) {
      read.push(
        `CAST(greatest(${value(p.max, c)}, ${value(added[`mx_${i}`], c)}) AS VARCHAR) AS rmx_${i}`,
      );
    }
  });
  const figures = read.length === 0 ? {} : (await db.one(
    `SELECT ${read.join(", ")}${whole.length > 0 ? " FROM _sluice_profile" : ""}`,
  )) ?? {};
  // The estimated columns' states now: the kept one combined with the new rows', or read again.
  const states = columns.flatMap((c, i) => {
    if (!keepsState(c)) return [];
    const name = literal(c.name);
    if (recount(c, i)) {
      return [`SELECT ${name} AS column_name, s_${i} AS state FROM _sluice_profile`];
    }
    return [`SELECT ${name} AS column_name, coalesce(combine(k.state, a.s_${i}), k.state) AS state
      FROM _sluice.profile_states AS k
      LEFT JOIN (SELECT * FROM _sluice_profile_change WHERE NOT old) AS a ON TRUE
      WHERE k.layer = ${literal(ref.layer)} AND k.table_name = ${literal(ref.table)}
        AND k.column_name = ${name} AND k.run_id = ${literal(prev.runId)}`];
  });
  const distinct = new Map<string, number>();
  if (states.length > 0) {
    await db.run(
      `CREATE OR REPLACE TEMP TABLE _sluice_profile_states AS ${states.join(" UNION ALL ")}`,
    );
    const rows = await db.all<{ c: string; d: number }>(
      `SELECT column_name AS c, finalize(state)::BIGINT AS d FROM _sluice_profile_states`,
    );
    for (const r of rows) distinct.set(String(r.c), Number(r.d));
    await dropStates(db, ref);
    await db.run(
      `INSERT INTO _sluice.profile_states SELECT ${literal(ref.layer)}, ${literal(ref.table)},
         column_name, ${literal(change.runId)}, (SELECT library_version FROM pragma_version()),
         state FROM _sluice_profile_states`,
    );
  }
  return {
    layer: ref.layer,
    table: ref.table,
    rowCount: rowsNow,
    columns: columns.map((c, i) => {
      const p = prev.columns[i];
      const nulls = p.nullCount - (count(gone, "n") - count(gone, `nn_${i}`)) +
        (count(added, "n") - count(added, `nn_${i}`));
      return {
        column: c.name,
        type: c.type,
        nullCount: nulls,
        nullRatio: rowsNow === 0 ? null : nulls / rowsNow,
        distinctApprox: NESTED.test(c.type)
          ? null
          : c.exact
          ? num(figures[`d_${i}`])
          : distinct.get(c.name) ?? null,
        distinctExact: c.exact === true,
        min: ordered(c) ? text(figures[`rmn_${i}`]) : null,
        max: ordered(c) ? text(figures[`rmx_${i}`]) : null,
      };
    }),
  };
}

/** The columns of a table with a kept state from run `runId` and this DuckDB version. */
async function stateColumns(
  db: Engine,
  ref: { layer: string; table: string },
  runId: string,
): Promise<string[]> {
  await ensureStates(db);
  const rows = await db.all<{ c: string }>(
    `SELECT column_name AS c FROM _sluice.profile_states
     WHERE layer = $l AND table_name = $t AND run_id = $r
       AND duckdb_version = (SELECT library_version FROM pragma_version())`,
    { l: ref.layer, t: ref.table, r: runId },
  );
  return rows.map((r) => String(r.c));
}
