/**
 * The HTML run report (`sluice report`): one self-contained file that opens
 * with no network. It shows the run's status and error, a stage timings
 * chart, the row flow across layers (passed, quarantined, duplicates, the
 * quarantine rate and budget), the quarantined rows by reason with samples,
 * the data-quality results with failing samples, a null % heatmap per table
 * and column over the last runs, run history charts (duration, and rows on a
 * log scale), why each failed run failed, the `sluice check` runs apart from
 * the pipeline runs, what bronze holds per source, and the run manifest.
 * Figures come from the ledger and quarantine tables via DuckDB; charts are
 * drawn in the browser by uPlot, inlined.
 *
 * @module
 */
import { systemClock } from "../core/clock.ts";
import type { Engine } from "../core/engine.ts";
import { UsageError } from "../core/errors.ts";
import { capPayloadSql, DEFAULT_PAYLOAD_MAX_BYTES } from "../core/payload.ts";
import { ident, literalList, rawIdent } from "../core/quote.ts";
import { REPORT_CSS, REPORT_JS } from "./_report_template.ts";
import { UPLOT_CSS, UPLOT_JS, UPLOT_LICENSE, UPLOT_VERSION } from "./_uplot_assets.ts";
import { readColumnStats } from "./column_stats.ts";
import { SLUICE_VERSION, tableExists } from "./ledger.ts";
import { getRun, listRuns, type RunDetail, type RunRecord } from "./runs.ts";

/** Options of {@linkcode collectReport} and {@linkcode buildReport}. */
export interface ReportOptions {
  /** Pipeline whose runs are shown; default the pipeline of the chosen run. */
  pipeline?: string;
  /** Run id (or unique prefix); default the latest run. */
  runId?: string;
  /** Runs in the history charts and heatmap. Default 30. */
  history?: number;
  /** Failing samples per check. Default 10. */
  failingSamples?: number;
  /** Largest copy of a raw quarantined row shown (`quality.payload_max_bytes`). Default 16384. */
  payloadMaxBytes?: number;
  /** When the report is made (shown in the footer). Default now. */
  generatedAt?: Date;
}

/**
 * One run in the history charts.
 *
 * @example
 * ```ts ignore
 * const data = await collectReport(db, { pipeline: "shop" });
 * data.history.map((p: HistoryPoint) => p.duration_seconds); // one per run, oldest first
 * ```
 */
export interface HistoryPoint {
  /** Run id. */
  run_id: string;
  /** Start, ms since epoch. */
  started_ms: number;
  /** Final status. */
  status: string;
  /** Duration, seconds. */
  duration_seconds: number | null;
  /** Rows landed in bronze. */
  landed: number | null;
  /** Rows passed to silver. */
  silver: number | null;
  /** Rows quarantined (all layers). */
  quarantined: number;
  /** Rows dropped as duplicates (all layers). */
  duplicates: number;
  /** Rows built in gold. */
  gold: number | null;
}

/**
 * One row of the null % heatmap: a column, its null ratio per run.
 *
 * @example
 * ```ts ignore
 * const data = await collectReport(db, { pipeline: "shop" });
 * const row: HeatmapRow = data.heatmap.rows[0];
 * // { layer: "silver", table: "orders", column: "email", ratios: [0, 0.01] }
 * ```
 */
export interface HeatmapRow {
  /** silver or gold. */
  layer: string;
  /** Table. */
  table: string;
  /** Column. */
  column: string;
  /** Null ratio (0..1) per heatmap run, null where not measured. */
  ratios: (number | null)[];
}

/**
 * Quarantined rows of one table and reason in the reported run, with samples.
 *
 * @example
 * ```ts ignore
 * const data = await collectReport(db, { pipeline: "shop" });
 * const g: QuarantineGroup = data.quarantine[0];
 * // { layer: "silver", table: "orders", code: "cast_failed", subject: 'column "order_ts"', rows: 2, samples: [...] }
 * ```
 */
export interface QuarantineGroup {
  /** `silver` (the table's `__quarantine`) or `bronze` (lines the reader rejected). */
  layer: string;
  /** Table (silver) or source (bronze). */
  table: string;
  /** Reason code: `cast_failed`, `null_violation`, `rule_failed`... */
  code: string;
  /** What the reason is about: `column "x"`, `rule "y"`, or the reader's message. */
  subject: string;
  /** Rows with this reason in the run. */
  rows: number;
  /** The first rows (by file and line): full reason, file, line and the raw row. */
  samples: { reason: string | null; file: string | null; line: number | null; raw: unknown }[];
}

/**
 * A run of the history window that did not succeed, and why.
 *
 * @example
 * ```ts ignore
 * const data = await collectReport(db, { pipeline: "shop" });
 * data.failures.map((f: RunFailure) => f.error ?? f.failed_checks[0]?.check);
 * ```
 */
export interface RunFailure {
  /** Run id. */
  run_id: string;
  /** `run`, `check`... */
  command: string;
  /** Start, ms since epoch. */
  started_ms: number;
  /** Final status (`failed`, `quality_failed`, `timed_out`, `cancelled`...). */
  status: string;
  /** The run's error, when it recorded one. */
  error: string | null;
  /** The checks that failed (or could not run) in it, error-level first. */
  failed_checks: {
    layer: string;
    table: string;
    check: string;
    severity: string;
    status: string;
    failing_rows: number | null;
    message: string | null;
  }[];
}

/**
 * One `sluice check` run, shown apart from the pipeline runs.
 *
 * @example
 * ```ts ignore
 * const data = await collectReport(db, { pipeline: "shop" });
 * data.check_runs.map((c: CheckRunPoint) => c.checks?.fail);
 * ```
 */
export interface CheckRunPoint {
  /** Run id. */
  run_id: string;
  /** Start, ms since epoch. */
  started_ms: number;
  /** Final status. */
  status: string;
  /** Duration, seconds. */
  duration_seconds: number | null;
  /** Check counts, or null when not recorded. */
  checks: { pass: number; fail: number; error: number } | null;
}

