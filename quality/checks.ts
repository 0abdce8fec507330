/**
 * Runs the declared data-quality checks of one table and returns one
 * {@linkcode CheckResult} per check: pass, fail or error, failing and total
 * rows, the threshold, a message, and (for failing checks) a sample of up to
 * `sampleSize` failing rows with their keys.
 *
 * All row-level work is SQL: the checks that look at rows one at a time
 * (`not_null`, `accepted_values`, `range`, `regex`, `expression`,
 * `null_ratio`, `row_count`, `freshness`) share one scan of the table;
 * `unique` and `relationships` each run one aggregate query; `drift` reads
 * the table's profile and the profile history. Values from config are
 * checked against the column types first (`range` bounds, `regex` patterns),
 * so a check misconfigured for the data reports `error` without raising a
 * conversion error inside the run's transaction.
 *
 * @module
 */
import type { CheckSpec } from "../core/config/mod.ts";
import { checkSpec, resolveCheckTable } from "../core/config/mod.ts";
import type { PipelineConfig } from "../core/config/mod.ts";
import { formatDuration, parseDuration } from "../core/duration.ts";
import type { Engine } from "../core/engine.ts";
import { errorMessage } from "../core/errors.ts";
import { ident, literal, qualified } from "../core/quote.ts";
import type { RunContext } from "../core/run_context.ts";
import { DEFAULT_PAYLOAD_MAX_BYTES } from "../core/payload.ts";
import { checkSql } from "../core/sql_guard.ts";
import {
  andAll,
  col,
  type ColumnInfo,
  countAndSampleSql,
  expressionFailsSql,
  failingRowsSql,
  isNullSql,
  isTemporalType,
  keysInSql,
  noMatchSql,
  notAcceptedSql,
  outOfRangeSql,
  plainType,
  relationshipsFailingSql,
  type TableRef,
  uniqueCountSql,
  uniqueFailingSql,
} from "./_check_sql.ts";
import { driftBaseline, lastRowCount } from "./history.ts";
import { profileTable, type TableProfile } from "./profile.ts";
import { type CheckResult, type FailingSample, type Layer, ROW_LEVEL_CHECKS } from "./types.ts";

export type { CheckResult, CheckStatus, FailingSample, Layer } from "./types.ts";

/** One table and the checks to run on it. */
export interface CheckTarget {
  /** Layer reported in results. */
  layer: Layer;
  /** Schema of the table. */
  schema: Layer;
  /** Table name. */
  table: string;
  /** The checks, settled. */
  checks: CheckSpec[];
  /** Columns identifying a row, for failing samples (`[]`: the checked columns). */
  keyColumns: string[];
  /** SQL filter limiting the checked rows (a bronze batch, a run's quarantine rows). */
  scope?: string;
  /** True for `<table>__quarantine`. */
  quarantine?: boolean;
  /** Columns shown as `***` in failing samples (the table's `mask`). */
  mask?: string[];
  /**
   * `quality.scope: changed` (see `quality/_scope.ts`): the rows row-level
   * checks may be narrowed to. When set (even with no checks listed),
   * row-level results carry `scope` and `rowsChecked`.
   */
  candidates?: CandidateRows;
}

/**
 * Candidate rows of `quality.scope: changed`: SQL predicates over the
 * checked table (alias `t`).
 */
export interface CandidateRows {
  /**
   * A query (the table's columns) of the rows the run wrote and the rows
   * that failed any check last time. It holds every row that can fail a
   * listed check; reading more rows than a check needs changes nothing,
   * since each of them is a row of the table.
   */
  rows: string;
  /**
   * The checks that read only `rows`; the others read every row. Counts
   * and totals still cover the whole table.
   */
  checks: ReadonlySet<string>;
}

/** Options of {@linkcode runChecks}. */
export interface RunChecksOptions {
  /** Failing rows kept per failing check. Default 5. */
  sampleSize?: number;
  /** The table's profile of this run, for drift checks; computed when missing. */
  profile?: TableProfile;
  /**
   * Filled with the SQL of each evaluated row-level check's failing rows
   * (by check name), for `quality.scope: changed` to remember them.
   */
  failing?: Map<string, string>;
  /**
   * Filled with the temp tables of candidate rows the checks read (the
   * `failing` SQL reads them): the caller drops them with
   * {@linkcode dropTempTables} once done. Without it, `runChecks` does.
   */
  temps?: string[];
}

/**
 * Drops temp tables that {@linkcode runChecks} left (`temps`).
 *
 * @example
 * ```ts ignore
 * const temps: string[] = [];
 * await runChecks(ctx, target, { temps });
 * await dropTempTables(ctx.db, temps);
 * ```
 */
export async function dropTempTables(db: Engine, temps: readonly string[]): Promise<void> {
  for (const t of temps) await db.run(`DROP TABLE IF EXISTS ${ident(t)}`);
}

