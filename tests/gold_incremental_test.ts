/**
 * Incremental gold models (`materialized: incremental`): after any
 * increment (new rows, re-sent and changed files, retracted files, updates
 * to existing keys), each incremental model equals a full rebuild of its
 * SQL row for row (EXCEPT ALL both ways, duplicates counted), and unsafe SQL
 * is refused at validate time.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import fc from "fast-check";
import { ConfigError } from "../core/errors.ts";
import { loadConfig, parseConfig } from "../core/config/mod.ts";
import type { RunSummary } from "../core/run_context.ts";
import { ECOMMERCE_PIPELINE_YAML } from "../scaffold/example_pipeline.ts";
import { runPipeline } from "../stages/pipeline.ts";
import { validatePipeline } from "../stages/validate.ts";
import { withRun } from "../runtime/with_run.ts";
import { makeProject, openProject, type Project, runOnce, writeFile } from "./_helpers.ts";

// The example config, with vanished order files retracted.
const YAML = ECOMMERCE_PIPELINE_YAML.replace(
  "    on_change: reingest\n",
  "    on_change: reingest\n    on_missing: retract\n",
);
const INCREMENTAL = ["daily_revenue_by_country", "customer_lifetime_value"];

const STATUSES = ["completed", "shipped", "pending", "cancelled", "returned"];
const COUNTRIES = ["DE", "US", "FR"];

interface Order {
  id: number;
  customer: number;
  product: number;
  qty: number;
  day: number;
  status: number;
}

const orderArb: fc.Arbitrary<Order> = fc.record({
  id: fc.integer({ min: 1, max: 25 }),
  customer: fc.integer({ min: 1, max: 5 }),
  product: fc.integer({ min: 1, max: 3 }),
  qty: fc.integer({ min: 1, max: 9 }),
  day: fc.integer({ min: 1, max: 4 }),
  status: fc.integer({ min: 0, max: 4 }),
});

type Step =
  | { kind: "new"; orders: Order[] }
  | { kind: "resend"; file: number; orders: Order[] }
  | { kind: "retract"; file: number }
  | { kind: "customers"; ids: number[]; country: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant("new" as const),
    orders: fc.array(orderArb, { minLength: 1, maxLength: 8 }),
  }),
  fc.record({
    kind: fc.constant("resend" as const),
    file: fc.nat(5),
    orders: fc.array(orderArb, { minLength: 1, maxLength: 8 }),
  }),
  fc.record({ kind: fc.constant("retract" as const), file: fc.nat(5) }),
  fc.record({
    kind: fc.constant("customers" as const),
    ids: fc.uniqueArray(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 }),
    country: fc.nat(2),
  }),
);

function ordersCsv(orders: Order[], version: number): string {
  const lines = orders.map((o) =>
    [
      o.id,
      o.customer,
      o.product,
      o.qty,
      "9.50",
      `2026-06-0${o.day} 1${o.id % 10}:00:00`,
      COUNTRIES[o.id % 3].toLowerCase(),
      STATUSES[o.status],
      `2026-07-01 00:${String(version).padStart(2, "0")}:${String(o.id).padStart(2, "0")}`,
    ].join(",")
  );
  return `order_id,customer_id,product_id,quantity,unit_price,order_ts,country,status,updated_at\n${
    lines.join("\n")
  }\n`;
}

function customersCsv(ids: number[], country: number, version: number): string {
  const rows = ids.map((id) =>
    `${id},Name ${id},c${id}.v${version}@example.com,${COUNTRIES[country]},2026-01-01,` +
    `2026-07-01 0${Math.min(version, 9)}:00:00`
  );
  return `customer_id,name,email,country,signup_date,updated_at\n${rows.join("\n")}\n`;
}

async function start(): Promise<Project> {
  return await makeProject(YAML, {
    "landing/customers/customers.csv": customersCsv([1, 2, 3, 4, 5], 0, 0),
    "landing/products/products.csv":
      "product_id,name,category,unit_price\n1,Pen,office,1.50\n2,Cup,kitchen,4.00\n3,Hat,wear,9.00\n",
    "landing/orders/orders_0001.csv": ordersCsv(
      [{ id: 1, customer: 1, product: 1, qty: 2, day: 1, status: 0 }, {
        id: 2,
        customer: 2,
        product: 2,
        qty: 1,
        day: 2,
        status: 1,
      }],
      0,
    ),
  });
}

/** Rows of gold.<model> not in a full rebuild of its SQL, and the other way round. */
async function differences(p: Project): Promise<string[]> {
  const config = await loadConfig(p.configFile);
  const { db } = await openProject(p);
  const out: string[] = [];
  try {
    for (const name of INCREMENTAL) {
      const sql = config.gold[name].sql;
      const extra = await db.all(`SELECT * FROM gold.${name} EXCEPT ALL SELECT * FROM (${sql})`);
      const missing = await db.all(`SELECT * FROM (${sql}) EXCEPT ALL SELECT * FROM gold.${name}`);
      if (extra.length || missing.length) {
        out.push(`${name}: ${extra.length} extra, ${missing.length} missing`);
      }
    }
  } finally {
    db.close();
  }
  return out;
}

