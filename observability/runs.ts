/**
 * Reading the run ledger back: recent runs with per-stage figures
 * (`sluice runs`), one run in full with its data-quality results and
 * manifest (`sluice runs --show`), as JSON or as text for a terminal. The
 * aggregation happens in DuckDB; TypeScript only formats.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { openPipelineDb } from "../core/pipeline_db.ts";
import type { Engine } from "../core/engine.ts";
import type { PipelineConfig } from "../core/config/mod.ts";
import { LockHeldError, UsageError } from "../core/errors.ts";
import { openLedgerReplica } from "../core/ledger_replica.ts";
import { ensureLedger, tableExists } from "./ledger.ts";
import { readManifest, type RunManifest } from "./run_manifest.ts";

/** Figures of one table in one stage of a run. */
export interface TableFigures {
  /** Layer (extract counts files). */
  layer: string;
  /** Table or source name. */
  table: string;
  /** Rows (files for extract) that entered the stage. */
  rows_in: number;
  /** Rows written onward. */
  passed: number;
  /** Rows quarantined. */
  quarantined: number;
  /** Rows dropped as duplicates (files unchanged, for extract). */
  duplicates: number;
  /** `rows` or `files`. */
  unit: string;
}

/** Figures of one stage of a run. */
export interface StageFigures {
  /** Stage name. */
  stage: string;
  /** Wall time in milliseconds. */
  duration_ms: number;
  /** True when the stage had nothing to do. */
  skipped: boolean;
  /** Sums over the stage's tables (rows only; extract's files are not summed). */
  rows_in: number;
  /** Rows written onward. */
  passed: number;
  /** Rows quarantined. */
  quarantined: number;
  /** Rows dropped as duplicates. */
  duplicates: number;
  /** Per-table figures. */
  tables: TableFigures[];
}

/** Counts of data-quality check results of a run. */
export interface CheckCounts {
  /** Checks that passed. */
  pass: number;
  /** Checks that failed. */
  fail: number;
  /** Checks that could not run. */
  error: number;
}

/** One run as listed by `sluice runs`. */
export interface RunRecord {
  /** Run id. */
  run_id: string;
  /** Pipeline name. */
  pipeline: string;
  /** Command (`run`, `stream`...). */
  command: string;
  /** What started it (`cli`, `cron`...). */
  trigger: string;
  /**
   * `running`, `success`, `failed`, `quality_failed`, `timed_out` (past its time limit),
   * `cancelled` (SIGINT/SIGTERM), `skipped` (another run held the lock), `abandoned` (killed
   * before it recorded an end; noticed by a later run).
   */
  status: string;
  /** The error of a failed run. */
  error: string | null;
  /** Start, ISO 8601 UTC. */
  started_at: string;
  /** End, ISO 8601 UTC (null while running or after a crash). */
  finished_at: string | null;
  /** finished - started, seconds. */
  duration_seconds: number | null;
  /** Config hash. */
  config_hash: string | null;
  /** Sluice version. */
  sluice_version: string | null;
  /** DuckDB version. */
  duckdb_version: string | null;
  /** Per-stage figures in run order. */
  stages: StageFigures[];
  /** Check counts, or null when the data-quality tables do not exist. */
  checks: CheckCounts | null;
}

/** One data-quality check result, with failing samples. */
export interface RecordedCheck {
  /** Layer checked. */
  layer: string;
  /** Table checked. */
  table_name: string;
  /** Check name. */
  check_name: string;
  /** Check type (not_null, unique...). */
  check_type: string | null;
  /** error or warn. */
  severity: string | null;
  /** Column checked. */
  column_name: string | null;
  /** pass, fail or error. */
  status: string;
  /** Rows failing. */
  failing_rows: number | null;
  /** Rows checked. */
  total_rows: number | null;
  /** Threshold. */
  threshold: string | null;
  /** Message. */
  message: string | null;
  /** Some failing rows (`row_key`, `sample`). */
  samples: { row_key: string | null; sample: unknown }[];
}

/** One run in full: `sluice runs --show`. */
export interface RunDetail extends RunRecord {
  /** Every check result of the run (empty when the tables do not exist). */
  check_results: RecordedCheck[];
  /** What produced the run. */
  manifest: RunManifest | null;
}

