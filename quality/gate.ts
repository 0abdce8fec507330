/**
 * The audit step of write-audit-publish. {@linkcode auditLayer} profiles the
 * tables of a layer and runs their checks; {@linkcode gateFailures} picks the
 * results that must stop the run (error-level checks that failed or could
 * not be evaluated); {@linkcode qualityGateError} says which, with counts.
 *
 * The pipeline runner builds silver and gold inside one transaction on a
 * {@linkcode stagedEngine} (no checkpoints while staged), audits the staged
 * tables, and commits only when the gate passes; see `stages/pipeline.ts`.
 * {@linkcode checkTables} runs the checks alone against the current tables
 * (`sluice check`).
 *
 * @module
 */
import { qualitySettings } from "../core/config/mod.ts";
import type { Engine } from "../core/engine.ts";
import { QualityGateError } from "../core/errors.ts";
import { literal, qualified } from "../core/quote.ts";
import type { RunContext, RunSummary, TableResult } from "../core/run_context.ts";
import { observeRunFinished, observeRunStarted } from "../observability/run_observer.ts";
import {
  type CheckResult,
  type CheckTarget,
  checkTargets,
  dropTempTables,
  type Layer,
  runChecks,
  tableColumns,
} from "./checks.ts";
import {
  appendedRows,
  ensureCheckState,
  forgetCheckState,
  planScope,
  saveCheckState,
} from "./_scope.ts";
import type { SilverWrite } from "./types.ts";

export type { SilverWrite } from "./types.ts";
import { observeCheckResults, observeProfiles } from "./events.ts";
import { recordCheckResults, recordProfiles } from "./history.ts";
import { profileTable, type TableProfile } from "./profile.ts";

/** Bronze's bookkeeping columns, left out of bronze profiles. */
const BRONZE_BOOKKEEPING = ["_run_id", "_ingested_at", "_source_file", "_source_row"];

/** Silver's lineage columns, left out of silver profiles. */
const SILVER_LINEAGE = ["_source_file", "_source_row", "_bronze_run_id"];

/** What auditing one layer found. */
export interface LayerAudit {
  /** The layer. */
  layer: Layer;
  /** One result per check, in config order. */
  results: CheckResult[];
  /** One profile per profiled table. */
  profiles: TableProfile[];
  /** Wall time in milliseconds. */
  durationMs: number;
}

/** Options of {@linkcode auditLayer}. */
export interface AuditOptions {
  /**
   * Which rows bronze and quarantine checks see: `run` (the rows this run
   * landed or quarantined; the default) or `latest` (the latest batch in the
   * table, for `sluice check`) or `all` (every row, for `sluice check --full`).
   */
  batch?: "run" | "latest" | "all";
  /** Bronze only: the sources that landed rows in this run (batch `run`). Default all. */
  sources?: readonly string[];
  /** Run the checks. Default `quality.checks`. */
  checks?: boolean;
  /** Profile every table. Default `quality.profiling`; tables with drift checks always are. */
  profiling?: boolean;
  /** Only these tables (silver table names also select their quarantine checks). */
  tables?: readonly string[];
  /**
   * Silver only: the silver stage's row accounting of this run, for the
   * quarantine budget (`max_quarantine`, see {@linkcode quarantineBudget}).
   */
  silverResults?: readonly TableResult[];
  /**
   * Silver, `quality.scope: changed`: what the silver stage did to each
   * table it wrote in this run (a table not listed was not written). With
   * it, row-level checks read only the rows the run wrote and the rows that
   * failed them last time (see `quality/_scope.ts`); without it, every row.
   * Either way a silver audit of batch `run` keeps the failing rows for the
   * next run, in the caller's transaction.
   */
  silverWrites?: readonly SilverWrite[];
}

/** How a silver table was checked, for the `layer_audited` event. */
interface TableScope {
  table: string;
  scope: "changed" | "full";
  rows_checked: number;
  /** Why checks were read in full, by check name (scope `changed` asked for). */
  full?: Record<string, string>;
}

/**
 * The change set of a merge table that silver wrote this run without
 * rebuilding it, for a profile derived from it (`quality/profile.ts`).
 */
function deltaOf(
  ctx: RunContext,
  table: string,
  writes: readonly SilverWrite[],
): { delta: string } | string | undefined {
  if (ctx.config.silver[table]?.mode !== "merge") return undefined;
  const write = writes.find((w) => w.table === table);
  if (write === undefined) return "not written";
  if (write.rebuilt) return "rebuilt";
  return write.delta === undefined ? "no change set" : { delta: write.delta };
}

