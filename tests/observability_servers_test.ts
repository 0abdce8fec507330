/**
 * Real servers: a Prometheus Pushgateway receiving a batch run's push, a
 * Prometheus server scraping a running metrics server, and node_exporter
 * serving the textfile a run wrote. Each starts its Debian binary on a free
 * 127.0.0.1 port with its own temp folder and stops it afterwards. Without
 * the package the test is skipped with a notice naming it; under CI=true a
 * missing binary fails.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openEngine } from "../core/engine.ts";
import { metricSamples } from "../observability/metrics.ts";
import { serveMetrics } from "../observability/metrics_server.ts";
import {
  assertBinary,
  cleanup,
  cli,
  freePort,
  makeDemoProject,
  poll,
  requireBinary,
  runInProcess,
  startServer,
} from "./_obs_helpers.ts";

const PUSHGATEWAY = "/usr/bin/prometheus-pushgateway";
const PROMETHEUS = "/usr/bin/prometheus";
const NODE_EXPORTER = "/usr/bin/prometheus-node-exporter";

interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format (enough for these tests). */
function parseExposition(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function find(series: Series[], name: string, labels: Record<string, string>): Series[] {
  return series.filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
}

async function ledgerFigures(dir: string, runId: string) {
  const db = await openEngine(join(dir, "lake/sluice.duckdb"), { allowedDirectories: [dir] });
  try {
    const tables = await db.all<{
      layer: string;
      table_name: string;
      rows_in: number;
      passed: number;
      quarantined: number;
      duplicates: number;
    }>(
      `SELECT layer, table_name, rows_in, passed, quarantined, duplicates FROM _sluice.stage_tables
       WHERE run_id = $r AND layer IN ('bronze', 'silver', 'gold')`,
      { r: runId },
    );
    const finished = await db.one<{ t: number }>(
      `SELECT epoch(finished_at) AS t FROM _sluice.runs WHERE run_id = $r`,
      { r: runId },
    );
    return { tables, finishedAt: finished!.t };
  } finally {
    db.close();
  }
}

Deno.test({
  name: "a batch run's metrics are readable from a real Pushgateway (grouped by job and pipeline)",
  ...requireBinary(PUSHGATEWAY, "prometheus-pushgateway"),
  async fn() {
    assertBinary(PUSHGATEWAY, "prometheus-pushgateway");
    const port = freePort();
    const gw = await startServer(
      PUSHGATEWAY,
      [`--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"],
      { port, readyPath: "/-/ready" },
    );
    const p = await makeDemoProject(`observability:
  metrics:
    pushgateway: { url: "http://127.0.0.1:${port}", job: nightly }
`);
    try {
      const r = await cli(["--log-format", "json", "run", "-c", p.configFile]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stderr.trim().split("\n").map((l) => JSON.parse(l));
      const pushed = lines.find((l) => l.event === "metrics_pushed");
      assert.ok(pushed, `no metrics_pushed event:\n${r.stderr}`);
      assert.equal(pushed.url, `http://127.0.0.1:${port}/metrics/job/nightly/pipeline/ecommerce`);
      const runId = lines[0].run_id;

      const res = await fetch(`${gw.url}/metrics`);
      const series = parseExposition(await res.text());
      const group = { job: "nightly", pipeline: "ecommerce" };
      assert.equal(find(series, "push_time_seconds", group).length, 1, "the group exists");
      assert.equal(find(series, "push_failure_time_seconds", group)[0]?.value, 0);
      const ledger = await ledgerFigures(p.dir, runId);
      assert.ok(ledger.tables.length >= 9);
      for (const t of ledger.tables) {
        const l = { ...group, layer: t.layer, table: t.table_name };
        assert.equal(find(series, "sluice_rows", { ...l, outcome: "passed" })[0]?.value, t.passed);
        assert.equal(
          find(series, "sluice_rows", { ...l, outcome: "quarantined" })[0]?.value,
          t.quarantined,
        );
        assert.equal(
          find(series, "sluice_rows", { ...l, outcome: "duplicate" })[0]?.value,
          t.duplicates,
        );
        assert.equal(find(series, "sluice_rows_in", l)[0]?.value, t.rows_in);
      }
      assert.equal(
        find(series, "sluice_run_status", { ...group, status: "success" })[0]?.value,
        1,
      );
      assert.equal(
        find(series, "sluice_last_success_timestamp_seconds", group)[0]?.value,
        ledger.finishedAt,
      );
      assert.equal(find(series, "sluice_stage_duration_seconds", group).length, 5);
    } finally {
      await gw.stop();
      await cleanup(p.dir);
    }
  },
});

Deno.test({
  name: "a real Prometheus scraping a running metrics server has the metrics in its query API",
  ...requireBinary(PROMETHEUS, "prometheus"),
  async fn() {
    assertBinary(PROMETHEUS, "prometheus");
    const p = await makeDemoProject();
    const run = await runInProcess(p);
    assert.equal(run.error, undefined, String(run.error));
    // What `sluice stream` does: serve the registry while it runs.
    const metricsServer = serveMetrics(run.registry, { port: 0, hostname: "127.0.0.1" });
    const promPort = freePort();
    const data = await Deno.makeTempDir({ prefix: "sluice_prom_" });
    await Deno.writeTextFile(
      join(data, "prometheus.yml"),
      `global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: sluice_stream
    static_configs:
      - targets: ["127.0.0.1:${metricsServer.port}"]
`,
    );
    let prom;
    try {
      prom = await startServer(PROMETHEUS, [
        `--config.file=${join(data, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(data, "tsdb")}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        "--log.level=warn",
      ], { port: promPort, readyPath: "/-/ready" });
      const query = async (q: string) => {
        const res = await fetch(`${prom!.url}/api/v1/query?query=${encodeURIComponent(q)}`);
        const body = await res.json();
        assert.equal(body.status, "success", JSON.stringify(body));
        return body.data.result as { metric: Record<string, string>; value: [number, string] }[];
      };
      const expected = (await metricSamples(run.registry)).find((s) =>
        s.metric === "sluice_rows" && s.labels.layer === "silver" &&
        s.labels.table === "orders" && s.labels.outcome === "passed"
      )!;
      const q = `sluice_rows{job="sluice_stream",layer="silver",table="orders",outcome="passed"}`;
      const result = await poll(async () => {
        const r = await query(q);
        return r.length > 0 ? r : undefined;
      }, { tries: 150, ms: 200 });
      assert.ok(result, `Prometheus never had ${q}:\n${prom.log()}`);
      assert.equal(Number(result[0].value[1]), expected.value);
      assert.equal(result[0].metric.instance, `127.0.0.1:${metricsServer.port}`);
      const up = await query(`up{job="sluice_stream"}`);
      assert.equal(up[0].value[1], "1");
      const last = await query(`sluice_last_success_timestamp_seconds{pipeline="ecommerce"}`);
      assert.equal(last.length, 1);
      const targets = await (await fetch(`${prom.url}/api/v1/targets`)).json();
      assert.equal(targets.data.activeTargets[0].health, "up");
    } finally {
      await prom?.stop();
      await metricsServer.close();
      await cleanup(data);
      await cleanup(p.dir);
    }
  },
});

Deno.test({
  name: "a real node_exporter serves the textfile a batch run wrote",
  ...requireBinary(NODE_EXPORTER, "prometheus-node-exporter"),
  async fn() {
    assertBinary(NODE_EXPORTER, "prometheus-node-exporter");
    const p = await makeDemoProject(`observability:
  metrics:
    textfile: { path: ./textfile/sluice_ecommerce.prom }
`);
    const port = freePort();
    let ne;
    try {
      const run = await runInProcess(p);
      assert.equal(run.error, undefined, String(run.error));
      ne = await startServer(NODE_EXPORTER, [
        `--web.listen-address=127.0.0.1:${port}`,
        "--collector.disable-defaults",
        "--collector.textfile",
        `--collector.textfile.directory=${join(p.dir, "textfile")}`,
      ], { port, readyPath: "/metrics" });
      const series = parseExposition(await (await fetch(`${ne.url}/metrics`)).text());
      assert.equal(find(series, "node_textfile_scrape_error", {})[0]?.value, 0, ne.log());
      assert.equal(
        find(series, "node_textfile_mtime_seconds", {
          file: join(p.dir, "textfile", "sluice_ecommerce.prom"),
        }).length + find(series, "node_textfile_mtime_seconds", {
          file: "sluice_ecommerce.prom",
        }).length,
        1,
      );
      const ledger = await ledgerFigures(p.dir, run.runId);
      for (const t of ledger.tables) {
        const l = { pipeline: "ecommerce", layer: t.layer, table: t.table_name };
        assert.equal(find(series, "sluice_rows", { ...l, outcome: "passed" })[0]?.value, t.passed);
      }
      assert.equal(
        find(series, "sluice_last_success_timestamp_seconds", { pipeline: "ecommerce" })[0]?.value,
        ledger.finishedAt,
      );
    } finally {
      await ne?.stop();
      await cleanup(p.dir);
    }
  },
});
