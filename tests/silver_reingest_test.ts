/**
 * A re-sent file (same name, changed content, `on_change: reingest`) must
 * replace its earlier rows in every silver mode, never add to them; bronze
 * rows that vanish without a recorded re-send or retraction fail the
 * cross-run conservation check.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../core/config/mod.ts";
import { ConservationError } from "../core/errors.ts";
import { openPipelineDb } from "../core/pipeline_db.ts";
import { withRun } from "../runtime/with_run.ts";
import { runPipeline } from "../stages/pipeline.ts";
import { makeProject, query, runOnce, writeFile } from "./_helpers.ts";

const YAML = `pipeline: reingest
lake: ./lake
engine: { threads: 2 }
sources:
  orders:
    format: csv
    path: ./landing/orders
    glob: "*.csv"
    on_change: reingest
silver:
  o_append:
    from: orders
    mode: append
    columns:
      order_id: { type: BIGINT }
      quantity: { type: INTEGER }
  o_merge:
    from: orders
    mode: merge
    key: [order_id]
    order_by: updated_at
    columns:
      order_id: { type: BIGINT }
      quantity: { type: INTEGER }
      updated_at: { type: INTEGER }
  o_scd2:
    from: orders
    mode: scd2
    key: [order_id]
    columns:
      order_id: { type: BIGINT }
      quantity: { type: INTEGER }
  o_replace:
    from: orders
    mode: replace
    key: [order_id]
    order_by: updated_at
    columns:
      order_id: { type: BIGINT }
      quantity: { type: INTEGER }
      updated_at: { type: INTEGER }
gold:
  units:
    sql: select count(*) as n, sum(quantity) as units from o_append
`;

const csv = (rows: [number, number, number][]) =>
  "order_id,quantity,updated_at\n" + rows.map((r) => r.join(",")).join("\n") + "\n";

const rows = (p: Parameters<typeof query>[0], sql: string) => query(p, sql);

Deno.test("a re-sent file replaces its rows in append, merge, scd2 and replace silver tables and in gold", async () => {
  const p = await makeProject(YAML, {
    "landing/orders/a.csv": csv([[1, 10, 1], [2, 20, 2], [3, 30, 3]]),
    "landing/orders/b.csv": csv([[4, 40, 4], [1, 11, 5]]),
  });
  await runOnce(p);
  assert.deepEqual(await rows(p, "SELECT n, units FROM gold.units"), [{ n: 5, units: 111 }]);
  // a.csv is re-sent: order 2 changed, order 3 gone, order 5 new.
  await writeFile(p.dir, "landing/orders/a.csv", csv([[1, 12, 6], [2, 21, 7], [5, 50, 8]]));
  const summary = await runOnce(p);
  const silver = summary.stages.find((s) => s.stage === "silver")!;
  const append = silver.tables.find((t) => t.table === "o_append")!;
  assert.equal(append.rowsIn, 3);
  assert.equal(append.details?.retracted, 3);

  assert.deepEqual(
    await rows(p, "SELECT order_id, quantity FROM silver.o_append ORDER BY ALL"),
    [
      { order_id: 1, quantity: 11 },
      { order_id: 1, quantity: 12 },
      { order_id: 2, quantity: 21 },
      { order_id: 4, quantity: 40 },
      { order_id: 5, quantity: 50 },
    ],
  );
  assert.deepEqual(await rows(p, "SELECT n, units FROM gold.units"), [{ n: 5, units: 134 }]);
  // merge: latest by updated_at; order 3 (only in the old a.csv) is gone.
  const merged = [
    { order_id: 1, quantity: 12 },
    { order_id: 2, quantity: 21 },
    { order_id: 4, quantity: 40 },
    { order_id: 5, quantity: 50 },
  ];
  assert.deepEqual(
    await rows(p, "SELECT order_id, quantity FROM silver.o_merge ORDER BY ALL"),
    merged,
  );
  assert.deepEqual(
    await rows(p, "SELECT order_id, quantity FROM silver.o_replace ORDER BY ALL"),
    merged,
  );
  // scd2: order 3 has no version left; order 1's history is b.csv's row of
  // run 1, then the re-sent a.csv's row.
  assert.deepEqual(
    await rows(
      p,
      `SELECT order_id, quantity, is_current, valid_to IS NULL AS open FROM silver.o_scd2
       ORDER BY order_id, valid_from`,
    ),
    [
      { order_id: 1, quantity: 11, is_current: false, open: false },
      { order_id: 1, quantity: 12, is_current: true, open: true },
      { order_id: 2, quantity: 21, is_current: true, open: true },
      { order_id: 4, quantity: 40, is_current: true, open: true },
      { order_id: 5, quantity: 50, is_current: true, open: true },
    ],
  );
  // Every silver row traces to a bronze row that exists.
  for (const t of ["o_append", "o_merge", "o_scd2", "o_replace"]) {
    assert.deepEqual(
      await rows(
        p,
        `SELECT count(*) AS n FROM silver.${t} s ANTI JOIN bronze.orders b
         ON s._source_file = b._source_file AND s._source_row = b._source_row
          AND s._bronze_run_id = b._run_id`,
      ),
      [{ n: 0 }],
      t,
    );
  }
});

Deno.test("scd2 rebuilds a key's history from the remaining bronze rows when a middle version's file is re-sent", async () => {
  const p = await makeProject(YAML, { "landing/orders/a.csv": csv([[1, 10, 1]]) });
  await runOnce(p);
  await writeFile(p.dir, "landing/orders/b.csv", csv([[1, 20, 2]]));
  await runOnce(p);
  await writeFile(p.dir, "landing/orders/c.csv", csv([[1, 10, 3]]));
  await runOnce(p);
  // History 10, 20, 10. b.csv is re-sent without order 1: its version goes,
  // and the versions either side (both 10) become one, valid since run 1.
  await writeFile(p.dir, "landing/orders/b.csv", csv([[2, 5, 4]]));
  const s = await runOnce(p);
  const scd2 = s.stages.find((x) => x.stage === "silver")!.tables.find((t) =>
    t.table === "o_scd2"
  )!;
  assert.equal(scd2.details?.retracted, 3); // order 1's three versions
  assert.equal(scd2.details?.recomputed, 1); // rebuilt as one
  const history = await rows(
    p,
    `SELECT order_id, quantity, is_current, _source_file LIKE '%a.csv' AS from_a,
       valid_from = (SELECT min(processed_at) FROM _sluice.silver_progress
                     WHERE table_name = 'o_scd2') AS since_first_run
     FROM silver.o_scd2 ORDER BY order_id, valid_from`,
  );
  assert.deepEqual(history, [
    { order_id: 1, quantity: 10, is_current: true, from_a: true, since_first_run: true },
    { order_id: 2, quantity: 5, is_current: true, from_a: false, since_first_run: false },
  ]);
});

Deno.test("merge recomputes a key from the remaining rows when the file that last set it is re-sent without it", async () => {
  const p = await makeProject(YAML, {
    "landing/orders/a.csv": csv([[1, 10, 1]]),
    "landing/orders/b.csv": csv([[1, 20, 2]]),
  });
  await runOnce(p);
  assert.deepEqual(await rows(p, "SELECT quantity FROM silver.o_merge"), [{ quantity: 20 }]);
  await writeFile(p.dir, "landing/orders/b.csv", csv([[2, 7, 3]]));
  await runOnce(p);
  assert.deepEqual(
    await rows(
      p,
      "SELECT order_id, quantity, _source_file LIKE '%a.csv' AS a FROM silver.o_merge ORDER BY 1",
    ),
    [{ order_id: 1, quantity: 10, a: true }, { order_id: 2, quantity: 7, a: false }],
  );
});

Deno.test("silver rows whose bronze rows vanished without a recorded re-send fail the run with a ConservationError", async () => {
  const p = await makeProject(YAML, { "landing/orders/a.csv": csv([[1, 10, 1]]) });
  await runOnce(p);
  // Someone deletes bronze rows by hand.
  const db = await openPipelineDb(await loadConfig(p.configFile));
  try {
    await db.run("DELETE FROM bronze.orders");
  } finally {
    db.close();
  }
  await writeFile(p.dir, "landing/orders/b.csv", csv([[2, 20, 2]]));
  await assert.rejects(
    () => runOnce(p),
    (e: unknown) => {
      assert.ok(e instanceof ConservationError, String(e));
      assert.match(e.message, /silver "o_append": 1 rows come from bronze rows of "orders"/);
      assert.match(e.message, /--full-refresh/);
      return true;
    },
  );
});

Deno.test("a full refresh rebuilds every silver mode from bronze with the fixed config", async () => {
  const wrong = YAML.replaceAll(
    "quantity: { type: INTEGER }",
    'quantity: { type: INTEGER, expr: "quantity::INTEGER * 10" }',
  );
  const p = await makeProject(wrong, {
    "landing/orders/a.csv": csv([[1, 1, 1], [2, 2, 2]]),
  });
  await runOnce(p);
  await writeFile(p.dir, "landing/orders/b.csv", csv([[1, 3, 3]]));
  await runOnce(p);
  assert.deepEqual(await rows(p, "SELECT units FROM gold.units"), [{ units: 60 }]);
  // The config is fixed; the rows silver built with the wrong one are rebuilt.
  await Deno.writeTextFile(p.configFile, YAML);
  const config = await loadConfig(p.configFile);
  const s = await withRun(
    config,
    { trigger: "test" },
    (ctx) => runPipeline(ctx, { fullRefresh: true }),
  );
  assert.equal(s.noop, false);
  assert.deepEqual(await rows(p, "SELECT n, units FROM gold.units"), [{ n: 3, units: 6 }]);
  assert.deepEqual(
    await rows(p, "SELECT order_id, quantity FROM silver.o_merge ORDER BY 1"),
    [{ order_id: 1, quantity: 3 }, { order_id: 2, quantity: 2 }],
  );
  // scd2 starts a new history: one version per key.
  assert.deepEqual(
    await rows(p, "SELECT order_id, quantity, is_current FROM silver.o_scd2 ORDER BY 1"),
    [{ order_id: 1, quantity: 3, is_current: true }, {
      order_id: 2,
      quantity: 2,
      is_current: true,
    }],
  );
  // The next ordinary run goes on incrementally from there.
  await writeFile(p.dir, "landing/orders/c.csv", csv([[2, 5, 9]]));
  await runOnce(p);
  assert.deepEqual(await rows(p, "SELECT n, units FROM gold.units"), [{ n: 4, units: 11 }]);
  assert.deepEqual(
    await rows(p, "SELECT count(*) AS n FROM silver.o_scd2 WHERE order_id = 2"),
    [{ n: 2 }],
  );
});
