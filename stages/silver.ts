/**
 * Silver: types, normalises, validates and deduplicates the bronze rows of a
 * source in one pass, into a staged temp table; then, in one transaction,
 * appends bad rows to `silver.<table>__quarantine` (with the reason naming
 * the column and value or the rule), writes good rows by the table's mode
 * (replace, append, merge, scd2), records which bronze runs it consumed, and
 * checks that rows in = passed + quarantined + duplicates.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { SilverColumnConfig, SilverTableConfig } from "../core/config/mod.ts";
import { ensureDlqTable } from "../core/dlq.ts";
import type { Engine } from "../core/engine.ts";
import { ConservationError } from "../core/errors.ts";
import { ident, identList, literal, qualified, rawIdent, sqlType } from "../core/quote.ts";
import type { RunContext, StageResult, TableResult } from "../core/run_context.ts";
import { guardSql } from "../core/sql_guard.ts";
import { overQuarantineBudget } from "../quality/gate.ts";
import { tableColumns } from "./_catalog.ts";
import { numberPendingRows } from "./bronze.ts";
import { beginDelta, endDelta, type SilverChange } from "./_silver_delta.ts";
export type { SilverChange } from "./_silver_delta.ts";
export type { StaleLineage } from "./_silver_retract.ts";
import {
  checkRetracted,
  findStaleLineage,
  hasLineage,
  retractStale,
  type StaleLineage,
} from "./_silver_retract.ts";

/** Extra columns of an scd2 table. */
export const SCD2_COLUMNS: readonly string[] = ["valid_from", "valid_to", "is_current"];

/**
 * Lineage columns of every silver table: the bronze file, row and landing
 * run each silver row came from (for merge, the row that last set it; for
 * scd2, the row that opened the version). A re-sent or retracted file's
 * silver rows are found by them, and the cross-run conservation check
 * compares them with the bronze rows that still exist.
 */
export const SILVER_LINEAGE_COLUMNS: readonly string[] = [
  "_source_file",
  "_source_row",
  "_bronze_run_id",
];

