/**
 * The HTML run report's stylesheet and browser script, embedded as strings
 * so the report is one self-contained file and nothing is read from disk at
 * run time. The script reads the report's data from
 * `<script type="application/json" id="sluice-report-data">`, draws the
 * charts with uPlot (inlined beside it), and sets
 * `document.documentElement.dataset.chartsReady` to the number of charts
 * drawn (or `dataset.chartsError` to the error), so a headless browser can
 * wait for it; the uPlot instances are `window.sluiceCharts` (stages,
 * duration, rows).
 *
 * @module
 */

/**
 * Stylesheet of the report.
 *
 * @example
 * ```ts
 * import { REPORT_CSS } from "./_report_template.ts";
 * const style = `<style>${REPORT_CSS}</style>`;
 * ```
 */
export const REPORT_CSS: string = `
:root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #57606a; --line: #d0d7de;
  --bg: #f6f8fa; --pass: #2da44e; --quar: #e5534b; --dup: #8c959f; font-family: system-ui,
  -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1f2328; }
body { margin: 0; background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 8px; }
.sub { color: var(--muted); font-size: 13px; }
.mono, code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; font-size: 12px;
  font-weight: 600; color: #fff; vertical-align: middle; }
.badge.success, .badge.pass { background: var(--ok); }
.badge.failed, .badge.fail, .badge.quality_failed, .badge.error { background: var(--bad); }
.badge.running, .badge.warn { background: var(--warn); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; margin: 16px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; background: var(--bg); }
.card .v { font-size: 20px; font-weight: 600; }
.card .k { font-size: 12px; color: var(--muted); }
.error-box { border: 1px solid var(--bad); background: #ffebe9; border-radius: 8px; padding: 10px 12px;
  margin: 12px 0; white-space: pre-wrap; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { display: flex; height: 12px; width: 220px; border-radius: 3px; overflow: hidden; background: #eaeef2; }
.bar span { display: block; height: 100%; }
.bar .p { background: var(--pass); } .bar .q { background: var(--quar); } .bar .d { background: var(--dup); }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; color: var(--muted); }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
.chart { margin: 6px 0 12px; min-height: 240px; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
table.heat { width: auto; }
.heat td.cell { text-align: center; font-size: 11px; min-width: 48px; font-variant-numeric: tabular-nums; border: 1px solid #fff; }
.heat th.run { font-size: 11px; writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; text-align: left; }
.heat th.current { color: #0969da; }
.heat td.current { box-shadow: inset 2px 0 0 #0969da, inset -2px 0 0 #0969da; }
.heat td.tbl { font-weight: 600; white-space: nowrap; }
details { margin: 6px 0; }
summary { cursor: pointer; }
pre { background: var(--bg); padding: 8px; border-radius: 6px; overflow-x: auto; margin: 4px 0; }
.empty { color: var(--muted); font-style: italic; }
.badge.timed_out, .badge.cancelled, .badge.abandoned { background: var(--bad); }
.badge.skipped { background: var(--dup); }
td.num.over, .budget.over { color: var(--bad); font-weight: 600; }
.budget { font-size: 12px; white-space: nowrap; }
.code { display: inline-block; padding: 1px 6px; border-radius: 4px; background: #fff1e5; color: #953800;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.qgroup { border: 1px solid var(--line); border-radius: 8px; padding: 6px 10px; margin: 8px 0; }
.qsample { margin: 8px 0 10px; padding-left: 10px; border-left: 3px solid var(--quar); }
.qsample .where { color: var(--muted); }
.qsample .reason { font-size: 13px; margin: 2px 0 4px; }
.failure { border: 1px solid var(--line); border-left: 4px solid var(--bad); border-radius: 8px;
  padding: 8px 12px; margin: 10px 0; }
.failure .why { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px;
  margin: 6px 0; white-space: pre-wrap; }
.failure table.checks { margin-top: 6px; }
td.why { font-size: 12px; color: var(--bad); max-width: 360px; }
td.cols { font-size: 11px; color: var(--muted); }
.sample td.bad { background: #ffebe9; color: var(--bad); font-weight: 600; }
.sample th.bad { color: var(--bad); }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
`;

/**
 * Browser script of the report (uses the global `uPlot`).
 *
 * @example
 * ```ts
 * import { REPORT_JS } from "./_report_template.ts";
 * const script = `<script>${REPORT_JS}</script>`; // after uPlot and the data element
 * ```
 */