function builds(summary: RunSummary): Record<string, string> {
  const g = summary.stages.find((s) => s.stage === "gold");
  return Object.fromEntries(
    (g?.tables ?? []).map((t) => [t.table, String(t.details?.build)]),
  );
}

Deno.test("incremental gold models equal a full rebuild after random increments", async () => {
  let incrementalRuns = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(stepArb, { minLength: 2, maxLength: 3 }), async (steps) => {
      const p = await start();
      try {
        const first = await runOnce(p);
        assert.equal(builds(first).daily_revenue_by_country, "full");
        const files = ["landing/orders/orders_0001.csv"];
        let version = 1;
        for (const step of steps) {
          version++;
          if (step.kind === "new") {
            const f = `landing/orders/orders_${String(version + 1).padStart(4, "0")}.csv`;
            files.push(f);
            await writeFile(p.dir, f, ordersCsv(step.orders, version));
          } else if (step.kind === "resend") {
            await writeFile(
              p.dir,
              files[step.file % files.length],
              ordersCsv(step.orders, version),
            );
          } else if (step.kind === "retract") {
            if (files.length < 2) continue;
            const [f] = files.splice(step.file % files.length, 1);
            await rm(`${p.dir}/${f}`);
          } else {
            await writeFile(
              p.dir,
              `landing/customers/customers_${version}.csv`,
              customersCsv(step.ids, step.country, version),
            );
          }
          const summary = await runOnce(p);
          const how = builds(summary);
          for (const m of INCREMENTAL) {
            assert.ok(["incremental", "unchanged", undefined].includes(how[m]), `${m}: ${how[m]}`);
            if (how[m] === "incremental") incrementalRuns++;
          }
          assert.deepEqual(await differences(p), [], `after ${step.kind}`);
        }
      } finally {
        await Deno.remove(p.dir, { recursive: true });
      }
    }),
    { numRuns: 3, seed: 14 },
  );
  assert.ok(incrementalRuns > 0, "no run was incremental");
});

Deno.test("a new order file updates incremental models in place; --full-refresh rebuilds them", async () => {
  const p = await start();
  try {
    await runOnce(p);
    await writeFile(
      p.dir,
      "landing/orders/orders_0002.csv",
      ordersCsv([
        { id: 1, customer: 3, product: 3, qty: 5, day: 3, status: 2 },
      ], 5),
    );
    const inc = await runOnce(p);
    assert.equal(builds(inc).daily_revenue_by_country, "incremental");
    assert.equal(builds(inc).customer_lifetime_value, "incremental");
    assert.equal(builds(inc).top_products, "full");
    assert.deepEqual(await differences(p), []);
    const config = await loadConfig(p.configFile);
    const full = await withRun(
      config,
      { trigger: "test" },
      (ctx) => runPipeline(ctx, { fullRefresh: true }),
    );
    assert.equal(builds(full).daily_revenue_by_country, "full");
    assert.deepEqual(await differences(p), []);
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("validate refuses an incremental model whose SQL is not keyed by its key", async () => {
  const bad = YAML.replace(
    "  top_products:\n    description: The 100 products with the most revenue.\n",
    "  top_products:\n    description: The 100 products with the most revenue.\n" +
      "    materialized: incremental\n    unique_key: product_id\n",
  ).replace(
    "      group by all\n      order by revenue desc, customer_id\n",
    "      group by c.email, c.country\n      order by revenue desc\n",
  );
  const config = parseConfig(bad, "/tmp/x/pipeline.yaml");
  const e = await validatePipeline(config).then(() => undefined, (e) => e);
  assert.ok(e instanceof ConfigError, String(e));
  assert.match(
    e.message,
    /gold\.top_products\.sql.*cannot be incremental on product_id.*window function/s,
  );
  assert.match(
    e.message,
    /gold\.customer_lifetime_value\.sql.*without key "customer_id" in its GROUP BY/s,
  );
});

Deno.test("an incremental model without a key is a config error naming the key path", () => {
  const bad = YAML.replace("    partition_by: date\n", "");
  let e: unknown;
  try {
    parseConfig(bad, "/tmp/x/pipeline.yaml");
  } catch (caught) {
    e = caught;
  }
  assert.ok(e instanceof ConfigError, String(e));
  assert.match(
    e.message,
    /gold\.daily_revenue_by_country\.materialized.*no unique_key or partition_by/,
  );
});