/**
 * What one bronze table holds: its columns and their stored types.
 *
 * @example
 * ```ts ignore
 * const data = await collectReport(db, { pipeline: "shop" });
 * data.bronze.map((b: BronzeTable) => `${b.table}: ${b.types.map((t) => t.type).join(", ")}`);
 * ```
 */
export interface BronzeTable {
  /** Source name. */
  table: string;
  /** The source's format, when the run recorded it. */
  format: string | null;
  /** Data columns (Sluice's own `_` columns left out), in table order. */
  columns: { name: string; type: string }[];
  /** Columns per stored type, most first. */
  types: { type: string; columns: number }[];
}

/**
 * The quarantine figures of one table in the reported run.
 *
 * @example
 * ```ts ignore
 * const data = await collectReport(db, { pipeline: "shop" });
 * data.quarantine_rates.map((q: QuarantineRate) => q.rate); // 0.012 = 1.2 %
 * ```
 */
export interface QuarantineRate {
  /** Layer. */
  layer: string;
  /** Table. */
  table: string;
  /** Quarantined rows / rows in (0..1), null when no rows came in. */
  rate: number | null;
  /**
   * The table's quarantine budget (`max_quarantine`) as the gate judged it
   * (`over` stops the publish, `within` warns); null when not judged (nothing
   * quarantined, or an older run).
   */
  budget: { max: string; severity: string | null; status: "over" | "within" } | null;
}

/** Everything the report shows. */
export interface ReportData {
  /** Pipeline name. */
  pipeline: string;
  /** When the report was made, ISO 8601. */
  generated_at: string;
  /** The run reported on. */
  run: RunDetail;
  /** Its stages, for the timings chart. */
  stages: { stage: string; duration_ms: number }[];
  /** Runs in the history, oldest first. */
  history: HistoryPoint[];
  /** The heatmap's runs (oldest first) and rows. */
  heatmap: { runs: { run_id: string; started_ms: number }[]; rows: HeatmapRow[] };
  /** False when the data-quality tables do not exist. */
  quality_recorded: boolean;
  /** Quarantined rows of the run by table and reason, most first. */
  quarantine: QuarantineGroup[];
  /** Quarantine rate (and budget, when recorded) per table of the run. */
  quarantine_rates: QuarantineRate[];
  /** Runs of the window that did not succeed (pipeline and check runs), newest first. */
  failures: RunFailure[];
  /** `sluice check` runs of the window, oldest first (`history` holds the pipeline runs). */
  check_runs: CheckRunPoint[];
  /** What each bronze table holds. */
  bronze: BronzeTable[];
}

function layerSum(run: RunRecord, layer: string, field: "passed"): number | null {
  let total: number | null = null;
  for (const s of run.stages) {
    for (const t of s.tables) {
      if (t.layer === layer && t.unit === "rows") total = (total ?? 0) + t[field];
    }
  }
  return total;
}

function toHistory(r: RunRecord): HistoryPoint {
  return {
    run_id: r.run_id,
    started_ms: Date.parse(r.started_at),
    status: r.status,
    duration_seconds: r.duration_seconds,
    landed: layerSum(r, "bronze", "passed"),
    silver: layerSum(r, "silver", "passed"),
    quarantined: r.stages.reduce((s, st) => s + st.quarantined, 0),
    duplicates: r.stages.reduce((s, st) => s + st.duplicates, 0),
    gold: layerSum(r, "gold", "passed"),
  };
}

/** Sample rows shown per quarantine reason. */
const SAMPLES_PER_REASON = 3;

/** Statuses that are not failures (a skipped run did nothing on purpose). */
const NOT_FAILED = new Set(["success", "running", "skipped"]);

