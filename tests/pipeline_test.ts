import assert from "node:assert/strict";
import { join } from "node:path";
import { generateDemoData } from "../scaffold/generate.ts";
import { ECOMMERCE_PIPELINE_YAML } from "../scaffold/example_pipeline.ts";
import { ConfigError, SandboxError, SchemaDriftError, SourceError } from "../core/errors.ts";
import { makeProject, openProject, query, runOnce, SHOP_YAML, writeFile } from "./_helpers.ts";
import { openEngine } from "../core/engine.ts";

const ORDERS_1 = `order_id,quantity,country,updated_at
1,2,de,2026-01-01 10:00:00
2,1, us ,2026-01-01 10:00:00
3,two,fr,2026-01-01 10:00:00
4,-5,de,2026-01-01 10:00:00
2,3,US,2026-01-02 10:00:00
,1,de,2026-01-01 10:00:00
`;

Deno.test("every stage accounts for each row as passed, quarantined or duplicate on demo data", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_demo_" });
  const gen = await generateDemoData(dir, { scale: 5_000, seed: 7 });
  await Deno.writeTextFile(join(dir, "pipeline.yaml"), ECOMMERCE_PIPELINE_YAML);
  const project = { dir, configFile: join(dir, "pipeline.yaml") };
  const summary = await runOnce(project);
  assert.equal(summary.status, "success");
  for (const stage of summary.stages) {
    for (const t of stage.tables) {
      assert.equal(
        t.rowsIn,
        t.passed + t.quarantined + t.duplicates,
        `${stage.stage}.${t.table}: ${t.rowsIn} != ${t.passed}+${t.quarantined}+${t.duplicates}`,
      );
    }
  }
  const bronzeOrders = summary.stages.find((s) => s.stage === "bronze")!.tables.find((t) =>
    t.table === "orders"
  )!;
  assert.equal(bronzeOrders.passed, gen.orders);

  // Independent count of bad order rows straight from the CSV files.
  const db = await openEngine(":memory:", { allowedDirectories: [dir] });
  const [expected] = await db.all<{ bad: number; dups: number }>(
    `WITH raw AS (SELECT * FROM read_csv(${
      JSON.stringify(join(dir, "landing/orders/*.csv")).replaceAll('"', "'")
    }, all_varchar = true)),
     bad AS (SELECT * FROM raw WHERE
       (quantity IS NOT NULL AND TRY_CAST(quantity AS INTEGER) IS NULL)
       OR (order_ts IS NOT NULL AND TRY_CAST(order_ts AS TIMESTAMP) IS NULL)
       OR (unit_price IS NOT NULL AND TRY_CAST(unit_price AS DECIMAL(12,2)) IS NULL)
       OR (updated_at IS NOT NULL AND TRY_CAST(updated_at AS TIMESTAMP) IS NULL)
       OR order_id IS NULL OR TRY_CAST(order_id AS BIGINT) IS NULL
       OR TRY_CAST(quantity AS INTEGER) <= 0)
     SELECT (SELECT count(*) FROM bad) AS bad,
       (SELECT count(*) - count(DISTINCT order_id) FROM raw WHERE NOT EXISTS
         (SELECT 1 FROM bad WHERE bad.order_id = raw.order_id AND bad.updated_at IS NOT DISTINCT FROM raw.updated_at
            AND bad.quantity IS NOT DISTINCT FROM raw.quantity)) AS dups`,
  );
  db.close();
  const silverOrders = summary.stages.find((s) => s.stage === "silver")!.tables.find((t) =>
    t.table === "orders"
  )!;
  assert.equal(silverOrders.quarantined, expected.bad);
  assert.ok(silverOrders.quarantined > 0);
  assert.ok(silverOrders.duplicates > 0);

  const q = await query<{ n: number; with_reason: number; runs: number }>(
    project,
    `SELECT count(*) AS n, count(_reason) AS with_reason, count(DISTINCT _run_id) AS runs
     FROM silver.orders__quarantine`,
  );
  assert.equal(q[0].n, expected.bad);
  assert.equal(q[0].with_reason, expected.bad);
  const ledger = await query<
    { rows_in: number; passed: number; quarantined: number; duplicates: number }
  >(
    project,
    `SELECT rows_in, passed, quarantined, duplicates FROM _sluice.stage_tables
     WHERE stage = 'silver' AND table_name = 'orders'`,
  );
  assert.deepEqual(ledger[0], {
    rows_in: silverOrders.rowsIn,
    passed: silverOrders.passed,
    quarantined: silverOrders.quarantined,
    duplicates: silverOrders.duplicates,
  });
});

