// One-off comparison for BENCHMARKS.md: the silver + gold transforms of the
// e-commerce example in DuckDB (@duckdb/node-api, in memory), nodejs-polars
// and arquero, on the same demo data, in the same Node.js process, one tool
// after another, `--runs` times each (median reported).
//
// What is timed: from the three landing CSVs already loaded as text columns
// (the bronze state, load time reported apart) to the gold tables in memory:
//   silver: type every column (a value that does not convert is quarantined),
//           normalise (email lower/trim/empty->null, country upper/trim, status
//           lower/trim), quarantine quantity <= 0, keep the latest row per key
//           (updated_at, for customers and orders);
//   gold:   daily revenue per country, customer lifetime value (join
//           customers), top 100 products by revenue (join products).
// Every tool must produce the same row counts and revenue totals; the script
// checks that and exits 1 when they differ.
//
//   cd bench/peers && npm install && node compare.mjs --data ../data/demo_s42_n1000000
//
// (`bench/data/demo_s42_n1000000` is made by `deno task bench`; package.json
// pins nodejs-polars' linux-x64-gnu binary; on another platform use its own.)
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import os from "node:os";

const { values } = parseArgs({
  options: {
    data: { type: "string", default: "../data/demo_s42_n1000000" },
    runs: { type: "string", default: "3" },
    tools: { type: "string", default: "duckdb,polars,arquero" },
    threads: { type: "string", default: String(os.availableParallelism()) },
  },
});
const runs = Number(values.runs);
const landing = join(values.data, "landing");
const files = (name) =>
  readdirSync(join(landing, name)).filter((f) => f.endsWith(".csv")).sort().map((f) =>
    join(landing, name, f)
  );

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const now = () => performance.now() / 1000;