/** Tables of a schema in the open database. */
async function tablesIn(db: Engine, schema: string): Promise<string[]> {
  const rows = await db.all<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables
     WHERE table_schema = $s AND table_catalog = current_database() ORDER BY table_name`,
    { s: schema },
  );
  return rows.map((r) => r.table_name);
}

/** Columns (name to type) of `schema.table`, in table order. */
async function columnsOf(db: Engine, schema: string, table: string): Promise<Map<string, string>> {
  const rows = await db.all<{ column_name: string; data_type: string }>(
    `SELECT column_name, data_type FROM information_schema.columns
     WHERE table_schema = $s AND table_name = $t AND table_catalog = current_database()
     ORDER BY ordinal_position`,
    { s: schema, t: table },
  );
  return new Map(rows.map((r) => [r.column_name, r.data_type]));
}

function parseJson(text: unknown): unknown {
  if (typeof text !== "string") return text ?? null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

type GroupRow = {
  code: string;
  subject: string;
  n: number;
  reason: string | null;
  file: string | null;
  line: number | null;
  raw: string | null;
};

function groupRows(layer: string, table: string, rows: GroupRow[]): QuarantineGroup[] {
  const groups = new Map<string, QuarantineGroup>();
  for (const r of rows) {
    const key = `${r.code}\u0000${r.subject}`;
    let g = groups.get(key);
    if (!g) {
      g = { layer, table, code: r.code, subject: r.subject, rows: Number(r.n), samples: [] };
      groups.set(key, g);
    }
    g.samples.push({
      reason: r.reason,
      file: r.file,
      line: r.line === null ? null : Number(r.line),
      raw: layer === "silver" ? parseJson(r.raw) : r.raw,
    });
  }
  return [...groups.values()];
}

/**
 * The run's quarantined rows by table and reason: silver `<table>__quarantine`
 * rows grouped by reason code and the column or rule the reason names, and
 * bronze `<source>__rejects` lines (where that table exists) by message.
 */
async function collectQuarantine(
  db: Engine,
  runId: string,
  maxBytes: number,
): Promise<QuarantineGroup[]> {
  const out: QuarantineGroup[] = [];
  for (const name of await tablesIn(db, "silver")) {
    if (!name.endsWith("__quarantine")) continue;
    const cols = await columnsOf(db, "silver", name);
    const needed = [
      "_run_id",
      "_reason_code",
      "_reason",
      "_payload",
      "_source_file",
      "_source_row",
    ];
    if (!needed.every((c) => cols.has(c))) continue;
    const rows = await db.all<GroupRow>(
      `WITH q AS (
         SELECT coalesce(_reason_code, 'unknown') AS code,
           coalesce(nullif(regexp_extract(_reason, '^(column "[^"]*"|rule "[^"]*")', 1), ''),
             coalesce(_reason_code, 'unknown')) AS subject,
           _reason AS reason, _source_file AS file, _source_row AS line,
           ${capPayloadSql("_payload", maxBytes)} AS raw
         FROM ${ident("silver")}.${rawIdent(name)} WHERE _run_id = $run)
       SELECT code, subject, count(*) OVER (PARTITION BY code, subject) AS n,
         reason, file, line, raw FROM q
       QUALIFY row_number() OVER (PARTITION BY code, subject ORDER BY file, line) <= $k
       ORDER BY n DESC, code, subject, file, line`,
      { run: runId, k: SAMPLES_PER_REASON },
    );
    out.push(...groupRows("silver", name.slice(0, -"__quarantine".length), rows));
  }
  for (const name of await tablesIn(db, "bronze")) {
    if (!name.endsWith("__rejects")) continue;
    const cols = await columnsOf(db, "bronze", name);
    if (!["_run_id", "reason", "file", "line", "raw"].every((c) => cols.has(c))) continue;
    const rows = await db.all<GroupRow>(
      `WITH q AS (
         SELECT 'rejected' AS code, coalesce(left(reason, 160), 'rejected') AS subject,
           reason, file, line, ${capPayloadSql("raw", maxBytes)} AS raw
         FROM ${ident("bronze")}.${rawIdent(name)} WHERE _run_id = $run)
       SELECT code, subject, count(*) OVER (PARTITION BY subject) AS n,
         reason, file, line, raw FROM q
       QUALIFY row_number() OVER (PARTITION BY subject ORDER BY file, line) <= $k
       ORDER BY n DESC, subject, file, line`,
      { run: runId, k: SAMPLES_PER_REASON },
    );
    out.push(...groupRows("bronze", name.slice(0, -"__rejects".length), rows));
  }
  return out.sort((a, b) => b.rows - a.rows || a.table.localeCompare(b.table));
}

/** Why the runs that did not succeed failed: their error and failed checks. */
async function collectFailures(
  db: Engine,
  runs: RunRecord[],
  qualityRecorded: boolean,
): Promise<RunFailure[]> {
  const failed = runs.filter((r) => !NOT_FAILED.has(r.status)).reverse();
  const checks = new Map<string, RunFailure["failed_checks"]>();
  if (qualityRecorded && failed.length > 0) {
    const rows = await db.all<{
      run_id: string;
      layer: string;
      table_name: string;
      check_name: string;
      severity: string;
      status: string;
      failing_rows: number | null;
      message: string | null;
    }>(
      `SELECT run_id, layer, table_name, check_name, coalesce(severity, 'error') AS severity,
         status, failing_rows, message
       FROM _sluice.check_results
       WHERE list_contains(${literalList(failed.map((r) => r.run_id))}, run_id)
       QUALIFY row_number() OVER (PARTITION BY run_id, layer, table_name, check_name
         ORDER BY checked_at DESC) = 1 AND status <> 'pass'
       ORDER BY severity = 'warn', layer, table_name, check_name`,
    );
    for (const r of rows) {
      const list = checks.get(r.run_id) ?? [];
      list.push({
        layer: r.layer,
        table: r.table_name,
        check: r.check_name,
        severity: r.severity,
        status: r.status,
        failing_rows: r.failing_rows === null ? null : Number(r.failing_rows),
        message: r.message,
      });
      checks.set(r.run_id, list);
    }
  }
  return failed.map((r) => ({
    run_id: r.run_id,
    command: r.command,
    started_ms: Date.parse(r.started_at),
    status: r.status,
    error: r.error,
    failed_checks: checks.get(r.run_id) ?? [],
  }));
}

/** The `details` JSON of each table of a run's stages, by `layer.table`. */
async function tableDetails(
  db: Engine,
  runId: string,
): Promise<Map<string, Record<string, unknown>>> {
  const out = new Map<string, Record<string, unknown>>();
  if (!(await tableExists(db, "_sluice", "stage_tables"))) return out;
  const rows = await db.all<{ layer: string; table_name: string; details: unknown }>(
    `SELECT layer, table_name, CAST(details AS VARCHAR) AS details FROM _sluice.stage_tables
     WHERE run_id = $r AND details IS NOT NULL`,
    { r: runId },
  );
  for (const r of rows) {
    const d = parseJson(r.details);
    if (d !== null && typeof d === "object" && !Array.isArray(d)) {
      const key = `${r.layer}.${r.table_name}`;
      out.set(key, { ...(out.get(key) ?? {}), ...(d as Record<string, unknown>) });
    }
  }
  return out;
}

/**
 * Quarantined / rows in per table of the run, with the table's quarantine
 * budget where the gate judged it (a `quarantine_budget` check result: an
 * error when over `max_quarantine`, a warning within it).
 */
function quarantineRates(run: RunDetail): QuarantineRate[] {
  const out: QuarantineRate[] = [];
  for (const s of run.stages) {
    for (const t of s.tables) {
      if (t.unit !== "rows" || (t.layer !== "silver" && t.quarantined === 0)) continue;
      const b = run.check_results.find((c) =>
        c.check_type === "quarantine_budget" && c.layer === t.layer && c.table_name === t.table
      );
      out.push({
        layer: t.layer,
        table: t.table,
        rate: t.rows_in > 0 ? t.quarantined / t.rows_in : null,
        budget: b?.threshold == null ? null : {
          max: b.threshold,
          severity: b.severity,
          status: b.severity === "error" ? "over" : "within",
        },
      });
    }
  }
  return out;
}

/** What each bronze table holds: stored column types (and format, when recorded). */
async function collectBronze(
  db: Engine,
  details: Map<string, Record<string, unknown>>,
): Promise<BronzeTable[]> {
  const out: BronzeTable[] = [];
  for (const name of await tablesIn(db, "bronze")) {
    if (name.startsWith("_") || name.endsWith("__rejects")) continue;
    const columns = [...(await columnsOf(db, "bronze", name))]
      .filter(([c]) => !c.startsWith("_"))
      .map(([c, type]) => ({ name: c, type }));
    const counts = new Map<string, number>();
    for (const c of columns) counts.set(c.type, (counts.get(c.type) ?? 0) + 1);
    const format = details.get(`bronze.${name}`)?.format;
    out.push({
      table: name,
      format: typeof format === "string" ? format : null,
      columns,
      types: [...counts].map(([type, n]) => ({ type, columns: n }))
        .sort((a, b) => b.columns - a.columns || a.type.localeCompare(b.type)),
    });
  }
  return out;
}

/**
 * Reads everything the report shows from the pipeline's database.
 *
 * @example
 * ```ts ignore
 * const data = await collectReport(db, { runId: "019abc12", history: 30 });
 * ```
 */
export async function collectReport(db: Engine, options: ReportOptions = {}): Promise<ReportData> {
  let runId = options.runId;
  if (runId === undefined) {
    const [latest] = await listRuns(db, { pipeline: options.pipeline, limit: 1 });
    if (!latest) {
      throw new UsageError(
        `Cannot build a report: no runs recorded${
          options.pipeline ? ` for pipeline "${options.pipeline}"` : ""
        } yet`,
      );
    }
    runId = latest.run_id;
  }
  const run = await getRun(db, runId, { samples: options.failingSamples ?? 10 });
  const pipeline = options.pipeline ?? run.pipeline;
  // The history ends at the chosen run, so an old run's report shows its own past.
  // Pipeline runs and `sluice check` runs are shown apart, each up to `history`.
  const limit = options.history ?? 30;
  const recent = (await listRuns(db, { pipeline, limit: limit * 3, upTo: run.run_id })).reverse();
  const pipelineRuns = recent.filter((r) => r.command !== "check").slice(-limit);
  const checkRuns = recent.filter((r) => r.command === "check").slice(-limit);
  const history = pipelineRuns.map(toHistory);
  const qualityRecorded = await tableExists(db, "_sluice", "check_results");
  const details = await tableDetails(db, run.run_id);
  const stats = await readColumnStats(db, { runIds: pipelineRuns.map((r) => r.run_id) });
  const measuredRuns = pipelineRuns.filter((r) => stats.some((s) => s.run_id === r.run_id));
  const index = new Map(measuredRuns.map((r, i) => [r.run_id, i]));
  const rows = new Map<string, HeatmapRow>();
  for (const s of stats) {
    const key = `${s.layer}\u0000${s.table_name}\u0000${s.column_name}`;
    let row = rows.get(key);
    if (!row) {
      row = {
        layer: s.layer,
        table: s.table_name,
        column: s.column_name,
        ratios: measuredRuns.map(() => null),
      };
      rows.set(key, row);
    }
    const i = index.get(s.run_id);
    if (i !== undefined) row.ratios[i] = s.null_ratio;
  }
  return {
    pipeline,
    generated_at: (options.generatedAt ?? systemClock.now()).toISOString(),
    run,
    stages: run.stages.map((s) => ({ stage: s.stage, duration_ms: s.duration_ms })),
    history,
    heatmap: {
      runs: measuredRuns.map((r) => ({ run_id: r.run_id, started_ms: Date.parse(r.started_at) })),
      rows: [...rows.values()],
    },
    quality_recorded: qualityRecorded,
    quarantine: await collectQuarantine(
      db,
      run.run_id,
      options.payloadMaxBytes ?? DEFAULT_PAYLOAD_MAX_BYTES,
    ),
    quarantine_rates: quarantineRates(run),
    failures: await collectFailures(
      db,
      [...pipelineRuns, ...checkRuns].sort((a, b) =>
        Date.parse(a.started_at) - Date.parse(b.started_at) || a.run_id.localeCompare(b.run_id)
      ),
      qualityRecorded,
    ),
    check_runs: checkRuns.map((r) => ({
      run_id: r.run_id,
      started_ms: Date.parse(r.started_at),
      status: r.status,
      duration_seconds: r.duration_seconds,
      checks: r.checks,
    })),
    bronze: await collectBronze(db, details),
  };
}

// ---------------------------------------------------------------------------
// Rendering

function esc(value: unknown): string {
  return String(value ?? "").replaceAll("&", "&amp;").replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;").replaceAll('"', "&quot;").replaceAll("'", "&#39;");
}

function num(x: number | null | undefined): string {
  return x === null || x === undefined ? "-" : x.toLocaleString("en-US");
}

function plural(n: number, word: string): string {
  return `${num(n)} ${word}${n === 1 ? "" : "s"}`;
}

function seconds(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? "-" : `${(ms / 1000).toFixed(2)} s`;
}

function pct(ratio: number | null): string {
  return ratio === null ? "" : `${(ratio * 100).toFixed(ratio > 0 && ratio < 0.001 ? 2 : 1)}%`;
}

function shortTime(ms: number): string {
  return new Date(ms).toISOString().slice(5, 16).replace("T", " ");
}

/** A JSON document safe inside a `<script>` element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replaceAll("<", "\\u003c").replaceAll("\u2028", "\\u2028")
    .replaceAll("\u2029", "\\u2029");
}

function inlineScript(js: string): string {
  return js.replace(/<\/(script)/gi, "<\\/$1");
}

function card(label: string, value: string): string {
  return `<div class="card"><div class="v">${esc(value)}</div><div class="k">${
    esc(label)
  }</div></div>`;
}

function heatColor(ratio: number | null): string {
  if (ratio === null) return "#ffffff";
  // White at 0 % to deep red at 100 % (square root so small shares still show).
  const t = Math.sqrt(Math.max(0, Math.min(1, ratio)));
  const g = Math.round(255 - 190 * t);
  const b = Math.round(255 - 200 * t);
  return `rgb(255,${g},${b})`;
}

/** The first line of an error, at most `max` characters. */
function firstLine(text: string | null, max = 240): string {
  const line = (text ?? "").split("\n")[0].trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** Why a run failed, in one line: its error, and its error-level failed checks. */
function whyFailed(f: RunFailure): string {
  const checks = f.failed_checks.filter((c) => c.severity !== "warn");
  const failed = checks.length === 0
    ? ""
    : `failed checks: ${
      checks.map((c) => `${c.layer}.${c.table}.${c.check} (${c.status})`).join(", ")
    }`;
  if (f.error) return failed ? `${firstLine(f.error)} — ${failed}` : firstLine(f.error);
  return failed || "no error recorded";
}

function renderHeader(d: ReportData): string {
  const r = d.run;
  const failure = d.failures.find((f) => f.run_id === r.run_id);
  const failedChecks = failure?.failed_checks.filter((c) => c.severity !== "warn") ?? [];
  const q = r.stages.reduce((s, st) => s + st.quarantined, 0);
  const dup = r.stages.reduce((s, st) => s + st.duplicates, 0);
  const cards = [
    card("duration", r.duration_seconds === null ? "-" : `${r.duration_seconds.toFixed(2)} s`),
    card("rows landed (bronze)", num(layerSum(r, "bronze", "passed"))),
    card("rows passed (silver)", num(layerSum(r, "silver", "passed"))),
    card("rows quarantined", num(q)),
    card("duplicates dropped", num(dup)),
    card("rows built (gold)", num(layerSum(r, "gold", "passed"))),
    card(
      "checks",
      r.checks ? `${r.checks.pass} pass / ${r.checks.fail} fail` : "none",
    ),
  ];
  return `<header>
<h1>${esc(d.pipeline)} <span class="badge ${esc(r.status)}">${esc(r.status)}</span></h1>
<div class="sub">run <span class="mono" id="run-id">${esc(r.run_id)}</span> · ${esc(r.command)} (${
    esc(r.trigger)
  }) · started ${esc(r.started_at)} · finished ${esc(r.finished_at ?? "-")}</div>
${r.error ? `<div class="error-box"><strong>Error:</strong> ${esc(r.error)}</div>` : ""}
${
    failedChecks.length > 0
      ? `<div class="error-box" id="failed-checks"><strong>Failed checks:</strong> ${
        failedChecks.map((c) =>
          `${esc(c.layer)}.${esc(c.table)} <strong>${esc(c.check)}</strong> (${esc(c.status)}${
            c.failing_rows === null ? "" : `, ${num(c.failing_rows)} rows`
          })`
        ).join("; ")
      }</div>`
      : ""
  }
<div class="cards">${cards.join("")}</div>
</header>`;
}

function renderStages(d: ReportData): string {
  const total = d.stages.reduce((s, x) => s + x.duration_ms, 0) || 1;
  const rows = d.run.stages.map((s) =>
    `<tr><td>${esc(s.stage)}</td><td class="num">${seconds(s.duration_ms)}</td><td class="num">${
      ((s.duration_ms / total) * 100).toFixed(1)
    }%</td><td>${s.skipped ? "nothing to do" : ""}</td></tr>`
  ).join("");
  return `<section id="stages"><h2>Stage timings</h2>
${
    d.stages.length > 0
      ? `<div class="chart" id="chart-stages"></div>`
      : `<p class="empty">No stage finished in this run.</p>`
  }
<table><thead><tr><th>stage</th><th class="num">duration</th><th class="num">share</th><th></th></tr></thead>
<tbody>${rows}</tbody></table></section>`;
}

function rateCell(rate: QuarantineRate | undefined): string {
  if (!rate) return `<td class="num"></td><td></td>`;
  const b = rate.budget;
  const over = b?.status === "over";
  return `<td class="num${over ? " over" : ""}">${
    rate.rate === null ? "-" : pct(rate.rate) || "0.0%"
  }</td>` +
    `<td>${
      b
        ? `<span class="budget${over ? " over" : ""}" title="max_quarantine ${
          esc(b.max)
        }: over it stops the publish, within it warns">${esc(b.status)} max ${esc(b.max)}</span>`
        : ""
    }</td>`;
}

function renderFlow(d: ReportData): string {
  const rows: string[] = [];
  const rates = new Map(d.quarantine_rates.map((q) => [`${q.layer}.${q.table}`, q]));
  for (const s of d.run.stages) {
    for (const t of s.tables) {
      const files = t.unit === "files";
      const denom = Math.max(1, t.rows_in);
      const bar = files
        ? ""
        : `<div class="bar" title="passed ${t.passed}, quarantined ${t.quarantined}, duplicates ${t.duplicates}">` +
          `<span class="p" style="width:${(t.passed / denom) * 100}%"></span>` +
          `<span class="q" style="width:${(t.quarantined / denom) * 100}%"></span>` +
          `<span class="d" style="width:${(t.duplicates / denom) * 100}%"></span></div>`;
      rows.push(
        `<tr><td>${esc(t.layer)}</td><td>${esc(t.table)}${files ? " (files)" : ""}</td>` +
          `<td class="num">${num(t.rows_in)}</td><td class="num">${num(t.passed)}</td>` +
          `<td class="num">${files ? "-" : num(t.quarantined)}</td>` +
          `<td class="num">${files ? `${num(t.duplicates)} unchanged` : num(t.duplicates)}</td>` +
          rateCell(files ? undefined : rates.get(`${t.layer}.${t.table}`)) +
          `<td>${bar}</td></tr>`,
      );
    }
  }
  return `<section id="flow"><h2>Row flow across layers</h2>
<div class="legend"><span><i style="background:var(--pass)"></i>passed</span><span><i style="background:var(--quar)"></i>quarantined</span><span><i style="background:var(--dup)"></i>duplicates</span></div>
${
    rows.length
      ? `<table><thead><tr><th>layer</th><th>table</th><th class="num">in</th><th class="num">passed</th><th class="num">quarantined</th><th class="num">duplicates</th><th class="num">quarantine rate</th><th>budget</th><th></th></tr></thead><tbody>${
        rows.join("")
      }</tbody></table>`
      : `<p class="empty">No rows moved in this run.</p>`
  }</section>`;
}

/** A sample row as a one-row table; the `highlight` column (the one a reason names) stands out. */
function renderSample(sample: unknown, highlight?: string): string {
  if (sample !== null && typeof sample === "object" && !Array.isArray(sample)) {
    const entries = Object.entries(sample as Record<string, unknown>);
    const mark = (k: string) => (k === highlight ? " bad" : "");
    return `<table class="sample"><tr>${
      entries.map(([k]) => `<th class="${mark(k).trim()}">${esc(k)}</th>`).join("")
    }</tr><tr>${
      entries.map(([k, v]) =>
        `<td class="mono${mark(k)}">${esc(typeof v === "string" ? v : JSON.stringify(v))}</td>`
      ).join("")
    }</tr></table>`;
  }
  return `<pre>${esc(JSON.stringify(sample, null, 2))}</pre>`;
}

function renderQuality(d: ReportData): string {
  if (!d.quality_recorded) {
    return `<section id="quality"><h2>Data quality</h2><p class="empty">No data-quality results are recorded in this pipeline's database.</p></section>`;
  }
  const checks = d.run.check_results;
  if (checks.length === 0) {
    return `<section id="quality"><h2>Data quality</h2><p class="empty">No checks ran in this run.</p></section>`;
  }
  const rows = checks.map((c) =>
    `<tr><td><span class="badge ${esc(c.status)}">${esc(c.status)}</span></td><td>${
      esc(c.severity ?? "")
    }</td><td>${esc(c.layer)}.${esc(c.table_name)}</td><td>${esc(c.check_name)}</td><td>${
      esc(c.column_name ?? "")
    }</td><td class="num">${num(c.failing_rows)}</td><td class="num">${num(c.total_rows)}</td><td>${
      esc(c.threshold ?? "")
    }</td><td>${esc(c.message ?? "")}</td></tr>`
  ).join("");
  const samples = checks.filter((c) => c.samples.length > 0).map((c) =>
    `<details ${c.status === "fail" ? "open" : ""}><summary>Failing samples of <strong>${
      esc(c.table_name)
    }.${esc(c.check_name)}</strong> (${num(c.samples.length)} of ${num(c.failing_rows)})</summary>${
      c.samples.map((s) =>
        `<div class="mono">key ${esc(s.row_key ?? "-")}</div>${renderSample(s.sample)}`
      )
        .join("")
    }</details>`
  ).join("");
  return `<section id="quality"><h2>Data quality</h2>
<table><thead><tr><th>status</th><th>severity</th><th>table</th><th>check</th><th>column</th><th class="num">failing rows</th><th class="num">rows</th><th>threshold</th><th>message</th></tr></thead><tbody>${rows}</tbody></table>
${samples}</section>`;
}