/**
 * The check targets of a layer as declared in the config: sources (bronze),
 * silver tables and their quarantine tables, gold models.
 *
 * @example
 * ```ts ignore
 * const targets = checkTargets(config, "silver");
 * ```
 */
export function checkTargets(config: PipelineConfig, layer: Layer): CheckTarget[] {
  const targets: CheckTarget[] = [];
  const specs = (list: unknown) => Array.isArray(list) ? list.map(checkSpec) : [];
  if (layer === "bronze") {
    for (const [name, source] of Object.entries(config.sources)) {
      const checks = specs(source.checks);
      if (checks.length === 0) continue;
      targets.push({
        layer,
        schema: "bronze",
        table: name,
        checks,
        keyColumns: ["_source_file", "_source_row"],
      });
    }
  } else if (layer === "silver") {
    for (const [name, table] of Object.entries(config.silver)) {
      const checks = specs(table.checks);
      if (checks.length > 0) {
        targets.push({
          layer,
          schema: "silver",
          table: name,
          checks,
          keyColumns: table.key ?? [],
          ...(table.mask?.length ? { mask: table.mask } : {}),
        });
      }
      const qchecks = specs(table.quarantine_checks);
      if (qchecks.length > 0) {
        targets.push({
          layer,
          schema: "silver",
          table: `${name}__quarantine`,
          checks: qchecks,
          keyColumns: ["_dlq_id"],
          quarantine: true,
        });
      }
    }
  } else {
    for (const [name, model] of Object.entries(config.gold)) {
      const checks = specs(model.checks);
      if (checks.length > 0) {
        targets.push({ layer, schema: "gold", table: name, checks, keyColumns: [] });
      }
    }
  }
  return targets;
}

/**
 * The columns of a table (empty when it does not exist).
 *
 * @example
 * ```ts ignore
 * const cols = await tableColumns(db, { schema: "silver", table: "orders" });
 * ```
 */
export async function tableColumns(db: Engine, ref: TableRef): Promise<ColumnInfo[]> {
  const rows = await db.all<{ name: string; type: string }>(
    `SELECT column_name AS name, data_type AS type FROM duckdb_columns()
     WHERE database_name = current_database() AND schema_name = $s AND table_name = $t
     ORDER BY column_index`,
    { s: ref.schema, t: ref.table },
  );
  return rows.map((r) => ({ name: String(r.name), type: String(r.type) }));
}

const fmt = (n: number) => n.toLocaleString("en-US");
const pct = (part: number, whole: number) =>
  whole === 0 ? "0%" : `${Number(((part / whole) * 100).toPrecision(3))}%`;

/** Allowed failing rows of a row-level check as text and as a predicate. */
function thresholdOf(
  spec: CheckSpec,
): { text: string; allows: (fail: number, total: number) => boolean } {
  const t = spec.settings.threshold as number | string | undefined;
  if (typeof t === "string") {
    const p = Number(t.trim().replace(/%$/, "").trim());
    return { text: `${p}%`, allows: (f, n) => f * 100 <= n * p };
  }
  const rows = t ?? 0;
  return { text: `${fmt(rows)} rows`, allows: (f) => f <= rows };
}

/** The result skeleton of a check. */
function base(target: CheckTarget, spec: CheckSpec): CheckResult {
  return {
    layer: target.layer,
    table: target.table,
    check: spec.name,
    type: spec.type,
    severity: spec.severity,
    column: spec.columns.length > 0 ? spec.columns.join(", ") : null,
    status: "pass",
    failingRows: null,
    totalRows: null,
    threshold: null,
    message: "",
    samples: [],
    checkedAt: new Date(0),
  };
}

/** A check that could not be evaluated. */
function errored(r: CheckResult, message: string, aborted = false): CheckResult {
  return { ...r, status: "error", message, ...(aborted ? { aborted } : {}) };
}

/** True while the current transaction (if any) still accepts statements. */
/** `quality.payload_max_bytes`: the cap of a failing-row sample. */
function payloadMaxBytes(ctx: RunContext): number {
  return ctx.config.quality?.payload_max_bytes ?? DEFAULT_PAYLOAD_MAX_BYTES;
}

/** The SQL guard at run time: why a check's `where` or `sql` may not run, if it may not. */
async function refusedCheckSql(db: Engine, spec: CheckSpec): Promise<string | undefined> {
  for (const key of ["where", "sql"]) {
    const sql = spec.settings[key];
    if (typeof sql !== "string" || (key === "sql" && spec.type !== "expression")) continue;
    const problems = await checkSql(db, sql, { kind: "expression" });
    if (problems.length > 0) {
      return `refused: the ${key === "sql" ? "" : "where "}SQL ${problems[0].message}`;
    }
  }
  return undefined;
}