// ---------------------------------------------------------------- DuckDB
async function duckdb() {
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const db = await DuckDBInstance.create(":memory:", { threads: values.threads });
  const c = await db.connect();
  const list = (fs) => `[${fs.map((f) => `'${f}'`).join(", ")}]`;
  const t0 = now();
  for (const name of ["customers", "products", "orders"]) {
    await c.run(`CREATE TABLE b_${name} AS SELECT * FROM read_csv(${list(files(name))},
      all_varchar = true)`);
  }
  const load = now() - t0;
  const transform = async () => {
    await c.run(`CREATE OR REPLACE TABLE s_customers AS
      SELECT * EXCLUDE (ok) FROM (
        SELECT TRY_CAST(customer_id AS BIGINT) AS customer_id, name,
          nullif(lower(trim(email)), '') AS email, upper(trim(country)) AS country,
          TRY_CAST(signup_date AS DATE) AS signup_date,
          TRY_CAST(updated_at AS TIMESTAMP) AS updated_at,
          customer_id IS NOT NULL AND TRY_CAST(customer_id AS BIGINT) IS NOT NULL
            AND (signup_date IS NULL OR TRY_CAST(signup_date AS DATE) IS NOT NULL)
            AND (updated_at IS NULL OR TRY_CAST(updated_at AS TIMESTAMP) IS NOT NULL) AS ok
        FROM b_customers)
      WHERE ok
      QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY updated_at DESC NULLS LAST) = 1`);
    await c.run(`CREATE OR REPLACE TABLE s_products AS
      SELECT TRY_CAST(product_id AS BIGINT) AS product_id, name, category,
        TRY_CAST(unit_price AS DECIMAL(12,2)) AS unit_price
      FROM b_products
      WHERE TRY_CAST(product_id AS BIGINT) IS NOT NULL
        AND (unit_price IS NULL OR TRY_CAST(unit_price AS DECIMAL(12,2)) IS NOT NULL)`);
    await c.run(`CREATE OR REPLACE TABLE s_orders_typed AS
      SELECT TRY_CAST(order_id AS BIGINT) AS order_id, TRY_CAST(customer_id AS BIGINT) AS customer_id,
        TRY_CAST(product_id AS BIGINT) AS product_id, TRY_CAST(quantity AS INTEGER) AS quantity,
        TRY_CAST(unit_price AS DECIMAL(12,2)) AS unit_price,
        TRY_CAST(order_ts AS TIMESTAMP) AS order_ts, upper(trim(country)) AS country,
        lower(trim(status)) AS status, TRY_CAST(updated_at AS TIMESTAMP) AS updated_at,
        (order_id IS NULL OR TRY_CAST(order_id AS BIGINT) IS NULL)
          OR (b.customer_id IS NOT NULL AND TRY_CAST(b.customer_id AS BIGINT) IS NULL)
          OR (b.product_id IS NOT NULL AND TRY_CAST(b.product_id AS BIGINT) IS NULL)
          OR (b.quantity IS NOT NULL AND TRY_CAST(b.quantity AS INTEGER) IS NULL)
          OR (b.unit_price IS NOT NULL AND TRY_CAST(b.unit_price AS DECIMAL(12,2)) IS NULL)
          OR (b.order_ts IS NOT NULL AND TRY_CAST(b.order_ts AS TIMESTAMP) IS NULL)
          OR (b.updated_at IS NOT NULL AND TRY_CAST(b.updated_at AS TIMESTAMP) IS NULL)
          OR TRY_CAST(b.quantity AS INTEGER) <= 0 AS bad
      FROM b_orders AS b`);
    await c.run(`CREATE OR REPLACE TABLE s_orders_quarantine AS
      SELECT * FROM s_orders_typed WHERE bad`);
    await c.run(`CREATE OR REPLACE TABLE s_orders AS
      SELECT * EXCLUDE (bad) FROM s_orders_typed WHERE NOT bad
      QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY updated_at DESC NULLS LAST) = 1`);
    await c.run(`CREATE OR REPLACE TABLE g_daily AS
      SELECT cast(order_ts AS date) AS date, country, count(*) AS orders,
        sum(quantity * unit_price) AS revenue
      FROM s_orders GROUP BY ALL`);
    await c.run(`CREATE OR REPLACE TABLE g_clv AS
      SELECT customer_id, c.email, c.country, count(*) AS orders,
        sum(o.quantity * o.unit_price) AS revenue, min(o.order_ts) AS first_order,
        max(o.order_ts) AS last_order
      FROM s_orders o JOIN s_customers c USING (customer_id) GROUP BY ALL`);
    await c.run(`CREATE OR REPLACE TABLE g_top AS
      SELECT product_id, p.name, p.category, sum(o.quantity) AS units,
        sum(o.quantity * o.unit_price) AS revenue,
        rank() OVER (ORDER BY sum(o.quantity * o.unit_price) DESC) AS rank
      FROM s_orders o JOIN s_products p USING (product_id)
      GROUP BY product_id, p.name, p.category QUALIFY rank <= 100`);
  };
  const check = async () => {
    const one = async (sql) => (await c.runAndReadAll(sql)).getRows()[0].map(Number);
    const [silver] = await one("SELECT count(*) FROM s_orders");
    const [quarantined] = await one("SELECT count(*) FROM s_orders_quarantine");
    const [customers] = await one("SELECT count(*) FROM s_customers");
    const [daily, revenue] = await one("SELECT count(*), sum(revenue) FROM g_daily");
    const [clv, clvRevenue] = await one("SELECT count(*), sum(revenue) FROM g_clv");
    const [top] = await one("SELECT count(*) FROM g_top");
    return { silver, quarantined, customers, daily, revenue, clv, clvRevenue, top };
  };
  return { load, transform, check, close: () => c.closeSync() };
}