Deno.test("quarantine reasons name the column and value or the failed rule", async () => {
  const p = await makeProject(SHOP_YAML, { "landing/orders/a.csv": ORDERS_1 });
  const summary = await runOnce(p);
  assert.equal(summary.status, "success");
  const rows = await query<{ code: string; reason: string; row: number }>(
    p,
    `SELECT _reason_code AS code, _reason AS reason, _source_row AS row
     FROM silver.orders__quarantine ORDER BY _source_row`,
  );
  assert.deepEqual(rows, [
    {
      code: "cast_failed",
      reason: `column "quantity": cannot cast two to INTEGER`,
      row: 3,
    },
    { code: "rule_failed", reason: `rule "positive_quantity" failed`, row: 4 },
    {
      code: "null_violation",
      reason: `column "order_id": is null but declared nullable: false`,
      row: 6,
    },
  ]);
  const silver = await query<{ order_id: number; quantity: number; country: string }>(
    p,
    "SELECT order_id, quantity, country FROM silver.orders ORDER BY order_id",
  );
  assert.deepEqual(silver, [
    { order_id: 1, quantity: 2, country: "DE" },
    { order_id: 2, quantity: 3, country: "US" }, // the later version wins
  ]);
  const payload = await query<{ p: string }>(
    p,
    "SELECT _payload AS p FROM silver.orders__quarantine WHERE _source_row = 3",
  );
  assert.equal(JSON.parse(payload[0].p).quantity, "two");
});

Deno.test("running twice on the same inputs duplicates no row and the second run is a no-op", async () => {
  const p = await makeProject(SHOP_YAML, { "landing/orders/a.csv": ORDERS_1 });
  await runOnce(p);
  const counts = async () =>
    (await query<{ b: number; s: number; q: number; g: number }>(
      p,
      `SELECT (SELECT count(*) FROM bronze.orders) b, (SELECT count(*) FROM silver.orders) s,
        (SELECT count(*) FROM silver.orders__quarantine) q, (SELECT count(*) FROM gold.by_country) g`,
    ))[0];
  const first = await counts();
  const second = await runOnce(p);
  assert.equal(second.status, "success");
  assert.equal(second.noop, true);
  assert.deepEqual(second.stages.map((s) => s.stage), ["extract"]);
  assert.deepEqual(await counts(), first);

  // A new file is ingested alone; earlier files are not read again.
  await writeFile(
    p.dir,
    "landing/orders/b.csv",
    "order_id,quantity,country,updated_at\n9,1,se,2026-01-03 00:00:00\n",
  );
  const third = await runOnce(p);
  const bronze = third.stages.find((s) => s.stage === "bronze")!.tables[0];
  assert.equal(bronze.rowsIn, 1);
  const after = await counts();
  assert.equal(after.b, first.b + 1);
  assert.equal(after.s, first.s + 1);
  assert.equal(after.q, first.q);
});

Deno.test("a changed file fails the run under on_change: fail and is re-landed under reingest", async () => {
  const p = await makeProject(SHOP_YAML, { "landing/orders/a.csv": ORDERS_1 });
  await runOnce(p);
  await writeFile(p.dir, "landing/orders/a.csv", ORDERS_1 + "7,1,de,2026-01-05 00:00:00\n");
  await assert.rejects(() => runOnce(p), (e) => {
    assert.ok(e instanceof SourceError);
    assert.match(
      e.message,
      /Cannot load source "orders": file .*a\.csv changed since it was ingested/,
    );
    return true;
  });
  await Deno.writeTextFile(
    p.configFile,
    SHOP_YAML.replace("on_change: fail", "on_change: reingest"),
  );
  const summary = await runOnce(p);
  assert.equal(summary.status, "success");
  const rows = await query<{ n: number; files: number }>(
    p,
    "SELECT count(*) AS n, count(DISTINCT _run_id) AS files FROM bronze.orders",
  );
  assert.equal(rows[0].n, 7); // the old 6 rows were superseded, not kept beside the new 7
  assert.equal(rows[0].files, 1);
  const silver = await query<{ n: number }>(
    p,
    "SELECT count(*) AS n FROM silver.orders WHERE order_id = 7",
  );
  assert.equal(silver[0].n, 1);
});

