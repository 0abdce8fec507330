import assert from "node:assert/strict";
import { join } from "node:path";
import { Gauge, Registry } from "prom-client";
import { steppingClock } from "../core/clock.ts";
import { parseConfig } from "../core/config/mod.ts";
import { ConfigError } from "../core/errors.ts";
import { openEngine } from "../core/engine.ts";
import { pushgatewayGroupUrl, pushToGateway, writeFileAtomic } from "../observability/exporters.ts";
import { metricSamples } from "../observability/metrics.ts";
import { serveMetrics } from "../observability/metrics_server.ts";
import { cleanup, makeDemoProject, rewriteConfig, runInProcess } from "./_obs_helpers.ts";

type Labels = Record<string, string | number>;

async function sample(registry: Registry, metric: string, labels: Labels = {}) {
  const all = await metricSamples(registry);
  return all.filter((s) =>
    s.metric === metric && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
}

async function value(registry: Registry, metric: string, labels: Labels = {}) {
  const found = await sample(registry, metric, labels);
  assert.equal(found.length, 1, `${metric} ${JSON.stringify(labels)}: ${found.length} series`);
  return found[0].value;
}

Deno.test("run metrics equal the ledger; only a success advances the last-success timestamp", async () => {
  const p = await makeDemoProject(`observability:
  metrics:
    textfile: { path: ./node_exporter/sluice_ecommerce.prom }
`);
  try {
    const t1 = new Date("2026-04-01T03:00:00Z");
    const ok = await runInProcess(p, { clock: steppingClock(t1, { stepMs: 5 }) });
    assert.equal(ok.error, undefined, String(ok.error));
    const r1 = ok.registry;
    const pipeline = "ecommerce";
    assert.equal(await value(r1, "sluice_run_status", { pipeline, status: "success" }), 1);
    assert.equal(await value(r1, "sluice_run_status", { pipeline, status: "failed" }), 0);
    const lastSuccess = await value(r1, "sluice_last_success_timestamp_seconds", { pipeline });
    assert.ok(lastSuccess > t1.getTime() / 1000 && lastSuccess < t1.getTime() / 1000 + 60);
    assert.equal(
      await value(r1, "sluice_last_run_timestamp_seconds", { pipeline }),
      lastSuccess,
    );
    assert.equal(await value(r1, "sluice_runs_total", { pipeline, status: "success" }), 1);
    assert.equal(await value(r1, "sluice_files", { source: "orders", outcome: "new" }), 4);
    assert.equal(await value(r1, "sluice_files_found", { source: "orders" }), 4);

    const db = await openEngine(join(p.dir, "lake/sluice.duckdb"), {
      allowedDirectories: [p.dir],
    });
    try {
      const ledger = await db.all<{
        stage: string;
        layer: string;
        table_name: string;
        rows_in: number;
        passed: number;
        quarantined: number;
        duplicates: number;
        duration_ms: number;
      }>(
        `SELECT * FROM _sluice.stage_tables WHERE run_id = $r AND layer <> 'extract'`,
        { r: ok.runId },
      );
      assert.ok(ledger.length >= 10);
      for (const t of ledger) {
        const l = { pipeline, layer: t.layer, table: t.table_name };
        assert.equal(await value(r1, "sluice_rows_in", l), t.rows_in);
        assert.equal(await value(r1, "sluice_rows", { ...l, outcome: "passed" }), t.passed);
        assert.equal(
          await value(r1, "sluice_rows", { ...l, outcome: "quarantined" }),
          t.quarantined,
        );
        assert.equal(await value(r1, "sluice_rows", { ...l, outcome: "duplicate" }), t.duplicates);
        // The outcomes are the parts of rows in: summing them over outcome is meaningful.
        assert.equal(t.passed + t.quarantined + t.duplicates, t.rows_in);
        assert.equal(
          await value(r1, "sluice_stage_duration_seconds", { pipeline, stage: t.stage }),
          t.duration_ms / 1000,
        );
      }
      const nulls = await db.one<{ ratio: number }>(
        `SELECT (count(*) - count(email)) / count(*) AS ratio FROM silver.customers`,
      );
      assert.ok(nulls!.ratio > 0, "the demo data has customers without email");
      assert.ok(
        Math.abs(
          await value(r1, "sluice_column_null_ratio", {
            layer: "silver",
            table: "customers",
            column: "email",
          }) - nulls!.ratio,
        ) < 1e-9,
      );
    } finally {
      db.close();
    }

    // Bounded labels: never a run id, never a path.
    for (const s of await metricSamples(r1)) {
      for (const v of Object.values(s.labels)) {
        assert.ok(!String(v).includes(ok.runId) && !String(v).includes("/"), `${s.metric} ${v}`);
      }
    }

    // The textfile holds exactly the registry, and nothing else is left in its folder.
    const dir = join(p.dir, "node_exporter");
    assert.equal(
      await Deno.readTextFile(join(dir, "sluice_ecommerce.prom")),
      await r1.metrics(),
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["sluice_ecommerce.prom"]);

    // A failed run: status failed, last success stays where the success left it.
    await Deno.copyFile(
      join(p.dir, "landing/orders/orders_0001.csv"),
      join(p.dir, "landing/orders/orders_0008.csv"),
    );
    await rewriteConfig(p, (y) => y.replace("sum(o.quantity) as units", "sum(o.qty) as units"));
    const t2 = new Date("2026-04-02T03:00:00Z");
    const bad = await runInProcess(p, { clock: steppingClock(t2, { stepMs: 5 }) });
    assert.ok(bad.error);
    const r2 = bad.registry;
    assert.equal(await value(r2, "sluice_run_status", { pipeline, status: "failed" }), 1);
    assert.equal(await value(r2, "sluice_run_status", { pipeline, status: "success" }), 0);
    assert.equal(
      await value(r2, "sluice_last_success_timestamp_seconds", { pipeline }),
      lastSuccess,
      "a failed run never advances (nor hides) the last success",
    );
    assert.ok(
      await value(r2, "sluice_last_run_timestamp_seconds", { pipeline }) >= t2.getTime() / 1000,
    );
    assert.equal(await value(r2, "sluice_runs_total", { pipeline, status: "failed" }), 1);
    assert.equal(await value(r2, "sluice_runs_total", { pipeline, status: "success" }), 1);
    const text = await Deno.readTextFile(join(dir, "sluice_ecommerce.prom"));
    assert.match(text, /^sluice_run_status\{pipeline="ecommerce",status="failed"\} 1$/m);
    assert.match(
      text,
      new RegExp(
        `^sluice_last_success_timestamp_seconds\\{pipeline="ecommerce"\\} ${lastSuccess}$`,
        "m",
      ),
    );
  } finally {
    await cleanup(p.dir);
  }
});

Deno.test("writeFileAtomic replaces the file by rename: an open reader keeps the old content", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_atomic_" });
  try {
    const path = join(dir, "m.prom");
    await writeFileAtomic(path, "old 1\n");
    using reader = await Deno.open(path);
    await writeFileAtomic(path, "new 2\n".repeat(1000));
    const buf = new Uint8Array(64);
    const n = await reader.read(buf);
    assert.equal(new TextDecoder().decode(buf.subarray(0, n!)), "old 1\n");
    assert.equal(await Deno.readTextFile(path), "new 2\n".repeat(1000));
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o644);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["m.prom"]);
  } finally {
    await cleanup(dir);
  }
});

