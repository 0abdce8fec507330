/**
 * The yardstick of the batch benchmark: the e-commerce example's medallion
 * work written by hand as plain DuckDB SQL and run through
 * `@duckdb/node-api` in one process, into a DuckDB file. No Sluice code runs
 * here (on purpose this talks to DuckDB directly, not through
 * `core/engine.ts`): it is the floor for what the same work costs on the same
 * engine.
 *
 * The work, on an empty database, with the example's `threads` and
 * `memory_limit`:
 *
 * - bronze: every landing CSV read as text, with `_run_id`, `_ingested_at`
 *   and `_source_file` (no per-file row number: plain SQL gets none cheaply);
 * - silver: each column typed with `TRY_CAST` and normalised as the example
 *   says, rows that fail a cast, a NOT NULL or the `quantity > 0` rule go to
 *   `<table>__quarantine` with a reason and the raw row as JSON, the rest are
 *   deduplicated (latest `updated_at` per key wins);
 * - gold: the example's three models, with the example's SQL text;
 * - output: each gold table written as zstd Parquet (daily revenue
 *   partitioned by country).
 *
 *   deno run --allow-ffi=./node_modules --allow-read --allow-write bench/baseline_sql.ts \
 *     --data bench/data/demo_s42_n1000000 --work /tmp/baseline --spec /tmp/baseline_spec.json
 *
 * (`bench/run.ts` writes the spec: the example's engine settings and gold SQL.)
 *
 * Prints one JSON line: the seconds each step took and the row counts.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";

/**
 * What the baseline takes from the example config (written by `bench/run.ts`
 * with `writeBaselineSpec`, so this process loads no YAML or zod).
 *
 * @example
 * ```ts ignore
 * const spec: BaselineSpec = { threads: 2, memory_limit: "2GB", gold: [["m", "select 1"]] };
 * ```
 */
export interface BaselineSpec {
  /** `engine.threads` of the example. */
  threads?: number;
  /** `engine.memory_limit` of the example (or the benchmark's override). */
  memory_limit?: string;
  /** Gold models, name and SQL, in file order. */
  gold: [string, string][];
}

/** A typed silver column of the hand-written baseline. */
export interface Col {
  /** Target name. */
  name: string;
  /** DuckDB type. */
  type: string;
  /** Expression over the bronze row before the cast (default the column itself). */
  expr?: string;
  /** True when NULL sends the row to quarantine. */
  notNull?: boolean;
}

/**
 * One silver table of the baseline.
 *
 * @example
 * ```ts ignore
 * const spec: SilverSpec = { from: "t", raw: ["a"], cols: [{ name: "a", type: "INTEGER" }] };
 * ```
 */
export interface SilverSpec {
  /** Bronze table read. */
  from: string;
  /** Raw bronze columns (kept as JSON for quarantined rows). */
  raw: string[];
  /** Typed columns. */
  cols: Col[];
  /** Dedup key (latest `updated_at` wins), if any. */
  key?: string;
  /** Row rules: name and SQL over the typed columns. */
  rules?: [string, string][];
}

const SILVER: Record<string, SilverSpec> = {
  customers: {
    from: "customers",
    raw: ["customer_id", "name", "email", "country", "signup_date", "updated_at"],
    key: "customer_id",
    cols: [
      { name: "customer_id", type: "BIGINT", notNull: true },
      { name: "name", type: "VARCHAR" },
      { name: "email", type: "VARCHAR", expr: "nullif(lower(trim(email)), '')" },
      { name: "country", type: "VARCHAR", expr: "upper(trim(country))" },
      { name: "signup_date", type: "DATE" },
      { name: "updated_at", type: "TIMESTAMP" },
    ],
  },
  products: {
    from: "products",
    raw: ["product_id", "name", "category", "unit_price"],
    cols: [
      { name: "product_id", type: "BIGINT", notNull: true },
      { name: "name", type: "VARCHAR" },
      { name: "category", type: "VARCHAR" },
      { name: "unit_price", type: "DECIMAL(12,2)" },
    ],
  },
  orders: {
    from: "orders",
    raw: [
      "order_id",
      "customer_id",
      "product_id",
      "quantity",
      "unit_price",
      "order_ts",
      "country",
      "status",
      "updated_at",
    ],
    key: "order_id",
    cols: [
      { name: "order_id", type: "BIGINT", notNull: true },
      { name: "customer_id", type: "BIGINT" },
      { name: "product_id", type: "BIGINT" },
      { name: "quantity", type: "INTEGER" },
      { name: "unit_price", type: "DECIMAL(12,2)" },
      { name: "order_ts", type: "TIMESTAMP" },
      { name: "country", type: "VARCHAR", expr: "upper(trim(country))" },
      { name: "status", type: "VARCHAR", expr: "lower(trim(status))" },
      { name: "updated_at", type: "TIMESTAMP" },
    ],
    rules: [["positive_quantity", "quantity > 0"]],
  },
};

const q = (s: string) => `'${s.replaceAll("'", "''")}'`;

/**
 * The staging SELECT of one silver table: typed columns, reason, payload of bad rows.
 *
 * @example
 * ```ts ignore
 * const sql = stageSql({ from: "t", raw: ["a"], cols: [{ name: "a", type: "INTEGER" }] });
 * ```
 */