Deno.test("an empty landing file fails with a message naming the source and file", async () => {
  const p = await makeProject(SHOP_YAML, { "landing/orders/empty.csv": "" });
  await assert.rejects(() => runOnce(p), (e) => {
    assert.ok(e instanceof SourceError);
    assert.match(e.message, /^Cannot load source "orders": file .*empty\.csv is empty$/);
    return true;
  });
});

Deno.test("schema drift is reported and evolves the bronze table, or fails under schema_drift: fail", async () => {
  const p = await makeProject(SHOP_YAML, { "landing/orders/a.csv": ORDERS_1 });
  await runOnce(p);
  await writeFile(
    p.dir,
    "landing/orders/b.csv",
    "order_id,quantity,country,updated_at,coupon\n10,1,de,2026-01-03 00:00:00,SAVE10\n",
  );
  const summary = await runOnce(p);
  const bronze = summary.stages.find((s) => s.stage === "bronze")!.tables[0];
  assert.deepEqual(bronze.details?.columns_added, ["coupon"]);
  const cols = await query<{ c: string }>(
    p,
    "SELECT column_name AS c FROM duckdb_columns() WHERE schema_name = 'bronze' AND table_name = 'orders' AND column_name = 'coupon'",
  );
  assert.equal(cols.length, 1);

  await Deno.writeTextFile(
    p.configFile,
    SHOP_YAML.replace("on_change: fail", "on_change: fail\n    schema_drift: fail"),
  );
  await writeFile(
    p.dir,
    "landing/orders/c.csv",
    "order_id,quantity,updated_at\n11,1,2026-01-03 00:00:00\n",
  );
  await assert.rejects(() => runOnce(p), (e) => {
    assert.ok(e instanceof SchemaDriftError);
    assert.match(e.message, /missing column\(s\) "country"/);
    return true;
  });
});

Deno.test("a gold model that reads a file outside the lake fails with a permission error", async () => {
  const yaml = SHOP_YAML.replace(
    "    sql: select country, count(*) as orders, sum(quantity) as units from orders group by country",
    "    sql: select * from read_csv('/etc/passwd')",
  );
  const p = await makeProject(yaml, { "landing/orders/a.csv": ORDERS_1 });
  await assert.rejects(() => runOnce(p), (e) => {
    assert.ok(e instanceof SandboxError, String(e));
    // Refused by the SQL guard before it runs (the sandbox is the second layer).
    assert.match(e.message, /Cannot run gold model "by_country"/);
    assert.match(e.message, /calls table function read_csv\(\)/);
    return true;
  });
  // The failure is in the ledger.
  const runs = await query<{ status: string; error: string }>(
    p,
    "SELECT status, error FROM _sluice.runs",
  );
  assert.equal(runs[0].status, "failed");
  assert.match(runs[0].error, /by_country/);
});

Deno.test("gold models run in dependency order and a cycle is a config error naming it", async () => {
  const yaml = SHOP_YAML.replace(
    "gold:\n",
    "gold:\n  top:\n    sql: select * from by_country order by orders desc limit 1\n",
  );
  const p = await makeProject(yaml, { "landing/orders/a.csv": ORDERS_1 });
  const summary = await runOnce(p);
  assert.deepEqual(summary.stages.find((s) => s.stage === "gold")!.tables.map((t) => t.table), [
    "by_country",
    "top",
  ]);
  const cyclic = yaml.replace(
    "sql: select country, count(*) as orders, sum(quantity) as units from orders group by country",
    "sql: select * from top",
  );
  const c = await makeProject(cyclic, { "landing/orders/a.csv": ORDERS_1 });
  await assert.rejects(() => runOnce(c), (e) => {
    assert.ok(e instanceof ConfigError);
    assert.match(
      e.message,
      /models form a cycle: (top -> by_country -> top|by_country -> top -> by_country)/,
    );
    return true;
  });
});

