/**
 * Retraction in silver: finds the silver rows whose bronze rows no longer
 * exist (their file was re-sent or retracted) and takes them out again, in
 * the transaction that writes the run's new rows.
 *
 * Every silver row carries its lineage (`_source_file`, `_source_row`,
 * `_bronze_run_id`). A (file, bronze run) pair that silver still holds but
 * bronze no longer does is *stale*. A stale pair the manifest records as
 * `superseded` (the file was re-sent and re-landed) or `retracted` (`sluice
 * retract`, `on_missing: retract`) is retracted from silver; any other stale
 * pair is a {@linkcode ConservationError}: silver would hold rows nobody can
 * trace to bronze.
 *
 * What retraction means per mode:
 *
 * - `append`: the stale pairs' rows are deleted.
 * - `merge`: every key whose row came from a stale pair is recomputed from
 *   the bronze rows of that key that silver already processed and that
 *   still exist: the latest one by `order_by`, then the later run, then the
 *   later file and row, exactly as the incremental merges would have picked
 *   it; a key with no remaining row is removed. The run's new rows are
 *   merged on top afterwards, as in any run.
 * - `scd2`: every version of a key whose row came from a stale pair is
 *   deleted, and the key's history is rebuilt from its remaining processed
 *   bronze rows by replaying the silver runs that processed them, in order:
 *   each run's latest row of the key opens a version when it differs from
 *   the one before, valid from the time that run wrote silver.
 * - `replace`: nothing to do; the table is rebuilt from bronze every run.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { SilverTableConfig } from "../core/config/mod.ts";
import { ConservationError } from "../core/errors.ts";
import { ident, literal, qualified } from "../core/quote.ts";
import type { RunContext } from "../core/run_context.ts";
import { tableColumns } from "./_catalog.ts";
import { ensureManifest } from "./extract.ts";

/**
 * The stale lineage of one silver table, kept in a temp table.
 *
 * @example
 * ```ts ignore
 * const stale = await findStaleLineage(ctx, "orders", config.silver.orders);
 * // { table: '"_stale_orders"', pairs: 1, rows: 995 }
 * ```
 */
export interface StaleLineage {
  /** Temp table (quoted) of the stale pairs: `f` file, `r` bronze run, `n` silver rows. */
  table: string;
  /** Stale (file, bronze run) pairs. */
  pairs: number;
  /** Silver rows that belong to them. */
  rows: number;
}

/**
 * What retraction did to one silver table.
 *
 * @example
 * ```ts ignore
 * const counts: RetractionCounts = { retracted: 995, recomputed: 12 };
 * ```
 */
export interface RetractionCounts {
  /** Silver rows taken out (rows, or scd2 versions). */
  retracted: number;
  /** Rows (or versions) recomputed from the remaining bronze rows. */
  recomputed: number;
}

function retractLog(ctx: RunContext, name: string) {
  return getLogger(["sluice", "silver"]).with({
    run_id: ctx.runId,
    pipeline: ctx.config.pipeline,
    stage: "silver",
    table: name,
  });
}

/** The SQL condition "row `alias` belongs to a stale pair of `stale`". */
function inStale(stale: string, alias: string): string {
  return `[${alias}._source_file, ${alias}._bronze_run_id] IN (SELECT [f, r] FROM ${stale})`;
}

/**
 * True when `silver.<name>` has the lineage columns (tables built before
 * they existed do not, until a `--full-refresh`).
 */
export async function hasLineage(ctx: RunContext, name: string): Promise<boolean> {
  const cols = await tableColumns(ctx.db, "silver", name);
  return cols.some((c) => c.name === "_bronze_run_id");
}

/**
 * Finds the stale lineage of `silver.<name>` (see the module doc) with one
 * anti-join of silver's distinct (file, bronze run) pairs against bronze's,
 * and keeps it in a temp table. Returns undefined when there is none.
 * Throws a {@linkcode ConservationError} for stale pairs whose removal the
 * manifest does not record, unless `lenient` (a replace table, rebuilt from
 * bronze anyway, only needs to know that it must be rebuilt).
 */