function heatTable(rows: HeatmapRow[], d: ReportData): string {
  const runs = d.heatmap.runs;
  const current = runs.findIndex((r) => r.run_id === d.run.run_id);
  const head = runs.map((r, i) =>
    `<th class="run${i === current ? " current" : ""}" title="${esc(r.run_id)}">${
      esc(shortTime(r.started_ms))
    }</th>`
  ).join("");
  const span = new Map<string, number>();
  for (const row of rows) {
    const k = `${row.layer}.${row.table}`;
    span.set(k, (span.get(k) ?? 0) + 1);
  }
  let previous = "";
  const body = rows.map((row) => {
    const k = `${row.layer}.${row.table}`;
    const first = k !== previous;
    previous = k;
    return `<tr>${
      first ? `<td class="tbl" rowspan="${span.get(k)}">${esc(k)}</td>` : ""
    }<td class="mono">${esc(row.column)}</td>${
      row.ratios.map((v, i) =>
        `<td class="cell${i === current ? " current" : ""}" style="background:${
          heatColor(v)
        }" title="${esc(runs[i].run_id)}: ${v === null ? "not measured" : pct(v)}">${pct(v)}</td>`
      ).join("")
    }</tr>`;
  }).join("");
  return `<div style="overflow-x:auto"><table class="heat"><thead><tr><th>table</th><th>column</th>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