export function stageSql(spec: SilverSpec): string {
  const typed = spec.cols.map((c) => `TRY_CAST(${c.expr ?? c.name} AS ${c.type}) AS ${c.name}`);
  const reasons: string[] = [];
  for (const c of spec.cols) {
    const raw = c.expr ?? c.name;
    if (c.notNull) reasons.push(`CASE WHEN (${raw}) IS NULL THEN '${c.name}: is null' END`);
    reasons.push(
      `CASE WHEN (${raw}) IS NOT NULL AND TRY_CAST(${raw} AS ${c.type}) IS NULL ` +
        `THEN '${c.name}: cannot cast ' || left(CAST(${raw} AS VARCHAR), 200) || ' to ${c.type}' END`,
    );
  }
  const payload = `CAST(json_object(${
    spec.raw.map((r) => `'${r}', "raw_${r}"`).join(", ")
  }) AS VARCHAR)`;
  const inner = `SELECT ${typed.join(", ")}, ${
    spec.raw.map((r) => `"${r}" AS "raw_${r}"`).join(", ")
  },
      _source_file, NULLIF(concat_ws('; ', ${reasons.join(", ")}), '') AS _cast_reason
    FROM bronze.${spec.from}`;
  const rules = (spec.rules ?? []).map(([name, sql]) =>
    `CASE WHEN (${sql}) = false THEN 'rule ${name} failed' END`
  );
  const cols = spec.cols.map((c) => c.name).join(", ");
  const reason = rules.length
    ? `NULLIF(concat_ws('; ', _cast_reason, ${rules.join(", ")}), '')`
    : "_cast_reason";
  return `SELECT ${cols}, _source_file, ${reason} AS _reason,
      CASE WHEN ${reason} IS NOT NULL THEN ${payload} END AS _payload
    FROM (${inner})`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      data: { type: "string" },
      work: { type: "string" },
      spec: { type: "string" },
    },
  });
  if (!values.data || !values.work || !values.spec) {
    console.error("usage: baseline_sql.ts --data DIR --work DIR --spec FILE.json");
    Deno.exit(2);
  }
  const spec = JSON.parse(await Deno.readTextFile(values.spec)) as BaselineSpec;
  const data = resolve(values.data);
  const work = resolve(values.work);
  await Deno.mkdir(join(work, "tmp"), { recursive: true });
  const settings: Record<string, string> = { temp_directory: join(work, "tmp") };
  if (spec.threads) settings.threads = String(spec.threads);
  if (spec.memory_limit) settings.memory_limit = spec.memory_limit;
  const t0 = performance.now();
  const instance = await DuckDBInstance.create(join(work, "baseline.duckdb"), settings);
  const conn = await instance.connect();
  const steps: Record<string, number> = {};
  const stepsCpu: Record<string, number> = {};
  const counts: Record<string, number> = {};
  const step = async (name: string, sqls: string[]) => {
    const s0 = performance.now();
    const c0 = process.cpuUsage();
    for (const sql of sqls) await conn.run(sql);
    const c = process.cpuUsage(c0);
    steps[name] = (steps[name] ?? 0) + (performance.now() - s0) / 1000;
    stepsCpu[name] = (stepsCpu[name] ?? 0) + (c.user + c.system) / 1e6;
  };
  const runId = crypto.randomUUID();
  await step("setup", [
    "CREATE SCHEMA bronze",
    "CREATE SCHEMA silver",
    "CREATE SCHEMA gold",
    "SET search_path = 'gold,silver'",
  ]);

  for (const source of ["customers", "products", "orders"]) {
    await step("bronze", [
      `CREATE TABLE bronze.${source} AS
       SELECT * EXCLUDE (filename), ${q(runId)} AS _run_id, now() AS _ingested_at,
         filename AS _source_file
       FROM read_csv(${q(join(data, "landing", source, "*.csv"))}, all_varchar = true,
         filename = true)`,
    ]);
  }

  for (const [name, spec] of Object.entries(SILVER)) {
    const cols = spec.cols.map((c) => c.name).join(", ");
    const good = spec.key
      ? `SELECT ${cols} FROM _stage WHERE _reason IS NULL
         QUALIFY row_number() OVER (PARTITION BY ${spec.key}
           ORDER BY updated_at DESC NULLS LAST, _source_file DESC) = 1`
      : `SELECT ${cols} FROM _stage WHERE _reason IS NULL`;
    await step("silver", [
      `CREATE OR REPLACE TEMP TABLE _stage AS ${stageSql(spec)}`,
      `CREATE TABLE silver.${name}__quarantine AS
       SELECT ${q(runId)} AS _run_id, ${q(name)} AS _table, _reason, _payload, _source_file,
         now() AS _quarantined_at
       FROM _stage WHERE _reason IS NOT NULL`,
      `CREATE TABLE silver.${name} AS ${good}`,
      "DROP TABLE _stage",
    ]);
  }

  for (const [name, sql] of spec.gold) {
    await step("gold", [`CREATE TABLE gold.${name} AS ${sql}`]);
  }

  const out = join(work, "output");
  await Deno.mkdir(out, { recursive: true });
  for (const [name] of spec.gold) {
    const partitioned = name === "daily_revenue_by_country";
    const target = partitioned ? join(out, name) : join(out, `${name}.parquet`);
    await step("output", [
      `COPY gold.${name} TO ${q(target)} (FORMAT parquet, COMPRESSION zstd${
        partitioned ? ", PARTITION_BY (country)" : ""
      })`,
    ]);
  }
  await step("checkpoint", ["CHECKPOINT"]);

  for (const t of ["bronze.orders", "silver.orders", "silver.orders__quarantine"]) {
    const reader = await conn.runAndReadAll(`SELECT count(*)::DOUBLE AS n FROM ${t}`);
    counts[t] = Number(reader.getRows()[0][0]);
  }
  conn.closeSync();
  instance.closeSync();
  const total = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ total, steps, steps_cpu: stepsCpu, counts }));
}

if (import.meta.main) await main();