async function transactionAlive(db: Engine): Promise<boolean> {
  try {
    await db.one("SELECT 1 AS ok");
    return true;
  } catch {
    return false;
  }
}

async function sqlError(db: Engine, r: CheckResult, e: unknown): Promise<CheckResult> {
  const message = errorMessage(e).split("\n")[0].replace(/^Cannot run (SQL|query): /, "");
  const alive = await transactionAlive(db);
  return errored(r, `cannot evaluate: ${message}`, !alive);
}

/** A row-level check ready for the shared scan. */
interface ScanCheck {
  index: number;
  spec: CheckSpec;
  filter: string;
  /** The filter over the whole table when `filter` is narrowed to candidate rows. */
  wide?: string;
  /** The temp table of candidate rows a narrowed check reads instead of the table. */
  from?: TableRef;
  /** SQL that fills `from` (unique's rows of candidate keys), run before counting. */
  build?: string;
  /** Predicate of a failing row; absent for checks that only count. */
  fail?: string;
  /** Column whose newest value is wanted (freshness). */
  newestOf?: string;
  /** Columns whose distinct combinations are counted (unique's fast path). */
  distinctOf?: string[];
}

/** The temp table of a table's candidate rows (one target at a time). */
const CANDIDATES = "_sluice_scope_rows";

/**
 * A check's row filter (`wide`, the same over the whole table) and, when
 * the target lists it among the candidates' checks, the temp table it reads
 * instead (`from`): the candidate rows, or for `unique` every row of a
 * candidate row's key, gathered by `build`.
 */
function narrowed(
  target: CheckTarget,
  spec: CheckSpec,
  ref: TableRef,
  index: number,
): { filter: string; wide?: string; from?: TableRef; build?: string } {
  const wide = andAll([target.scope, spec.settings.where as string | undefined]);
  if (!target.candidates?.checks.has(spec.name) || !ROW_LEVEL_CHECKS.has(spec.type)) {
    return { filter: wide };
  }
  const rows: TableRef = { schema: "temp", table: CANDIDATES };
  if (spec.type !== "unique") return { filter: wide, wide, from: rows };
  const keys = `_sluice_scope_keys_${index}`;
  return {
    filter: wide,
    wide,
    from: { schema: "temp", table: keys },
    build: `CREATE OR REPLACE TEMP TABLE ${ident(keys)} AS SELECT t.* FROM ${
      qualified(ref.schema, ref.table)
    } AS t WHERE ${keysInSql(rows, spec.columns, wide)}`,
  };
}

/** A row-level result with the scope it was evaluated in (targets with `candidates`). */
function scoped(
  target: CheckTarget,
  c: { spec: CheckSpec; from?: TableRef },
  checked: number,
  r: CheckResult,
): CheckResult {
  if (target.candidates === undefined || !ROW_LEVEL_CHECKS.has(c.spec.type)) return r;
  return { ...r, scope: c.from === undefined ? "full" : "changed", rowsChecked: checked };
}

/**
 * Runs the checks of one target and returns their results in config order.
 * A table that does not exist makes every check `error`.
 *
 * @example
 * ```ts ignore
 * const results = await runChecks(ctx, {
 *   layer: "silver", schema: "silver", table: "orders", keyColumns: ["order_id"],
 *   checks: [checkSpec({ not_null: { column: "email" } })],
 * }, { sampleSize: 5 });
 * ```
 */
