/**
 * The HTML run report (`sluice report`): one self-contained file that opens
 * with no network. It shows the run's status and error, a stage timings
 * chart, the row flow across layers (passed, quarantined, duplicates), the
 * data-quality results with failing samples, a null % heatmap per table and
 * column over the last runs, run history charts (duration and rows), and the
 * run manifest. Figures come from the ledger tables via DuckDB; charts are
 * drawn in the browser by uPlot, inlined.
 *
 * @module
 */
import { systemClock } from "../core/clock.ts";
import type { Engine } from "../core/engine.ts";
import { UsageError } from "../core/errors.ts";
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
  const window = (await listRuns(db, {
    pipeline,
    limit: options.history ?? 30,
    upTo: run.run_id,
  })).reverse();
  const history = window.map(toHistory);
  const stats = await readColumnStats(db, { runIds: window.map((r) => r.run_id) });
  const measuredRuns = window.filter((r) => stats.some((s) => s.run_id === r.run_id));
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
    quality_recorded: await tableExists(db, "_sluice", "check_results"),
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

function renderHeader(d: ReportData): string {
  const r = d.run;
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

function renderFlow(d: ReportData): string {
  const rows: string[] = [];
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
          `<td>${bar}</td></tr>`,
      );
    }
  }
  return `<section id="flow"><h2>Row flow across layers</h2>
<div class="legend"><span><i style="background:var(--pass)"></i>passed</span><span><i style="background:var(--quar)"></i>quarantined</span><span><i style="background:var(--dup)"></i>duplicates</span></div>
${
    rows.length
      ? `<table><thead><tr><th>layer</th><th>table</th><th class="num">in</th><th class="num">passed</th><th class="num">quarantined</th><th class="num">duplicates</th><th></th></tr></thead><tbody>${
        rows.join("")
      }</tbody></table>`
      : `<p class="empty">No rows moved in this run.</p>`
  }</section>`;
}

function renderSample(sample: unknown): string {
  if (sample !== null && typeof sample === "object" && !Array.isArray(sample)) {
    const entries = Object.entries(sample as Record<string, unknown>);
    return `<table class="sample"><tr>${
      entries.map(([k]) => `<th>${esc(k)}</th>`).join("")
    }</tr><tr>${
      entries.map(([, v]) =>
        `<td class="mono">${esc(typeof v === "string" ? v : JSON.stringify(v))}</td>`
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
      }><summary>Bronze: the batches each run landed, as text (${landed.length} columns)</summary>${
        heatTable(landed, d)
      }</details>`
      : ""
  }</section>`;
}

function renderHistory(d: ReportData): string {
  const rows = [...d.history].reverse().map((h) =>
    `<tr><td class="mono">${esc(h.run_id)}</td><td><span class="badge ${esc(h.status)}">${
      esc(h.status)
    }</span></td><td>${
      esc(new Date(h.started_ms).toISOString().replace("T", " ").slice(0, 19))
    }</td>` +
    `<td class="num">${h.duration_seconds === null ? "-" : h.duration_seconds.toFixed(2)}</td>` +
    `<td class="num">${num(h.landed)}</td><td class="num">${num(h.silver)}</td><td class="num">${
      num(h.quarantined)
    }</td><td class="num">${num(h.duplicates)}</td><td class="num">${num(h.gold)}</td></tr>`
  ).join("");
  return `<section id="history"><h2>Run history (last ${d.history.length} runs)</h2>
<div class="grid2"><div class="chart" id="chart-history-duration"></div><div class="chart" id="chart-history-rows"></div></div>
<table><thead><tr><th>run</th><th>status</th><th>started (UTC)</th><th class="num">seconds</th><th class="num">landed</th><th class="num">silver</th><th class="num">quarantined</th><th class="num">duplicates</th><th class="num">gold</th></tr></thead><tbody>${rows}</tbody></table></section>`;
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
${renderQuality(d)}
${renderHeatmap(d)}
${renderHistory(d)}
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
