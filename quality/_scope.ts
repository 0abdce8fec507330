/**
 * `quality.scope: changed`: which rows a silver check must read so that its
 * result equals a check of the whole table, and the state that makes it so.
 *
 * A row-level check's verdict on a row depends on that row alone (and, for
 * `relationships`, on the parent table). So when a run only wrote some rows,
 * the rows failing a check now are the rows the run wrote that fail it plus
 * the rows that failed it last time, still exist and still fail. The rows
 * that failed are kept per table and check in `_sluice.check_state_rows`
 * (their lineage `_source_file`, `_source_row`), with the check's spec and
 * the table's silver progress at that time in `_sluice.check_state`. The
 * rows the run wrote are those whose `_bronze_run_id` the run consumed
 * (`_sluice.silver_progress.run_id`): an appended row, or a merged row's new
 * version (merge sets the lineage columns). A merged row's old version is
 * gone from the table, so it drops out by itself.
 *
 * A check is read in full instead when that cannot be shown: no state, a
 * spec or table schema different from the state's, silver progress that
 * moved since the state was kept (a run that did not keep state wrote the
 * table), a table in mode `replace` or `scd2`, a first build, a full
 * refresh, a run that retracted rows, a `where`/`sql` that reads other rows
 * or the clock, a `relationships` parent that may have lost values, or too
 * many failing rows to keep.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { CheckSpec, PipelineConfig } from "../core/config/mod.ts";
import { resolveCheckTable } from "../core/config/mod.ts";
import type { Engine } from "../core/engine.ts";
import { ensureOnce } from "../core/ensure_once.ts";
import { literal, qualified } from "../core/quote.ts";
import type { RunContext } from "../core/run_context.ts";
import { ensureLedger } from "../observability/ledger.ts";
import type { ColumnInfo } from "./_check_sql.ts";
import type { CandidateRows } from "./checks.ts";
import { type CheckResult, ROW_LEVEL_CHECKS, type SilverWrite } from "./types.ts";

/** More failing rows than this are not kept: the check is read in full next time. */
export const STATE_MAX_ROWS = 100_000;

/** User SQL that may read other rows, other tables or the clock. */
const VOLATILE_SQL =
  /\b(select|now|today|current_\w+|localtime\w*|get_current_\w+|transaction_timestamp|random|uuid|gen_random_uuid|nextval|currval|setseed|getvariable)\b/i;

/**
 * Creates the state tables if they do not exist.
 *
 * @example
 * ```ts ignore
 * await ensureCheckState(db);
 * ```
 */
export async function ensureCheckState(db: Engine): Promise<void> {
  await ensureLedger(db);
  await ensureOnce(db, "check_state", () => createCheckState(db));
}

async function createCheckState(db: Engine): Promise<void> {
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.check_state (
    table_name VARCHAR, check_name VARCHAR, fingerprint VARCHAR, progress VARCHAR,
    run_id VARCHAR, failing_rows BIGINT, saved_at TIMESTAMPTZ)`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.check_state_rows (
    table_name VARCHAR, check_name VARCHAR, source_file VARCHAR, source_row BIGINT)`);
}

/**
 * Forgets the kept failing rows (of one table, or all): its checks are read
 * in full next time. Used when a run writes silver without keeping state.
 *
 * @example
 * ```ts ignore
 * await forgetCheckState(db);
 * ```
 */
export async function forgetCheckState(db: Engine, table?: string): Promise<void> {
  const exists = await db.one(
    `SELECT 1 AS x FROM duckdb_tables() WHERE schema_name = '_sluice' AND table_name = 'check_state'`,
  );
  if (exists === undefined) return;
  const where = table === undefined ? "" : ` WHERE table_name = ${literal(table)}`;
  await db.run(`DELETE FROM _sluice.check_state${where}`);
  await db.run(`DELETE FROM _sluice.check_state_rows${where}`);
}

/**
 * A SHA-256 of the spec and the table's columns: a change to either makes
 * the state void. Hashed, so a `!secret` in a check's settings is not
 * stored.
 */
function fingerprint(spec: CheckSpec, columns: readonly ColumnInfo[]): string {
  const sorted = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sorted) : typeof v === "object" && v !== null
      ? Object.fromEntries(
        Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])]),
      )
      : v;
  return createHash("sha256")
    .update(JSON.stringify(sorted({ type: spec.type, settings: spec.settings, columns })))
    .digest("hex");
}

/** The table's silver progress as one hash (without this run's rows when `before`). */
async function progressOf(ctx: RunContext, table: string, before: boolean): Promise<string> {
  const exists = await ctx.db.one(
    `SELECT 1 AS x FROM duckdb_tables()
     WHERE schema_name = '_sluice' AND table_name = 'silver_progress'`,
  );
  if (exists === undefined) return "";
  const row = await ctx.db.one<{ h: string }>(
    `SELECT md5(coalesce(string_agg(bronze_run_id || '|' || run_id, ','
       ORDER BY bronze_run_id, run_id), '')) AS h
     FROM _sluice.silver_progress WHERE table_name = $t${before ? " AND run_id <> $r" : ""}`,
    before ? { t: table, r: ctx.runId } : { t: table },
  );
  return String(row?.h ?? "");
}