export async function findStaleLineage(
  ctx: RunContext,
  name: string,
  table: SilverTableConfig,
  options: { lenient?: boolean } = {},
): Promise<StaleLineage | undefined> {
  const db = ctx.db;
  if (!(await hasLineage(ctx, name))) {
    retractLog(ctx, name).warn(
      "silver table has no lineage columns yet; re-sent files cannot be retracted from it " +
        "until it is rebuilt with --full-refresh",
      { event: "lineage_missing" },
    );
    return undefined;
  }
  await ensureManifest(db);
  const stale = ident(`_stale_${name}`);
  await db.run(
    `CREATE OR REPLACE TEMP TABLE ${stale} AS
     WITH s AS (
       SELECT _source_file AS f, _bronze_run_id AS r, count(*) AS n
       FROM ${qualified("silver", name)} WHERE _bronze_run_id IS NOT NULL GROUP BY ALL
     ), b AS (
       SELECT DISTINCT _source_file AS f, _run_id AS r FROM ${qualified("bronze", table.from)}
     )
     SELECT s.f, s.r, s.n, EXISTS (
         SELECT 1 FROM _sluice.files AS m
         WHERE m.source = ${literal(table.from)} AND m.path = s.f AND m.run_id = s.r
           AND m.status IN ('superseded', 'retracted')
       ) AS recorded
     FROM s WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.f IS NOT DISTINCT FROM s.f AND b.r = s.r)`,
  );
  const sum = (await db.one<{
    pairs: number;
    rows: number;
    unrecorded: number;
    unrecorded_rows: number;
    file: string | null;
    run: string | null;
  }>(
    `SELECT count(*) AS pairs, coalesce(sum(n), 0)::BIGINT AS rows,
       count(*) FILTER (WHERE NOT recorded) AS unrecorded,
       coalesce(sum(n) FILTER (WHERE NOT recorded), 0)::BIGINT AS unrecorded_rows,
       min(f) FILTER (WHERE NOT recorded) AS file,
       min(r) FILTER (WHERE NOT recorded) AS run
     FROM ${stale}`,
  ))!;
  if (sum.pairs === 0) {
    await db.run(`DROP TABLE IF EXISTS ${stale}`);
    return undefined;
  }
  if (sum.unrecorded > 0 && !options.lenient) {
    await db.run(`DROP TABLE IF EXISTS ${stale}`);
    throw new ConservationError(
      `Rows do not add up across runs in silver "${name}": ${sum.unrecorded_rows} rows come ` +
        `from bronze rows of "${table.from}" that no longer exist (file ${sum.file}, landed by ` +
        `run ${sum.run}), and no re-send or retraction of that file is recorded; rebuild ` +
        `silver from bronze with --full-refresh`,
      {
        context: {
          table: name,
          source: table.from,
          file: sum.file,
          bronze_run_id: sum.run,
          rows: sum.unrecorded_rows,
        },
      },
    );
  }
  return { table: stale, pairs: sum.pairs, rows: sum.rows };
}

/** The SQL condition "`a` and `b` have the same key". */
function sameKey(key: readonly string[], a: string, b: string): string {
  return key.map((k) => `${a}.${ident(k)} IS NOT DISTINCT FROM ${b}.${ident(k)}`).join(" AND ");
}

/**
 * Retracts the stale lineage of one silver table (see the module doc), in
 * the caller's transaction, before the run's new rows are written. For
 * merge and scd2, `replayStage` builds the staging SQL of the remaining
 * processed bronze rows from a files table and a row filter.
 */