/** The tables of a layer, as the config declares them. */
function layerTables(ctx: RunContext, layer: Layer): string[] {
  const c = ctx.config;
  return Object.keys(layer === "bronze" ? c.sources : layer === "silver" ? c.silver : c.gold);
}

/**
 * Profiles the tables of a layer and runs their checks. Bronze tables are
 * profiled and checked on the batch of rows the run landed; silver and gold
 * tables whole; quarantine checks see the rows this run quarantined.
 * Results and profiles are logged and set on the run's metrics, not stored
 * (see {@linkcode recordAudits}).
 *
 * @example
 * ```ts ignore
 * const audit = await auditLayer(ctx, "silver");
 * const failed = gateFailures(audit.results);
 * ```
 */
export async function auditLayer(
  ctx: RunContext,
  layer: Layer,
  options: AuditOptions = {},
): Promise<LayerAudit> {
  const started = performance.now();
  const settings = qualitySettings(ctx.config);
  const batch = options.batch ?? "run";
  const doChecks = options.checks ?? settings.checks;
  const doProfiles = options.profiling ?? settings.profiling;
  const wanted = (table: string) =>
    (options.tables === undefined || options.tables.includes(table)) &&
    (layer !== "bronze" || batch !== "run" || options.sources === undefined ||
      options.sources.includes(table));

  const bronzeScope = (table: string) =>
    batch === "all"
      ? undefined
      : batch === "run"
      ? `_run_id = ${literal(ctx.runId)}`
      : `_ingested_at = (SELECT max(_ingested_at) FROM ${qualified("bronze", table)})`;
  const quarantineScope = (table: string) =>
    batch === "all"
      ? undefined
      : batch === "run"
      ? `_run_id = ${literal(ctx.runId)}`
      : `_run_id = (SELECT _run_id FROM ${
        qualified("silver", table)
      } ORDER BY _quarantined_at DESC, _run_id DESC LIMIT 1)`;

  const targets: CheckTarget[] = [];
  if (doChecks) {
    for (const t of checkTargets(ctx.config, layer)) {
      const owner = t.quarantine ? t.table.replace(/__quarantine$/, "") : t.table;
      if (!wanted(owner)) continue;
      if (layer === "bronze") t.scope = bronzeScope(t.table);
      if (t.quarantine) t.scope = quarantineScope(t.table);
      targets.push(t);
    }
  }

  const toProfile = new Set<string>();
  if (doProfiles) { for (const t of layerTables(ctx, layer)) if (wanted(t)) toProfile.add(t); }
  for (const t of targets) {
    if (!t.quarantine && t.checks.some((c) => c.type === "drift")) toProfile.add(t.table);
  }
  const profiles: TableProfile[] = [];
  // `quality.scope: changed`: a silver table that only gained rows is profiled incrementally.
  const incremental = layer === "silver" && batch === "run" && settings.scope !== "full" &&
    doChecks && options.silverWrites !== undefined;
  for (const table of toProfile) {
    let appended: { filter: string; runId: string } | undefined;
    let notDerived: string | undefined;
    const merged = incremental ? deltaOf(ctx, table, options.silverWrites ?? []) : undefined;
    const delta = typeof merged === "object" ? merged.delta : undefined;
    if (typeof merged === "string") notDerived = merged;
    else if (incremental && delta === undefined) {
      const names = (await ctx.db.all<{ name: string }>(
        `SELECT column_name AS name FROM duckdb_columns()
         WHERE database_name = current_database() AND schema_name = 'silver' AND table_name = $t`,
        { t: table },
      )).map((c) => c.name);
      const a = await appendedRows(ctx, table, options.silverWrites ?? [], names);
      appended = typeof a === "string" ? undefined : { filter: a.filter, runId: ctx.runId };
      notDerived = typeof a === "string" ? a : undefined;
    }
    const p = await profileTable(ctx.db, { layer, schema: layer, table }, {
      appended,
      delta: delta === undefined ? undefined : { table: delta, runId: ctx.runId },
      keepStates: incremental ? ctx.runId : undefined,
      scope: layer === "bronze" ? bronzeScope(table) : undefined,
      exclude: layer === "bronze"
        ? BRONZE_BOOKKEEPING
        : layer === "silver"
        ? SILVER_LINEAGE
        : undefined,
    });
    if (notDerived !== undefined) Object.assign(p, { method: "full", fullReason: notDerived });
    if (p.columns.length > 0) profiles.push(p);
  }
  observeProfiles(ctx, profiles);

  const results: CheckResult[] = [];
  const sampleSize = settings.sample_size;
  // Silver checks of a run keep their failing rows for `quality.scope: changed`.
  const keepState = layer === "silver" && batch === "run" && settings.scope !== "full";
  if (layer === "silver" && batch === "run" && !keepState) await forgetCheckState(ctx.db);
  if (keepState && !doChecks) await forgetCheckState(ctx.db);
  if (keepState && doChecks) await ensureCheckState(ctx.db);
  const scopes: TableScope[] = [];
  for (const t of targets) {
    const profile = profiles.find((p) => p.table === t.table && !t.quarantine);
    const tracked = keepState && !t.quarantine;
    const columns = tracked ? await tableColumns(ctx.db, t) : [];
    const plan = !tracked ? undefined : options.silverWrites === undefined
      ? {
        candidates: { rows: "", checks: new Set<string>() },
        full: new Map([["*", "no change set"]]),
      }
      : await planScope(ctx, t.table, { checks: t.checks, columns, writes: options.silverWrites });
    if (plan !== undefined) t.candidates = plan.candidates;
    const failing = new Map<string, string>();
    const temps: string[] = [];
    const found = await runChecks(ctx, t, { sampleSize, profile, failing, temps });
    results.push(...found);
    if (found.some((r) => r.aborted)) break;
    if (plan !== undefined) {
      await saveCheckState(ctx, t.table, { checks: t.checks, columns, results: found, failing });
    }
    await dropTempTables(ctx.db, temps);
    if (plan === undefined) continue;
    const scoped = found.filter((r) => r.scope !== undefined);
    scopes.push({
      table: t.table,
      scope: scoped.some((r) => r.scope === "changed") ? "changed" : "full",
      rows_checked: Math.max(0, ...scoped.map((r) => r.rowsChecked ?? 0)),
      ...(plan.full.size > 0 ? { full: Object.fromEntries(plan.full) } : {}),
    });
  }
  if (layer === "silver" && options.silverResults && doChecks) {
    results.push(...await quarantineBudget(ctx, options.silverResults));
  }
  observeCheckResults(ctx, results);
  const durationMs = performance.now() - started;
  if (targets.length > 0 || profiles.length > 0) {
    ctx.logger.getChild("quality").with({ stage: layer }).info("layer audited", {
      event: "layer_audited",
      layer,
      checks: results.length,
      passed: results.filter((r) => r.status === "pass").length,
      failed: results.filter((r) => r.status === "fail").length,
      errored: results.filter((r) => r.status === "error").length,
      tables_profiled: profiles.length,
      ...(profiles.some((p) => p.method !== undefined)
        ? {
          profiles: profiles.map((p) => ({
            table: p.table,
            method: p.method ?? "full",
            ...(p.fullReason ? { full: p.fullReason } : {}),
            duration_ms: Math.round(p.durationMs),
          })),
        }
        : {}),
      ...(scopes.length > 0 ? { scopes } : {}),
      duration_ms: Math.round(durationMs),
    });
  }
  return { layer, results, profiles, durationMs };
}