/** Why a table's rows may have changed beyond its newly written rows, if they may have. */
function tableFull(
  config: PipelineConfig,
  table: string,
  writes: readonly SilverWrite[],
): string | undefined {
  const mode = config.silver[table]?.mode;
  if (mode !== "append" && mode !== "merge") return `mode ${mode}`;
  const write = writes.find((w) => w.table === table);
  if (write?.rebuilt) return "rebuilt";
  if (write?.retracted) return "rows retracted";
  return undefined;
}

/**
 * For profiles under `quality.scope: changed`: the SQL filter (over alias
 * `t`) selecting the rows a silver table gained this run when the run only
 * appended rows (mode `append`, written this run, not rebuilt, nothing
 * retracted, lineage columns present), or why that cannot be shown.
 *
 * @example
 * ```ts ignore
 * const appended = await appendedRows(ctx, "orders", writes);
 * if (typeof appended === "object") profileSql(ref, cols, { scope: appended.filter });
 * ```
 */
export async function appendedRows(
  ctx: RunContext,
  table: string,
  writes: readonly SilverWrite[],
  columns: readonly string[],
): Promise<{ filter: string } | string> {
  if (ctx.config.silver[table]?.mode !== "append") return "mode not append";
  if (!writes.some((w) => w.table === table)) return "not written";
  const why = tableFull(ctx.config, table, writes);
  if (why !== undefined) return why;
  if (!["_source_file", "_source_row", "_bronze_run_id"].every((c) => columns.includes(c))) {
    return "no lineage columns";
  }
  const runs = await ctx.db.all<{ b: string }>(
    `SELECT DISTINCT bronze_run_id AS b FROM _sluice.silver_progress
     WHERE table_name = $t AND run_id = $r ORDER BY b`,
    { t: table, r: ctx.runId },
  );
  return {
    filter: runs.length === 0
      ? "FALSE"
      : `t._bronze_run_id IN (${runs.map((r) => literal(String(r.b))).join(", ")})`,
  };
}

/** Why a `relationships` parent may have lost values this run, if it may have. */
function parentFull(
  config: PipelineConfig,
  spec: CheckSpec,
  writes: readonly SilverWrite[],
): string | undefined {
  const to = resolveCheckTable(config, "silver", String(spec.settings.to));
  if (to === null || to.schema !== "silver") return "parent not a silver table";
  const write = writes.find((w) => w.table === to.table);
  if (write === undefined) return undefined;
  const parent = config.silver[to.table];
  const field = String(spec.settings.field ?? spec.settings.column);
  if (write.rebuilt || write.retracted) return "parent rebuilt or retracted";
  if (parent.mode === "append" || parent.mode === "scd2") return undefined;
  if (parent.mode === "merge" && (parent.key ?? []).includes(field)) return undefined;
  return "parent may have lost values";
}

/** How one silver table is checked this run. */
export interface ScopePlan {
  /** The candidate rows (the checks listed read only those). */
  candidates: CandidateRows & { checks: Set<string> };
  /** Why the other row-level checks are read in full, by check name. */
  full: Map<string, string>;
}

/**
 * Plans `quality.scope: changed` for one silver table: the candidate rows
 * of each check that may be narrowed, and why the others may not.
 *
 * @example
 * ```ts ignore
 * const plan = await planScope(ctx, "orders", { checks, columns, writes });
 * ```
 */