export async function retractStale(
  ctx: RunContext,
  options: {
    name: string;
    table: SilverTableConfig;
    stale: StaleLineage;
    replayStage: (files: string, where: string) => string;
    latestFirst: (alias: string) => string;
  },
): Promise<RetractionCounts> {
  const { name, table, stale } = options;
  const db = ctx.db;
  const target = qualified("silver", name);
  const log = retractLog(ctx, name);
  if (table.mode === "append") {
    const retracted = await db.run(`DELETE FROM ${target} AS t WHERE ${inStale(stale.table, "t")}`);
    log.info("rows of re-sent or retracted files retracted", {
      event: "rows_retracted",
      mode: table.mode,
      rows: retracted,
    });
    return { retracted, recomputed: 0 };
  }
  const key = table.key ?? [];
  const keys = ident(`_rkeys_${name}`);
  const files = ident(`_rfiles_${name}`);
  const replay = ident(`_replay_${name}`);
  const keyCols = key.map((k) => `t.${ident(k)}`).join(", ");
  await db.run(
    `CREATE OR REPLACE TEMP TABLE ${keys} AS
     SELECT DISTINCT ${keyCols} FROM ${target} AS t WHERE ${inStale(stale.table, "t")}`,
  );
  const retracted = await db.run(
    `DELETE FROM ${target} AS t WHERE EXISTS (SELECT 1 FROM ${keys} AS k WHERE ${
      sameKey(key, "k", "t")
    })`,
  );
  // The processed bronze runs, each with the silver run that processed it;
  // file ids number the files in processing order, then path order.
  const processed = `SELECT bronze_run_id, arg_min(run_id, processed_at) AS run_id,
      min(processed_at) AS processed_at
    FROM _sluice.silver_progress WHERE table_name = ${literal(name)} GROUP BY 1`;
  await db.run(
    `CREATE OR REPLACE TEMP TABLE ${files} AS
     SELECT f AS _source_file, r AS _bronze_run_id, n AS _rows, p_run AS _silver_run_id,
       p_at AS _processed_at,
       (row_number() OVER (ORDER BY p_at, p_run, f ASC NULLS FIRST, r))::INTEGER AS _file_id
     FROM (SELECT src._source_file AS f, src._run_id AS r, count(*) AS n, p.run_id AS p_run,
             p.processed_at AS p_at
           FROM ${qualified("bronze", table.from)} AS src
           JOIN (${processed}) AS p ON src._run_id = p.bronze_run_id
           GROUP BY ALL)`,
  );
  const where = `src._run_id IN (SELECT bronze_run_id FROM _sluice.silver_progress
    WHERE table_name = ${literal(name)})`;
  await db.run(
    `CREATE OR REPLACE TEMP TABLE ${replay} AS
     SELECT r.* FROM (${options.replayStage(files, where)}) AS r
     WHERE r._quarantine IS NULL
       AND EXISTS (SELECT 1 FROM ${keys} AS k WHERE ${sameKey(key, "k", "r")})`,
  );
  const columns = Object.keys(table.columns);
  const cols = columns.map((c) => ident(c)).join(", ");
  const partition = key.map((k) => `r.${ident(k)}`).join(", ");
  let recomputed: number;
  if (table.mode === "merge") {
    recomputed = await db.run(
      `INSERT INTO ${target} BY NAME
       SELECT ${cols}, f._source_file, w._source_row, f._bronze_run_id
       FROM (SELECT r.*, row_number() OVER (PARTITION BY ${partition}
               ORDER BY ${options.latestFirst("r")}) AS __w
             FROM ${replay} AS r) AS w
       JOIN ${files} AS f USING (_file_id)
       WHERE w.__w = 1`,
    );
  } else {
    const attrs = columns.filter((c) => !key.includes(c));
    const byKey = key.map((k) => ident(k)).join(", ");
    const same = attrs.length
      ? attrs.map((c) => `lag(${ident(c)}) OVER k IS NOT DISTINCT FROM ${ident(c)}`).join(" AND ")
      : "TRUE";
    recomputed = await db.run(
      `INSERT INTO ${target} BY NAME
       SELECT * FROM (
         WITH w AS (
           SELECT r.*, f._source_file, f._bronze_run_id, f._silver_run_id, f._processed_at,
             row_number() OVER (PARTITION BY ${partition}, f._silver_run_id
               ORDER BY ${options.latestFirst("r")}) AS __w
           FROM ${replay} AS r JOIN ${files} AS f USING (_file_id)
         ), v AS (
           SELECT *, (row_number() OVER k = 1 OR NOT (${same})) AS __new
           FROM w WHERE __w = 1
           WINDOW k AS (PARTITION BY ${byKey} ORDER BY _processed_at, _silver_run_id)
         ), o AS (
           SELECT *, lead(_processed_at) OVER (PARTITION BY ${byKey}
               ORDER BY _processed_at, _silver_run_id) AS __to
           FROM v WHERE __new
         )
         SELECT ${cols}, _source_file, _source_row, _bronze_run_id,
           _processed_at AS valid_from, __to AS valid_to, __to IS NULL AS is_current
         FROM o
       )`,
    );
  }
  for (const t of [keys, files, replay]) await db.run(`DROP TABLE IF EXISTS ${t}`);
  log.info("rows of re-sent or retracted files retracted, their keys recomputed", {
    event: "rows_retracted",
    mode: table.mode,
    rows: retracted,
    recomputed,
  });
  return { retracted, recomputed };
}

/**
 * The cross-run conservation check after a retraction: no silver row of a
 * stale pair may remain. Drops the stale-pairs table.
 */
export async function checkRetracted(
  ctx: RunContext,
  name: string,
  stale: StaleLineage,
): Promise<void> {
  const left = await ctx.db.one<{ n: number }>(
    `SELECT count(*) AS n FROM ${qualified("silver", name)} AS t WHERE ${
      inStale(stale.table, "t")
    }`,
  );
  await ctx.db.run(`DROP TABLE IF EXISTS ${stale.table}`);
  if ((left?.n ?? 0) > 0) {
    throw new ConservationError(
      `Rows do not add up across runs in silver "${name}": ${left!.n} rows of re-sent or ` +
        `retracted files are still there after their retraction`,
      { context: { table: name, rows: left!.n } },
    );
  }
}