Deno.test("the Pushgateway push retries 5xx a bounded number of times and never retries 4xx", async () => {
  const seen: { method: string; path: string; type: string; body: string }[] = [];
  let answers: number[] = [];
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    async (req) => {
      seen.push({
        method: req.method,
        path: new URL(req.url).pathname,
        type: req.headers.get("content-type") ?? "",
        body: await req.text(),
      });
      return new Response(null, { status: answers.shift() ?? 200 });
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  const registry = new Registry();
  new Gauge({ name: "sluice_test_value", help: "x", registers: [registry] }).set(42);
  const delays: number[] = [];
  const sleep = (ms: number) => {
    delays.push(ms);
    return Promise.resolve();
  };
  try {
    answers = [503, 502];
    const flaky = await pushToGateway(registry, {
      url,
      job: "sluice",
      pipeline: "shop",
      retries: 2,
      sleep,
    });
    assert.deepEqual([flaky.ok, flaky.attempts], [true, 3]);
    // Full jitter under a doubling ceiling (250 ms, then 500 ms), never below a tenth of it.
    assert.equal(delays.length, 2);
    for (const [i, ceiling] of [250, 500].entries()) {
      assert.ok(delays[i] >= ceiling / 10 && delays[i] <= ceiling, `delay ${delays[i]}`);
    }
    assert.ok(
      seen.every((s) => s.method === "PUT" && s.path === "/metrics/job/sluice/pipeline/shop"),
    );
    assert.match(seen[0].type, /^text\/plain/);
    assert.match(seen[0].body, /^sluice_test_value 42$/m);

    seen.length = 0;
    answers = [500, 500, 500, 500];
    const down = await pushToGateway(registry, {
      url,
      job: "sluice",
      pipeline: "shop",
      retries: 2,
      sleep,
    });
    assert.deepEqual([down.ok, down.attempts, seen.length], [false, 3, 3]);
    assert.match(down.error!, /HTTP 500/);

    seen.length = 0;
    answers = [400];
    const rejected = await pushToGateway(registry, {
      url,
      job: "sluice",
      pipeline: "shop",
      retries: 5,
      sleep,
    });
    assert.deepEqual([rejected.ok, rejected.attempts, seen.length], [false, 1, 1]);
  } finally {
    ac.abort();
    await server.finished;
  }
  assert.equal(
    pushgatewayGroupUrl("http://gw:9091/", "a/b", "shop"),
    "http://gw:9091/metrics/job@base64/YS9i/pipeline/shop",
  );
});

Deno.test("serveMetrics answers /metrics and /healthz on 127.0.0.1 and stops on close", async () => {
  const registry = new Registry();
  const g = new Gauge({ name: "sluice_stream_lag_seconds", help: "lag", registers: [registry] });
  g.set(3);
  let healthy = true;
  const server = serveMetrics(registry, {
    port: 0,
    hostname: "127.0.0.1",
    health: () => ({ ok: healthy, details: { last_batch: "b-7" } }),
  });
  try {
    assert.equal(server.hostname, "127.0.0.1");
    assert.ok(server.port > 0);
    const m = await fetch(`${server.url}/metrics`);
    assert.equal(m.status, 200);
    assert.equal(m.headers.get("content-type"), registry.contentType);
    assert.match(await m.text(), /^sluice_stream_lag_seconds 3$/m);
    g.set(5);
    assert.match(
      await (await fetch(`${server.url}/metrics`)).text(),
      /^sluice_stream_lag_seconds 5$/m,
    );

    const h = await fetch(`${server.url}/healthz`);
    assert.equal(h.status, 200);
    const body = await h.json();
    assert.deepEqual([body.status, body.last_batch], ["ok", "b-7"]);
    healthy = false;
    const sick = await fetch(`${server.url}/healthz`);
    assert.equal(sick.status, 503);
    assert.equal((await sick.json()).status, "unhealthy");

    const nf = await fetch(`${server.url}/nope`);
    assert.equal(nf.status, 404);
    await nf.body?.cancel();
    const post = await fetch(`${server.url}/metrics`, { method: "POST", body: "x" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
  } finally {
    await server.close();
  }
  await assert.rejects(fetch(`${server.url}/metrics`));
});

Deno.test("the observability section is validated with line and column", () => {
  const base = `pipeline: shop
lake: ./lake
sources:
  orders: { format: csv, path: ./landing }
observability:
  metrics:
    pushgateway: { url: "ftp://gw", retries: 11 }
    textfile: { path: ./metrics.txt }
  lineage: { namespace: shop }
`;
  try {
    parseConfig(base, "/srv/p.yaml", { env: () => undefined });
    assert.fail("must not parse");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.deepEqual(e.problems.map((p) => `${p.line}:${p.col} ${p.path}`), [
      "7:25 observability.metrics.pushgateway.url",
      "7:46 observability.metrics.pushgateway.retries",
      "8:23 observability.metrics.textfile.path",
      "9:12 observability.lineage",
    ]);
    assert.match(e.problems[2].message, /must end in "\.prom"/);
    assert.match(e.problems[3].message, /exactly one of url .* or file/);
  }
  const ok = parseConfig(
    base.replace('"ftp://gw", retries: 11', "http://127.0.0.1:9091").replace(
      "./metrics.txt",
      "./m/sluice.prom",
    ).replace("{ namespace: shop }", "{ url: http://127.0.0.1:5000/api/v1/lineage }"),
    "/srv/p.yaml",
    { env: () => undefined },
  );
  assert.deepEqual(ok.observability?.metrics.pushgateway, {
    url: "http://127.0.0.1:9091",
    job: "sluice",
    timeout: 5,
    retries: 2,
  });
  assert.equal(ok.observability?.metrics.textfile?.path, "/srv/m/sluice.prom");
  assert.equal(ok.observability?.report.history, 30);
});
