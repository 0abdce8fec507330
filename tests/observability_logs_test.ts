import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { loadConfig } from "../core/config/mod.ts";
import { cleanup, cli, freePort, makeDemoProject, rewriteConfig } from "./_obs_helpers.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const SECRET = "pa55-Sluice-Secret-9x";

type Line = Record<string, unknown>;

/** Parses every stderr line as JSON (failing with the line when it is not). */
function parseLines(stderr: string): Line[] {
  const lines = stderr.split("\n").filter((l) => l.length > 0);
  assert.ok(lines.length > 0, "stderr is empty");
  return lines.map((l, i) => {
    try {
      return JSON.parse(l) as Line;
    } catch {
      throw new Error(`stderr line ${i + 1} is not JSON: ${l}`);
    }
  });
}

function events(lines: Line[], name: string): Line[] {
  return lines.filter((l) => l.event === name);
}

async function sha256(path: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
}

Deno.test("JSON logs, the run ledger and `sluice runs`, for a successful and a failed run", async (t) => {
  const deadPort = freePort(); // nothing listens here: the push must fail with a warning
  const p = await makeDemoProject(`observability:
  metrics:
    pushgateway:
      url: http://127.0.0.1:${deadPort}
      retries: 1
      timeout: 2
      basic_auth: { username: sluice, password: !secret "\${SLUICE_TEST_PUSH_PASSWORD}" }
`);
  const env: Record<string, string> = { SLUICE_TEST_PUSH_PASSWORD: SECRET };
  let okRunId = "";
  const failRunId = "nightly-2026-01-02";
  try {
    await t.step("a successful run: every stderr line is JSON with the run's run_id", async () => {
      const r = await cli(["--log-format", "json", "run", "-c", p.configFile], { env });
      assert.equal(r.code, 0, r.stderr);
      const lines = parseLines(r.stderr);
      okRunId = String(lines[0].run_id);
      assert.match(okRunId, UUID, "the default run id is a UUIDv7");
      assert.match(r.stdout, new RegExp(`^run ${okRunId}: success`));
      for (const [i, l] of lines.entries()) {
        assert.equal(l.run_id, okRunId, `line ${i + 1} has the run's id: ${JSON.stringify(l)}`);
        assert.equal(l.pipeline, "ecommerce", `line ${i + 1} has the pipeline`);
        assert.match(String(l.ts), TS, `line ${i + 1} has an ISO UTC ms timestamp`);
        assert.ok(["debug", "info", "warn", "error"].includes(String(l.level)));
        assert.match(String(l.logger), /^sluice(\.|$)/);
        assert.equal(typeof l.message, "string");
      }
      assert.ok(!r.stderr.includes(SECRET), "the !secret password never appears");

      assert.equal(events(lines, "run_started").length, 1);
      assert.equal(lines[0].event, "run_started", "run_started comes first");
      assert.equal(lines.at(-1)!.event, "run_finished", "run_finished comes last");
      const started = events(lines, "stage_started").map((l) => l.stage);
      const finished = events(lines, "stage_finished");
      assert.deepEqual(started, ["extract", "bronze", "silver", "gold", "output"]);
      assert.deepEqual(finished.map((l) => l.stage), started);
      for (const f of finished) assert.equal(typeof f.duration_ms, "number");
      const silver = finished.find((l) => l.stage === "silver")!;
      assert.equal(
        Number(silver.rows_in),
        Number(silver.passed) + Number(silver.quarantined) + Number(silver.duplicates),
      );
      assert.equal(events(lines, "file_ingested").length, 6, "4 order files, customers, products");
      for (const f of events(lines, "file_ingested")) {
        assert.equal(f.stage, "bronze");
        assert.equal(typeof f.rows, "number");
      }

      // Every metric is also a log event with the run id.
      const metrics = events(lines, "metric");
      assert.ok(metrics.length > 40, `only ${metrics.length} metric events`);
      const last = metrics.find((m) => m.metric === "sluice_last_success_timestamp_seconds");
      assert.ok(last && Number(last.value) > 1.7e9, "last success logged as a metric");
      const q = metrics.find((m) =>
        m.metric === "sluice_rows" &&
        (m.labels as Record<string, string>).outcome === "quarantined" &&
        (m.labels as Record<string, string>).layer === "silver" &&
        (m.labels as Record<string, string>).table === "orders"
      );
      assert.equal(Number(q?.value), Number(silver.quarantined));
      for (const m of metrics) {
        for (const v of Object.values(m.labels as Record<string, unknown>)) {
          assert.ok(!String(v).includes(okRunId), "no run id as a label");
          assert.ok(!String(v).includes("/"), `no path as a label: ${v}`);
        }
      }

      // The unreachable Pushgateway: one retry, then a warning; the run still succeeded.
      assert.equal(events(lines, "retry").filter((l) => l.what === "pushgateway").length, 1);
      const failed = events(lines, "metrics_push_failed");
      assert.equal(failed.length, 1);
      assert.equal(failed[0].level, "warn");
      assert.equal(failed[0].attempts, 2);
    });

    await t.step("a DuckDB error: still JSON, still the run_id, on every line", async () => {
      await Deno.copyFile(
        join(p.dir, "landing/orders/orders_0001.csv"),
        join(p.dir, "landing/orders/orders_0005.csv"),
      );
      await rewriteConfig(p, (y) => y.replace("sum(o.quantity) as units", "sum(o.qty) as units"));
      const r = await cli([
        "--log-format",
        "json",
        "run",
        "-c",
        p.configFile,
        "--run-id",
        failRunId,
      ], { env });
      assert.equal(r.code, 1, r.stderr);
      const lines = parseLines(r.stderr);
      for (const [i, l] of lines.entries()) {
        assert.equal(l.run_id, failRunId, `line ${i + 1}: ${JSON.stringify(l)}`);
      }
      const failed = events(lines, "run_failed");
      assert.equal(failed.length, 1);
      assert.equal(failed[0].level, "error");
      assert.equal(failed[0].failed_stage, "gold");
      assert.equal(failed[0].error_kind, "engine");
      assert.match(String(failed[0].error), /top_products.*qty/s);
      const last = lines.at(-1)!;
      assert.equal(last.event, "command_failed");
      assert.equal(last.exit_code, 1);
      assert.match(String(last.message), /Cannot build gold model "top_products"/);
      assert.ok(!r.stderr.includes(SECRET));
      const lastSuccess = events(lines, "metric").find((m) =>
        m.metric === "sluice_last_success_timestamp_seconds"
      );
      const status = events(lines, "metric").filter((m) => m.metric === "sluice_run_status");
      assert.ok(lastSuccess, "the failed run still reports the previous success");
      assert.equal(
        Number(status.find((m) => (m.labels as Record<string, string>).status === "failed")?.value),
        1,
      );
    });

    await t.step("`runs --json` lists both runs with status and per-stage figures", async () => {
      const r = await cli(["runs", "-c", p.configFile, "--json"], { env });
      assert.equal(r.code, 0, r.stderr);
      const runs = JSON.parse(r.stdout);
      assert.deepEqual(runs.map((x: Line) => [x.run_id, x.status]), [
        [failRunId, "failed"],
        [okRunId, "success"],
      ]);
      const [bad, ok] = runs;
      assert.match(bad.error, /top_products/);
      assert.deepEqual(bad.stages.map((s: Line) => s.stage), ["extract", "bronze", "silver"]);
      assert.deepEqual(
        ok.stages.map((s: Line) => s.stage),
        ["extract", "bronze", "silver", "gold", "output"],
      );
      for (const s of ok.stages) assert.ok(s.duration_ms > 0, `${s.stage} has a duration`);
      const silver = ok.stages.find((s: Line) => s.stage === "silver");
      const orders = silver.tables.find((t: Line) => t.table === "orders");
      assert.equal(orders.rows_in, 2000);
      assert.equal(orders.passed + orders.quarantined + orders.duplicates, orders.rows_in);
      assert.ok(orders.quarantined > 0 && orders.duplicates > 0);
      assert.equal(silver.quarantined, orders.quarantined);
      assert.equal(ok.trigger, "cli");
      assert.equal(ok.command, "run");
      assert.ok(ok.duration_seconds > 0);

      const one = await cli(["runs", "-c", p.configFile, "--json", "--limit", "1"], { env });
      assert.deepEqual(JSON.parse(one.stdout).map((x: Line) => x.run_id), [failRunId]);
      const text = await cli(["runs", "-c", p.configFile], { env });
      assert.equal(text.code, 0, text.stderr);
      const rows = text.stdout.trim().split("\n");
      assert.match(rows[0], /^run id\s+status\s+started \(UTC\)\s+duration/);
      assert.match(rows[1], new RegExp(`^${failRunId}\\s+failed`));
      assert.match(rows[2], new RegExp(`^${okRunId}\\s+success`));
    });

    await t.step(
      "`runs --show` prints the manifest: versions, hashes, input fingerprints",
      async () => {
        const config = await loadConfig(p.configFile, { env: (name) => env[name] });
        const r = await cli(["runs", "-c", p.configFile, "--show", okRunId.slice(0, 13)], { env });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`^run\\s+${okRunId}$`, "m"));
        assert.match(r.stdout, /^\s+duckdb\s+v1\.\d+\.\d+/m);
        assert.match(r.stdout, /^\s+sluice\s+\d+\.\d+\.\d+/m);
        assert.match(r.stdout, /gold\.top_products\s+sha256 [0-9a-f]{64}/);
        const orders1 = join(p.dir, "landing/orders/orders_0001.csv");
        // The manifest names a file relative to its source folder (a moved project continues).
        assert.ok(r.stdout.includes(` orders_0001.csv  `), r.stdout);
        assert.ok(r.stdout.includes(`sha256 ${await sha256(orders1)}`));

        const j = await cli(["runs", "-c", p.configFile, "--show", okRunId, "--json"], { env });
        const shown = JSON.parse(j.stdout);
        assert.equal(shown.manifest.inputs.length, 6);
        // The config was edited before the failed run: each run keeps the hash it ran with.
        const bad = JSON.parse(
          (await cli(["runs", "-c", p.configFile, "--show", failRunId, "--json"], { env })).stdout,
        );
        assert.equal(bad.manifest.config_hash, config.hash);
        assert.notEqual(shown.manifest.config_hash, config.hash);
        assert.notEqual(
          shown.manifest.models["gold.top_products"],
          bad.manifest.models["gold.top_products"],
        );
        assert.equal(
          shown.manifest.models["gold.daily_revenue_by_country"],
          bad.manifest.models["gold.daily_revenue_by_country"],
        );
        assert.deepEqual(bad.manifest.inputs.map((f: Line) => f.path), ["orders_0005.csv"]);
        assert.equal(shown.checks === null || typeof shown.checks === "object", true);

        const missing = await cli(["runs", "-c", p.configFile, "--show", "no-such-run"], { env });
        assert.equal(missing.code, 2);
        assert.match(missing.stderr, /no such run/);
      },
    );
  } finally {
    await cleanup(p.dir);
  }
});