/**
 * One grouped quarantine reason of a run.
 *
 * @example
 * ```ts ignore
 * const r: QuarantineReason = { reason: 'column "d": cannot cast … to DATE', rows: 40, example: "01/02/2026" };
 * ```
 */
export interface QuarantineReason {
  /** The reason with the refused value left out, e.g. `column "d": cannot cast … to DATE`. */
  reason: string;
  /** Rows refused for it. */
  rows: number;
  /** One refused value, for cast failures. */
  example: string | null;
}

/**
 * The most frequent quarantine reasons of this run's rows in
 * `silver.<table>__quarantine`, the refused value left out so that one
 * systematic mistake is one line.
 *
 * @example
 * ```ts ignore
 * const [top] = await topQuarantineReasons(ctx, "orders");
 * // { reason: 'column "order_date": cannot cast … to DATE', rows: 3201, example: "01/02/2026" }
 * ```
 */
export async function topQuarantineReasons(
  ctx: RunContext,
  table: string,
  options: { limit?: number } = {},
): Promise<QuarantineReason[]> {
  const rows = await ctx.db.all<QuarantineReason & Record<string, unknown>>(
    `WITH parts AS (
       SELECT unnest(string_split(_reason, '; ')) AS part
       FROM ${qualified("silver", `${table}__quarantine`)} WHERE _run_id = $run_id
     )
     SELECT regexp_replace(part, '^(column "[^"]*": cannot cast ).*( to [^ ]+)$', '\\1…\\2')
         AS reason,
       count(*) AS rows,
       any_value(regexp_extract(part, '^column "[^"]*": cannot cast (.*) to [^ ]+$', 1))
         AS example
     FROM parts GROUP BY 1 ORDER BY rows DESC, reason LIMIT ${options.limit ?? 3}`,
    { run_id: ctx.runId },
  );
  return rows.map((r) => ({
    reason: r.reason,
    rows: Number(r.rows),
    example: r.example === "" ? null : r.example,
  }));
}