// ---------------------------------------------------------------- polars
async function polars() {
  const pl = (await import("nodejs-polars")).default;
  const read = (name) => pl.concat(files(name).map((f) => pl.readCSV(f, { inferSchemaLength: 0 })));
  const t0 = now();
  const b = { customers: read("customers"), products: read("products"), orders: read("orders") };
  const load = now() - t0;
  let out;
  const ts = (c) => pl.col(c).str.strptime(pl.Datetime("ms"), "%Y-%m-%dT%H:%M:%S");
  const transform = () => {
    const bc = b.customers;
    const customers = bc.lazy().withColumns(
      pl.col("customer_id").cast(pl.Int64, false).alias("customer_id_t"),
      pl.col("signup_date").str.strptime(pl.Date, "%Y-%m-%d").alias("signup_date_t"),
      ts("updated_at").alias("updated_at_t"),
    ).filter(
      pl.col("customer_id_t").isNotNull()
        .and(pl.col("signup_date").isNull().or(pl.col("signup_date_t").isNotNull()))
        .and(pl.col("updated_at").isNull().or(pl.col("updated_at_t").isNotNull())),
    ).select(
      pl.col("customer_id_t").alias("customer_id"),
      pl.col("name"),
      pl.col("email").str.strip().str.toLowerCase().alias("email_n"),
      pl.col("country").str.strip().str.toUpperCase().alias("country"),
      pl.col("signup_date_t").alias("signup_date"),
      pl.col("updated_at_t").alias("updated_at"),
    ).withColumns(
      pl.when(pl.col("email_n").eq(pl.lit(""))).then(pl.lit(null)).otherwise(pl.col("email_n"))
        .alias("email"),
    ).sort("updated_at", true, true).unique({ subset: ["customer_id"], keep: "first" })
      .collectSync();
    const products = b.products.lazy().withColumns(
      pl.col("product_id").cast(pl.Int64, false).alias("product_id"),
      pl.col("unit_price").cast(pl.Float64, false).alias("unit_price_t"),
    ).filter(
      pl.col("product_id").isNotNull()
        .and(pl.col("unit_price").isNull().or(pl.col("unit_price_t").isNotNull())),
    ).select("product_id", "name", "category", pl.col("unit_price_t").alias("unit_price"))
      .collectSync();
    const typed = b.orders.lazy().select(
      pl.col("order_id").cast(pl.Int64, false).alias("order_id_t"),
      pl.col("customer_id").cast(pl.Int64, false).alias("customer_id_t"),
      pl.col("product_id").cast(pl.Int64, false).alias("product_id_t"),
      pl.col("quantity").cast(pl.Int32, false).alias("quantity_t"),
      pl.col("unit_price").cast(pl.Float64, false).alias("unit_price_t"),
      ts("order_ts").alias("order_ts_t"),
      ts("updated_at").alias("updated_at_t"),
      pl.col("country").str.strip().str.toUpperCase().alias("country"),
      pl.col("status").str.strip().str.toLowerCase().alias("status"),
      "order_id",
      "customer_id",
      "product_id",
      "quantity",
      "unit_price",
      "order_ts",
      "updated_at",
    ).withColumns(
      pl.col("order_id_t").isNull()
        .or(pl.col("customer_id").isNotNull().and(pl.col("customer_id_t").isNull()))
        .or(pl.col("product_id").isNotNull().and(pl.col("product_id_t").isNull()))
        .or(pl.col("quantity").isNotNull().and(pl.col("quantity_t").isNull()))
        .or(pl.col("unit_price").isNotNull().and(pl.col("unit_price_t").isNull()))
        .or(pl.col("order_ts").isNotNull().and(pl.col("order_ts_t").isNull()))
        .or(pl.col("updated_at").isNotNull().and(pl.col("updated_at_t").isNull()))
        .or(pl.col("quantity_t").ltEq(0))
        .fillNull(false)
        .alias("bad"),
    ).collectSync();
    const quarantine = typed.filter(pl.col("bad"));
    const orders = typed.lazy().filter(pl.col("bad").not()).select(
      pl.col("order_id_t").alias("order_id"),
      pl.col("customer_id_t").alias("customer_id"),
      pl.col("product_id_t").alias("product_id"),
      pl.col("quantity_t").alias("quantity"),
      pl.col("unit_price_t").alias("unit_price"),
      pl.col("order_ts_t").alias("order_ts"),
      "country",
      "status",
      pl.col("updated_at_t").alias("updated_at"),
    ).sort("updated_at", true, true).unique({ subset: ["order_id"], keep: "first" })
      .withColumns(pl.col("quantity").mul(pl.col("unit_price")).alias("amount"))
      .collectSync();
    const daily = orders.lazy().groupBy([
      pl.col("order_ts").dt.strftime("%Y-%m-%d").alias("day"),
      "country",
    ])
      .agg(pl.len().alias("orders"), pl.col("amount").sum().alias("revenue")).collectSync();
    const clv = orders.lazy().join(customers.lazy().select("customer_id", "email", "country"), {
      on: "customer_id",
      suffix: "_c",
    }).groupBy(["customer_id", "email", "country_c"]).agg(
      pl.len().alias("orders"),
      pl.col("amount").sum().alias("revenue"),
      pl.col("order_ts").min().alias("first_order"),
      pl.col("order_ts").max().alias("last_order"),
    ).collectSync();
    const top = orders.lazy().join(products.lazy().select("product_id", "name", "category"), {
      on: "product_id",
    }).groupBy(["product_id", "name", "category"]).agg(
      pl.col("quantity").sum().alias("units"),
      pl.col("amount").sum().alias("revenue"),
    ).withColumns(pl.col("revenue").rank("min", true).alias("rank"))
      .filter(pl.col("rank").ltEq(100)).collectSync();
    out = { customers, orders, quarantine, daily, clv, top };
  };
  const check = () => ({
    silver: out.orders.height,
    quarantined: out.quarantine.height,
    customers: out.customers.height,
    daily: out.daily.height,
    revenue: out.daily.getColumn("revenue").sum(),
    clv: out.clv.height,
    clvRevenue: out.clv.getColumn("revenue").sum(),
    top: out.top.height,
  });
  return { load, transform, check, close: () => {} };
}