export async function runChecks(
  ctx: RunContext,
  target: CheckTarget,
  options: RunChecksOptions = {},
): Promise<CheckResult[]> {
  const db = ctx.db;
  const sampleSize = options.sampleSize ?? 5;
  const ref: TableRef = { schema: target.schema, table: target.table };
  const results: (CheckResult | undefined)[] = target.checks.map(() => undefined);
  const done = (i: number, r: CheckResult) => {
    results[i] = { ...r, checkedAt: ctx.clock.now() };
  };
  const columns = await tableColumns(db, ref);
  const byName = new Map(columns.map((c) => [c.name, c]));
  // A scanned check's result from its counts, with the scope it was read in.
  const judged = async (c: ScanCheck, counts: ScanCount) =>
    scoped(
      target,
      c,
      counts.checked,
      await judgeScan(ctx, target, c, counts, {
        sampleSize,
        ref,
        byName,
        failing: options.failing,
      }),
    );
  if (columns.length === 0) {
    target.checks.forEach((spec, i) =>
      done(i, errored(base(target, spec), `table ${target.schema}.${target.table} does not exist`))
    );
    return results as CheckResult[];
  }

  const scan: ScanCheck[] = [];
  // unique scans on its own: a DISTINCT aggregate slows every aggregate of a shared scan.
  const alone: ScanCheck[] = [];
  const separate: {
    index: number;
    spec: CheckSpec;
    filter: string;
    wide?: string;
    from?: TableRef;
  }[] = [];
  const temps: string[] = [];
  if (target.candidates !== undefined && target.candidates.checks.size > 0) {
    await db.run(
      `CREATE OR REPLACE TEMP TABLE ${ident(CANDIDATES)} AS ${target.candidates.rows}`,
    );
    temps.push(CANDIDATES);
  }
  for (const [i, spec] of target.checks.entries()) {
    const r = base(target, spec);
    const missing = spec.columns.find((c) => !byName.has(c));
    if (missing !== undefined) {
      done(
        i,
        errored(r, `column "${missing}" is not in ${target.schema}.${target.table}`),
      );
      continue;
    }
    const refused = await refusedCheckSql(db, spec);
    if (refused !== undefined) {
      done(i, errored(r, refused));
      continue;
    }
    const { filter, wide, from, build } = narrowed(target, spec, ref, i);
    const column = spec.columns.length > 0 ? byName.get(spec.columns[0])! : undefined;
    const s = spec.settings;
    switch (spec.type) {
      case "not_null":
      case "null_ratio":
        scan.push({
          index: i,
          spec,
          filter,
          wide,
          from,
          fail: isNullSql(column!.name),
        });
        break;
      case "accepted_values":
        scan.push({
          index: i,
          spec,
          filter,
          wide,
          from,
          fail: notAcceptedSql(column!, s.values as (string | number | boolean)[]),
        });
        break;
      case "range": {
        const type = plainType(column!.type);
        if (type === undefined) {
          done(i, errored(r, `range cannot compare values of type ${column!.type}`));
          break;
        }
        const bad: string[] = [];
        for (const key of ["min", "max"] as const) {
          const v = s[key] as string | number | undefined;
          if (v === undefined) continue;
          const ok = await db.one<{ ok: boolean }>(
            `SELECT TRY_CAST(${literal(v)} AS ${type}) IS NOT NULL AS ok`,
          );
          if (!ok?.ok) bad.push(`${key} ${JSON.stringify(v)} does not convert to ${type}`);
        }
        if (bad.length > 0) {
          done(i, errored(r, `${bad.join("; ")} (column "${column!.name}")`));
          break;
        }
        scan.push({
          index: i,
          spec,
          filter,
          wide,
          from,
          fail: outOfRangeSql(column!, {
            min: s.min as string | number | undefined,
            max: s.max as string | number | undefined,
            minInclusive: s.min_inclusive !== false,
            maxInclusive: s.max_inclusive !== false,
          }),
        });
        break;
      }
      case "regex": {
        const ok = await db.one<{ ok: boolean }>(
          `SELECT TRY(regexp_matches('', $p)) IS NOT NULL AS ok`,
          { p: String(s.pattern) },
        );
        if (!ok?.ok) {
          done(i, errored(r, `pattern ${JSON.stringify(s.pattern)} is not a valid RE2 expression`));
          break;
        }
        scan.push({
          index: i,
          spec,
          filter,
          wide,
          from,
          fail: noMatchSql(column!.name, String(s.pattern)),
        });
        break;
      }
      case "expression":
        scan.push({
          index: i,
          spec,
          filter,
          wide,
          from,
          fail: expressionFailsSql(String(s.sql)),
        });
        break;
      case "row_count":
        scan.push({ index: i, spec, filter });
        break;
      case "unique":
        alone.push({ index: i, spec, filter, wide, from, build, distinctOf: spec.columns });
        break;
      case "freshness":
        if (!isTemporalType(column!.type) || /^TIME(?!STAMP)/i.test(column!.type)) {
          done(
            i,
            errored(
              r,
              `freshness needs a DATE or TIMESTAMP column; "${column!.name}" is ${column!.type}`,
            ),
          );
          break;
        }
        scan.push({ index: i, spec, filter, newestOf: column!.name });
        break;
      default:
        separate.push({ index: i, spec, filter, wide, from });
    }
  }

  const notEvaluated = (r: CheckResult) =>
    errored(r, "not evaluated: a check's SQL error aborted the transaction", true);

  // One scan for every row-level check; when it fails, each check alone to find the culprit.
  if (scan.length > 0) {
    let combined: ScanCount[] | undefined;
    try {
      combined = await scanAll(db, ref, target.scope, scan);
    } catch (e) {
      if (!(await transactionAlive(db))) {
        // Built-in checks validate their inputs first: blame the user SQL.
        const userSql = (c: ScanCheck) => c.spec.type === "expression" || !!c.spec.settings.where;
        const suspects = scan.some(userSql) ? scan.filter(userSql) : scan;
        for (const c of scan) {
          const r = base(target, c.spec);
          done(
            c.index,
            suspects.includes(c) ? await sqlError(db, r, e) : notEvaluated(r),
          );
        }
      }
    }
    for (const [j, c] of scan.entries()) {
      if (results[c.index] !== undefined) continue;
      const r = base(target, c.spec);
      try {
        const counts = combined?.[j] ?? (await scanAll(db, ref, target.scope, [c]))[0];
        done(c.index, await judged(c, counts));
      } catch (e) {
        done(c.index, await sqlError(db, r, e));
      }
    }
  }

  for (const c of alone) {
    const r = base(target, c.spec);
    if (results.some((x) => x?.aborted)) {
      done(c.index, notEvaluated(r));
      continue;
    }
    try {
      if (c.build !== undefined) {
        await db.run(c.build);
        temps.push(c.from!.table);
      }
      const [counts] = await scanAll(db, ref, target.scope, [c]);
      done(c.index, await judged(c, counts));
    } catch (e) {
      done(c.index, await sqlError(db, r, e));
    }
  }

  for (const c of separate) {
    const r = base(target, c.spec);
    if (results.some((x) => x?.aborted)) {
      done(c.index, notEvaluated(r));
      continue;
    }
    try {
      done(
        c.index,
        await runSeparate(ctx, target, c, byName, {
          sampleSize,
          ref,
          profile: options.profile,
          failing: options.failing,
        }),
      );
    } catch (e) {
      done(c.index, await sqlError(db, r, e));
    }
  }
  if (options.temps) options.temps.push(...temps);
  else await dropTempTables(db, temps);
  return results as CheckResult[];
}

