/**
 * Retraction: takes a landed file's rows out of bronze and out of everything
 * derived from them (silver in every mode, the quarantine rows, gold), in
 * one transaction, and marks the file `retracted` in the manifest so it does
 * not land again unless it is re-sent with other content (`sluice retract`).
 *
 * Bronze, the manifest and the silver tables change in the same
 * transaction; silver finds the retracted rows by their lineage (see
 * `stages/_silver_retract.ts`), gold is rebuilt, both are audited like a
 * run (write, audit, publish: an error-level check failure rolls all of it
 * back, exit 3), and output is published after the commit. The run is
 * recorded in the ledger with command `retract`, and each file in
 * `_sluice.retractions`.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { isAbsolute, resolve } from "node:path";
import { stopErrorOf, UsageError } from "../core/errors.ts";
import { runStatusOf } from "../runtime/with_run.ts";
import { literal, qualified } from "../core/quote.ts";
import type { RunContext, RunSummary, StageResult, TableResult } from "../core/run_context.ts";
import {
  observeRunFinished,
  observeRunStarted,
  observeStageFinished,
  observeStageStarted,
} from "../observability/run_observer.ts";
import type { CheckResult } from "../quality/checks.ts";
import {
  auditLayer,
  gateFailures,
  type LayerAudit,
  qualityGateError,
  recordAudits,
  stagedEngine,
} from "../quality/gate.ts";
import { tableColumns } from "./_catalog.ts";
import { ensureManifest } from "./extract.ts";
import { gold } from "./gold.ts";
import { absoluteFile, relativeFile } from "./landed_files.ts";
import { output } from "./output.ts";
import { silver } from "./silver.ts";

/**
 * One retracted file.
 *
 * @example
 * ```ts ignore
 * const f: RetractedFile = { path: "orders_3.csv", rows: 1000 };
 * ```
 */
export interface RetractedFile {
  /** The file as the manifest names it. */
  path: string;
  /** Bronze rows removed. */
  rows: number;
}

/**
 * What {@linkcode retractFiles} did.
 *
 * @example
 * ```ts ignore
 * const r = await retractFiles(ctx, { source: "orders", files: ["orders_3.csv"] });
 * const removed = r.files.reduce((n, f) => n + f.rows, 0);
 * ```
 */
export interface RetractResult {
  /** The run's id (ledger command `retract`). */
  runId: string;
  /** The source. */
  source: string;
  /** The files retracted, with the bronze rows each had. */
  files: RetractedFile[];
  /** The stages' row accounting: bronze (rows removed), silver, gold, output. */
  stages: StageResult[];
  /** The silver and gold check results (quarantine budget included). */
  checks: CheckResult[];
}

async function ensureRetractions(ctx: RunContext): Promise<void> {
  await ctx.db.run(`CREATE TABLE IF NOT EXISTS _sluice.retractions (
    source VARCHAR, path VARCHAR, bronze_run_id VARCHAR, rows BIGINT, reason VARCHAR,
    run_id VARCHAR, retracted_at TIMESTAMPTZ)`);
}

/**
 * Removes files' rows from `bronze.<source>` (and their rejected lines from
 * `bronze.<source>__rejects`) and their quarantine rows from the silver
 * tables that read the source, marks them `retracted` in the
 * manifest and records them in `_sluice.retractions`, in the caller's
 * transaction. Silver retracts its own rows of them when it next runs.
 * `paths` name the files as the manifest does.
 *
 * @example
 * ```ts ignore
 * await ctx.db.transaction(() =>
 *   retractBronzeFiles(ctx, "orders", ["orders_3.csv"], { reason: "on_missing" })
 * );
 * ```
 */
