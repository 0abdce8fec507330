import assert from "node:assert/strict";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import formatsModule from "ajv-formats";
import { steppingClock } from "../core/clock.ts";
import { loadConfig } from "../core/config/mod.ts";
import { openEngine } from "../core/engine.ts";
import { qualified, rawIdent } from "../core/quote.ts";
import { lineageRunId, type RunEvent, stageRunId } from "../observability/lineage.ts";
import { configureLogging, resetLogging } from "../observability/logging.ts";
import { cleanup, makeDemoProject, rewriteConfig, runInProcess } from "./_obs_helpers.ts";

const schema = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/openlineage_run_event.schema.json", import.meta.url)),
);
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
// ajv-formats is CommonJS: its default export arrives as the module object.
const addFormats = ((formatsModule as unknown as { default?: unknown }).default ??
  formatsModule) as unknown as (a: Ajv2020) => void;
addFormats(ajv);
const validate = ajv.compile(schema);

function assertValid(event: unknown, what: string): void {
  const ok = validate(event);
  assert.ok(ok, `${what} breaks the OpenLineage schema: ${JSON.stringify(validate.errors)}`);
}

async function readEvents(file: string): Promise<RunEvent[]> {
  const text = await Deno.readTextFile(file);
  return text.trim().split("\n").map((l) => JSON.parse(l) as RunEvent);
}

// deno-lint-ignore no-explicit-any
type Json = any;

const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