/**
 * Counts of the shared scan. Checks narrowed to candidate rows are counted
 * on their temp table of those rows (one scan per temp table), their totals
 * and the other checks on the whole table (one scan).
 */
async function scanAll(
  db: Engine,
  ref: TableRef,
  scope: string | undefined,
  checks: ScanCheck[],
): Promise<ScanCount[]> {
  const narrow = checks.filter((c) => c.from !== undefined);
  if (narrow.length === 0) return await scanCounts(db, ref, scope, checks);
  const rest = checks.filter((c) => c.from === undefined);
  const totals: ScanCheck[] = narrow.map((c) => ({
    index: c.index,
    spec: c.spec,
    filter: c.wide!,
  }));
  const whole = await scanCounts(db, ref, scope, [...rest, ...totals]);
  const part = new Map<ScanCheck, ScanCount>();
  for (const from of new Set(narrow.map((c) => c.from!.table))) {
    const group = narrow.filter((c) => c.from!.table === from);
    const counts = await scanCounts(db, group[0].from!, scope, group);
    group.forEach((c, k) => part.set(c, counts[k]));
  }
  return checks.map((c) => {
    const r = rest.indexOf(c);
    if (r >= 0) return whole[r];
    return { ...part.get(c)!, total: whole[rest.length + narrow.indexOf(c)].total };
  });
}

interface ScanCount {
  total: number;
  failing: number;
  /** Rows the check read (its candidate rows when narrowed, else `total`). */
  checked: number;
  newest: number | null;
  /** Rows with no NULL in `distinctOf`, and their distinct combinations. */
  keyed?: number;
  distinct?: number;
}

/** Counts of the shared scan, one entry per check. */
async function scanCounts(
  db: Engine,
  ref: TableRef,
  scope: string | undefined,
  checks: ScanCheck[],
): Promise<ScanCount[]> {
  const parts: string[] = [];
  checks.forEach((c, j) => {
    parts.push(`count(*) FILTER (WHERE ${c.filter})::BIGINT AS total_${j}`);
    parts.push(
      c.fail
        ? `count(*) FILTER (WHERE (${c.filter}) AND (${c.fail}))::BIGINT AS failing_${j}`
        : `0::BIGINT AS failing_${j}`,
    );
    parts.push(
      c.newestOf
        ? `epoch(max(${col(c.newestOf)}) FILTER (WHERE ${c.filter}))::DOUBLE AS newest_${j}`
        : `NULL::DOUBLE AS newest_${j}`,
    );
    if (c.distinctOf) {
      const keyed = `(${c.filter}) AND ${
        c.distinctOf.map((k) => `${col(k)} IS NOT NULL`).join(" AND ")
      }`;
      const key = c.distinctOf.length === 1
        ? col(c.distinctOf[0])
        : `row(${c.distinctOf.map(col).join(", ")})`;
      parts.push(`count(*) FILTER (WHERE ${keyed})::BIGINT AS keyed_${j}`);
      parts.push(`count(DISTINCT ${key}) FILTER (WHERE ${keyed})::BIGINT AS distinct_${j}`);
    }
  });
  const sql = `SELECT ${parts.join(", ")} FROM ${qualified(ref.schema, ref.table)} AS t` +
    (scope ? ` WHERE ${scope}` : "");
  const row = await db.one(sql);
  return checks.map((c, j) => ({
    total: Number(row?.[`total_${j}`] ?? 0),
    checked: Number(row?.[`total_${j}`] ?? 0),
    failing: Number(row?.[`failing_${j}`] ?? 0),
    newest: row?.[`newest_${j}`] == null ? null : Number(row[`newest_${j}`]),
    ...(c.distinctOf
      ? { keyed: Number(row?.[`keyed_${j}`] ?? 0), distinct: Number(row?.[`distinct_${j}`] ?? 0) }
      : {}),
  }));
}

