import assert from "node:assert/strict";
import { join } from "node:path";
import { UsageError } from "../core/errors.ts";
import { runPipeline } from "../stages/pipeline.ts";
import { dlqTables, listDlq, replayDlq } from "../streaming/dlq.ts";
import {
  event,
  makeStreamProject,
  q,
  streamProject,
  streamYaml,
  withDb,
  writeLanding,
} from "./fixtures/streaming.ts";

/** A stream whose config requires country; two rows lack it, one line is not JSON. */
async function streamWithBadRows() {
  const p = await makeStreamProject(streamYaml({ countryRequired: true }));
  await writeLanding(
    p,
    "a.ndjson",
    [
      event("e1", 0),
      event("e2", 1, { country: null }),
      "{not json",
      event("e4", 2, { country: null }),
      event("e5", 3),
    ].join("\n") + "\n",
  );
  await streamProject(p);
  return p;
}

Deno.test("dlq list shows every dead-letter table and filters by reason, run and SQL condition", async () => {
  const p = await streamWithBadRows();
  await withDb(p, async (ctx) => {
    assert.deepEqual(await dlqTables(ctx), [{
      table: "events__dlq",
      kind: "stream",
      of: "events",
    }]);
    const all = await listDlq(ctx, {});
    assert.equal(all.total, 3);
    assert.deepEqual(all.counts, [
      { table: "events__dlq", reason: "malformed_json", pending: 1, replayed: 0 },
      { table: "events__dlq", reason: "schema_violation", pending: 2, replayed: 0 },
    ]);
    const byReason = await listDlq(ctx, { reasons: ["malformed_json"] });
    assert.deepEqual(byReason.rows.map((r) => r._source_row), [3]);
    const where = await listDlq(ctx, { where: "_source_row >= 4" });
    assert.deepEqual(where.rows.map((r) => r._source_row), [4]);
    const run = (await ctx.db.all<{ r: string }>(
      "SELECT DISTINCT _run_id AS r FROM silver.events__dlq",
    ))[0].r;
    assert.equal((await listDlq(ctx, { runId: run })).total, 3);
    assert.equal((await listDlq(ctx, { runId: "nope" })).total, 0);
    assert.equal((await listDlq(ctx, {}, { limit: 1 })).rows.length, 1);
    await assert.rejects(
      () => listDlq(ctx, { where: "true; DROP TABLE silver.events" }),
      UsageError,
    );
    await assert.rejects(() => listDlq(ctx, { where: "no_such_column = 1" }), UsageError);
    await assert.rejects(() => listDlq(ctx, { where: "true -- comment" }), UsageError);
    await assert.rejects(() => listDlq(ctx, { table: "nope" }), UsageError);
  });
});

Deno.test("replay after a fix re-injects the rows that now pass, once; replaying twice adds nothing", async () => {
  const p = await streamWithBadRows();
  // The fix: country becomes optional.
  await Deno.writeTextFile(p.configFile, streamYaml({ countryRequired: false }));
  const first = await withDb(p, (ctx) => replayDlq(ctx, {}));
  assert.deepEqual(first, [{
    table: "events__dlq",
    kind: "stream",
    selected: 3,
    replayed: 2,
    stillFailing: { malformed_json: 1 },
    into: "silver.events",
    batchId: 2,
  }]);
  const rows = await q(
    p,
    "SELECT event_id, _batch_id, _source_line FROM silver.events ORDER BY _source_line",
  );
  assert.deepEqual(rows.map((r) => [r.event_id, r._batch_id, r._source_line]), [
    ["e1", 1, 1],
    ["e2", 2, 2],
    ["e4", 2, 4],
    ["e5", 1, 5],
  ]);
  const marked = await q(
    p,
    `SELECT _source_row, _replayed_at IS NOT NULL AS replayed,
      _replay_run_id IS NOT NULL AS by_run FROM silver.events__dlq ORDER BY _source_row`,
  );
  assert.deepEqual(marked, [
    { _source_row: 2, replayed: true, by_run: true },
    { _source_row: 3, replayed: false, by_run: false },
    { _source_row: 4, replayed: true, by_run: true },
  ]);
  const second = await withDb(p, (ctx) => replayDlq(ctx, {}));
  assert.deepEqual(second.map((r) => [r.selected, r.replayed, r.batchId]), [[1, 0, undefined]]);
  assert.equal((await q(p, "SELECT count(*) AS n FROM silver.events"))[0].n, 4);
  const batches = await q(
    p,
    "SELECT batch_id, kind, written FROM _sluice.stream_batches ORDER BY batch_id",
  );
  assert.deepEqual(batches, [
    { batch_id: 1, kind: "files", written: 2 },
    { batch_id: 2, kind: "replay", written: 2 },
  ]);
  // The stream goes on after a replay batch.
  await writeLanding(p, "b.ndjson", event("e6", 4) + "\n");
  const s = await streamProject(p);
  assert.equal(s.lastBatchId, 3);
});

Deno.test("replay of CSV dead letters maps fields by the file's header", async () => {
  const yaml = (required: boolean) =>
    streamYaml({ format: "csv", countryRequired: required, maxRecords: 1 });
  const p = await makeStreamProject(yaml(true));
  const t = (s: number) => new Date(Date.UTC(2026, 0, 1) + s * 1000).toISOString();
  await writeLanding(
    p,
    "a.csv",
    ["amount,country,event_time,event_id", `1,DE,${t(0)},e1`, `2,,${t(1)},e2`, `3,"x,${t(2)},e3`]
      .join("\n") + "\n",
  );
  await streamProject(p);
  await Deno.writeTextFile(p.configFile, yaml(false));
  const r = await withDb(p, (ctx) => replayDlq(ctx, {}));
  assert.deepEqual(r.map((x) => [x.selected, x.replayed, x.stillFailing]), [[2, 1, {
    malformed_csv: 1,
  }]]);
  const rows = await q(
    p,
    "SELECT event_id, amount, country, _source_line FROM silver.events ORDER BY 1",
  );
  assert.deepEqual(rows, [
    { event_id: "e1", amount: 1, country: "DE", _source_line: 2 },
    { event_id: "e2", amount: 2, country: null, _source_line: 3 },
  ]);
});