function renderHeatmap(d: ReportData): string {
  const rows = d.heatmap.rows;
  if (rows.length === 0) {
    return `<section id="nulls"><h2>Null % per column</h2><p class="empty">No column statistics recorded yet.</p></section>`;
  }
  const modelled = rows.filter((r) => r.layer !== "bronze");
  const landed = rows.filter((r) => r.layer === "bronze");
  return `<section id="nulls"><h2>Null % per column</h2>
<p class="sub">Share of null values per column, one column per run (oldest left, this run outlined). A cell turning redder is a column getting nullier.</p>
${modelled.length ? heatTable(modelled, d) : ""}
${
    landed.length
      ? `<details${
        modelled.length ? "" : " open"
      }><summary>Bronze: the batches each run landed, as stored (${landed.length} columns)</summary>${
        heatTable(landed, d)
      }</details>`
      : ""
  }</section>`;
}

function renderHistory(d: ReportData): string {
  const why = new Map(d.failures.map((f) => [f.run_id, whyFailed(f)]));
  const rows = [...d.history].reverse().map((h) =>
    `<tr><td class="mono">${esc(h.run_id)}</td><td><span class="badge ${esc(h.status)}">${
      esc(h.status)
    }</span></td><td>${
      esc(new Date(h.started_ms).toISOString().replace("T", " ").slice(0, 19))
    }</td>` +
    `<td class="num">${h.duration_seconds === null ? "-" : h.duration_seconds.toFixed(2)}</td>` +
    `<td class="num">${num(h.landed)}</td><td class="num">${num(h.silver)}</td><td class="num">${
      num(h.quarantined)
    }</td><td class="num">${num(h.duplicates)}</td><td class="num">${
      num(h.gold)
    }</td><td class="why">${esc(why.get(h.run_id) ?? "")}</td></tr>`
  ).join("");
  return `<section id="history"><h2>Run history (last ${d.history.length} runs)</h2>
<p class="sub">Pipeline runs (<code>sluice run</code>); <code>sluice check</code> runs are listed apart below. Rows per run are on a log scale, so a table of a hundred rows and one of millions both stay readable; a zero is left out of the chart.</p>
<div class="grid2"><div class="chart" id="chart-history-duration"></div><div class="chart" id="chart-history-rows"></div></div>
<table><thead><tr><th>run</th><th>status</th><th>started (UTC)</th><th class="num">seconds</th><th class="num">landed</th><th class="num">silver</th><th class="num">quarantined</th><th class="num">duplicates</th><th class="num">gold</th><th>why it failed</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

function renderQuarantine(d: ReportData): string {
  const groups = d.quarantine;
  const head = `<section id="quarantine"><h2>Quarantined rows by reason</h2>`;
  if (groups.length === 0) {
    return `${head}<p class="empty">No rows were quarantined in this run.</p></section>`;
  }
  const total = groups.reduce((s, g) => s + g.rows, 0);
  const rows = groups.map((g) =>
    `<tr><td>${esc(g.layer)}.${esc(g.table)}</td><td><span class="code">${
      esc(g.code)
    }</span></td>` +
    `<td class="mono">${esc(g.subject)}</td><td class="num">${num(g.rows)}</td>` +
    `<td class="num">${pct(g.rows / total)}</td></tr>`
  ).join("");
  const samples = groups.map((g, i) =>
    `<details class="qgroup"${i < 3 ? " open" : ""}><summary><strong>${esc(g.layer)}.${
      esc(g.table)
    }</strong> · ${esc(g.code)} · <span class="mono">${esc(g.subject)}</span> (${
      plural(g.rows, "row")
    }; ${num(g.samples.length)} shown)</summary>${
      g.samples.map((s) =>
        `<div class="qsample"><div class="mono where">${esc(s.file ?? "?")}${
          s.line === null ? "" : `:${s.line}`
        }</div><div class="reason">${esc(s.reason ?? "")}</div>${
          renderSample(s.raw, /^column "(.*)"$/.exec(g.subject)?.[1])
        }</div>`
      ).join("")
    }</details>`
  ).join("");
  return `${head}
<p class="sub">${
    num(total)
  } rows of this run were refused and kept in <code>silver.&lt;table&gt;__quarantine</code> (bronze: lines the reader rejected), grouped by reason and the column or rule it names. Samples are the first rows by file and line, as they arrived.</p>
<table><thead><tr><th>table</th><th>reason</th><th>about</th><th class="num">rows</th><th class="num">share</th></tr></thead><tbody>${rows}</tbody></table>
${samples}</section>`;
}

function renderFailures(d: ReportData): string {
  const head = `<section id="failures"><h2>Why runs failed</h2>`;
  if (d.failures.length === 0) {
    return `${head}<p class="empty">Every run in the history succeeded.</p></section>`;
  }
  const items = d.failures.map((f) => {
    const errors = f.failed_checks.filter((c) => c.severity !== "warn");
    const warnings = f.failed_checks.filter((c) => c.severity === "warn");
    const checkTable = (list: RunFailure["failed_checks"]) =>
      `<table class="checks"><thead><tr><th>status</th><th>severity</th><th>table</th><th>check</th><th class="num">failing rows</th><th>message</th></tr></thead><tbody>${
        list.map((c) =>
          `<tr><td><span class="badge ${esc(c.status)}">${esc(c.status)}</span></td><td>${
            esc(c.severity)
          }</td><td>${esc(c.layer)}.${esc(c.table)}</td><td>${esc(c.check)}</td><td class="num">${
            num(c.failing_rows)
          }</td><td>${esc(firstLine(c.message))}</td></tr>`
        ).join("")
      }</tbody></table>`;
    const checks = (errors.length ? checkTable(errors) : "") +
      (warnings.length
        ? `<details><summary>${plural(warnings.length, "warning check")} failed too</summary>${
          checkTable(warnings)
        }</details>`
        : "");
    const more = f.error && f.error.includes("\n")
      ? `<details><summary>full error</summary><pre>${esc(f.error)}</pre></details>`
      : "";
    return `<div class="failure" data-run="${esc(f.run_id)}"><div><span class="badge ${
      esc(f.status)
    }">${esc(f.status)}</span> <span class="mono">${esc(f.run_id)}</span> · ${esc(f.command)} · ${
      esc(new Date(f.started_ms).toISOString().replace("T", " ").slice(0, 19))
    } UTC${f.run_id === d.run.run_id ? " · <strong>this run</strong>" : ""}</div><div class="why">${
      esc(whyFailed(f))
    }</div>${more}${checks}</div>`;
  }).join("");
  return `${head}<p class="sub">Newest first. A failed run publishes nothing; the outputs of the last successful run stay in place.</p>${items}</section>`;
}

function renderCheckRuns(d: ReportData): string {
  const head = `<section id="check-runs"><h2>Check runs (<code>sluice check</code>)</h2>`;
  if (d.check_runs.length === 0) {
    return `${head}<p class="empty">No <code>sluice check</code> runs in this window.</p></section>`;
  }
  const why = new Map(d.failures.map((f) => [f.run_id, whyFailed(f)]));
  const rows = [...d.check_runs].reverse().map((c) =>
    `<tr><td class="mono">${esc(c.run_id)}</td><td><span class="badge ${esc(c.status)}">${
      esc(c.status)
    }</span></td><td>${
      esc(new Date(c.started_ms).toISOString().replace("T", " ").slice(0, 19))
    }</td><td class="num">${
      c.duration_seconds === null ? "-" : c.duration_seconds.toFixed(2)
    }</td><td class="num">${c.checks ? num(c.checks.pass) : "-"}</td><td class="num">${
      c.checks ? num(c.checks.fail) : "-"
    }</td><td class="num">${c.checks ? num(c.checks.error) : "-"}</td><td>${
      esc(why.get(c.run_id) ?? "")
    }</td></tr>`
  ).join("");
  return `${head}<p class="sub">Checks run alone against the current tables; they change no data and are kept out of the run history above.</p>