/** Counts the failing rows and keeps up to `limit` of them, in one query. */
async function countAndSample(
  db: Engine,
  failing: string,
  keys: string[],
  limit: number,
  options: { mask?: readonly string[]; maxBytes?: number } = {},
): Promise<{ failing: number; samples: FailingSample[] }> {
  const rows = await db.all<{ failing: number; row_key: string | null; sample: string | null }>(
    countAndSampleSql(failing, keys, limit, options),
  );
  return {
    failing: Number(rows[0]?.failing ?? 0),
    samples: rows.filter((r) => r.sample !== null).map((r) => ({
      rowKey: r.row_key ?? null,
      sample: String(r.sample),
    })),
  };
}

async function samplesOf(
  db: Engine,
  failing: string,
  keys: string[],
  limit: number,
  options: { mask?: readonly string[]; maxBytes?: number } = {},
): Promise<FailingSample[]> {
  if (limit <= 0) return [];
  return (await countAndSample(db, failing, keys, limit, options)).samples;
}

function sampleKeys(target: CheckTarget, spec: CheckSpec, columns: Set<string>): string[] {
  if (target.keyColumns.length > 0 && target.keyColumns.every((k) => columns.has(k))) {
    return target.keyColumns;
  }
  return spec.columns;
}

async function judgeRows(
  ctx: RunContext,
  target: CheckTarget,
  spec: CheckSpec,
  counts: { total: number; failing: number },
  evidence: {
    /** SQL of the failing rows, sampled when the check fails. */
    failing?: string;
    /** Samples already taken. */
    samples?: FailingSample[];
    keys: string[];
    sampleSize: number;
    detail?: string;
  },
): Promise<CheckResult> {
  const r = base(target, spec);
  const { text, allows } = thresholdOf(spec);
  const pass = allows(counts.failing, counts.total);
  const what = `${fmt(counts.failing)} of ${fmt(counts.total)} rows` +
    (counts.failing > 0 ? ` (${pct(counts.failing, counts.total)})` : "");
  const out: CheckResult = {
    ...r,
    status: pass ? "pass" : "fail",
    failingRows: counts.failing,
    totalRows: counts.total,
    threshold: text,
    message: `${what} fail ${spec.type}${evidence.detail ?? ""}; allowed ${text}`,
  };
  if (!pass) {
    out.samples = evidence.samples ??
      (evidence.failing
        ? await samplesOf(ctx.db, evidence.failing, evidence.keys, evidence.sampleSize, {
          mask: target.mask,
          maxBytes: payloadMaxBytes(ctx),
        })
        : []);
  }
  return out;
}

async function judgeScan(
  ctx: RunContext,
  target: CheckTarget,
  c: ScanCheck,
  counts: ScanCount,
  options: {
    sampleSize: number;
    ref: TableRef;
    byName: Map<string, ColumnInfo>;
    failing?: Map<string, string>;
  },
): Promise<CheckResult> {
  const spec = c.spec;
  const s = spec.settings;
  const r = base(target, spec);
  const keys = sampleKeys(target, spec, new Set(options.byName.keys()));
  // A narrowed check reads its candidate rows.
  const from = c.from ?? options.ref;
  const failing = c.fail ? failingRowsSql(from, c.filter, c.fail) : "";
  if (ROW_LEVEL_CHECKS.has(spec.type)) {
    options.failing?.set(
      spec.name,
      spec.type === "unique" ? uniqueFailingSql(from, spec.columns, c.filter) : failing,
    );
  }
  if (spec.type === "null_ratio") {
    const max = Number(s.max);
    const ratio = counts.total === 0 ? 0 : counts.failing / counts.total;
    const pass = ratio <= max;
    return {
      ...r,
      status: pass ? "pass" : "fail",
      failingRows: counts.failing,
      totalRows: counts.total,
      threshold: `<= ${Number((max * 100).toPrecision(4))}%`,
      message: `null ratio ${pct(counts.failing, counts.total)} (${fmt(counts.failing)} of ${
        fmt(counts.total)
      } rows); allowed at most ${Number((max * 100).toPrecision(4))}%`,
      samples: pass ? [] : await samplesOf(ctx.db, failing, keys, options.sampleSize, {
        mask: target.mask,
        maxBytes: payloadMaxBytes(ctx),
      }),
    };
  }
  if (spec.type === "row_count") return await judgeRowCount(ctx, target, spec, counts.total);
  if (spec.type === "unique") {
    // Distinct keys = non-NULL keys proves uniqueness; only duplicates pay for the exact count.
    let failing = 0;
    if (counts.distinct !== counts.keyed) {
      const exact = await ctx.db.one<{ failing: number }>(
        uniqueCountSql(from, spec.columns, c.filter),
      );
      failing = Number(exact?.failing ?? 0);
    }
    return await judgeRows(ctx, target, spec, { total: counts.total, failing }, {
      failing: uniqueFailingSql(from, spec.columns, c.filter),
      keys: keys.length > 0 ? keys : spec.columns,
      sampleSize: options.sampleSize,
    });
  }
  if (spec.type === "freshness") return judgeFreshness(ctx, target, spec, counts);
  return await judgeRows(ctx, target, spec, counts, {
    failing,
    keys,
    sampleSize: options.sampleSize,
  });
}