export async function planScope(
  ctx: RunContext,
  table: string,
  options: {
    checks: readonly CheckSpec[];
    columns: readonly ColumnInfo[];
    writes: readonly SilverWrite[];
  },
): Promise<ScopePlan> {
  const plan: ScopePlan = { candidates: { rows: "", checks: new Set() }, full: new Map() };
  const rowLevel = options.checks.filter((c) => ROW_LEVEL_CHECKS.has(c.type));
  if (rowLevel.length === 0) return plan;
  const names = new Set(options.columns.map((c) => c.name));
  const whole = tableFull(ctx.config, table, options.writes) ??
    (["_source_file", "_source_row", "_bronze_run_id"].every((c) => names.has(c))
      ? undefined
      : "no lineage columns");
  const state = whole === undefined
    ? await ctx.db.all<{ check_name: string; fingerprint: string; progress: string }>(
      `SELECT check_name, fingerprint, progress FROM _sluice.check_state WHERE table_name = $t`,
      { t: table },
    )
    : [];
  const progress = whole === undefined ? await progressOf(ctx, table, true) : "";
  // The bronze runs this run consumed, as literals: a constant filter reads fastest.
  const runs = whole === undefined
    ? await ctx.db.all<{ b: string }>(
      `SELECT DISTINCT bronze_run_id AS b FROM _sluice.silver_progress
       WHERE table_name = $t AND run_id = $r ORDER BY b`,
      { t: table, r: ctx.runId },
    )
    : [];
  const changed = runs.length === 0
    ? "FALSE"
    : `t._bronze_run_id IN (${runs.map((r) => literal(String(r.b))).join(", ")})`;
  for (const spec of rowLevel) {
    const kept = state.find((s) => s.check_name === spec.name);
    const userSql = [spec.settings.where, spec.type === "expression" ? spec.settings.sql : ""]
      .map((x) => typeof x === "string" ? x : "").join(" ");
    const reason = whole ??
      (kept === undefined
        ? "no state"
        : kept.fingerprint !== fingerprint(spec, options.columns)
        ? "check or table changed"
        : kept.progress !== progress
        ? "table written without state"
        : VOLATILE_SQL.test(userSql)
        ? "SQL reads other rows or the clock"
        : spec.type === "relationships"
        ? parentFull(ctx.config, spec, options.writes)
        : undefined);
    if (reason !== undefined) {
      plan.full.set(spec.name, reason);
      continue;
    }
    plan.candidates.checks.add(spec.name);
  }
  // The rows some check needs, in two parts that do not overlap: each reads only
  // the lineage columns of the whole table before it fetches whole rows. The
  // rows the run wrote come from silver's change set when it kept one (its
  // new versions hold them all), which spares a scan of the whole table.
  const from = qualified("silver", table);
  const delta = options.writes.find((w) => w.table === table)?.delta;
  const written = delta === undefined
    ? `SELECT t.* FROM ${from} AS t WHERE ${changed}`
    : `SELECT t.* EXCLUDE (_sluice_old) FROM ${delta} AS t WHERE NOT t._sluice_old AND ${changed}`;
  plan.candidates.rows = `${written}
    UNION ALL
    SELECT t.* FROM ${from} AS t SEMI JOIN (SELECT source_file, source_row
      FROM _sluice.check_state_rows WHERE table_name = ${literal(table)}) AS s
      ON s.source_file = t._source_file AND s.source_row = t._source_row
    WHERE (${changed}) IS NOT TRUE`;
  return plan;
}

/**
 * Keeps the failing rows of one silver table's row-level checks (replacing
 * what was kept), for the next run's `quality.scope: changed`. A check that
 * errored, has more than {@linkcode STATE_MAX_ROWS} failing rows or failing
 * rows without lineage keeps nothing (it is read in full next time). Runs in
 * the transaction that wrote the table.
 *
 * @example
 * ```ts ignore
 * await saveCheckState(ctx, "orders", { checks, columns, results, failing });
 * ```
 */
export async function saveCheckState(
  ctx: RunContext,
  table: string,
  options: {
    checks: readonly CheckSpec[];
    columns: readonly ColumnInfo[];
    results: readonly CheckResult[];
    failing: ReadonlyMap<string, string>;
  },
): Promise<void> {
  const db = ctx.db;
  const names = new Set(options.columns.map((c) => c.name));
  const lineage = ["_source_file", "_source_row", "_bronze_run_id"].every((c) => names.has(c));
  // The new failing rows first: their SQL reads the rows kept last time.
  const fresh = "_sluice_check_state_new";
  await db.run(`CREATE OR REPLACE TEMP TABLE ${fresh} (
    check_name VARCHAR, source_file VARCHAR, source_row BIGINT)`);
  const keep: { spec: CheckSpec; failing: number }[] = [];
  for (const spec of lineage ? options.checks : []) {
    if (!ROW_LEVEL_CHECKS.has(spec.type)) continue;
    const r = options.results.find((x) => x.check === spec.name);
    const sql = options.failing.get(spec.name);
    if (r === undefined || r.status === "error" || sql === undefined) continue;
    const failing = r.failingRows ?? 0;
    if (failing > STATE_MAX_ROWS) continue;
    if (failing > 0) {
      const kept = await db.run(
        `INSERT INTO ${fresh} SELECT $c, f._source_file, f._source_row FROM (${sql}) AS f
         WHERE f._source_file IS NOT NULL AND f._source_row IS NOT NULL`,
        { c: spec.name },
      );
      if (kept !== failing) {
        await db.run(`DELETE FROM ${fresh} WHERE check_name = $c`, { c: spec.name });
        continue;
      }
    }
    keep.push({ spec, failing });
  }
  await forgetCheckState(db, table);
  await db.run(
    `INSERT INTO _sluice.check_state_rows SELECT $t, check_name, source_file, source_row
     FROM ${fresh}`,
    { t: table },
  );
  await db.run(`DROP TABLE ${fresh}`);
  const progress = keep.length > 0 ? await progressOf(ctx, table, false) : "";
  const now = ctx.clock.now().toISOString();
  if (keep.length === 0) return;
  const rows = keep.map(({ spec, failing }) =>
    `(${
      [table, spec.name, fingerprint(spec, options.columns), progress, ctx.runId].map((v) =>
        literal(v)
      ).join(", ")
    }, ${failing}, ${literal(now)}::TIMESTAMPTZ)`
  );
  await db.run(`INSERT INTO _sluice.check_state VALUES ${rows.join(", ")}`);
}