export const REPORT_JS: string = `
(function () {
  "use strict";
  var root = document.documentElement;
  try {
    var data = JSON.parse(document.getElementById("sluice-report-data").textContent);
    var drawn = 0;
    // The drawn charts, for a test or a curious reader's console.
    var charts = window.sluiceCharts = {};
    var width = function (el) { return Math.max(320, Math.floor(el.clientWidth || 560)); };
    var fmtNum = function (v) { return v == null ? "-" : Number(v).toLocaleString("en-US"); };

    // Stage timings: one bar per stage.
    var stagesEl = document.getElementById("chart-stages");
    if (stagesEl && data.stages.length > 0) {
      var names = data.stages.map(function (s) { return s.stage; });
      var xs = names.map(function (_, i) { return i; });
      var ys = data.stages.map(function (s) { return s.duration_ms / 1000; });
      charts.stages = new uPlot({
        width: width(stagesEl), height: 240, title: "Seconds per stage",
        scales: { x: { time: false, range: [-0.5, names.length - 0.5] }, y: { range: function (u, min, max) { return [0, Math.max(max * 1.15, 0.01)]; } } },
        axes: [
          { splits: function () { return xs; }, values: function (u, vals) { return vals.map(function (v) { return names[v] || ""; }); }, grid: { show: false } },
          { label: "seconds", values: function (u, vals) { return vals.map(function (v) { return v.toFixed(2); }); } }
        ],
        legend: { show: false },
        series: [{}, { label: "seconds", fill: "rgba(9,105,218,0.75)", stroke: "#0969da", width: 1,
          paths: uPlot.paths.bars({ size: [0.6, 90] }), points: { show: false } }]
      }, [xs, ys], stagesEl);
      drawn++;
    }

    // Run history: duration, and rows per layer, over the last runs.
    var hist = data.history;
    var xsT = hist.map(function (r) { return r.started_ms / 1000; });
    var durEl = document.getElementById("chart-history-duration");
    if (durEl && hist.length > 0) {
      charts.duration = new uPlot({
        width: width(durEl), height: 240, title: "Run duration (seconds)",
        scales: { y: { range: function (u, min, max) { return [0, Math.max(max * 1.15, 0.01)]; } } },
        axes: [{}, { label: "seconds" }],
        series: [{}, { label: "duration", stroke: "#0969da", width: 2, points: { show: true, size: 6 } },
          { label: "failed", stroke: "#cf222e", width: 0, points: { show: true, size: 9, fill: "#cf222e" } }]
      }, [xsT, hist.map(function (r) { return r.duration_seconds; }),
          hist.map(function (r) { return r.status === "success" || r.status === "running" ? null : r.duration_seconds; })], durEl);
      drawn++;
    }
    // Rows per run on a log scale: bronze can hold millions while quarantine holds a
    // handful, and both must stay readable. log(0) has no place on it: zeros are gaps.
    var rowsEl = document.getElementById("chart-history-rows");
    var positive = function (v) { return v == null || v <= 0 ? null : v; };
    if (rowsEl && hist.length > 0) {
      charts.rows = new uPlot({
        width: width(rowsEl), height: 240, title: "Rows per run (log scale)",
        scales: { y: { distr: 3, log: 10 } },
        axes: [{}, { label: "rows", size: 70, values: function (u, vals) { return vals.map(fmtNum); } }],
        series: [{},
          { label: "landed (bronze)", stroke: "#8250df", width: 2, points: { show: true } },
          { label: "passed (silver)", stroke: "#2da44e", width: 2, points: { show: true } },
          { label: "quarantined", stroke: "#e5534b", width: 2, points: { show: true } },
          { label: "duplicates", stroke: "#8c959f", width: 2, points: { show: true } }]
      }, [xsT, hist.map(function (r) { return positive(r.landed); }), hist.map(function (r) { return positive(r.silver); }),
          hist.map(function (r) { return positive(r.quarantined); }), hist.map(function (r) { return positive(r.duplicates); })], rowsEl);
      drawn++;
    }
    root.dataset.chartsReady = String(drawn);
  } catch (e) {
    root.dataset.chartsError = String(e && e.stack || e);
    throw e;
  }
})();
`;