async function judgeRowCount(
  ctx: RunContext,
  target: CheckTarget,
  spec: CheckSpec,
  n: number,
): Promise<CheckResult> {
  const s = spec.settings;
  const r = base(target, spec);
  const min = s.min as number | undefined;
  const max = s.max as number | undefined;
  const maxChange = s.max_change_pct as number | undefined;
  const limits: string[] = [];
  if (min !== undefined) limits.push(`min ${fmt(min)}`);
  if (max !== undefined) limits.push(`max ${fmt(max)}`);
  if (maxChange !== undefined) limits.push(`change <= ${maxChange}%`);
  const problems: string[] = [];
  if (min !== undefined && n < min) problems.push(`fewer than ${fmt(min)}`);
  if (max !== undefined && n > max) problems.push(`more than ${fmt(max)}`);
  let note = "";
  if (maxChange !== undefined) {
    const prev = await lastRowCount(ctx.db, {
      layer: target.layer,
      table: target.table,
      check: spec.name,
      runId: ctx.runId,
    });
    if (prev === undefined) {
      note = "; no earlier successful run to compare with";
    } else {
      const change = prev === 0 ? (n === 0 ? 0 : Infinity) : (Math.abs(n - prev) / prev) * 100;
      const shown = Number.isFinite(change) ? `${Number(change.toPrecision(3))}%` : "from 0 rows";
      note = `; ${n >= prev ? "+" : "-"}${shown} versus ${fmt(prev)} in the last successful run`;
      if (change > maxChange) problems.push(`changed more than ${maxChange}%`);
    }
  }
  const pass = problems.length === 0;
  return {
    ...r,
    status: pass ? "pass" : "fail",
    totalRows: n,
    threshold: limits.join(", "),
    message: `${fmt(n)} rows${pass ? "" : `: ${problems.join(", ")}`}${note}`,
  };
}

function judgeFreshness(
  ctx: RunContext,
  target: CheckTarget,
  spec: CheckSpec,
  counts: ScanCount,
): CheckResult {
  const r = base(target, spec);
  const maxAge = String(spec.settings.max_age);
  const allowedMs = parseDuration(maxAge);
  const column = spec.columns[0];
  if (counts.newest === null) {
    return {
      ...r,
      status: "fail",
      totalRows: counts.total,
      threshold: `max age ${maxAge}`,
      message: `no value in column "${column}" (${fmt(counts.total)} rows); allowed age ${maxAge}`,
    };
  }
  const newest = new Date(counts.newest * 1000);
  const ageMs = ctx.clock.now().getTime() - newest.getTime();
  const pass = ageMs <= allowedMs;
  // Whole seconds; whole minutes beyond an hour.
  const unit = Math.abs(ageMs) >= 3_600_000 ? 60_000 : 1_000;
  const rounded = Math.round(Math.abs(ageMs) / unit) * unit;
  const age = ageMs < 0
    ? `${formatDuration(rounded)} in the future`
    : `${formatDuration(rounded)} old`;
  return {
    ...r,
    status: pass ? "pass" : "fail",
    totalRows: counts.total,
    threshold: `max age ${maxAge}`,
    message: `newest ${column} is ${newest.toISOString()}, ${age}; allowed ${maxAge}`,
  };
}

