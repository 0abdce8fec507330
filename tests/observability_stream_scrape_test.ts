/**
 * A real Prometheus server scraping a RUNNING `sluice stream --trigger
 * interval` subprocess through its `observability.metrics.server` endpoint:
 * the stream's counters reach the query API with exactly the numbers its
 * DuckDB tables hold, `/healthz` answers while it runs, and SIGTERM stops
 * the stream (exit 0) and closes the port.
 *
 * Needs `--allow-run=deno,/usr/bin/prometheus --allow-net=127.0.0.1`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../core/config/mod.ts";
import { openEngine } from "../core/engine.ts";
import {
  assertBinary,
  cleanup,
  freePort,
  poll,
  requireBinary,
  type Server,
  startServer,
} from "./_obs_helpers.ts";
import {
  event,
  logRecords,
  makeStreamProject,
  streamYaml,
  watchLines,
  writeLanding,
} from "./fixtures/streaming.ts";

const PROMETHEUS = "/usr/bin/prometheus";
const ROOT = new URL("../", import.meta.url).pathname;
const JOB = "sluice_stream";
const SERIES = `job="${JOB}",pipeline="shop",stream="events_v1"`;

/** One instant-vector sample of the Prometheus query API. */
interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** Starts `sluice stream --trigger interval` with the documented permissions. */
function spawnStream(configFile: string): Deno.ChildProcess {
  return new Deno.Command("deno", {
    args: [
      "run",
      `--allow-ffi=${ROOT}node_modules`,
      "--allow-read",
      "--allow-write",
      "--allow-env=SLUICE_*,LOG_TOKENS,LOG_STREAM,NO_COLOR,TERM",
      "--allow-net=127.0.0.1",
      `${ROOT}cli.ts`,
      "--log-format",
      "json",
      "stream",
      "-c",
      configFile,
      "--trigger",
      "interval",
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
async function listening(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.ConnectionRefused) return false;
    throw e;
  }
}

Deno.test({
  name: "Prometheus scraping a running sluice stream has its record and dead-letter counts " +
    "equal to the target and DLQ tables, and SIGTERM closes the metrics port",
  ...requireBinary(PROMETHEUS, "prometheus"),
  async fn() {
    assertBinary(PROMETHEUS, "prometheus");
    const metricsPort = freePort();
    const promPort = freePort();
    const p = await makeStreamProject(
      streamYaml({ interval: "1s", maxFiles: 1 }) +
        `observability:\n  metrics:\n    server: { port: ${metricsPort} }\n    log: false\n`,
    );
    // Valid events lie within 20 minutes (watermark delay 1 hour); each late
    // event is 3 hours older and follows a valid one in the same file, so it
    // is late whatever order the files are taken in.
    await writeLanding(
      p,
      "a.ndjson",
      [
        ...[0, 1, 2, 3, 4].map((i) => event(`a${i}`, i * 60)),
        "{broken",
        "",
        event("a_late", -3 * 3600),
      ].join("\n") + "\n",
    );
    await writeLanding(
      p,
      "b.ndjson",
      [
        ...[5, 6, 7, 8].map((i) => event(`b${i}`, i * 60)),
        event("b_bad_amount", 9 * 60, { amount: "abc" }),
        "[1,2]",
        event("b_late", -3 * 3600 - 60),
      ].join("\n") + "\n",
    );
    await writeLanding(
      p,
      "c.ndjson",
      [10, 11, 12, 13, 14, 15].map((i) => event(`c${i}`, i * 60)).join("\n") + "\n",
    );
    const data = await Deno.makeTempDir({ prefix: "sluice_prom_" });
    await Deno.writeTextFile(
      join(data, "prometheus.yml"),
      `global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ${JOB}
    static_configs:
      - targets: ["127.0.0.1:${metricsPort}"]
`,
    );

    const child = spawnStream(p.configFile);
    const err = watchLines(child.stderr);
    const stdout = new Response(child.stdout).text();
    let exited = false;
    const status = child.status.then((s) => {
      exited = true;
      return s;
    });
    const stderr = () => err.lines.join("\n");
    let prom: Server | undefined;
    try {
      prom = await startServer(PROMETHEUS, [
        `--config.file=${join(data, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(data, "tsdb")}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        "--log.level=warn",
      ], { port: promPort, readyPath: "/-/ready" });
      const promUrl = prom.url;
      const query = async (q: string): Promise<Sample[]> => {
        const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
        const body = await res.json();
        assert.equal(body.status, "success", JSON.stringify(body));
        return body.data.result;
      };
      /** Polls until `q` has exactly one sample with value `want`; returns the last answer. */
      const waitFor = async (q: string, want: string, options: { running?: boolean } = {}) => {
        let last: Sample[] = [];
        const hit = await poll(async () => {
          if (options.running ?? true) assert.ok(!exited, `sluice stream exited:\n${stderr()}`);
          last = await query(q);
          return last.length === 1 && last[0].value[1] === want ? last : undefined;
        }, { tries: 150, ms: 200 });
        assert.ok(
          hit,
          `Prometheus never had ${q} == ${want} (last ${JSON.stringify(last)}):\n` +
            `${prom!.log()}\n--- sluice stream stderr ---\n${stderr()}`,
        );
        return hit;
      };
      /** Every sluice_stream_* sample of the stream, as `name{extra labels}` → value. */
      const streamSamples = async () => {
        const out: Record<string, number> = {};
        for (const s of await query(`{__name__=~"sluice_stream_.+",${SERIES}}`)) {
          const { __name__, job: _j, instance: _i, pipeline: _p, stream: _s, ...rest } = s.metric;
          const extra = Object.entries(rest).map(([k, v]) => `${k}="${v}"`).join(",");
          out[extra ? `${__name__}{${extra}}` : __name__] = Number(s.value[1]);
        }
        return out;
      };

      // 1. The three files present at start, one per batch, reach Prometheus.
      await waitFor(`sluice_stream_files_finished_total{${SERIES}}`, "3");
      const health = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
      assert.equal(health.status, 200);
      assert.equal((await health.json()).status, "ok");
      const up = await query(`up{job="${JOB}"}`);
      assert.equal(up.length, 1);
      assert.equal(up[0].value[1], "1");
      assert.equal(up[0].metric.instance, `127.0.0.1:${metricsPort}`);
      const first = await streamSamples();
      assert.equal(first['sluice_stream_records_total{outcome="written"}'], 15);
      assert.equal(first["sluice_stream_batches_total"], 3);

      // 2. A file landing while the stream runs shows up in the next scrapes.
      await writeLanding(
        p,
        "d.ndjson",
        [16, 17, 18].map((i) => event(`d${i}`, i * 60)).concat(["not json"]).join("\n") + "\n",
      );
      await waitFor(`sluice_stream_files_finished_total{${SERIES}}`, "4");
      await waitFor(`sluice_stream_files_pending{${SERIES}}`, "0");
      const live = await streamSamples();
      const stillHealthy = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
      await stillHealthy.body?.cancel();
      assert.equal(stillHealthy.status, 200);

      // 3. SIGTERM: the stream finishes, exits 143 and closes the metrics port.
      child.kill("SIGTERM");
      const st = await status;
      await err.done;
      assert.equal(st.code, 143, stderr());
      assert.equal(st.signal, null);
      assert.match(await stdout, /stopped: signal/);
      assert.equal(await listening(metricsPort), false, "the metrics port is still open");
      const logs = logRecords(err.lines);
      assert.ok(logs.some((l) => l.event === "metrics_server_started" && l.port === metricsPort));
      assert.ok(logs.some((l) => l.event === "metrics_server_stopped"), stderr());
      // Prometheus sees the target go down.
      await waitFor(`up{job="${JOB}"}`, "0", { running: false });

      // 4. What Prometheus scraped equals what the tables hold.
      const config = await loadConfig(p.configFile);
      const db = await openEngine(config.engine.database, { allowedDirectories: [config.lake] });
      let written: number;
      let byReason: Record<string, number>;
      try {
        written = (await db.one<{ n: number }>("SELECT count(*)::INTEGER AS n FROM silver.events"))!
          .n;
        const rows = await db.all<{ reason: string; n: number }>(
          "SELECT _reason_code AS reason, count(*)::INTEGER AS n FROM silver.events__dlq " +
            "GROUP BY ALL ORDER BY reason",
        );
        byReason = Object.fromEntries(rows.map((r) => [r.reason, r.n]));
      } finally {
        db.close();
      }
      const deadLettered = Object.values(byReason).reduce((a, b) => a + b, 0);
      // The tables hold what the files contain...
      assert.equal(written, 18);
      assert.deepEqual(byReason, { late: 2, malformed_json: 3, schema_violation: 1 });
      // ...and Prometheus has the same numbers.
      assert.equal(live['sluice_stream_records_total{outcome="written"}'], written);
      assert.equal(live['sluice_stream_records_total{outcome="dead_lettered"}'], deadLettered);
      for (const [reason, n] of Object.entries(byReason)) {
        assert.equal(live[`sluice_stream_dead_letters_total{reason="${reason}"}`], n, reason);
      }
      const reasons = Object.keys(live).filter((k) => k.startsWith("sluice_stream_dead_letters"));
      assert.equal(reasons.length, Object.keys(byReason).length, reasons.join(", "));
      assert.equal(live['sluice_stream_records_total{outcome="blank"}'], 1);
      assert.equal(live["sluice_stream_records_read_total"], written + deadLettered + 1);
      assert.equal(live["sluice_stream_batches_total"], 4);
      assert.equal(live["sluice_stream_batch_id"], 4);
      assert.equal(live["sluice_stream_behind_bytes"], 0);
    } finally {
      if (!exited) {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
      await status;
      await err.done;
      await stdout;
      await prom?.stop();
      await cleanup(data);
      await cleanup(p.dir);
    }
  },
});
