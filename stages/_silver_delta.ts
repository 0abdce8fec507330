/**
 * Silver's change set for incremental gold models and derived profiles: the
 * old and new versions of the silver rows a run touched, in a temp table
 * `_delta_<table>` with the silver table's columns and `_sluice_old` (true
 * for an old version). For a keyed table (merge, scd2) these are all rows
 * of every key the run's good rows or retracted rows touched, before and
 * after the write (a superset is safe); for append, the retracted rows and
 * the rows written. A replace table, a first build and a full refresh are a
 * full change.
 *
 * @module
 */
import { qualitySettings, type SilverTableConfig } from "../core/config/mod.ts";
import { ident, qualified } from "../core/quote.ts";
import type { RunContext } from "../core/run_context.ts";
import { tableColumns } from "./_catalog.ts";

/**
 * What a run changed in one silver table.
 *
 * @example
 * ```ts ignore
 * const change: SilverChange = { table: "orders", delta: '"_delta_orders"' };
 * ```
 */
export interface SilverChange {
  /** Silver table name. */
  table: string;
  /** Temp table (quoted) of the old and new versions of the changed rows. */
  delta?: string;
  /** Why the table changed wholesale (no delta). */
  full?: string;
}

interface DeltaInput {
  name: string;
  stage: string;
  files: string;
  exists: boolean;
  fullRefresh: boolean;
  stale?: { table: string };
}

function keysName(st: DeltaInput): string {
  return ident(`_dkeys_${st.name}`);
}

function touched(st: DeltaInput, table: SilverTableConfig, old: boolean): string {
  const target = qualified("silver", st.name);
  if (table.mode === "append") {
    return st.stale
      ? `SELECT t.*, ${old} AS _sluice_old FROM ${target} AS t
         WHERE [t._source_file, t._bronze_run_id] IN (SELECT [f, r] FROM ${st.stale.table})`
      : `SELECT t.*, ${old} AS _sluice_old FROM ${target} AS t WHERE FALSE`;
  }
  const same = (table.key ?? []).map((k) => `t.${ident(k)} IS NOT DISTINCT FROM k.${ident(k)}`)
    .join(" AND ");
  return `SELECT t.*, ${old} AS _sluice_old FROM ${target} AS t
    WHERE EXISTS (SELECT 1 FROM ${keysName(st)} AS k WHERE ${same})`;
}

/** The keys a keyed table's write touches: its good staged rows' and its retracted rows'. */
function keysSql(st: DeltaInput, table: SilverTableConfig): string {
  const key = table.key ?? [];
  const staleKeys = st.stale
    ? ` UNION SELECT ${key.map((k) => `t.${ident(k)}`).join(", ")}
        FROM ${qualified("silver", st.name)} AS t
        WHERE [t._source_file, t._bronze_run_id] IN (SELECT [f, r] FROM ${st.stale.table})`
    : "";
  return `SELECT ${key.map((k) => ident(k)).join(", ")} FROM ${st.stage}
    WHERE _quarantine IS NULL AND _rn = 1${staleKeys}`;
}

/**
 * True when the silver profile of a merge table is derived from its change
 * set (`quality.scope: changed` with checks and profiling on, see
 * `quality/profile.ts`), so the set is recorded even without incremental
 * gold models.
 */
function profiledFromDelta(ctx: RunContext, table: SilverTableConfig): boolean {
  const q = qualitySettings(ctx.config);
  return table.mode === "merge" && q.scope !== "full" && q.checks && q.profiling;
}

/**
 * Before silver writes a table: records the old versions of the rows it is
 * about to touch (`_sluice_old` true). Returns undefined when no gold model
 * is incremental and the table's profile is not derived from its change set.
 */
export async function beginDelta(
  ctx: RunContext,
  st: DeltaInput,
  table: SilverTableConfig,
): Promise<SilverChange | undefined> {
  const gold = Object.values(ctx.config.gold).some((m) => m.materialized === "incremental");
  if (!gold && !profiledFromDelta(ctx, table)) return;
  if (gold) {
    // Gold knows from this which silver tables changed since it last built a model.
    await ctx.db.run(`CREATE TABLE IF NOT EXISTS _sluice.silver_versions (
      table_name VARCHAR PRIMARY KEY, run_id VARCHAR)`);
    await ctx.db.run(`INSERT OR REPLACE INTO _sluice.silver_versions VALUES ($t, $r)`, {
      t: st.name,
      r: ctx.runId,
    });
  }
  if (table.mode === "replace") {
    return { table: st.name, full: "it is rebuilt every run (mode replace)" };
  }
  if (!st.exists) return { table: st.name, full: "it was built for the first time" };
  if (st.fullRefresh) return { table: st.name, full: "it was rebuilt (--full-refresh)" };
  if ((await tableColumns(ctx.db, "silver", st.name)).every((c) => c.name !== "_bronze_run_id")) {
    return { table: st.name, full: "it has no lineage columns yet" };
  }
  const delta = ident(`_delta_${st.name}`);
  if (table.mode !== "append") {
    await ctx.db.run(`CREATE OR REPLACE TEMP TABLE ${keysName(st)} AS ${keysSql(st, table)}`);
  }
  await ctx.db.run(`CREATE OR REPLACE TEMP TABLE ${delta} AS ${touched(st, table, true)}`);
  return { table: st.name, delta };
}

/** After silver wrote a table: adds the new versions of the touched rows (`_sluice_old` false). */
export async function endDelta(
  ctx: RunContext,
  st: DeltaInput,
  table: SilverTableConfig,
  change: SilverChange | undefined,
): Promise<void> {
  if (!change?.delta) return;
  const sql = table.mode === "append"
    ? `SELECT t.*, false AS _sluice_old FROM ${qualified("silver", st.name)} AS t
       WHERE [t._source_file, t._bronze_run_id] IN
         (SELECT [_source_file, _bronze_run_id] FROM ${st.files})`
    : touched(st, table, false);
  await ctx.db.run(`INSERT INTO ${change.delta} BY NAME ${sql}`);
  if (table.mode !== "append") await ctx.db.run(`DROP TABLE IF EXISTS ${keysName(st)}`);
}