async function runSeparate(
  ctx: RunContext,
  target: CheckTarget,
  c: { spec: CheckSpec; filter: string; wide?: string; from?: TableRef },
  byName: Map<string, ColumnInfo>,
  options: {
    sampleSize: number;
    ref: TableRef;
    profile?: TableProfile;
    failing?: Map<string, string>;
  },
): Promise<CheckResult> {
  const { spec, filter } = c;
  const r = base(target, spec);
  const db = ctx.db;
  const keys = sampleKeys(target, spec, new Set(byName.keys()));
  if (spec.type === "relationships") {
    const s = spec.settings;
    const to = resolveCheckTable(ctx.config, target.layer, String(s.to));
    if (to === null) return errored(r, `unknown table "${s.to}"`);
    const fieldName = String(s.field ?? s.column);
    const targetCols = await tableColumns(db, to);
    if (targetCols.length === 0) return errored(r, `table ${to.schema}.${to.table} does not exist`);
    const field = targetCols.find((x) => x.name === fieldName);
    if (!field) return errored(r, `column "${fieldName}" is not in ${to.schema}.${to.table}`);
    const column = byName.get(spec.columns[0])!;
    const table = qualified(options.ref.schema, options.ref.table);
    const from = c.from ?? options.ref;
    const total = await db.one<{ n: number; checked: number }>(
      c.from === undefined
        ? `SELECT count(*)::BIGINT AS n, count(*)::BIGINT AS checked FROM ${table} AS t
           WHERE ${filter}`
        : `SELECT (SELECT count(*) FROM ${table} AS t WHERE ${c.wide})::BIGINT AS n,
             (SELECT count(*) FROM ${qualified(from.schema, from.table)} AS t
              WHERE ${filter})::BIGINT AS checked`,
    );
    const orphans = relationshipsFailingSql(from, column, to, field, filter);
    options.failing?.set(spec.name, orphans);
    // One anti-join counts the orphans and keeps the sample.
    const found = await countAndSample(
      db,
      orphans,
      keys,
      options.sampleSize,
      { mask: target.mask, maxBytes: payloadMaxBytes(ctx) },
    );
    const judged = await judgeRows(ctx, target, spec, {
      total: Number(total?.n ?? 0),
      failing: found.failing,
    }, {
      samples: found.samples,
      keys,
      sampleSize: options.sampleSize,
      detail: ` (${column.name} not in ${to.schema}.${to.table}.${field.name})`,
    });
    return scoped(target, c, Number(total?.checked ?? 0), judged);
  }
  if (spec.type === "drift") {
    return await judgeDrift(ctx, target, spec, options.profile);
  }
  return errored(r, `unknown check type ${spec.type}`);
}

async function judgeDrift(
  ctx: RunContext,
  target: CheckTarget,
  spec: CheckSpec,
  given?: TableProfile,
): Promise<CheckResult> {
  const s = spec.settings;
  const r = base(target, spec);
  const metric = String(s.metric) as "null_ratio" | "row_count" | "distinct_count";
  const column = spec.columns[0];
  const runs = (s.runs as number | undefined) ?? 7;
  const minRuns = (s.min_runs as number | undefined) ?? Math.min(3, runs);
  const profile = given ??
    await profileTable(
      ctx.db,
      { layer: target.layer, schema: target.schema, table: target.table },
      {
        scope: target.scope,
      },
    );
  let current: number | null;
  if (metric === "row_count") current = profile.rowCount;
  else {
    const p = profile.columns.find((x) => x.column === column);
    if (!p) return errored(r, `column "${column}" is not in the profile of ${target.table}`);
    current = metric === "null_ratio" ? p.nullRatio : p.distinctApprox;
  }
  const relative = s.max_change_pct as number | undefined;
  const absolute = s.max_delta as number | undefined;
  const threshold = relative !== undefined
    ? `change <= ${relative}% vs median of ${runs} runs`
    : `change <= ${absolute} vs median of ${runs} runs`;
  const what = metric === "row_count" ? "row count" : `${metric} of ${column}`;
  if (current === null) {
    return { ...r, threshold, message: `${what} is undefined (empty table); nothing to compare` };
  }
  const baseline = await driftBaseline(ctx.db, {
    layer: target.layer,
    table: target.table,
    column: metric === "row_count" ? undefined : column,
    metric,
    runs,
    runId: ctx.runId,
  });
  const shown = (v: number) => metric === "null_ratio" ? v.toFixed(4) : fmt(Math.round(v));
  if (baseline.runs < minRuns || baseline.median === null) {
    return {
      ...r,
      threshold,
      totalRows: profile.rowCount,
      message: `${what} is ${
        shown(current)
      }; the baseline needs ${minRuns} successful runs, found ${baseline.runs}`,
    };
  }
  const median = baseline.median;
  const delta = Math.abs(current - median);
  let pass: boolean;
  let change: string;
  if (relative !== undefined) {
    const rel = median === 0 ? (current === 0 ? 0 : Infinity) : (delta / Math.abs(median)) * 100;
    pass = rel <= relative;
    change = Number.isFinite(rel) ? `${Number(rel.toPrecision(3))}%` : "from 0";
  } else {
    pass = delta <= absolute!;
    change = shown(delta);
  }
  return {
    ...r,
    status: pass ? "pass" : "fail",
    totalRows: profile.rowCount,
    threshold,
    message: `${what} is ${shown(current)}, median of the last ${baseline.runs} successful runs ${
      shown(median)
    }: change ${change}; allowed ${relative !== undefined ? `${relative}%` : absolute}`,
  };
}