const fmt = (n: number) => n.toLocaleString("en-US");

/**
 * Whether `quarantined` of `rowsIn` rows exceeds a `max_quarantine` budget
 * (a row count, or a percentage text such as `"5%"`).
 *
 * @example
 * ```ts
 * import { overQuarantineBudget } from "./gate.ts";
 * overQuarantineBudget("10%", { quarantined: 3201, rowsIn: 3201 }); // true
 * overQuarantineBudget(25, { quarantined: 3, rowsIn: 50 }); // false
 * ```
 */
export function overQuarantineBudget(
  budget: number | string,
  counts: { quarantined: number; rowsIn: number },
): boolean {
  const q = counts.quarantined;
  return typeof budget === "number"
    ? q > budget
    : q * 100 > Number(budget.replace("%", "").trim()) * counts.rowsIn;
}

/**
 * The quarantine budget of each silver table this run wrote, as check
 * results (type `quarantine_budget`, check `max_quarantine`): more
 * quarantined rows than the table's `max_quarantine` (default `10%` of its
 * rows in) is an error-level failure that stops the publish; quarantined
 * rows within the budget are a warning; a table that quarantined nothing
 * gets no result. Each result names the top reasons with their counts.
 *
 * @example
 * ```ts ignore
 * const results = await quarantineBudget(ctx, silverStage.tables);
 * ```
 */
export async function quarantineBudget(
  ctx: RunContext,
  tables: readonly TableResult[],
): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const tr of tables) {
    const config = ctx.config.silver[tr.table];
    if (!config || tr.quarantined === 0) continue;
    const budget = config.max_quarantine ?? "10%";
    const q = tr.quarantined;
    const over = overQuarantineBudget(budget, { quarantined: q, rowsIn: tr.rowsIn });
    const pct = (100 * q / tr.rowsIn).toFixed(q === tr.rowsIn ? 0 : 2);
    let message = `${fmt(q)} of ${fmt(tr.rowsIn)} rows (${pct}%) quarantined` +
      (over ? `, more than max_quarantine ${budget}` : `, within max_quarantine ${budget}`);
    const reasons = await topQuarantineReasons(ctx, tr.table);
    message += `; top reasons: ${
      reasons.map((r) =>
        `${r.reason} (${fmt(r.rows)} rows${
          r.example === null ? "" : `, e.g. ${JSON.stringify(r.example)}`
        })`
      ).join("; ")
    }`;
    out.push({
      layer: "silver",
      table: tr.table,
      check: "max_quarantine",
      type: "quarantine_budget",
      severity: over ? "error" : "warn",
      column: null,
      status: "fail",
      failingRows: q,
      totalRows: tr.rowsIn,
      threshold: String(budget),
      message,
      samples: [],
      checkedAt: ctx.clock.now(),
    });
  }
  return out;
}

/**
 * Stores audits in the quality history (`_sluice.check_results`,
 * `_sluice.check_failures`, `_sluice.profiles`).
 *
 * @example
 * ```ts ignore
 * await recordAudits(ctx, [audit]);
 * ```
 */
export async function recordAudits(ctx: RunContext, audits: readonly LayerAudit[]): Promise<void> {
  await recordCheckResults(ctx.db, ctx.runId, audits.flatMap((a) => a.results));
  await recordProfiles(ctx.db, ctx.runId, audits.flatMap((a) => a.profiles), ctx.clock.now());
}

/**
 * The results that stop a run: error-level checks that failed or could not
 * be evaluated, and any check whose SQL error aborted the transaction.
 *
 * @example
 * ```ts ignore
 * if (gateFailures(audit.results).length > 0) throw qualityGateError(...);
 * ```
 */
export function gateFailures(results: readonly CheckResult[]): CheckResult[] {
  return results.filter((r) => (r.severity === "error" && r.status !== "pass") || r.aborted);
}