Deno.test("merge keeps the latest version per key across runs, append keeps all, scd2 keeps history", async () => {
  const yaml = (mode: string) => SHOP_YAML.replace("mode: merge", `mode: ${mode}`);
  const later =
    "order_id,quantity,country,updated_at\n1,9,de,2026-02-01 00:00:00\n2,1,us,2025-01-01 00:00:00\n";
  // merge
  const m = await makeProject(yaml("merge"), { "landing/orders/a.csv": ORDERS_1 });
  await runOnce(m);
  await writeFile(m.dir, "landing/orders/b.csv", later);
  const ms = await runOnce(m);
  const silverM = ms.stages.find((s) => s.stage === "silver")!.tables[0];
  assert.equal(silverM.passed, 1); // order 1 updated
  assert.equal(silverM.duplicates, 1); // order 2's older version is stale
  assert.deepEqual(
    await query(m, "SELECT order_id, quantity FROM silver.orders ORDER BY order_id"),
    [{ order_id: 1, quantity: 9 }, { order_id: 2, quantity: 3 }],
  );
  // append
  const a = await makeProject(yaml("append"), { "landing/orders/a.csv": ORDERS_1 });
  await runOnce(a);
  await writeFile(a.dir, "landing/orders/b.csv", later);
  await runOnce(a);
  assert.deepEqual(await query(a, "SELECT count(*) AS n FROM silver.orders"), [{ n: 4 }]);
  // scd2
  const s = await makeProject(yaml("scd2"), { "landing/orders/a.csv": ORDERS_1 });
  await runOnce(s);
  await writeFile(s.dir, "landing/orders/b.csv", later);
  await runOnce(s);
  assert.deepEqual(
    await query(
      s,
      "SELECT order_id, quantity, is_current, valid_to IS NULL AS open FROM silver.orders ORDER BY order_id, valid_from",
    ),
    [
      { order_id: 1, quantity: 2, is_current: false, open: false },
      { order_id: 1, quantity: 9, is_current: true, open: true },
      { order_id: 2, quantity: 3, is_current: false, open: false },
      { order_id: 2, quantity: 1, is_current: true, open: true },
    ],
  );
  const versions = await query<{ n: number }>(
    s,
    "SELECT count(*) AS n FROM silver.orders WHERE order_id = 2",
  );
  assert.equal(versions[0].n, 2);
});

Deno.test("output publishes Parquet atomically and a failed run leaves the published files untouched", async () => {
  const p = await makeProject(SHOP_YAML, { "landing/orders/a.csv": ORDERS_1 });
  const first = await runOnce(p);
  const out = first.stages.find((s) => s.stage === "output")!.tables[0];
  const link = join(p.dir, "lake/output/by_country");
  assert.equal(out.details?.path, link);
  assert.ok((await Deno.lstat(link)).isSymlink);
  const file = join(link, "part-00000.parquet");
  const before = await Deno.readFile(file);
  const target = await Deno.readLink(link);

  // Break the gold model, add a file, run: the run fails, the output stays.
  await writeFile(
    p.dir,
    "landing/orders/b.csv",
    "order_id,quantity,country,updated_at\n20,1,no,2026-01-03 00:00:00\n",
  );
  await Deno.writeTextFile(
    p.configFile,
    SHOP_YAML.replace(
      "sum(quantity) as units from orders",
      "sum(quantity) / 0 as units from orders where error('boom') ",
    ),
  );
  await assert.rejects(() => runOnce(p));
  assert.equal(await Deno.readLink(link), target);
  assert.deepEqual(await Deno.readFile(file), before);

  // Readers see the published data through the link.
  const ctx = await openProject(p);
  try {
    const rows = await ctx.db.all(
      `SELECT country, orders FROM read_parquet('${link}/*.parquet') ORDER BY country`,
    );
    assert.deepEqual(rows, [{ country: "DE", orders: 1 }, { country: "US", orders: 1 }]);
  } finally {
    ctx.db.close();
  }
});

Deno.test("max_rows_per_file caps every Parquet file exactly", async () => {
  const lines = ["order_id,quantity,country,updated_at"];
  for (let i = 1; i <= 2500; i++) lines.push(`${i},1,c${i % 7},2026-01-01 00:00:00`);
  const yaml = SHOP_YAML.replace(
    "    sql: select country, count(*) as orders, sum(quantity) as units from orders group by country",
    "    sql: select order_id, country from orders",
  ).replace("    by_country: {}", "    by_country: { max_rows_per_file: 1000 }");
  const p = await makeProject(yaml, { "landing/orders/a.csv": lines.join("\n") + "\n" });
  await runOnce(p);
  const ctx = await openProject(p);
  try {
    const files = await ctx.db.all<{ n: number }>(
      `SELECT num_rows AS n FROM parquet_file_metadata('${p.dir}/lake/output/by_country/*.parquet') ORDER BY file_name`,
    );
    assert.deepEqual(files.map((f) => f.n), [1000, 1000, 500]);
  } finally {
    ctx.db.close();
  }
});