// ---------------------------------------------------------------- arquero
async function arquero() {
  const aq = await import("arquero");
  const { op } = aq;
  const text = (f) => readFileSync(f, "utf8");
  const read = (name) => {
    const tables = files(name).map((f) => aq.fromCSV(text(f), { autoType: false }));
    return tables.length === 1 ? tables[0] : tables[0].concat(...tables.slice(1));
  };
  const t0 = now();
  const b = { customers: read("customers"), products: read("products"), orders: read("orders") };
  const load = now() - t0;
  let out;
  const transform = () => {
    // Typing with arquero's parsers: a value that does not parse gives NaN or an invalid date.
    const customers = b.customers.derive({
      customer_id_t: (d) => op.parse_int(d.customer_id, 10),
      signup_t: (d) => op.parse_date(d.signup_date),
      updated_t: (d) => op.parse_date(d.updated_at),
    }).filter((d) =>
      !op.is_nan(d.customer_id_t) && d.customer_id_t != null &&
      (d.signup_date == null || !op.is_nan(+d.signup_t)) &&
      (d.updated_at == null || !op.is_nan(+d.updated_t))
    ).derive({
      email: (d) => d.email == null || op.trim(d.email) === "" ? null : op.lower(op.trim(d.email)),
      country: (d) => op.upper(op.trim(d.country)),
      updated_ms: (d) => d.updated_at == null ? -Infinity : +d.updated_t,
    }).orderby(aq.desc("updated_ms")).dedupe("customer_id_t")
      .select({ customer_id_t: "customer_id", email: "email", country: "country" });
    const products = b.products.derive({
      product_id_t: (d) => op.parse_int(d.product_id, 10),
      unit_price_t: (d) => op.parse_float(d.unit_price),
    }).filter((d) => !op.is_nan(d.product_id_t) && d.product_id_t != null)
      .select({ product_id_t: "product_id", name: "name", category: "category" });
    const typed = b.orders.derive({
      order_id_t: (d) => op.parse_int(d.order_id, 10),
      customer_id_t: (d) => op.parse_int(d.customer_id, 10),
      product_id_t: (d) => op.parse_int(d.product_id, 10),
      quantity_t: (d) => op.parse_int(d.quantity, 10),
      unit_price_t: (d) => op.parse_float(d.unit_price),
      order_ts_t: (d) => +op.parse_date(d.order_ts + "Z"),
      updated_t: (d) => +op.parse_date(d.updated_at + "Z"),
    }).derive({
      bad: (d) =>
        op.is_nan(d.order_id_t) || d.order_id == null ||
        (d.customer_id != null && op.is_nan(d.customer_id_t)) ||
        (d.product_id != null && op.is_nan(d.product_id_t)) ||
        (d.quantity != null && op.is_nan(d.quantity_t)) ||
        (d.unit_price != null && op.is_nan(d.unit_price_t)) ||
        (d.order_ts != null && op.is_nan(d.order_ts_t)) ||
        (d.updated_at != null && op.is_nan(d.updated_t)) ||
        d.quantity_t <= 0,
    });
    const quarantine = typed.filter((d) => d.bad);
    const orders = typed.filter((d) => !d.bad)
      .orderby(aq.desc("updated_t")).dedupe("order_id_t")
      .derive({
        country: (d) => op.upper(op.trim(d.country)),
        status: (d) => op.lower(op.trim(d.status)),
        amount: (d) => d.quantity_t * d.unit_price_t,
        day: (d) => op.slice(d.order_ts, 0, 10),
      });
    const daily = orders.groupby("day", "country").rollup({
      orders: op.count(),
      revenue: op.sum("amount"),
    });
    const clv = orders.join(customers, ["customer_id_t", "customer_id"]).groupby(
      "customer_id_t",
      "email",
      "country_2",
    ).rollup({
      orders: op.count(),
      revenue: op.sum("amount"),
      first_order: op.min("order_ts_t"),
      last_order: op.max("order_ts_t"),
    });
    const top = orders.join(products, ["product_id_t", "product_id"]).groupby(
      "product_id_t",
      "name",
      "category",
    ).rollup({ units: op.sum("quantity_t"), revenue: op.sum("amount") })
      .orderby(aq.desc("revenue")).derive({ rank: () => op.rank() })
      .filter((d) => d.rank <= 100);
    out = { customers, orders, quarantine, daily, clv, top };
  };
  const sum = (t, c) => t.rollup({ s: op.sum(c) }).get("s", 0);
  const check = () => ({
    silver: out.orders.numRows(),
    quarantined: out.quarantine.numRows(),
    customers: out.customers.numRows(),
    daily: out.daily.numRows(),
    revenue: sum(out.daily, "revenue"),
    clv: out.clv.numRows(),
    clvRevenue: sum(out.clv, "revenue"),
    top: out.top.numRows(),
  });
  return { load, transform, check, close: () => {} };
}