Deno.test("replay chooses rows by reason and dry-run changes nothing", async () => {
  const p = await streamWithBadRows();
  await Deno.writeTextFile(p.configFile, streamYaml({ countryRequired: false }));
  const dry = await withDb(
    p,
    (ctx) => replayDlq(ctx, { reasons: ["schema_violation"] }, { dryRun: true }),
  );
  assert.deepEqual(dry.map((r) => [r.selected, r.replayed]), [[2, 2]]);
  assert.equal((await q(p, "SELECT count(*) AS n FROM silver.events"))[0].n, 2);
  const none = await withDb(p, (ctx) => replayDlq(ctx, { reasons: ["malformed_json"] }));
  assert.deepEqual(none.map((r) => [r.selected, r.replayed]), [[1, 0]]);
  const some = await withDb(p, (ctx) => replayDlq(ctx, { where: "_source_row = 4" }));
  assert.deepEqual(some.map((r) => [r.selected, r.replayed]), [[1, 1]]);
  const rows = await q(p, "SELECT event_id FROM silver.events ORDER BY event_id");
  assert.deepEqual(rows.map((r) => r.event_id), ["e1", "e4", "e5"]);
});

Deno.test("replay of a late row bypasses the watermark (a deliberate decision)", async () => {
  const p = await makeStreamProject(streamYaml({ delay: "1 hour" }));
  await writeLanding(p, "a.ndjson", [event("e1", 7200), event("old", 0)].join("\n") + "\n");
  await streamProject(p);
  const r = await withDb(p, (ctx) => replayDlq(ctx, { reasons: ["late"] }));
  assert.deepEqual(r.map((x) => [x.selected, x.replayed]), [[1, 1]]);
  const rows = await q(p, "SELECT event_id FROM silver.events ORDER BY event_id");
  assert.deepEqual(rows.map((x) => x.event_id), ["e1", "old"]);
  const cp = await q(p, "SELECT epoch_ms(watermark) AS wm FROM _sluice.stream_checkpoint");
  assert.deepEqual(cp, [{ wm: Date.UTC(2026, 0, 1, 1) }], "replay keeps the watermark");
});

const BATCH_YAML = (rule: string, mode: string) =>
  `pipeline: shop
lake: ./lake
engine: { threads: 2 }
sources:
  orders: { format: csv, path: ./orders, glob: "*.csv" }
silver:
  orders:
    from: orders
    key: [order_id]
    mode: ${mode}
    max_quarantine: "100%"
    columns:
      order_id: { type: BIGINT, nullable: false }
      quantity: { type: INTEGER }
    rules:
      - { name: quantity_ok, sql: "${rule}" }
`;

Deno.test("batch quarantine rows are listed with the same schema and replayed into bronze", async () => {
  const p = await makeStreamProject(BATCH_YAML("quantity > 0", "merge"));
  await Deno.writeTextFile(join(p.dir, "orders", "o1.csv"), "order_id,quantity\n1,5\n2,0\n3,x\n");
  await withDb(p, (ctx) => runPipeline(ctx));
  await withDb(p, async (ctx) => {
    assert.deepEqual(await dlqTables(ctx), [{
      table: "orders__quarantine",
      kind: "quarantine",
      of: "orders",
    }]);
    const l = await listDlq(ctx, {});
    assert.deepEqual(l.counts.map((c) => [c.reason, c.pending]), [["cast_failed", 1], [
      "rule_failed",
      1,
    ]]);
  });
  // The fix: zero is a valid quantity.
  await Deno.writeTextFile(p.configFile, BATCH_YAML("quantity >= 0", "merge"));
  const r = await withDb(p, (ctx) => replayDlq(ctx, { reasons: ["rule_failed"] }));
  assert.deepEqual(r.map((x) => [x.table, x.selected, x.replayed, x.into]), [
    ["orders__quarantine", 1, 1, "bronze.orders"],
  ]);
  const again = await withDb(p, (ctx) => replayDlq(ctx, { reasons: ["rule_failed"] }));
  assert.deepEqual(again.map((x) => [x.selected, x.replayed]), [[0, 0]]);
  await withDb(p, (ctx) => runPipeline(ctx, { stages: ["silver"] }));
  const rows = await q(p, "SELECT order_id, quantity FROM silver.orders ORDER BY order_id");
  assert.deepEqual(rows, [{ order_id: 1, quantity: 5 }, { order_id: 2, quantity: 0 }]);
});

Deno.test("quarantine of a replace-mode table is not replayed: a new run is the replay", async () => {
  const p = await makeStreamProject(BATCH_YAML("quantity > 0", "replace"));
  await Deno.writeTextFile(join(p.dir, "orders", "o1.csv"), "order_id,quantity\n1,5\n2,0\n");
  await withDb(p, (ctx) => runPipeline(ctx));
  const e = await withDb(p, (ctx) => replayDlq(ctx, {})).then(() => undefined, (e) => e);
  assert.ok(e instanceof UsageError);
  assert.match(e.message, /mode: replace/);
});