Deno.test("OpenLineage events of a successful and a failed run pass the spec's schema", async () => {
  const p = await makeDemoProject(`observability:
  lineage:
    file: ./lineage/events.ndjson
    namespace: shop-nightly
`);
  try {
    const file = join(p.dir, "lineage/events.ndjson");
    await Deno.mkdir(join(p.dir, "lineage"));
    const clock = steppingClock(new Date("2026-03-01T02:00:00Z"), { stepMs: 10 });
    const ok = await runInProcess(p, { clock });
    assert.equal(ok.error, undefined, String(ok.error));
    const events = await readEvents(file);
    events.forEach((e, i) => assertValid(e, `event ${i + 1} (${e.eventType} ${e.job.name})`));

    // The pipeline run: START first, COMPLETE last, runId = run_id.
    assert.match(ok.runId, UUID7);
    const first = events[0];
    const last = events.at(-1)!;
    assert.deepEqual([first.eventType, first.job.name], ["START", "ecommerce"]);
    assert.deepEqual([last.eventType, last.job.name], ["COMPLETE", "ecommerce"]);
    assert.equal(first.run.runId, ok.runId);
    assert.equal(last.run.runId, ok.runId);
    assert.equal(first.job.namespace, "shop-nightly");
    assert.match(
      first.eventTime,
      /^2026-03-01T02:00:0\d\.\d{3}Z$/,
      "times come from the run's clock",
    );

    // One child run per stage, START then COMPLETE, pointing at the pipeline run.
    const stages = ["extract", "bronze", "silver", "gold", "output"];
    for (const stage of stages) {
      const mine = events.filter((e) => e.job.name === `ecommerce.${stage}`);
      assert.deepEqual(mine.map((e) => e.eventType), ["START", "COMPLETE"], stage);
      for (const e of mine) {
        assert.equal(e.run.runId, stageRunId(ok.runId, stage));
        const parent = e.run.facets!.parent as unknown as { run: { runId: string } };
        assert.equal(parent.run.runId, ok.runId);
      }
    }
    const complete = (stage: string) =>
      events.find((e) => e.job.name === `ecommerce.${stage}` && e.eventType === "COMPLETE")!;

    // Silver: reads bronze, writes silver tables with row counts and column metrics.
    const silver = complete("silver");
    const db = await openEngine(join(p.dir, "lake/sluice.duckdb"), {
      allowedDirectories: [p.dir],
    });
    try {
      const dbNs = `duckdb://${join(p.dir, "lake/sluice.duckdb")}`;
      assert.ok(silver.inputs.some((d) => d.namespace === dbNs && d.name === "bronze.orders"));
      const orders = silver.outputs.find((d) => d.name === "silver.orders")!;
      assert.equal(orders.namespace, dbNs);
      const ledger = await db.one<{ passed: number; quarantined: number }>(
        `SELECT passed, quarantined FROM _sluice.stage_tables WHERE run_id = $r
         AND layer = 'silver' AND table_name = 'orders'`,
        { r: ok.runId },
      );
      assert.equal(orders.outputFacets!.outputStatistics.rowCount, ledger!.passed);
      const quarantine = silver.outputs.find((d) => d.name === "silver.orders__quarantine")!;
      assert.equal(quarantine.outputFacets!.outputStatistics.rowCount, ledger!.quarantined);

      const dq = orders.facets!.dataQualityMetrics as unknown as {
        rowCount: number;
        columnMetrics: Record<string, { nullCount: number; distinctCount?: number }>;
      };
      const table = qualified("silver", "orders");
      const columns = Object.keys(dq.columnMetrics);
      assert.deepEqual(columns.sort(), [
        "country",
        "customer_id",
        "order_id",
        "order_ts",
        "product_id",
        "quantity",
        "status",
        "unit_price",
        "updated_at",
      ]);
      const truth = await db.one<Record<string, number>>(
        `SELECT count(*) AS "__rows", ${
          columns.map((c) => `count(*) - count(${rawIdent(c)}) AS ${rawIdent(c)}`).join(", ")
        } FROM ${table}`,
      );
      assert.equal(dq.rowCount, truth!.__rows);
      for (const c of columns) {
        assert.equal(dq.columnMetrics[c].nullCount, truth![c], `nullCount of ${c}`);
        assert.equal(typeof dq.columnMetrics[c].distinctCount, "number");
      }
      const exactIds = await db.one<{ n: number }>(
        `SELECT count(DISTINCT order_id) AS n FROM ${table}`,
      );
      const approx = dq.columnMetrics.order_id.distinctCount!;
      assert.ok(Math.abs(approx - exactIds!.n) / exactIds!.n < 0.1, `${approx} ~ ${exactIds!.n}`);
      const schemaFields = (orders.facets!.schema as unknown as { fields: { name: string }[] })
        .fields.map((f) => f.name);
      assert.deepEqual(schemaFields.sort(), columns);

      // Gold reads silver with the input data-quality facet; output writes files.
      const gold = complete("gold");
      const read = gold.inputs.find((d) => d.name === "silver.orders")!;
      assert.ok(read.inputFacets!.dataQualityMetrics, "gold's input carries dataQualityMetrics");
      assert.deepEqual(
        gold.outputs.map((d) => d.name).sort(),
        ["gold.customer_lifetime_value", "gold.daily_revenue_by_country", "gold.top_products"],
      );
      const out = complete("output");
      assert.ok(out.outputs.every((d) => d.namespace === "file"));
      assert.ok(
        out.outputs.some((d) => d.name === join(p.dir, "lake/output/top_products")),
        JSON.stringify(out.outputs.map((d) => d.name)),
      );
      // The pipeline's COMPLETE lists every source folder and every dataset written.
      assert.deepEqual(
        last.inputs.map((d) => d.name).sort(),
        ["customers", "orders", "products"].map((s) => join(p.dir, "landing", s)),
      );
      assert.ok(last.outputs.some((d) => d.name === "silver.orders"));
      assert.ok(last.outputs.some((d) => d.name === join(p.dir, "lake/output/top_products")));
    } finally {
      db.close();
    }

    // A failed run with a run id that is not a UUID.
    await Deno.copyFile(
      join(p.dir, "landing/orders/orders_0001.csv"),
      join(p.dir, "landing/orders/orders_0006.csv"),
    );
    await rewriteConfig(p, (y) => y.replace("sum(o.quantity) as units", "sum(o.qty) as units"));
    const failId = "nightly-2026-03-02";
    const bad = await runInProcess(p, { clock, runId: failId });
    assert.ok(bad.error, "the broken model fails the run");
    const all = await readEvents(file);
    const failed = all.slice(events.length);
    failed.forEach((e, i) => assertValid(e, `failed-run event ${i + 1} (${e.eventType})`));
    const runUuid = lineageRunId(failId);
    assert.match(runUuid, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(lineageRunId(failId), runUuid, "stable");
    const end = failed.at(-1)!;
    assert.deepEqual([end.eventType, end.job.name, end.run.runId], ["FAIL", "ecommerce", runUuid]);
    const err = end.run.facets!.errorMessage as unknown as { message: string };
    assert.match(err.message, /top_products.*qty/s);
    assert.equal(
      (end.run.facets!.sluice_run as unknown as { run_id: string }).run_id,
      failId,
    );
    const goldFail = failed.find((e) => e.job.name === "ecommerce.gold" && e.eventType === "FAIL");
    assert.ok(goldFail, "the failing stage has its own FAIL event");
    assert.ok(
      !failed.some((e) => e.job.name === "ecommerce.gold" && e.eventType === "COMPLETE"),
      "gold never completed",
    );
    assert.ok(!failed.some((e) => e.job.name === "ecommerce.output"), "output never started");
  } finally {
    await cleanup(p.dir);
  }
});

Deno.test("the schema rejects events that break the spec (it is not a rubber stamp)", () => {
  const good: RunEvent = {
    eventType: "COMPLETE",
    eventTime: "2026-03-01T02:00:00.000Z",
    run: { runId: "019abc12-3456-7def-8abc-0123456789ab" },
    job: { namespace: "n", name: "j" },
    inputs: [{
      namespace: "duckdb:///x.duckdb",
      name: "silver.orders",
      inputFacets: {
        dataQualityMetrics: {
          _producer: "urn:sluice:test",
          _schemaURL:
            "https://openlineage.io/spec/facets/1-0-2/DataQualityMetricsInputDatasetFacet.json",
          rowCount: 3,
          columnMetrics: { a: { nullCount: 1, distinctCount: 2 } },
        },
      },
    }],
    outputs: [],
    producer: "urn:sluice:test",
    schemaURL: "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
  };
  assertValid(good, "the reference event");
  const broken: [string, (e: Record<string, Json>) => void][] = [
    ["no runId", (e) => delete e.run.runId],
    ["runId not a UUID", (e) => (e.run.runId = "nightly-1")],
    ["unknown eventType", (e) => (e.eventType = "DONE")],
    ["no eventTime", (e) => delete e.eventTime],
    ["eventTime not a date-time", (e) => (e.eventTime = "yesterday")],
    ["no job name", (e) => delete e.job.name],
    ["facet without _producer", (e) => delete e.inputs[0].inputFacets.dataQualityMetrics._producer],
    [
      "quality facet without columnMetrics",
      (e) => delete e.inputs[0].inputFacets.dataQualityMetrics.columnMetrics,
    ],
    [
      "nullCount not an integer",
      (e) => (e.inputs[0].inputFacets.dataQualityMetrics.columnMetrics.a.nullCount = 0.5),
    ],
    ["dataset without namespace", (e) => delete e.inputs[0].namespace],
  ];
  for (const [what, edit] of broken) {
    const e = structuredClone(good) as unknown as Record<string, Json>;
    edit(e);
    assert.equal(validate(e), false, `${what} must be rejected`);
  }
});

Deno.test("lineage over HTTP: events are posted in order; a dead endpoint only warns", async () => {
  const received: RunEvent[] = [];
  const auth: string[] = [];
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    async (req) => {
      if (new URL(req.url).pathname === "/down") {
        await req.body?.cancel();
        return new Response("unavailable", { status: 503 });
      }
      auth.push(req.headers.get("authorization") ?? "");
      received.push(await req.json());
      return new Response(null, { status: 201 });
    },
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const p = await makeDemoProject(`observability:
  lineage:
    url: ${base}/api/v1/lineage
    api_key: !secret "\${SLUICE_TEST_LINEAGE_KEY:-k3y-for-test}"
    retries: 1
`);
  const lines: string[] = [];
  await configureLogging({ format: "json", write: (l) => lines.push(l) });
  try {
    const ok = await runInProcess(p);
    assert.equal(ok.error, undefined, String(ok.error));
    assert.equal(received.length, 12, "1 + 5 stages x 2 + 1 events");
    received.forEach((e, i) => assertValid(e, `posted event ${i + 1}`));
    assert.deepEqual(
      received.map((e) => `${e.eventType} ${e.job.name}`).slice(0, 3),
      ["START ecommerce", "START ecommerce.extract", "COMPLETE ecommerce.extract"],
    );
    assert.equal(received.at(-1)!.eventType, "COMPLETE");
    assert.ok(auth.every((a) => a === "Bearer k3y-for-test"));

    // The same pipeline against an endpoint that always answers 503.
    await rewriteConfig(p, (y) => y.replace(`${base}/api/v1/lineage`, `${base}/down`));
    await Deno.copyFile(
      join(p.dir, "landing/orders/orders_0001.csv"),
      join(p.dir, "landing/orders/orders_0007.csv"),
    );
    lines.length = 0;
    const down = await runInProcess(p);
    assert.equal(down.error, undefined, "a dead lineage endpoint never fails the run");
    const logged = lines.map((l) => JSON.parse(l));
    const failed = logged.filter((l) => l.event === "lineage_emit_failed");
    assert.equal(failed.length, 1, "one event fails its attempts, then the rest are dropped");
    assert.equal(failed[0].attempts, 2);
    assert.equal(failed[0].level, "warn");
    assert.equal(failed[0].run_id, down.runId);
    const dropped = logged.find((l) => l.event === "lineage_events_dropped");
    assert.equal(dropped?.dropped, 11);
    assert.ok(!lines.join("").includes("k3y-for-test"), "the api key never appears in logs");
    assert.equal(logged.at(-1).event, "run_finished");
  } finally {
    await resetLogging();
    ac.abort();
    await server.finished;
    await cleanup(p.dir);
  }
});

Deno.test("lineage file paths in the config resolve against the config's folder", async () => {
  const p = await makeDemoProject(`observability:
  lineage: { file: ./events.ndjson }
`);
  try {
    const config = await loadConfig(p.configFile);
    assert.equal(config.observability?.lineage?.file, join(p.dir, "events.ndjson"));
    assert.equal(config.observability?.lineage?.namespace, "sluice");
  } finally {
    await cleanup(p.dir);
  }
});