const TOOLS = { duckdb, polars, arquero };
const results = {};
for (const name of values.tools.split(",")) {
  const tool = await TOOLS[name]();
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = now();
    await tool.transform();
    times.push(now() - t0);
  }
  const check = await tool.check();
  tool.close();
  results[name] = {
    load_seconds: +tool.load.toFixed(3),
    transform_seconds: times.map((t) => +t.toFixed(3)),
    median_seconds: +median(times).toFixed(3),
    check,
  };
  console.error(
    `${name}: load ${tool.load.toFixed(2)} s, silver+gold ${median(times).toFixed(2)} s`,
  );
}
const ref = Object.values(results)[0].check;
let same = true;
for (const [name, r] of Object.entries(results)) {
  for (const k of ["silver", "quarantined", "customers", "daily", "clv", "top"]) {
    if (r.check[k] !== ref[k]) {
      same = false;
      console.error(`${name}: ${k} = ${r.check[k]}, first tool has ${ref[k]}`);
    }
  }
  for (const k of ["revenue", "clvRevenue"]) {
    if (Math.abs(r.check[k] - ref[k]) > 1e-6 * Math.abs(ref[k]) + 1) {
      same = false;
      console.error(`${name}: ${k} = ${r.check[k]}, first tool has ${ref[k]}`);
    }
  }
}
console.log(JSON.stringify(
  {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.availableParallelism(),
    threads: Number(values.threads),
    data: values.data,
    versions: {
      duckdb: JSON.parse(
        readFileSync(new URL("./node_modules/@duckdb/node-api/package.json", import.meta.url)),
      ).version,
      polars: JSON.parse(
        readFileSync(new URL("./node_modules/nodejs-polars/package.json", import.meta.url)),
      ).version,
      arquero:
        JSON.parse(readFileSync(new URL("./node_modules/arquero/package.json", import.meta.url)))
          .version,
    },
    same_results: same,
    results,
  },
  null,
  2,
));
process.exit(same ? 0 : 1);