export async function retractBronzeFiles(
  ctx: RunContext,
  source: string,
  paths: readonly string[],
  options: { reason: string },
): Promise<RetractedFile[]> {
  const db = ctx.db;
  await ensureManifest(db);
  await ensureRetractions(ctx);
  const log = getLogger(["sluice", "bronze"]).with({
    run_id: ctx.runId,
    pipeline: ctx.config.pipeline,
    stage: "bronze",
  });
  const hasBronze = (await tableColumns(db, "bronze", source)).length > 0;
  const silverTables = Object.entries(ctx.config.silver).filter(([, t]) => t.from === source);
  const now = literal(ctx.clock.now().toISOString());
  const out: RetractedFile[] = [];
  for (const path of paths) {
    const landing = await db.one<{ run_id: string }>(
      `SELECT run_id FROM _sluice.files WHERE source = $s AND path = $p AND status = 'ingested'
       ORDER BY ingested_at DESC LIMIT 1`,
      { s: source, p: path },
    );
    const rows = hasBronze
      ? await db.run(`DELETE FROM ${qualified("bronze", source)} WHERE _source_file = $p`, {
        p: path,
      })
      : 0;
    await db.run(
      `UPDATE _sluice.files SET status = 'retracted'
       WHERE source = $s AND path = $p AND status = 'ingested'`,
      { s: source, p: path },
    );
    // The lines bronze rejected from the file go with it.
    if ((await tableColumns(db, "bronze", `${source}__rejects`)).length > 0) {
      await db.run(`DELETE FROM ${qualified("bronze", `${source}__rejects`)} WHERE file = $p`, {
        p: path,
      });
    }
    for (const [name] of silverTables) {
      if ((await tableColumns(db, "silver", `${name}__quarantine`)).length === 0) continue;
      await db.run(
        `DELETE FROM ${qualified("silver", `${name}__quarantine`)} WHERE _source_file = $p`,
        { p: path },
      );
    }
    await db.run(
      `INSERT INTO _sluice.retractions VALUES ($s, $p, $b, $n, $reason, $r, ${now}::TIMESTAMPTZ)`,
      {
        s: source,
        p: path,
        b: landing?.run_id ?? null,
        n: rows,
        reason: options.reason,
        r: ctx.runId,
      },
    );
    log.info("file retracted", {
      event: "file_retracted",
      table: source,
      file: path,
      rows,
      reason: options.reason,
    });
    out.push({ path, rows });
  }
  return out;
}

/**
 * Resolves the files named on the command line to the manifest's names of
 * files the source has landed: the manifest's own name, a path relative to
 * the source folder, or a path relative to the working directory.
 */
async function resolveLanded(
  ctx: RunContext,
  source: string,
  files: readonly string[],
): Promise<string[]> {
  await ensureManifest(ctx.db);
  const landed = (await ctx.db.all<{ path: string }>(
    `SELECT DISTINCT path FROM _sluice.files WHERE source = $s AND status = 'ingested'
     ORDER BY path`,
    { s: source },
  )).map((r) => r.path);
  const byAbs = new Map(landed.map((p) => [absoluteFile(ctx.config, source, p), p]));
  const dir = ctx.config.sources[source].path;
  return files.map((f) => {
    const candidates = [
      f,
      absoluteFile(ctx.config, source, f),
      isAbsolute(f) ? f : resolve(f),
    ];
    for (const c of candidates) {
      if (landed.includes(c)) return c;
      if (byAbs.has(c)) return byAbs.get(c)!;
      const rel = relativeFile(dir, c);
      if (landed.includes(rel)) return rel;
    }
    const shown = landed.slice(0, 10).map((p) => p.startsWith(dir) ? relativeFile(dir, p) : p);
    throw new UsageError(
      `Cannot retract from source "${source}": it has no landed file ${JSON.stringify(f)} ` +
        `(landed: ${shown.join(", ") || "none"}${
          landed.length > 10 ? ", …" : ""
        }; see sluice files)`,
      { context: { source, file: f } },
    );
  });
}

/**
 * `sluice retract`: removes the named files' rows from bronze and from
 * everything derived, in one transaction (see the module doc), and
 * publishes the rebuilt output. Throws a `UsageError` for a file the source
 * has not landed (or already retracted) and a `QualityGateError` (exit 3,
 * nothing changed) when the rebuilt silver or gold fails an error-level check.
 *
 * @example
 * ```ts ignore
 * const r = await retractFiles(ctx, { source: "orders", files: ["orders_2026-01-03.csv"] });
 * // r.files: [{ path: "orders_2026-01-03.csv", rows: 1000 }]
 * ```
 */
