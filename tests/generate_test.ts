import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "yaml";
import { openEngine } from "../core/engine.ts";
import type { Engine } from "../core/engine.ts";
import { UsageError } from "../core/errors.ts";
import { PipelineSchema } from "../core/config/mod.ts";
import { literal } from "../core/quote.ts";
import { generateDemoData } from "../scaffold/generate.ts";
import type { GenerateSummary } from "../scaffold/generate.ts";
import { ECOMMERCE_PIPELINE_YAML } from "../scaffold/example_pipeline.ts";

/** Generates into a fresh temp dir, runs `fn`, removes the dir. */
async function withData(
  options: Parameters<typeof generateDemoData>[1],
  fn: (summary: GenerateSummary, db: Engine) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sluice_gen_" });
  try {
    const summary = await generateDemoData(dir, options);
    const db = await openEngine(":memory:", { allowedDirectories: [summary.outDir] });
    try {
      await fn(summary, db);
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function csv(summary: GenerateSummary, table: "customers" | "products" | "orders"): string {
  const glob = join(summary.outDir, "landing", table, "*.csv");
  return `read_csv(${literal(glob)}, all_varchar = true, header = true)`;
}

async function readAll(paths: string[]): Promise<Uint8Array[]> {
  return await Promise.all(paths.map((p) => Deno.readFile(p)));
}

Deno.test("same seed and scale give byte-identical files", async () => {
  const a = await Deno.makeTempDir({ prefix: "sluice_gen_a_" });
  const b = await Deno.makeTempDir({ prefix: "sluice_gen_b_" });
  try {
    const sa = await generateDemoData(a, { scale: 3_000, seed: 7 });
    const sb = await generateDemoData(b, { scale: 3_000, seed: 7 });
    assert.deepEqual(
      sa.files.map((f) => f.slice(sa.outDir.length)),
      sb.files.map((f) => f.slice(sb.outDir.length)),
    );
    assert.deepEqual(await readAll(sa.files), await readAll(sb.files));
    assert.deepEqual({ ...sa, files: [], outDir: "" }, { ...sb, files: [], outDir: "" });
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

Deno.test("a different seed gives different data", async () => {
  const a = await Deno.makeTempDir({ prefix: "sluice_gen_a_" });
  const b = await Deno.makeTempDir({ prefix: "sluice_gen_b_" });
  try {
    const sa = await generateDemoData(a, { scale: 2_000, seed: 1 });
    const sb = await generateDemoData(b, { scale: 2_000, seed: 2 });
    const [ca, pa, oa] = await readAll(sa.files.slice(0, 3));
    const [cb, pb, ob] = await readAll(sb.files.slice(0, 3));
    assert.notDeepEqual(ca, cb);
    assert.notDeepEqual(pa, pb);
    assert.notDeepEqual(oa, ob);
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

Deno.test("summary counts match the rows written and files follow the naming", async () => {
  await withData({ scale: 5_000 }, async (s, db) => {
    assert.equal(s.orders, 5_000);
    assert.equal(s.customers, 500);
    assert.equal(s.products, 50);
    const count = async (t: "customers" | "products" | "orders") =>
      (await db.one<{ n: number }>(`select count(*)::INTEGER as n from ${csv(s, t)}`))!.n;
    assert.equal(await count("orders"), s.orders);
    assert.equal(await count("customers"), s.customers);
    assert.equal(await count("products"), s.products);

    // Default file count: clamp(scale / 20000, 4, 200) = 4.
    const names = s.files.map((f) => f.slice(s.outDir.length + 1));
    assert.deepEqual(names, [
      "landing/customers/customers.csv",
      "landing/products/products.csv",
      "landing/orders/orders_0001.csv",
      "landing/orders/orders_0002.csv",
      "landing/orders/orders_0003.csv",
      "landing/orders/orders_0004.csv",
    ]);
    const header = (await Deno.readTextFile(s.files[2])).split("\n")[0];
    assert.equal(
      header,
      "order_id,customer_id,product_id,quantity,unit_price,order_ts,country,status,updated_at",
    );
    assert.equal(
      (await Deno.readTextFile(s.files[0])).split("\n")[0],
      "customer_id,name,email,country,signup_date,updated_at",
    );
    assert.equal(
      (await Deno.readTextFile(s.files[1])).split("\n")[0],
      "product_id,name,category,unit_price",
    );
  });
});

Deno.test("orders carry realistic mess: duplicates, bad values, unknown customers, mixed case", async () => {
  await withData({ scale: 20_000, seed: 42 }, async (s, db) => {
    const o = csv(s, "orders");
    const c = csv(s, "customers");
    const stats = (await db.one<Record<string, number>>(`
      select
        count(*)::INTEGER as n,
        (count(*) - count(distinct order_id))::INTEGER as dups,
        count(*) filter (where try_cast(quantity as INTEGER) is null)::INTEGER as non_numeric,
        count(*) filter (where try_cast(quantity as INTEGER) <= 0)::INTEGER as negative,
        count(*) filter (where try_cast(order_ts as TIMESTAMP) is null)::INTEGER as bad_ts,
        count(*) filter (where customer_id::BIGINT not in (select customer_id::BIGINT from ${c}))
          ::INTEGER as unknown,
        count(distinct country)::INTEGER as raw_countries,
        count(distinct upper(trim(country)))::INTEGER as countries,
        count(*) filter (where country <> upper(trim(country)))::INTEGER as messy_countries,
        count(distinct status)::INTEGER as raw_statuses,
        count(distinct lower(status))::INTEGER as statuses
      from ${o}`))!;
    const rate = (k: string) => stats[k] / stats.n;
    assert.ok(rate("dups") >= 0.005 && rate("dups") <= 0.02, `duplicates ${rate("dups")}`);
    assert.ok(stats.non_numeric > 0, "some quantities are not numbers");
    assert.ok(stats.negative > 0, "some quantities are negative");
    assert.ok(stats.bad_ts > 0, "some order timestamps do not parse");
    const bad = stats.non_numeric + stats.negative + stats.bad_ts;
    assert.ok(bad / stats.n >= 0.002 && bad / stats.n <= 0.01, `bad values ${bad / stats.n}`);
    assert.ok(stats.unknown > 0 && rate("unknown") < 0.015, `unknown customers ${stats.unknown}`);
    assert.ok(stats.messy_countries > 0 && stats.raw_countries > stats.countries);
    assert.ok(stats.raw_statuses > stats.statuses);
    assert.equal(stats.statuses, 5);

    const bads = await db.all<{ v: string }>(
      `select distinct order_ts as v from ${o} where try_cast(order_ts as TIMESTAMP) is null`,
    );
    assert.deepEqual(bads.map((r) => r.v).sort(), ["2024-13-45", "not a date"]);
    const words = await db.one<{ n: number }>(
      `select count(*)::INTEGER as n from ${o} where quantity = 'two'`,
    );
    assert.ok(words!.n > 0, 'quantity "two" appears');
  });
});

Deno.test("some duplicate orders are later updates with a changed status, some in another file", async () => {
  await withData({ scale: 20_000, files: 8 }, async (s, db) => {
    const o = `read_csv(${
      literal(join(s.outDir, "landing", "orders", "*.csv"))
    }, all_varchar = true, filename = true)`;
    const d = (await db.one<Record<string, number>>(`
      with d as (
        select order_id, count(distinct filename) as files, count(distinct lower(status)) as statuses,
          count(distinct updated_at) as versions
        from ${o} group by order_id having count(*) > 1)
      select count(*)::INTEGER as ids,
        count(*) filter (where files > 1)::INTEGER as cross_file,
        count(*) filter (where statuses > 1)::INTEGER as changed_status,
        count(*) filter (where versions > 1)::INTEGER as later
      from d`))!;
    assert.ok(d.ids > 0);
    assert.ok(d.cross_file > 0, "a duplicate lands in another file");
    assert.ok(d.changed_status > 0, "a duplicate changes status");
    assert.ok(d.later > 0 && d.later < d.ids, "some duplicates are updates, some exact copies");
  });
});

Deno.test("customers: ~2% missing emails, mixed-case countries with spaces", async () => {
  await withData({ scale: 20_000 }, async (s, db) => {
    const r = (await db.one<Record<string, number>>(`
      select count(*)::INTEGER as n,
        count(*) filter (where email is null or trim(email) = '')::INTEGER as no_email,
        count(*) filter (where country <> trim(country))::INTEGER as spaced,
        count(*) filter (where trim(country) <> upper(trim(country)))::INTEGER as lower_case,
        count(*) filter (where length(trim(country)) <> 2)::INTEGER as not_iso2,
        count(*) filter (where try_cast(signup_date as DATE) is null)::INTEGER as bad_signup,
        count(*) filter (where try_cast(updated_at as TIMESTAMP) is null)::INTEGER as bad_updated,
        count(distinct customer_id)::INTEGER as ids
      from ${csv(s, "customers")}`))!;
    assert.equal(r.n, 2_000);
    assert.equal(r.ids, r.n);
    const noEmail = r.no_email / r.n;
    assert.ok(noEmail >= 0.01 && noEmail <= 0.035, `missing emails ${noEmail}`);
    assert.ok(r.spaced > 0 && r.lower_case > 0);
    assert.equal(r.not_iso2, 0);
    assert.equal(r.bad_signup, 0);
    assert.equal(r.bad_updated, 0);
    const dates = await db.one<{ ok: boolean }>(
      `select bool_and(signup_date similar to '\\d{4}-\\d{2}-\\d{2}') as ok from ${
        csv(s, "customers")
      }`,
    );
    assert.equal(dates!.ok, true);
  });
});

Deno.test("order timestamps span about 90 days ending 2026-06-30; prices are decimals", async () => {
  await withData({ scale: 10_000 }, async (s, db) => {
    const r = (await db.one<{ first: string; last: string; prices: number; products: number }>(`
      select strftime(min(try_cast(order_ts as TIMESTAMP)), '%Y-%m-%d') as first,
        strftime(max(try_cast(order_ts as TIMESTAMP)), '%Y-%m-%d') as last,
        count(*) filter (where not regexp_full_match(unit_price, '\\d+\\.\\d{2}'))::INTEGER
          as prices,
        count(*) filter (where product_id::BIGINT > 50)::INTEGER as products
      from ${csv(s, "orders")}`))!;
    assert.equal(r.first, "2026-04-01");
    assert.equal(r.last, "2026-06-30");
    assert.equal(r.prices, 0);
    assert.equal(r.products, 0, "every product id exists");
  });
});

Deno.test("regenerating with fewer files removes the older order files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_gen_" });
  try {
    await generateDemoData(dir, { scale: 2_000, files: 6 });
    const s = await generateDemoData(dir, { scale: 2_000, files: 3 });
    const names: string[] = [];
    for await (const e of Deno.readDir(join(dir, "landing", "orders"))) names.push(e.name);
    assert.deepEqual(names.sort(), ["orders_0001.csv", "orders_0002.csv", "orders_0003.csv"]);
    assert.equal(s.files.length, 5);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scale, seed and files out of range are usage errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_gen_" });
  try {
    await assert.rejects(() => generateDemoData(dir, { scale: 5 }), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.equal(
        e.message,
        "Cannot generate: --scale must be between 1000 and 10000000 (got 5)",
      );
      assert.equal(e.exitCode, 2);
      return true;
    });
    await assert.rejects(() => generateDemoData(dir, { scale: 10_000_001 }), UsageError);
    await assert.rejects(() => generateDemoData(dir, { scale: 1500.5 }), UsageError);
    await assert.rejects(() => generateDemoData(dir, { scale: Number.NaN }), UsageError);
    await assert.rejects(() => generateDemoData(dir, { seed: 1.5 }), UsageError);
    await assert.rejects(() => generateDemoData(dir, { scale: 1_000, files: 11 }), /--files/);
    await assert.rejects(() => generateDemoData(dir, { files: 0 }), UsageError);
    // Nothing was written for rejected options.
    const entries: string[] = [];
    for await (const e of Deno.readDir(dir)) entries.push(e.name);
    assert.deepEqual(entries, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the e-commerce example YAML equals its embedded copy", async () => {
  const text = await Deno.readTextFile(
    new URL("../examples/ecommerce/pipeline.yaml", import.meta.url),
  );
  assert.equal(ECOMMERCE_PIPELINE_YAML, text);
});

Deno.test("the e-commerce example config passes PipelineSchema", () => {
  const result = PipelineSchema.safeParse(parse(ECOMMERCE_PIPELINE_YAML));
  assert.ok(result.success, JSON.stringify(result.error?.issues));
  const cfg = result.data;
  assert.equal(cfg.pipeline, "ecommerce");
  assert.equal(cfg.lake, "./lake");
  assert.deepEqual(cfg.engine, { threads: 2, memory_limit: "2GB" });
  assert.deepEqual(Object.keys(cfg.sources).sort(), ["customers", "orders", "products"]);
  for (const [name, src] of Object.entries(cfg.sources)) {
    assert.equal(src.format, "csv");
    assert.equal(src.path, `./landing/${name}`);
  }
  for (const table of Object.values(cfg.silver)) assert.ok(table.from in cfg.sources);
  assert.equal(cfg.silver.orders.mode, "merge");
  assert.deepEqual(cfg.silver.orders.key, ["order_id"]);
  assert.deepEqual(cfg.silver.orders.rules, [{ name: "positive_quantity", sql: "quantity > 0" }]);
  assert.equal(cfg.silver.orders.columns.unit_price.type, "DECIMAL(12,2)");
  assert.equal(cfg.silver.products.columns.unit_price.type, "DECIMAL(12,2)");
  assert.equal(cfg.silver.products.mode, "replace");
  assert.equal(cfg.silver.customers.columns.customer_id.nullable, false);
  assert.deepEqual(Object.keys(cfg.gold).sort(), [
    "customer_lifetime_value",
    "daily_revenue_by_country",
    "top_products",
  ]);
  assert.deepEqual(Object.keys(cfg.output!.tables).sort(), Object.keys(cfg.gold).sort());
  assert.deepEqual(cfg.output!.tables.daily_revenue_by_country.partition_by, ["country"]);
});