<table><thead><tr><th>run</th><th>status</th><th>started (UTC)</th><th class="num">seconds</th><th class="num">pass</th><th class="num">fail</th><th class="num">error</th><th>why</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

function renderBronze(d: ReportData): string {
  const head = `<section id="bronze"><h2>What bronze holds</h2>`;
  if (d.bronze.length === 0) {
    return `${head}<p class="empty">No bronze tables yet.</p></section>`;
  }
  // The format column appears once a run records the sources' formats.
  const formats = d.bronze.some((b) => b.format !== null);
  const rows = d.bronze.map((b) =>
    `<tr><td>${esc(b.table)}</td>${
      formats ? `<td>${esc(b.format ?? "")}</td>` : ""
    }<td class="num">${num(b.columns.length)}</td><td>${
      esc(b.types.map((t) => `${t.columns} ${t.type}`).join(", "))
    }</td><td class="mono cols">${
      esc(b.columns.map((c) => `${c.name} ${c.type}`).join(", "))
    }</td></tr>`
  ).join("");
  return `${head}<p class="sub">Column types as stored in bronze (Sluice's own <code>_</code> columns left out). CSV: the field's text (VARCHAR) unless the source's <code>columns:</code> declares a type; NDJSON and JSON: each top-level value's text (strings unquoted, numbers exactly as written, objects and arrays as JSON text); Parquet: the file's native types. Casting happens once, in silver; a value that does not cast is quarantined there. Records that cannot be read are in <code>bronze.&lt;source&gt;__rejects</code> (above, as <code>rejected</code>).</p>
<table><thead><tr><th>source</th>${
    formats ? "<th>format</th>" : ""
  }<th class="num">columns</th><th>stored types</th><th>columns</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

function renderManifest(d: ReportData): string {
  const m = d.run.manifest;
  if (!m) {
    return `<section id="manifest"><h2>Manifest</h2><p class="empty">Not recorded.</p></section>`;
  }
  const models = Object.entries(m.models ?? {}).map(([k, v]) =>
    `<tr><td class="mono">${esc(k)}</td><td class="mono">${esc(v)}</td></tr>`
  ).join("");
  const inputs = m.inputs.map((f) =>
    `<tr><td class="mono">${esc(f.path)}</td><td class="num">${num(f.size)}</td><td>${
      esc(new Date(f.mtime_ms).toISOString())
    }</td><td class="mono">${esc(f.sha256)}</td><td class="num">${num(f.rows)}</td></tr>`
  ).join("");
  return `<section id="manifest"><h2>Manifest</h2>
<table><tbody>
<tr><th>Sluice</th><td>${esc(m.sluice_version)}</td></tr>
<tr><th>DuckDB</th><td>${esc(m.duckdb_version)} <span class="sub">(${
    esc(m.duckdb_source_id)
  })</span></td></tr>
<tr><th>Deno</th><td>${esc(m.deno_version)}</td></tr>
<tr><th>Config</th><td class="mono">${esc(m.config_file)}<br>sha256 ${esc(m.config_hash)}</td></tr>
</tbody></table>
<details><summary>SQL models (${
    Object.keys(m.models ?? {}).length
  })</summary><table><thead><tr><th>model</th><th>sha256</th></tr></thead><tbody>${models}</tbody></table></details>
<details><summary>Input files read (${m.inputs.length})</summary><table><thead><tr><th>path</th><th class="num">bytes</th><th>mtime</th><th>sha256</th><th class="num">rows</th></tr></thead><tbody>${inputs}</tbody></table></details>
</section>`;
}

/**
 * Renders report data as one self-contained HTML document: styles, data,
 * uPlot and the chart script are all inline; nothing is fetched.
 *
 * @example
 * ```ts ignore
 * const html = renderReport(await collectReport(db));
 * ```
 */
export function renderReport(d: ReportData): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${esc(d.pipeline)} run ${esc(d.run.run_id)} · ${esc(d.run.status)}</title>
<style>${UPLOT_CSS}</style>
<style>${REPORT_CSS}</style>
</head><body><main>
${renderHeader(d)}
${renderStages(d)}
${renderFlow(d)}
${renderQuarantine(d)}
${renderQuality(d)}
${renderHeatmap(d)}
${renderHistory(d)}
${renderFailures(d)}
${renderCheckRuns(d)}
${renderBronze(d)}
${renderManifest(d)}
<footer>Generated ${esc(d.generated_at)} by Sluice ${esc(SLUICE_VERSION)} · charts by uPlot ${
    esc(UPLOT_VERSION)
  } (MIT)</footer>
</main>
<!-- uPlot licence:
${esc(UPLOT_LICENSE)}
-->
<script type="application/json" id="sluice-report-data">${
    scriptJson({ stages: d.stages, history: d.history })
  }</script>
<script>${inlineScript(UPLOT_JS)}</script>
<script>${inlineScript(REPORT_JS)}</script>
</body></html>
`;
}

/**
 * Collects and renders the report of a run (default the latest).
 *
 * @example
 * ```ts ignore
 * await Deno.writeTextFile("report.html", await buildReport(db, { runId }));
 * ```
 */
export async function buildReport(db: Engine, options: ReportOptions = {}): Promise<string> {
  return renderReport(await collectReport(db, options));
}