export async function retractFiles(
  ctx: RunContext,
  options: { source: string; files: readonly string[]; reason?: string },
): Promise<RetractResult> {
  const { source } = options;
  if (!ctx.config.sources[source]) {
    throw new UsageError(
      `Cannot retract from source "${source}": no such source (sources: ${
        Object.keys(ctx.config.sources).join(", ") || "none"
      })`,
      { context: { source } },
    );
  }
  if (options.files.length === 0) {
    throw new UsageError(`Cannot retract from source "${source}": name at least one file`);
  }
  const started = performance.now();
  const summary: RunSummary & { checks: CheckResult[] } = {
    runId: ctx.runId,
    status: "success",
    durationMs: 0,
    stages: [],
    noop: false,
    checks: [],
  };
  await observeRunStarted(ctx, { command: "retract", stages: ["bronze", "silver", "gold"] });
  const staged: RunContext = { ...ctx, db: stagedEngine(ctx.db) };
  const audits: LayerAudit[] = [];
  let retracted: RetractedFile[] = [];
  try {
    const paths = await resolveLanded(ctx, source, options.files);
    const built: StageResult[] = [];
    await ctx.db.transaction(async () => {
      observeStageStarted(ctx, "bronze");
      const t0 = performance.now();
      retracted = await retractBronzeFiles(staged, source, paths, {
        reason: options.reason ?? "retract",
      });
      const removed = retracted.reduce((n, f) => n + f.rows, 0);
      const bronzeResult: TableResult = {
        layer: "bronze",
        table: source,
        rowsIn: 0,
        passed: 0,
        quarantined: 0,
        duplicates: 0,
        details: { retracted_files: retracted.length, retracted_rows: removed },
      };
      built.push({ stage: "bronze", durationMs: performance.now() - t0, tables: [bronzeResult] });
      for (const layer of ["silver", "gold"] as const) {
        observeStageStarted(ctx, layer);
        const result = layer === "silver" ? await silver(staged) : await gold(staged);
        built.push(result);
        const audit = await auditLayer(
          staged,
          layer,
          layer === "silver" ? { silverResults: result.tables } : {},
        );
        audits.push(audit);
        const failed = gateFailures(audit.results);
        if (failed.length > 0) throw qualityGateError(failed, { layer, published: false });
      }
      await recordAudits(staged, audits);
    });
    summary.checks.push(...audits.flatMap((a) => a.results));
    for (const r of built) {
      summary.stages.push(r);
      await observeStageFinished(ctx, r);
    }
    await ctx.db.checkpoint();
    observeStageStarted(ctx, "output");
    const out = await output(ctx);
    summary.stages.push(out);
    await observeStageFinished(ctx, out);
  } catch (caught) {
    const e = stopErrorOf(ctx.signal) ?? caught;
    if (ctx.signal?.aborted) ctx.db.resume();
    summary.status = "failed";
    summary.durationMs = performance.now() - started;
    await observeRunFinished(ctx, summary, { error: e, status: runStatusOf(e) });
    throw e;
  }
  summary.durationMs = performance.now() - started;
  await observeRunFinished(ctx, summary);
  return {
    runId: ctx.runId,
    source,
    files: retracted,
    stages: summary.stages,
    checks: summary.checks,
  };
}

/**
 * Retracts, in one transaction, the files `on_missing: retract` found gone
 * from their folders (see `checkMissingFiles` in `stages/landed_files.ts`):
 * their bronze rows, quarantine rows and manifest entries. The run's silver
 * stage then retracts their silver rows, in its write-audit-publish
 * transaction. Returns the files retracted per source.
 *
 * @example
 * ```ts ignore
 * const { retract } = await checkMissingFiles(ctx);
 * await retractMissing(ctx, retract);
 * ```
 */
export async function retractMissing(
  ctx: RunContext,
  bySource: Readonly<Record<string, readonly string[]>>,
): Promise<Record<string, RetractedFile[]>> {
  const out: Record<string, RetractedFile[]> = {};
  const todo = Object.entries(bySource).filter(([, files]) => files.length > 0);
  if (todo.length === 0) return out;
  await ctx.db.transaction(async () => {
    for (const [source, files] of todo) {
      out[source] = await retractBronzeFiles(ctx, source, files, { reason: "on_missing" });
    }
  });
  return out;
}