/**
 * Opens the pipeline's database for reading the ledger, or returns
 * `undefined` when it does not exist yet (no run has happened). While a run
 * holds the database, this fails with a `LockHeldError` (exit 75).
 *
 * @example
 * ```ts ignore
 * const db = await openLedger(config);
 * if (!db) throw new Error(String("no runs yet"));
 * ```
 */
export async function openLedger(config: PipelineConfig): Promise<Engine | undefined> {
  try {
    await Deno.stat(config.engine.database);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  let db: Engine;
  try {
    db = await openPipelineDb(config, { access: "ledger" });
  } catch (e) {
    // A running stream holds the database: show the replica it writes after each batch.
    const replica = e instanceof LockHeldError ? await openLedgerReplica(config) : undefined;
    if (replica === undefined) throw e;
    getLogger(["sluice", "ledger"]).warn(
      "the database is held by a running stream; showing the ledger replica as of {at}",
      { event: "ledger_replica_shown", at: replica.at.toISOString(), path: replica.path },
    );
    return replica.db;
  }
  try {
    await ensureLedger(db); // brings a ledger written by an older version up to date
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

const RUN_JSON = `{
  run_id: r.run_id, pipeline: r.pipeline, command: r.command, trigger: r.trigger,
  status: r.status, error: r.error,
  started_at: strftime(r.started_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%gZ'),
  finished_at: strftime(r.finished_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%gZ'),
  duration_seconds: round(coalesce(r.duration_ms / 1000,
    epoch(r.finished_at) - epoch(r.started_at)), 3),
  config_hash: r.config_hash, sluice_version: r.sluice_version, duckdb_version: r.duckdb_version,
  stages: coalesce(st.stages, []),
  checks: CHECKS
}`;

const STAGES_CTE = `st_tables AS (
    SELECT run_id, stage, layer, table_name, rows_in, passed, quarantined, duplicates, duration_ms,
      skipped, coalesce(json_extract_string(details, '$.unit'), 'rows') AS unit,
      row_number() OVER () AS seq
    FROM _sluice.stage_tables WHERE run_id IN (SELECT run_id FROM chosen)
  ), st_stage AS (
    SELECT run_id, stage, min(seq) AS seq, max(duration_ms) AS duration_ms,
      bool_and(skipped) AS skipped,
      sum(rows_in) FILTER (WHERE unit = 'rows') AS rows_in,
      sum(passed) FILTER (WHERE unit = 'rows') AS passed,
      sum(quarantined) FILTER (WHERE unit = 'rows') AS quarantined,
      sum(duplicates) FILTER (WHERE unit = 'rows') AS duplicates,
      list({layer: layer, "table": table_name, rows_in: rows_in, passed: passed,
        quarantined: quarantined, duplicates: duplicates, unit: unit} ORDER BY seq)
        FILTER (WHERE table_name IS NOT NULL) AS tables
    FROM st_tables GROUP BY run_id, stage
  ), st AS (
    SELECT run_id, list({stage: stage, duration_ms: round(duration_ms, 1), skipped: skipped,
      rows_in: coalesce(rows_in, 0), passed: coalesce(passed, 0),
      quarantined: coalesce(quarantined, 0), duplicates: coalesce(duplicates, 0),
      tables: coalesce(tables, [])} ORDER BY seq) AS stages
    FROM st_stage GROUP BY run_id
  )`;

async function runsQuery(db: Engine, where: string, params: Record<string, string | number>) {
  if (!(await tableExists(db, "_sluice", "runs"))) return [];
  const hasStages = await tableExists(db, "_sluice", "stage_tables");
  const hasChecks = await tableExists(db, "_sluice", "check_results");
  const checksCte = hasChecks
    ? `, ck AS (
        SELECT run_id, count(*) FILTER (WHERE status = 'pass') AS pass,
          count(*) FILTER (WHERE status = 'fail') AS fail,
          count(*) FILTER (WHERE status = 'error') AS error
        FROM _sluice.check_results WHERE run_id IN (SELECT run_id FROM chosen) GROUP BY run_id)`
    : "";
  const checks = hasChecks
    ? `{pass: coalesce(ck.pass, 0), fail: coalesce(ck.fail, 0), error: coalesce(ck.error, 0)}`
    : "NULL";
  const stagesCte = hasStages
    ? `, ${STAGES_CTE}`
    : `, st AS (SELECT NULL::VARCHAR AS run_id, NULL::JSON[] AS stages WHERE false)`;
  const rows = await db.all<{ j: string }>(
    `WITH chosen AS (SELECT * FROM _sluice.runs r WHERE ${where})${stagesCte}${checksCte}
     SELECT to_json(${RUN_JSON.replace("CHECKS", checks)})::VARCHAR AS j
     FROM chosen r LEFT JOIN st USING (run_id) ${hasChecks ? "LEFT JOIN ck USING (run_id)" : ""}
     ORDER BY r.started_at DESC, r.run_id DESC`,
    params,
  );
  return rows.map((r) => JSON.parse(r.j) as RunRecord);
}

/**
 * The most recent runs of a pipeline, newest first, with per-stage figures
 * and check counts. `upTo` ends the list at that run (for an old run's
 * history).
 *
 * @example
 * ```ts ignore
 * const runs = await listRuns(db, { pipeline: "shop", limit: 10 });
 * ```
 */
export async function listRuns(
  db: Engine,
  options: { pipeline?: string; limit?: number; upTo?: string } = {},
): Promise<RunRecord[]> {
  const limit = Math.max(1, Math.min(options.limit ?? 20, 10_000));
  const params: Record<string, string> = {};
  const conditions = ["true"];
  if (options.pipeline !== undefined) {
    conditions.push("pipeline = $pipeline");
    params.pipeline = options.pipeline;
  }
  if (options.upTo !== undefined) {
    conditions.push(`(started_at, run_id) <= (SELECT (started_at, run_id) FROM _sluice.runs
      WHERE run_id = $up_to)`);
    params.up_to = options.upTo;
  }
  return await runsQuery(
    db,
    `${conditions.join(" AND ")} ORDER BY started_at DESC, run_id DESC LIMIT ${limit}`,
    params,
  );
}

/**
 * Resolves a run id or a unique prefix of one (like git). Throws a
 * {@linkcode UsageError} when none or several runs match.
 *
 * @example
 * ```ts ignore
 * await resolveRunId(db, "019abc12"); // "019abc12-3456-7def-8abc-0123456789ab"
 * ```
 */
export async function resolveRunId(db: Engine, idOrPrefix: string): Promise<string> {
  const none = new UsageError(`Cannot show run "${idOrPrefix}": no such run in the ledger`);
  if (!(await tableExists(db, "_sluice", "runs"))) throw none;
  const rows = await db.all<{ run_id: string }>(
    `SELECT run_id FROM _sluice.runs WHERE run_id = $id OR starts_with(run_id, $id)
     ORDER BY run_id = $id DESC, started_at DESC LIMIT 6`,
    { id: idOrPrefix },
  );
  if (rows.length === 0) throw none;
  if (rows[0].run_id === idOrPrefix || rows.length === 1) return rows[0].run_id;
  throw new UsageError(
    `Cannot show run "${idOrPrefix}": the prefix matches several runs (${
      rows.slice(0, 5).map((r) => r.run_id).join(", ")
    }${rows.length > 5 ? ", ..." : ""}); give more characters`,
  );
}

/**
 * Every data-quality check result of a run with up to `samples` failing
 * rows each, or `[]` when the quality tables do not exist.
 *
 * @example
 * ```ts ignore
 * const checks = await readCheckResults(db, runId, { samples: 5 });
 * ```
 */
export async function readCheckResults(
  db: Engine,
  runId: string,
  options: { samples?: number } = {},
): Promise<RecordedCheck[]> {
  if (!(await tableExists(db, "_sluice", "check_results"))) return [];
  const samples = Math.max(0, Math.min(options.samples ?? 10, 1000));
  const hasFailures = samples > 0 && await tableExists(db, "_sluice", "check_failures");
  const samplesExpr = hasFailures
    ? `coalesce((SELECT list({row_key: f.row_key, sample: f.sample} ORDER BY f.rn)
         FROM (SELECT *, row_number() OVER (ORDER BY row_key) AS rn FROM _sluice.check_failures
               WHERE run_id = c.run_id AND table_name = c.table_name
                 AND check_name = c.check_name) f
         WHERE f.rn <= ${samples}), [])`
    : "[]";
  const rows = await db.all<{ j: string }>(
    `SELECT to_json({layer: c.layer, table_name: c.table_name, check_name: c.check_name,
       check_type: c.check_type, severity: c.severity, column_name: c.column_name,
       status: c.status, failing_rows: c.failing_rows, total_rows: c.total_rows,
       threshold: c.threshold, message: c.message, samples: ${samplesExpr}})::VARCHAR AS j
     FROM _sluice.check_results c WHERE c.run_id = $run_id
     ORDER BY CASE c.status WHEN 'fail' THEN 0 WHEN 'error' THEN 1 ELSE 2 END,
       c.severity, c.layer, c.table_name, c.check_name`,
    { run_id: runId },
  );
  return rows.map((r) => {
    const c = JSON.parse(r.j) as RecordedCheck;
    c.samples = c.samples.map((s) => ({
      row_key: s.row_key,
      sample: typeof s.sample === "string" ? safeParse(s.sample) : s.sample,
    }));
    return c;
  });
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * One run in full: figures, check results with failing samples, manifest.
 * Accepts a unique prefix of the run id.
 *
 * @example
 * ```ts ignore
 * const run = await getRun(db, "019abc12", { samples: 5 });
 * ```
 */
export async function getRun(
  db: Engine,
  idOrPrefix: string,
  options: { samples?: number } = {},
): Promise<RunDetail> {
  const runId = await resolveRunId(db, idOrPrefix);
  const [run] = await runsQuery(db, "run_id = $run_id", { run_id: runId });
  return {
    ...run,
    check_results: await readCheckResults(db, runId, options),
    manifest: (await readManifest(db, runId)) ?? null,
  };
}

// ---------------------------------------------------------------------------
// Text formatting

function n(x: number | null | undefined): string {
  return x === null || x === undefined ? "-" : x.toLocaleString("en-US");
}

function secs(x: number | null | undefined): string {
  return x === null || x === undefined ? "-" : `${x.toFixed(2)}s`;
}

function table(header: string[], rows: string[][], right: readonly number[] = []): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const fmt = (r: string[]) =>
    r.map((c, i) => (right.includes(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join("  ").trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}

function layerSum(run: RunRecord, layer: string, field: "passed" | "quarantined" | "duplicates") {
  let total = 0;
  let found = false;
  for (const s of run.stages) {
    for (const t of s.tables) {
      if (t.layer === layer && t.unit === "rows") {
        total += t[field];
        found = true;
      }
    }
  }
  return found ? total : null;
}

/**
 * Formats runs as a text table, newest first: id, status, start, duration,
 * trigger, rows landed in bronze, rows passed to silver, quarantined,
 * duplicates, gold rows and check counts.
 *
 * @example
 * ```ts ignore
 * const shown = formatRunsTable(await listRuns(db));
 * ```
 */
export function formatRunsTable(runs: readonly RunRecord[]): string {
  if (runs.length === 0) return "no runs recorded yet";
  const rows = runs.map((r) => {
    const q = r.stages.reduce((s, st) => s + st.quarantined, 0);
    const d = r.stages.reduce((s, st) => s + st.duplicates, 0);
    const checks = r.checks
      ? `${r.checks.pass} pass, ${r.checks.fail} fail${
        r.checks.error ? `, ${r.checks.error} error` : ""
      }`
      : "-";
    return [
      r.run_id,
      r.status,
      r.started_at.replace("T", " ").slice(0, 19),
      secs(r.duration_seconds),
      r.trigger ?? "",
      n(layerSum(r, "bronze", "passed")),
      n(layerSum(r, "silver", "passed")),
      n(q),
      n(d),
      n(layerSum(r, "gold", "passed")),
      checks,
    ];
  });
  return table(
    [
      "run id",
      "status",
      "started (UTC)",
      "duration",
      "trigger",
      "landed",
      "silver",
      "quarantined",
      "duplicates",
      "gold",
      "checks",
    ],
    rows,
    [3, 5, 6, 7, 8, 9],
  ).join("\n");
}

/**
 * Formats one run in full: header, error, stage timings, per-table row
 * flow, check results with failing samples, and the manifest.
 *
 * @example
 * ```ts ignore
 * const shown = formatRunDetail(await getRun(db, runId));
 * ```
 */
export function formatRunDetail(run: RunDetail): string {
  const out: string[] = [];
  out.push(`run       ${run.run_id}`);
  out.push(`pipeline  ${run.pipeline}`);
  out.push(`status    ${run.status}`);
  out.push(`command   ${run.command} (trigger: ${run.trigger})`);
  out.push(`started   ${run.started_at}`);
  out.push(`finished  ${run.finished_at ?? "-"} (${secs(run.duration_seconds)})`);
  if (run.error) out.push(`error     ${run.error}`);
  out.push("");
  out.push("stages");
  const stageRows: string[][] = [];
  for (const s of run.stages) {
    stageRows.push([s.stage, "", (s.duration_ms / 1000).toFixed(2), "", "", "", ""]);
    for (const t of s.tables) {
      const files = t.unit === "files";
      stageRows.push([
        `  ${t.layer}`,
        t.table + (files ? " (files)" : ""),
        "",
        n(t.rows_in),
        n(t.passed),
        files ? "-" : n(t.quarantined),
        files ? `${n(t.duplicates)} unchanged` : n(t.duplicates),
      ]);
    }
  }
  out.push(
    ...table(
      ["  stage/layer", "table", "seconds", "in", "passed", "quarantined", "duplicates"],
      stageRows,
      [2, 3, 4, 5, 6],
    ).map((l) => `  ${l}`),
  );
  out.push("");
  if (run.checks === null) {
    out.push("data-quality checks: none recorded (no _sluice.check_results table)");
  } else {
    out.push(
      `data-quality checks: ${run.checks.pass} pass, ${run.checks.fail} fail, ${run.checks.error} error`,
    );
    const checkRows = run.check_results.map((c) => [
      c.status,
      c.severity ?? "",
      `${c.layer}.${c.table_name}`,
      c.check_name,
      c.column_name ?? "",
      c.failing_rows === null ? "-" : `${n(c.failing_rows)}/${n(c.total_rows)}`,
      c.message ?? "",
    ]);
    if (checkRows.length > 0) {
      out.push(
        ...table(
          ["  status", "severity", "table", "check", "column", "failing", "message"],
          checkRows.map((r) => [`  ${r[0]}`, ...r.slice(1)]),
        ).map((l) => `  ${l}`),
      );
    }
    for (const c of run.check_results) {
      if (c.samples.length === 0) continue;
      out.push(`  failing samples of ${c.table_name}.${c.check_name}:`);
      for (const s of c.samples) {
        out.push(`    ${s.row_key ?? "-"}  ${JSON.stringify(s.sample)}`);
      }
    }
  }
  out.push("");
  const m = run.manifest;
  if (!m) {
    out.push("manifest: not recorded");
  } else {
    out.push("manifest");
    out.push(`  sluice   ${m.sluice_version}`);
    out.push(`  duckdb   ${m.duckdb_version} (${m.duckdb_source_id})`);
    out.push(`  deno     ${m.deno_version}`);
    out.push(`  config   ${m.config_file}`);
    out.push(`           sha256 ${m.config_hash}`);
    const models = typeof m.models === "string" ? JSON.parse(m.models) : m.models;
    out.push("  models");
    for (const [name, hash] of Object.entries(models as Record<string, string>)) {
      out.push(`    ${name.padEnd(32)} sha256 ${hash}`);
    }
    out.push(`  input files read (${m.inputs.length})`);
    for (const f of m.inputs) {
      out.push(
        `    ${f.path}  ${n(f.size)} bytes  mtime ${
          new Date(f.mtime_ms).toISOString()
        }  sha256 ${f.sha256}  ${n(f.rows)} rows${f.status !== "ingested" ? ` (${f.status})` : ""}`,
      );
    }
  }
  return out.join("\n");
}