async function ensureProgress(db: Engine): Promise<void> {
  await db.run(`CREATE SCHEMA IF NOT EXISTS _sluice`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.silver_progress (
    table_name VARCHAR, bronze_run_id VARCHAR, run_id VARCHAR, processed_at TIMESTAMPTZ)`);
}

/** The SQL expression of a column's value before its cast. */
function rawExpr(name: string, col: SilverColumnConfig): string {
  if (col.expr) return `TRY(${col.expr})`;
  return `src.${rawIdent(col.from ?? name)}`;
}

/** The SQL expression of a column's typed value. */
function typedExpr(raw: string, col: SilverColumnConfig): string {
  const type = sqlType(col.type);
  if (col.format && /^(DATE|TIMESTAMP)/.test(type)) {
    return `TRY_CAST(TRY_STRPTIME(CAST(${raw} AS VARCHAR), ${literal(col.format)}) AS ${type})`;
  }
  return `TRY_CAST(${raw} AS ${type})`;
}

/**
 * The ORDER BY that decides which duplicate of a key is the latest (first
 * wins): `order_by`, then the later file (`_file_id` numbers the files in
 * path order), then the later row.
 */
function latestFirst(table: SilverTableConfig, alias: string): string {
  return [
    ...(table.order_by ? [`${alias}.${ident(table.order_by)} DESC NULLS LAST`] : []),
    `${alias}._file_id DESC`,
    `${alias}._source_row DESC`,
  ].join(", ");
}

/**
 * Builds the query that numbers the distinct `_source_file` values of the
 * bronze rows `where` selects, in path order (a NULL path first), as
 * `_file_id`, with each file's row count (`_rows`). The staging table
 * carries this small number instead of the path: at 10M rows the paths
 * alone would hold about 800 MB of memory.
 *
 * @example
 * ```ts ignore
 * await db.run(`CREATE TEMP TABLE _files_orders AS ${silverFilesSql(table, "TRUE")}`);
 * ```
 */
export function silverFilesSql(table: SilverTableConfig, where: string): string {
  return `SELECT f AS _source_file, r AS _bronze_run_id,
      (row_number() OVER (ORDER BY f ASC NULLS FIRST, r ASC NULLS FIRST))::INTEGER AS _file_id,
      n AS _rows
    FROM (SELECT src._source_file AS f, src._run_id AS r, count(*) AS n
          FROM bronze.${ident(table.from)} AS src WHERE ${where} GROUP BY 1, 2)`;
}

/**
 * Builds the one-pass staging query for a silver table: the typed values,
 * the row's file (`_file_id` from the `files` table {@linkcode silverFilesSql}
 * built) and line, `_quarantine` (NULL for a good row; for a bad one a JSON
 * object with its `reason`, reason `code` and the bronze row as `payload`),
 * and `_rn`, the row's rank among the good rows of its key. Here `_rn` is 1
 * for every row; {@linkcode silverRankSql} then ranks the rows of keys that
 * occur more than once. One column for all the quarantine facts keeps the
 * staged row small: the table lives in memory (1.4 GB at 10M rows with three
 * separate text columns, 1.0 GB with one).
 *
 * @example
 * ```ts ignore
 * const sql = silverStageSql(config.silver.orders, {
 *   bronzeColumns: ["order_id", "quantity"],
 *   where: "TRUE",
 *   files: '"_files_orders"',
 * });
 * await db.run(`CREATE TEMP TABLE _stage_orders AS ${sql}`);
 * ```
 */
export function silverStageSql(
  table: SilverTableConfig,
  options: { bronzeColumns: string[]; where: string; files: string },
): string {
  const cols = Object.entries(table.columns);
  const rawCols = cols.map(([c, col], i) => `${rawExpr(c, col)} AS "__raw${i}"`);
  const typedCols = cols.map(([c, col], i) => `${typedExpr(`"__raw${i}"`, col)} AS ${ident(c)}`);
  const checks: { code: string; cond: string; message: string }[] = [];
  // `mask`: the value of a masked column never reaches a reason or payload.
  const masked = new Set(table.mask ?? []);
  const maskedBronze = new Set(table.mask ?? []);
  for (const [c, col] of cols) if (masked.has(c) && col.from) maskedBronze.add(col.from);
  cols.forEach(([c, col], i) => {
    checks.push({
      code: "cast_failed",
      cond: `"__raw${i}" IS NOT NULL AND ${ident(c)} IS NULL`,
      message: masked.has(c)
        ? literal(`column "${c}": cannot cast *** (masked) to ${sqlType(col.type)}`)
        : `${literal(`column "${c}": cannot cast `)} || left(CAST("__raw${i}" AS VARCHAR), 200)` +
          ` || ${literal(` to ${sqlType(col.type)}`)}`,
    });
    if (!col.nullable) {
      checks.push({
        code: "null_violation",
        cond: `"__raw${i}" IS NULL`,
        message: literal(`column "${c}": is null but declared nullable: false`),
      });
    }
  });
  for (const rule of table.rules) {
    checks.push({
      code: "rule_failed",
      cond: `(${rule.sql}) = false`,
      message: literal(`rule "${rule.name}" failed`),
    });
  }
  const caseOf = (f: (c: (typeof checks)[number]) => string) =>
    checks.map((c) => `CASE WHEN ${c.cond} THEN ${f(c)} END`);
  const reason = checks.length
    ? `NULLIF(concat_ws('; ', ${caseOf((c) => c.message).join(", ")}), '')`
    : "NULL::VARCHAR";
  const code = checks.length
    ? `coalesce(${caseOf((c) => literal(c.code)).join(", ")})`
    : "NULL::VARCHAR";
  // The bronze columns ride along untouched ("__src<i>"), and the reason code
  // and JSON payload are built inside a CASE, so only quarantined rows pay
  // for them.
  // A bronze column a silver column takes as is is already there as its
  // "__raw<i>"; carrying it twice costs a quarter of the staging CPU.
  const rawOf = new Map<string, string>();
  cols.forEach(([c, col], i) => {
    const from = col.from ?? c;
    if (!col.expr && !rawOf.has(from)) rawOf.set(from, `"__raw${i}"`);
  });
  const srcCols = options.bronzeColumns.flatMap((c, i) =>
    rawOf.has(c) ? [] : [`src.${rawIdent(c)} AS "__src${i}"`]
  );
  const payloadCols = options.bronzeColumns.map((c, i) => {
    const value = rawOf.get(c) ?? `"__src${i}"`;
    return `${literal(c)}, ${
      maskedBronze.has(c) ? `CASE WHEN ${value} IS NULL THEN NULL ELSE '***' END` : value
    }`;
  });
  const payload = payloadCols.length ? `json_object(${payloadCols.join(", ")})` : "NULL::JSON";
  const names = cols.map(([c]) => ident(c)).join(", ");
  return `WITH typed AS (
      SELECT ${[...rawCols, ...srcCols].join(", ")},
        _f._file_id, src._source_row
      FROM bronze.${ident(table.from)} AS src
      JOIN ${options.files} AS _f ON src._source_file IS NOT DISTINCT FROM _f._source_file
        AND src._run_id IS NOT DISTINCT FROM _f._bronze_run_id
      WHERE ${options.where}
    ), casted AS (
      SELECT *, ${typedCols.join(", ")} FROM typed
    ), checked AS (
      SELECT ${names}, _file_id, _source_row, ${reason} AS __reason,
        CASE WHEN __reason IS NOT NULL
          THEN json_object('reason', __reason, 'code', ${code}, 'payload', ${payload}) END
          AS _quarantine
      FROM casted
    )
    SELECT * EXCLUDE (__reason), 1::INTEGER AS _rn FROM checked`;
}

/**
 * Builds the UPDATE that ranks the good rows of a staged silver table whose
 * key occurs more than once (`_rn` 1 = the latest by `order_by`, then the
 * later file, then the later row; the others are duplicates). Keys seen once
 * keep `_rn = 1`, so only the few repeated keys are sorted, not every row.
 * Returns undefined for a table without a key.
 *
 * @example
 * ```ts ignore
 * const rank = silverRankSql(config.silver.orders, "_stage_orders");
 * if (rank) await db.run(rank);
 * ```
 */
export function silverRankSql(table: SilverTableConfig, stage: string): string | undefined {
  const key = table.key ?? [];
  if (key.length === 0) return undefined;
  const keys = identList(key);
  const partition = key.map((k) => `t.${ident(k)}`).join(", ");
  const same = key.map((k) => `t.${ident(k)} IS NOT DISTINCT FROM d.${ident(k)}`).join(" AND ");
  const order = latestFirst(table, "t");
  return `UPDATE ${ident(stage)} AS s SET _rn = r._rn
    FROM (
      SELECT t.rowid AS _sid, row_number() OVER (PARTITION BY ${partition} ORDER BY ${order}) AS _rn
      FROM ${ident(stage)} AS t
      JOIN (SELECT ${keys} FROM ${ident(stage)} WHERE _quarantine IS NULL
            GROUP BY ALL HAVING count(*) > 1) AS d ON ${same}
      WHERE t._quarantine IS NULL
    ) AS r
    WHERE s.rowid = r._sid AND r._rn > 1`;
}

/**
 * The staged rows of a silver table by fate.
 *
 * @example
 * ```ts ignore
 * const { total, quarantined, passed, duplicates } = staged.counts; // total = the other three
 * ```
 */
export interface StagedCounts extends Record<string, unknown> {
  /** Rows staged. */
  total: number;
  /** Rows with a quarantine reason. */
  quarantined: number;
  /** Good rows, each the latest of its key. */
  passed: number;
  /** Good rows that a later version of their key replaces. */
  duplicates: number;
}

/**
 * A silver table's rows staged for writing: the temp table
 * `_stage_<table>` holds every pending bronze row typed and checked, with
 * its quarantine reason or duplicate rank, and the row counts are known.
 *
 * @example
 * ```ts ignore
 * const [orders] = await stageSilver(ctx, { tables: ["orders"] });
 * const shown = `${orders.counts.passed} good rows of ${orders.rowsIn}`;
 * ```
 */
export interface StagedSilverTable {
  /** Silver table name. */
  name: string;
  /** The staging temp table, quoted. */
  stage: string;
  /** The temp table of the staged rows' files (`_source_file`, `_file_id`), quoted. */
  files: string;
  /** The bronze row filter the staging read (`TRUE` for mode replace). */
  pending: string;
  /** Bronze runs whose rows were staged. */
  bronzeRuns: string[];
  /** True when `silver.<name>` existed when staged. */
  exists: boolean;
  /** Bronze rows read (counted in bronze, not in the stage). */
  rowsIn: number;
  /** The staged rows by fate. */
  counts: StagedCounts;
  /** The bronze columns the staging read (without bookkeeping columns). */
  bronzeColumns: string[];
  /** Silver rows of re-sent or retracted files, to retract when written. */
  stale?: StaleLineage;
  /** True when the table is rebuilt from every bronze row (`--full-refresh`). */
  fullRefresh: boolean;
  /** What the write changed, for incremental gold models (set when written). */
  change?: SilverChange;
}

/**
 * Options of {@linkcode stageSilver} and {@linkcode silver}.
 *
 * @example
 * ```ts ignore
 * const staged = await stageSilver(ctx, { tables: ["orders"], fullRefresh: true });
 * ```
 */
export interface SilverOptions {
  /** Only these silver tables. */
  tables?: string[];
  /**
   * Rebuild the tables from every bronze row still there, as if they all
   * arrived in this run (`sluice run --full-refresh`): their quarantine rows
   * are replaced and an scd2 table starts a new history (one version per key).
   */
  fullRefresh?: boolean;
}

/**
 * Stages every silver table (or those named in `tables`): types, checks and
 * ranks the pending bronze rows into one temp table per silver table,
 * without writing any silver table. The write-audit-publish gate stages
 * before it opens its transaction: DuckDB scans a table created inside an
 * open transaction with one thread, and a temp table created (and
 * committed) before it with all of them.
 *
 * @example
 * ```ts ignore
 * const staged = await stageSilver(ctx);
 * await ctx.db.transaction(() => silver(ctx, { staged }));
 * ```
 */
export async function stageSilver(
  ctx: RunContext,
  options: SilverOptions = {},
): Promise<StagedSilverTable[]> {
  await ensureProgress(ctx.db);
  // Rows a crashed run landed but did not number get their `_source_row` first.
  await numberPendingRows(ctx);
  const out: StagedSilverTable[] = [];
  for (const [name, table] of Object.entries(ctx.config.silver)) {
    if (options.tables && !options.tables.includes(name)) continue;
    const staged = await stageSilverTable(ctx, name, table, options.fullRefresh === true);
    if (staged) out.push(staged);
  }
  return out;
}

/**
 * Builds every silver table (or those named in `tables`), from `staged`
 * tables when given (see {@linkcode stageSilver}), else staging them first.
 *
 * @example
 * ```ts ignore
 * const result = await silver(ctx);
 * ```
 */
export async function silver(
  ctx: RunContext,
  options: SilverOptions & { staged?: StagedSilverTable[] } = {},
): Promise<StageResult> {
  const started = performance.now();
  const staged = options.staged ??
    await stageSilver(ctx, { tables: options.tables, fullRefresh: options.fullRefresh });
  const result: StageResult = { stage: "silver", durationMs: 0, tables: [] };
  for (const st of staged) {
    if (options.tables && !options.tables.includes(st.name)) continue;
    result.tables.push(await writeSilverTable(ctx, st, ctx.config.silver[st.name]));
  }
  result.durationMs = performance.now() - started;
  result.skipped = result.tables.length === 0;
  return result;
}

function silverLog(ctx: RunContext, name: string) {
  return getLogger(["sluice", "silver"]).with({
    run_id: ctx.runId,
    pipeline: ctx.config.pipeline,
    stage: "silver",
    table: name,
  });
}

async function stageSilverTable(
  ctx: RunContext,
  name: string,
  table: SilverTableConfig,
  fullRefresh: boolean,
): Promise<StagedSilverTable | undefined> {
  const log = silverLog(ctx, name);
  const db = ctx.db;
  // The run-time layer of the SQL guard (validate refuses the same earlier).
  for (const [c, col] of Object.entries(table.columns)) {
    if (col.expr === undefined) continue;
    await guardSql(db, col.expr, { what: `silver "${name}" column "${c}"`, kind: "expression" });
  }
  for (const rule of table.rules) {
    await guardSql(db, rule.sql, {
      what: `silver "${name}" rule "${rule.name}"`,
      kind: "expression",
    });
  }
  const bronzeCols = await tableColumns(db, "bronze", table.from);
  if (bronzeCols.length === 0) {
    log.warn("bronze table does not exist yet, nothing to build", {
      event: "table_skipped",
      source: table.from,
    });
    return undefined;
  }
  const unprocessed =
    `src._run_id NOT IN (SELECT bronze_run_id FROM _sluice.silver_progress WHERE table_name = ${
      literal(name)
    })`;
  const bronzeRuns = await db.all<{ r: string } & Record<string, unknown>>(
    `SELECT DISTINCT _run_id AS r FROM bronze.${ident(table.from)} AS src
     WHERE ${fullRefresh ? "TRUE" : unprocessed}`,
  );
  // The unprocessed bronze runs as a list: a filter DuckDB can check against
  // each row group's min/max (run ids grow with time), not an anti-join over
  // all of bronze.
  const pending = table.mode === "replace" || fullRefresh
    ? "TRUE"
    : bronzeRuns.length === 0
    ? "FALSE"
    : `src._run_id IN (${bronzeRuns.map((b) => literal(String(b.r))).join(", ")})`;
  const exists = (await db.one(
    `SELECT 1 AS x FROM duckdb_tables() WHERE schema_name = 'silver' AND table_name = $t`,
    { t: name },
  )) !== undefined;
  // Rows of re-sent or retracted files (the cross-run conservation check:
  // stale lineage nobody recorded fails here, before anything is written).
  // (A replace table with new bronze rows is rebuilt anyway: no need to look.)
  const stale = exists && !fullRefresh && (table.mode !== "replace" || bronzeRuns.length === 0)
    ? await findStaleLineage(ctx, name, table, { lenient: table.mode === "replace" })
    : undefined;
  if (stale && table.mode === "replace") {
    // Rebuilt from bronze below: its rows of retracted files go with it.
    await db.run(`DROP TABLE IF EXISTS ${stale.table}`);
  }
  if (bronzeRuns.length === 0 && exists && !stale && !fullRefresh) {
    log.info("no new bronze rows", { event: "table_unchanged" });
    return undefined;
  }
  const stage = ident(`_stage_${name}`);
  const files = ident(`_files_${name}`);
  await db.run(`CREATE OR REPLACE TEMP TABLE ${files} AS ${silverFilesSql(table, pending)}`);
  const bronzeColumns = bronzeCols.map((c) => c.name).filter((c) => !c.startsWith("_"));
  const sql = silverStageSql(table, { bronzeColumns, where: pending, files });
  await db.run(`CREATE OR REPLACE TEMP TABLE ${stage} AS ${sql}`);
  const rank = silverRankSql(table, `_stage_${name}`);
  if (rank) await db.run(rank);
  const counts = (await db.one<StagedCounts>(
    `SELECT count(*) AS total,
      count(*) FILTER (WHERE _quarantine IS NOT NULL) AS quarantined,
      count(*) FILTER (WHERE _quarantine IS NULL AND _rn = 1) AS passed,
      count(*) FILTER (WHERE _quarantine IS NULL AND _rn > 1) AS duplicates
     FROM ${stage}`,
  ))!;
  // Rows in, counted by file when the files were numbered (a scan of its own,
  // so the conservation check compares it with what the staging kept).
  const inRow = await db.one<{ n: number }>(
    `SELECT coalesce(sum(_rows), 0)::BIGINT AS n FROM ${files}`,
  );
  return {
    name,
    stage,
    files,
    pending,
    bronzeRuns: bronzeRuns.map((r) => r.r),
    exists,
    rowsIn: inRow?.n ?? 0,
    counts,
    bronzeColumns,
    ...(stale && table.mode !== "replace" ? { stale } : {}),
    fullRefresh,
  };
}

/**
 * Writes one staged silver table in one transaction: quarantine, good rows
 * by the table's mode, the bronze runs consumed, and the row conservation
 * check; then drops the stage.
 */
async function writeSilverTable(
  ctx: RunContext,
  st: StagedSilverTable,
  table: SilverTableConfig,
): Promise<TableResult> {
  const { name, stage, counts } = st;
  const log = silverLog(ctx, name);
  const db = ctx.db;
  const tr: TableResult = {
    layer: "silver",
    table: name,
    rowsIn: st.rowsIn,
    passed: 0,
    quarantined: 0,
    duplicates: 0,
    details: { mode: table.mode },
  };
  const now = ctx.clock.now().toISOString();
  await db.transaction(async () => {
    await ensureDlqTable(db, "silver", `${name}__quarantine`);
    if (st.fullRefresh) {
      // Every bronze row is checked again: the table's refusals start over.
      await db.run(`DELETE FROM _sluice.silver_progress WHERE table_name = $t`, { t: name });
      const cleared = await db.run(`DELETE FROM ${qualified("silver", `${name}__quarantine`)}`);
      tr.details = { ...tr.details, full_refresh: true, quarantine_cleared: cleared };
    } else if (st.exists && table.mode !== "replace" && !(await hasLineage(ctx, name))) {
      // A table built before silver kept lineage: its old rows stay untraceable.
      for (const c of ["_source_file VARCHAR", "_source_row BIGINT", "_bronze_run_id VARCHAR"]) {
        await db.run(`ALTER TABLE ${qualified("silver", name)} ADD COLUMN IF NOT EXISTS ${c}`);
      }
    }
    st.change = await beginDelta(ctx, st, table);
    if (st.stale) {
      const r = await retractStale(ctx, {
        name,
        table,
        stale: st.stale,
        replayStage: (files, where) =>
          silverStageSql(table, { bronzeColumns: st.bronzeColumns, where, files }),
        latestFirst: (alias) => latestFirst(table, alias),
      });
      tr.details = { ...tr.details, retracted: r.retracted, recomputed: r.recomputed };
    }
    const quarantined = await db.run(
      `INSERT INTO ${qualified("silver", `${name}__quarantine`)} BY NAME
       SELECT md5(concat_ws('|', ${literal(name)}, f._source_file, s._source_row)) AS _dlq_id,
         ${literal(ctx.runId)} AS _run_id, ${literal(name)} AS _table,
         s._quarantine->>'code' AS _reason_code, s._quarantine->>'reason' AS _reason,
         NULLIF(CAST(s._quarantine->'payload' AS VARCHAR), 'null') AS _payload,
         f._source_file, s._source_row, ${literal(now)}::TIMESTAMPTZ AS _quarantined_at
       FROM ${stage} AS s JOIN ${st.files} AS f USING (_file_id) WHERE s._quarantine IS NOT NULL`,
    );
    const written = await writeGoodRows(ctx, st, table, now);
    await endDelta(ctx, st, table, st.change);
    tr.passed = written.written;
    tr.duplicates = counts.duplicates + written.stale;
    tr.quarantined = quarantined;
    tr.details = { ...tr.details, ...written.details };
    for (const r of st.bronzeRuns) {
      await db.run(`INSERT INTO _sluice.silver_progress VALUES ($t, $b, $r, $at::TIMESTAMPTZ)`, {
        t: name,
        b: r,
        r: ctx.runId,
        at: now,
      });
    }
    if (st.stale) await checkRetracted(ctx, name, st.stale);
    // The quarantine budget as the report shows it (the gate checks it in the audit).
    const budget = table.max_quarantine ?? "10%";
    const over = overQuarantineBudget(budget, { quarantined, rowsIn: tr.rowsIn });
    tr.details = {
      ...tr.details,
      quarantine_budget: {
        max: budget,
        severity: over ? "error" : "warn",
        rate: tr.rowsIn === 0 ? 0 : quarantined / tr.rowsIn,
        status: over ? "fail" : "pass",
      },
    };
    const sums = tr.passed + tr.quarantined + tr.duplicates;
    if (
      counts.total !== tr.rowsIn || quarantined !== counts.quarantined ||
      written.written + written.stale !== counts.passed || sums !== tr.rowsIn
    ) {
      throw new ConservationError(
        `Rows do not add up in silver "${name}": ${tr.rowsIn} in, ${tr.passed} passed + ` +
          `${tr.quarantined} quarantined + ${tr.duplicates} duplicates = ${sums} ` +
          `(staged ${counts.total}, staged good ${counts.passed})`,
        { context: { table: name, ...counts } },
      );
    }
  });
  await db.run(`DROP TABLE IF EXISTS ${stage}`);
  await db.run(`DROP TABLE IF EXISTS ${st.files}`);
  await db.checkpoint();
  log.info("table built", {
    event: "table_built",
    layer: "silver",
    rows_in: tr.rowsIn,
    passed: tr.passed,
    quarantined: tr.quarantined,
    duplicates: tr.duplicates,
    mode: table.mode,
  });
  return tr;
}

async function writeGoodRows(
  ctx: RunContext,
  st: StagedSilverTable,
  table: SilverTableConfig,
  now: string,
): Promise<{ written: number; stale: number; details: Record<string, unknown> }> {
  const { name, stage } = st;
  // A full refresh builds the table anew, like a first build.
  const exists = st.exists && !st.fullRefresh;
  const db = ctx.db;
  const target = qualified("silver", name);
  const columns = Object.keys(table.columns);
  const cols = identList(columns);
  // The good rows with their lineage: the bronze file, row and landing run.
  const good = `SELECT ${columns.map((c) => `s.${ident(c)}`).join(", ")}, f._source_file,
      s._source_row, f._bronze_run_id
    FROM ${stage} AS s JOIN ${st.files} AS f USING (_file_id)
    WHERE s._quarantine IS NULL AND s._rn = 1`;
  // The good rows, each the latest of its key (counted when staged).
  const candidates = st.counts.passed;
  if (table.mode === "replace") {
    await db.run(`CREATE OR REPLACE TABLE ${target} AS ${good}`);
    const n = (await db.one<{ n: number }>(`SELECT count(*) AS n FROM ${target}`))?.n ?? 0;
    return { written: n, stale: 0, details: {} };
  }
  if (table.mode === "append") {
    if (!exists) await db.run(`CREATE OR REPLACE TABLE ${target} AS ${good} LIMIT 0`);
    const n = await db.run(`INSERT INTO ${target} BY NAME ${good}`);
    return { written: n, stale: 0, details: {} };
  }
  const key = table.key!;
  const on = key.map((k) => `t.${ident(k)} = s.${ident(k)}`).join(" AND ");
  if (table.mode === "merge") {
    if (!exists) {
      // First build: the table is new (empty) and the good rows hold one row
      // per key, so the MERGE would insert every row; a plain INSERT does the
      // same for about half the CPU.
      await db.run(`CREATE OR REPLACE TABLE ${target} AS ${good} LIMIT 0`);
      const n = await db.run(`INSERT INTO ${target} BY NAME ${good}`);
      return { written: n, stale: candidates - n, details: { stale: candidates - n } };
    }
    const newer = table.order_by
      ? ` AND (t.${ident(table.order_by)} IS NULL OR s.${ident(table.order_by)} >= t.${
        ident(table.order_by)
      })`
      : "";
    const set = [...columns.filter((c) => !key.includes(c)), ...SILVER_LINEAGE_COLUMNS]
      .map((c) => `${ident(c)} = s.${ident(c)}`);
    const n = await db.run(
      `MERGE INTO ${target} AS t USING (${good}) AS s ON (${on})
       ${set.length ? `WHEN MATCHED${newer} THEN UPDATE SET ${set.join(", ")}` : ""}
       WHEN NOT MATCHED THEN INSERT BY NAME`,
    );
    return { written: n, stale: candidates - n, details: { stale: candidates - n } };
  }
  // scd2: close the current version of changed keys, insert new versions.
  if (!exists) {
    await db.run(
      `CREATE OR REPLACE TABLE ${target} AS SELECT ${cols}, _source_file, _source_row,
        _bronze_run_id, NULL::TIMESTAMPTZ AS valid_from, NULL::TIMESTAMPTZ AS valid_to,
        NULL::BOOLEAN AS is_current FROM (${good}) LIMIT 0`,
    );
  }
  const attrs = columns.filter((c) => !key.includes(c));
  const changed = attrs.length
    ? attrs.map((c) => `t.${ident(c)} IS DISTINCT FROM s.${ident(c)}`).join(" OR ")
    : "FALSE";
  const ts = `${literal(now)}::TIMESTAMPTZ`;
  const closed = await db.run(
    `UPDATE ${target} AS t SET valid_to = ${ts}, is_current = false FROM (${good}) AS s
     WHERE ${on} AND t.is_current AND (${changed})`,
  );
  const inserted = await db.run(
    `INSERT INTO ${target} BY NAME SELECT s.*, ${ts} AS valid_from,
       NULL::TIMESTAMPTZ AS valid_to, true AS is_current FROM (${good}) AS s
     WHERE NOT EXISTS (SELECT 1 FROM ${target} AS t WHERE ${on} AND t.is_current)`,
  );
  return {
    written: inserted,
    stale: candidates - inserted,
    details: { versions_closed: closed, unchanged: candidates - inserted },
  };
}
