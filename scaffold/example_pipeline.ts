/**
 * The e-commerce example config, embedded as a string, so `sluice demo` (and
 * a compiled binary) needs no file reads. It is the one source of the
 * example: `examples/ecommerce/pipeline.yaml` is its copy for users to read
 * and start from, and `tests/generate_test.ts` fails when the two differ.
 *
 * @module
 */

/**
 * Text of the e-commerce example `pipeline.yaml` (also in
 * `examples/ecommerce/pipeline.yaml`).
 *
 * @example
 * ```ts
 * import { ECOMMERCE_PIPELINE_YAML } from "./example_pipeline.ts";
 * await Deno.writeTextFile("./demo/pipeline.yaml", ECOMMERCE_PIPELINE_YAML);
 * ```
 */
export const ECOMMERCE_PIPELINE_YAML: string =
  `# Sluice example: an e-commerce shop's daily exports, cleaned and modelled.
#
# \`sluice demo\` writes landing files with \`generateDemoData\` and copies this
# file next to them, so every relative path below resolves inside the demo
# folder. Paths are relative to this file.
#
#   landing/customers/customers.csv   one export of the customer table
#   landing/products/products.csv     the product catalogue
#   landing/orders/orders_0001.csv    order batches; rows may repeat across files
#
# Layers: bronze = raw rows as text, silver = typed, cleaned and deduplicated,
# gold = SQL models over silver, output = published Parquet.
#
# Data quality: every table is profiled each run, and the checks below run on
# the staged tables before anything is published. A failed \`error\` check
# rolls the run back and exits 3; a failed \`warn\` check is only reported.

pipeline: ecommerce

# Database, published tables and spill files live here.
lake: ./lake

engine:
  threads: 2
  memory_limit: 2GB

sources:
  customers:
    format: csv
    path: ./landing/customers
    glob: "*.csv"
  products:
    format: csv
    path: ./landing/products
    glob: "*.csv"
  orders:
    format: csv
    path: ./landing/orders
    glob: "orders_*.csv"
    # A re-sent batch with the same name is loaded again.
    on_change: reingest
    # Bronze checks see the rows this run landed. About 0.25% of raw
    # timestamps are garbage ("not a date"); silver quarantines them.
    checks:
      - regex: { column: order_ts, pattern: "^[0-9]{4}-[0-9]{2}-[0-9]{2}", threshold: "1%" }

silver:
  customers:
    from: customers
    # Upsert by customer_id; the row with the latest updated_at wins.
    key: [customer_id]
    order_by: updated_at
    mode: merge
    columns:
      customer_id: { type: BIGINT, nullable: false }
      name: { type: VARCHAR }
      # Emails arrive with stray spaces and capitals; empty means unknown.
      email: { type: VARCHAR, expr: "nullif(lower(trim(email)), '')" }
      # ISO-2 codes arrive as "de", "De", " DE ".
      country: { type: VARCHAR, expr: "upper(trim(country))" }
      signup_date: { type: DATE }
      updated_at: { type: TIMESTAMP }
    checks:
      - unique: { column: customer_id }
      # About 2% of customers have no email: worth a warning, not a stop.
      - not_null: { column: email, severity: warn }
      - null_ratio: { column: email, max: 0.05 }
      - regex: { column: country, pattern: "^[A-Z]{2}$" }

  products:
    from: products
    # The catalogue is a full export: replace it every run.
    mode: replace
    columns:
      product_id: { type: BIGINT, nullable: false }
      name: { type: VARCHAR }
      category: { type: VARCHAR }
      unit_price: { type: "DECIMAL(12,2)" }
    checks:
      - unique: { column: product_id }
      - range: { column: unit_price, min: 0, min_inclusive: false }

  orders:
    from: orders
    # An order appears again when it is re-sent or updated (new status);
    # keep the latest version of each order_id.
    key: [order_id]
    order_by: updated_at
    mode: merge
    columns:
      order_id: { type: BIGINT, nullable: false }
      customer_id: { type: BIGINT }
      product_id: { type: BIGINT }
      # "two" fails the cast and goes to quarantine.
      quantity: { type: INTEGER }
      unit_price: { type: "DECIMAL(12,2)" }
      # "2024-13-45" and "not a date" fail the cast and go to quarantine.
      order_ts: { type: TIMESTAMP }
      country: { type: VARCHAR, expr: "upper(trim(country))" }
      status: { type: VARCHAR, expr: "lower(trim(status))" }
      updated_at: { type: TIMESTAMP }
    rules:
      # Negative quantities are returns booked wrongly upstream.
      - name: positive_quantity
        sql: quantity > 0
    checks:
      - unique: { column: order_id }
      - accepted_values:
          column: status
          values: [completed, shipped, pending, cancelled, returned]
      # About 0.5% of orders name customers the export does not have yet.
      - relationships: { column: customer_id, to: customers, severity: warn }
      - relationships: { column: product_id, to: products }
      - range: { column: quantity, min: 1, max: 1000 }
      - row_count: { name: orders_present, min: 1 }
      - row_count: { name: orders_growth, max_change_pct: 50, severity: warn }
      # The demo's orders end on 2026-06-30, so later runs warn here.
      - freshness: { column: order_ts, max_age: 2d, severity: warn }
      - expression: { name: positive_line_total, sql: "quantity * unit_price > 0" }
      # Null share of customer_id against the median of the last 7 good runs.
      - drift: { metric: null_ratio, column: customer_id, max_delta: 0.01, severity: warn }
    # Checks on the rows this run sent to silver.orders__quarantine.
    quarantine_checks:
      - accepted_values:
          column: _reason_code
          values: [cast_failed, null_violation, rule_failed]

gold:
  daily_revenue_by_country:
    description: Orders and revenue per day and shipping country.
    # Recomputed each run only for the days this run's orders touched.
    materialized: incremental
    partition_by: date
    sql: |
      select
        cast(order_ts as date) as date,
        country,
        count(*) as orders,
        sum(quantity * unit_price) as revenue
      from orders
      group by all
      order by date, country
    checks:
      - unique: { columns: [date, country] }
      - range: { column: revenue, min: 0 }

  customer_lifetime_value:
    description: Orders, revenue and first/last order of every known customer.
    # Recomputed only for customers whose orders or customer row changed.
    materialized: incremental
    unique_key: customer_id
    sql: |
      select
        customer_id,
        c.email,
        c.country,
        count(*) as orders,
        sum(o.quantity * o.unit_price) as revenue,
        min(o.order_ts) as first_order,
        max(o.order_ts) as last_order
      from orders o
      join customers c using (customer_id)
      group by all
      order by revenue desc, customer_id
    checks:
      - unique: { column: customer_id }

  top_products:
    description: The 100 products with the most revenue.
    sql: |
      select
        product_id,
        p.name,
        p.category,
        sum(o.quantity) as units,
        sum(o.quantity * o.unit_price) as revenue,
        rank() over (order by sum(o.quantity * o.unit_price) desc) as rank
      from orders o
      join products p using (product_id)
      group by product_id, p.name, p.category
      qualify rank <= 100
      order by rank, product_id
    checks:
      - row_count: { min: 1, max: 200 }

output:
  tables:
    # One folder per country: country=DE/, country=US/, ...
    daily_revenue_by_country:
      partition_by: [country]
    customer_lifetime_value: {}
    top_products: {}

quality:
  # Failing rows kept per failing check in _sluice.check_failures.
  sample_size: 5
  # Keep the quarantined rows of the last 30 runs.
  quarantine_retention: { runs: 30 }
`;