/**
 * One line per failed check: `silver.orders unique_order_id: 20 of 1,010 rows (1.98%) fail...`.
 *
 * @example
 * ```ts ignore
 * const shown = describeFailures(failed).join("\n");
 * ```
 */
export function describeFailures(failures: readonly CheckResult[]): string[] {
  return failures.map((r) =>
    `${r.layer}.${r.table} ${r.check} (${r.type}, ${r.severity}, ${r.status}): ${r.message}`
  );
}

/**
 * The error that ends a run whose gate failed (exit code 3), listing the
 * failed checks with their counts.
 *
 * @example
 * ```ts ignore
 * throw qualityGateError(failed, { layer: "silver", published: false });
 * ```
 */
export function qualityGateError(
  failures: readonly CheckResult[],
  options: { layer?: string; published?: boolean } = {},
): QualityGateError {
  const n = failures.length;
  const where = options.layer ? ` in ${options.layer}` : "";
  const tail = options.published === false ? "; nothing was published" : "";
  const head = `Data-quality gate failed${where}: ${n} check${n === 1 ? "" : "s"} failed${tail}`;
  return new QualityGateError(
    [head, ...describeFailures(failures).map((l) => `  ${l}`)].join("\n"),
    {
      context: {
        layer: options.layer,
        failed_checks: failures.map((r) => ({
          layer: r.layer,
          table: r.table,
          check: r.check,
          status: r.status,
          failing_rows: r.failingRows,
          total_rows: r.totalRows,
        })),
      },
    },
  );
}

/**
 * The run's engine for staged (not yet published) work: the same database
 * and transaction, but `checkpoint()` does nothing, because DuckDB cannot
 * checkpoint inside a transaction. The runner checkpoints after the commit.
 *
 * @example
 * ```ts ignore
 * const staged = { ...ctx, db: stagedEngine(ctx.db) };
 * await ctx.db.transaction(() => silver(staged));
 * ```
 */
export function stagedEngine(db: Engine): Engine {
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "checkpoint") return () => Promise.resolve();
      const value = Reflect.get(target, prop, target);
      // Methods run on the real engine (it keeps private state).
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** What `sluice check` found. */
export interface CheckCommandResult {
  /** Every check result, bronze first. */
  results: CheckResult[];
  /** The results that fail the gate. */
  failed: CheckResult[];
  /** Profiles taken for drift checks. */
  profiles: TableProfile[];
}

/**
 * Runs the checks alone against the current tables (`sluice check`): bronze
 * and quarantine checks see the latest batch in their table, or every row
 * with `full` (`sluice check --full`, a full audit). The run is
 * recorded in the ledger with command `check` and its results in the
 * quality history; it ends `quality_failed` when an error-level check
 * fails. Does not throw for failed checks: the caller decides.
 *
 * @example
 * ```ts ignore
 * const { results, failed } = await checkTables(ctx, { layers: ["silver"] });
 * if (failed.length > 0) throw qualityGateError(failed);
 * ```
 */
export async function checkTables(
  ctx: RunContext,
  options: { layers?: readonly Layer[]; tables?: readonly string[]; full?: boolean } = {},
): Promise<CheckCommandResult> {
  const layers = options.layers ?? ["bronze", "silver", "gold"];
  const started = performance.now();
  const summary: RunSummary = {
    runId: ctx.runId,
    status: "success",
    durationMs: 0,
    stages: [],
    noop: false,
  };
  await observeRunStarted(ctx, { command: "check", stages: [...layers] });
  const audits: LayerAudit[] = [];
  try {
    for (const layer of layers) {
      audits.push(
        await auditLayer(ctx, layer, {
          batch: options.full ? "all" : "latest",
          checks: true,
          profiling: false,
          tables: options.tables,
        }),
      );
    }
    await ctx.db.transaction(() => recordAudits(ctx, audits));
  } catch (e) {
    summary.status = "failed";
    summary.durationMs = performance.now() - started;
    await observeRunFinished(ctx, summary, { error: e });
    throw e;
  }
  const results = audits.flatMap((a) => a.results);
  const failed = gateFailures(results);
  summary.durationMs = performance.now() - started;
  if (failed.length > 0) {
    summary.status = "failed";
    await observeRunFinished(ctx, summary, {
      status: "quality_failed",
      error: qualityGateError(failed),
    });
  } else {
    await observeRunFinished(ctx, summary);
  }
  return { results, failed, profiles: audits.flatMap((a) => a.profiles) };
}
