/**
 * Workload shapes the e-commerce example does not have, for `deno task
 * bench` (issue 14, "Speed on shapes the bench does not have"). Each shape
 * has generated data (deterministic, made by DuckDB or TypeScript from a
 * seed, no downloads), a Sluice project and the same work as hand-written
 * DuckDB SQL for `bench/baseline_shapes.ts`:
 *
 * - `parquet_star`: a native-typed Parquet fact table (`trip_id` BIGINT,
 *   `zone_id` INTEGER, `pickup_at` TIMESTAMP, `fare` DOUBLE, `payment`
 *   VARCHAR; 3M rows at factor 1) and a CSV dimension of 3,400 zones; typed
 *   silver with two rules, a join gold model, output partitioned by borough.
 * - `wide_ndjson`: 50 top-level keys (numbers, strings, booleans, a nested
 *   object, arrays) in 4 NDJSON files (100k records at factor 1); silver
 *   types 50 columns, two of them taken out of the nested object.
 * - `many_files`: 2,000 CSV files of 50 rows (at factor 1); typed silver
 *   with a rule, a grouped gold model.
 *
 * This module loads no Sluice code (the baseline imports it).
 *
 * @module
 */
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";

/** Names of the shape pairs. */
export const SHAPES = ["parquet_star", "wide_ndjson", "many_files"] as const;

/** One shape pair's name. */
export type ShapeName = (typeof SHAPES)[number];

/** Sizes of one shape's data. */
export interface ShapeSize {
  /** Rows of the fact table (parquet_star, wide_ndjson) or rows per file (many_files). */
  rows: number;
  /** Files (wide_ndjson, many_files). */
  files: number;
  /** Rows of the dimension (parquet_star). */
  dimRows: number;
}

/** The sizes of `shape` at `factor` (1 = the bench's default). */
export function shapeSize(shape: ShapeName, factor: number): ShapeSize {
  const n = (x: number, min: number) => Math.max(min, Math.round(x * factor));
  if (shape === "parquet_star") return { rows: n(3_000_000, 100), files: 1, dimRows: 3_400 };
  if (shape === "wide_ndjson") return { rows: n(100_000, 50), files: 4, dimRows: 0 };
  return { rows: 50, files: n(2_000, 5), dimRows: 0 };
}

/** A typed silver column of a baseline (as in `bench/baseline_sql.ts`). */
export interface ShapeCol {
  /** Target name. */
  name: string;
  /** DuckDB type. */
  type: string;
  /** Expression over the bronze row (default the column itself). */
  expr?: string;
  /** True when NULL sends the row to quarantine. */
  notNull?: boolean;
}

/** A silver table of a shape's baseline. */
export interface ShapeSilver {
  /** Bronze columns (kept as JSON for quarantined rows). */
  raw: string[];
  /** Typed columns. */
  cols: ShapeCol[];
  /** Row rules: name and SQL over typed columns. */
  rules?: [string, string][];
}

/** What a shape's Sluice project and baseline both do. */
export interface ShapeSpec {
  /** Sources: name, format, glob, reader of the baseline (over `{dir}`). */
  sources: { name: string; format: string; glob: string; reader: (dir: string) => string }[];
  /** Silver tables, by name (each from the bronze source of the same name). */
  silver: Record<string, ShapeSilver>;
  /** Gold models: name, SQL, output partition column. */
  gold: { name: string; sql: string; partitionBy?: string }[];
  /** Tables whose row counts must match between the two sides. */
  counted: string[];
}

const q = (s: string) => `'${s.replaceAll("'", "''")}'`;

const WIDE_NUMBERS = Array.from({ length: 20 }, (_, i) => `n${String(i + 1).padStart(2, "0")}`);
const WIDE_STRINGS = Array.from({ length: 20 }, (_, i) => `s${String(i + 1).padStart(2, "0")}`);
const WIDE_FLAGS = ["f01", "f02", "f03", "f04"];
/** The 50 top-level keys of a wide record. */
const WIDE_KEYS = [
  "id",
  "ts",
  ...WIDE_NUMBERS,
  ...WIDE_STRINGS,
  ...WIDE_FLAGS,
  "user",
  "tags",
  "items",
  "device",
];

/**
 * The spec of `shape`: sources, silver, gold and the counted tables.
 *
 * @example
 * ```ts ignore
 * const spec = shapeSpec("parquet_star");
 * ```
 */
export function shapeSpec(shape: ShapeName): ShapeSpec {
  if (shape === "parquet_star") {
    return {
      sources: [
        {
          name: "trips",
          format: "parquet",
          glob: "*.parquet",
          reader: (d) => `read_parquet(${q(join(d, "*.parquet"))}, filename = true)`,
        },
        {
          name: "zones",
          format: "csv",
          glob: "*.csv",
          reader: (d) => `read_csv(${q(join(d, "*.csv"))}, all_varchar = true, filename = true)`,
        },
      ],
      silver: {
        trips: {
          raw: ["trip_id", "zone_id", "pickup_at", "fare", "payment"],
          cols: [
            { name: "trip_id", type: "BIGINT", notNull: true },
            { name: "zone_id", type: "INTEGER" },
            { name: "pickup_at", type: "TIMESTAMP" },
            { name: "fare", type: "DOUBLE" },
            { name: "payment", type: "VARCHAR" },
          ],
          rules: [
            ["fare_not_negative", "fare >= 0"],
            ["known_payment", "payment IN ('card', 'cash', 'voucher')"],
          ],
        },
        zones: {
          raw: ["zone_id", "borough", "zone"],
          cols: [
            { name: "zone_id", type: "INTEGER", notNull: true },
            { name: "borough", type: "VARCHAR" },
            { name: "zone", type: "VARCHAR" },
          ],
        },
      },
      gold: [{
        name: "daily_fares_by_borough",
        sql: `select z.borough, cast(t.pickup_at as date) as day, count(*) as trips,
  sum(t.fare) as fares
from trips t join zones z using (zone_id)
group by all`,
        partitionBy: "borough",
      }],
      counted: ["bronze.trips", "silver.trips", "silver.trips__quarantine", "silver.zones"],
    };
  }
  if (shape === "wide_ndjson") {
    const cols: ShapeCol[] = [
      { name: "id", type: "BIGINT", notNull: true },
      { name: "ts", type: "TIMESTAMP" },
      ...WIDE_NUMBERS.map((name) => ({ name, type: "DOUBLE" })),
      ...WIDE_STRINGS.map((name) => ({ name, type: "VARCHAR" })),
      ...WIDE_FLAGS.map((name) => ({ name, type: "BOOLEAN" })),
      { name: "user_id", type: "BIGINT", expr: `json_extract_string("user", '$.id')` },
      {
        name: "user_country",
        type: "VARCHAR",
        expr: `json_extract_string("user", '$.geo.country')`,
      },
      { name: "tags", type: "VARCHAR" },
      { name: "items", type: "VARCHAR" },
      { name: "device", type: "VARCHAR" },
    ];
    return {
      sources: [{
        name: "events",
        format: "ndjson",
        glob: "*.ndjson",
        reader: (d) =>
          `read_json(${q(join(d, "*.ndjson"))}, format = 'newline_delimited', columns = {${
            WIDE_KEYS.map((k) => `${q(k)}: 'VARCHAR'`).join(", ")
          }}, filename = true)`,
      }],
      silver: {
        events: { raw: WIDE_KEYS, cols, rules: [["n01_not_negative", "n01 >= 0"]] },
      },
      gold: [{
        name: "events_by_country",
        sql: `select user_country, f01, count(*) as events, sum(n01) as n01, max(ts) as last_ts
from events group by all`,
      }],
      counted: ["bronze.events", "silver.events", "silver.events__quarantine"],
    };
  }
  return {
    sources: [{
      name: "readings",
      format: "csv",
      glob: "*.csv",
      reader: (d) => `read_csv(${q(join(d, "*.csv"))}, all_varchar = true, filename = true)`,
    }],
    silver: {
      readings: {
        raw: ["sensor_id", "read_at", "value", "unit", "status"],
        cols: [
          { name: "sensor_id", type: "INTEGER", notNull: true },
          { name: "read_at", type: "TIMESTAMP" },
          { name: "value", type: "DOUBLE" },
          { name: "unit", type: "VARCHAR" },
          { name: "status", type: "VARCHAR", expr: "lower(trim(status))" },
        ],
        rules: [["plausible_value", "value between -100 and 1000"]],
      },
    },
    gold: [{
      name: "daily_sensor_stats",
      sql: `select sensor_id, cast(read_at as date) as day, count(*) as readings,
  avg(value) as mean_value
from readings group by all`,
    }],
    counted: ["bronze.readings", "silver.readings", "silver.readings__quarantine"],
  };
}

/**
 * Generates `shape`'s landing files under `<dir>/landing/<source>/`,
 * deterministically from `seed`.
 *
 * @example
 * ```ts ignore
 * await generateShape("many_files", "/tmp/d", { size: shapeSize("many_files", 1), seed: 42 });
 * ```
 */
export async function generateShape(
  shape: ShapeName,
  dir: string,
  options: { size: ShapeSize; seed: number },
): Promise<void> {
  const { size, seed } = options;
  const instance = await DuckDBInstance.create(":memory:", { threads: "2" });
  const conn = await instance.connect();
  // h(i, k): a deterministic pseudo-random integer in [0, 1e6) for row i, stream k.
  const h = (k: number) => `(hash(i, ${seed}, ${k}) % 1000000)::BIGINT`;
  try {
    if (shape === "parquet_star") {
      const fact = join(dir, "landing", "trips");
      const dim = join(dir, "landing", "zones");
      await Deno.mkdir(fact, { recursive: true });
      await Deno.mkdir(dim, { recursive: true });
      await conn.run(`COPY (
        SELECT i AS trip_id,
          (1 + ${h(1)} % ${size.dimRows})::INTEGER AS zone_id,
          TIMESTAMP '2026-01-01' + to_microseconds((${h(2)} * 2678400)::BIGINT) AS pickup_at,
          CASE WHEN ${h(3)} < 1000 THEN -1.0 ELSE round(${h(4)} / 10000.0 + 2.5, 2) END AS fare,
          CASE WHEN ${h(5)} < 500 THEN 'unknown' ELSE ['card', 'cash', 'voucher'][1 + ${
        h(6)
      } % 3] END AS payment
        FROM range(${size.rows}) t(i) ORDER BY i
      ) TO ${q(join(fact, "trips.parquet"))} (FORMAT parquet, COMPRESSION zstd)`);
      await conn.run(`COPY (
        SELECT i + 1 AS zone_id,
          ['Manhattan', 'Brooklyn', 'Queens', 'Bronx', 'Staten Island', 'EWR'][1 + ${h(7)} % 6]
            AS borough,
          'zone ' || (i + 1) AS zone
        FROM range(${size.dimRows}) t(i) ORDER BY i
      ) TO ${q(join(dim, "zones.csv"))} (FORMAT csv, HEADER)`);
    } else if (shape === "wide_ndjson") {
      const out = join(dir, "landing", "events");
      await Deno.mkdir(out, { recursive: true });
      const per = Math.ceil(size.rows / size.files);
      const fields = [
        `i AS id`,
        `strftime(TIMESTAMP '2026-03-01' + to_microseconds((${h(1)} * 2592000)::BIGINT),
           '%Y-%m-%dT%H:%M:%S') AS ts`,
        ...WIDE_NUMBERS.map((n, k) =>
          k === 0
            ? `CASE WHEN ${h(2)} < 2000 THEN -1 ELSE ${h(3)} / 100.0 END AS ${n}`
            : `round(${h(10 + k)} / 1000.0, 3) AS ${n}`
        ),
        ...WIDE_STRINGS.map((s, k) => `'v' || (${h(40 + k)} % ${10 ** (1 + (k % 4))}) AS ${s}`),
        ...WIDE_FLAGS.map((f, k) => `${h(70 + k)} % 2 = 0 AS ${f}`),
        `{'id': ${h(80)} % 50000, 'name': 'user ' || (${h(80)} % 50000),
           'geo': {'country': ['DE', 'FR', 'US', 'JP', 'BR'][1 + ${h(81)} % 5],
             'lat': ${h(82)} / 10000.0}} AS "user"`,
        `['t' || (${h(83)} % 7), 't' || (${h(84)} % 11)] AS tags`,
        `[{'sku': ${h(85)} % 900, 'qty': 1 + ${h(86)} % 4}] AS items`,
        `{'os': ['ios', 'android', 'web'][1 + ${h(87)} % 3], 'v': ${h(88)} % 20} AS device`,
      ];
      for (let f = 0; f < size.files; f++) {
        const lo = f * per;
        const hi = Math.min(size.rows, lo + per);
        await conn.run(`COPY (SELECT ${fields.join(", ")} FROM range(${lo}, ${hi}) t(i) ORDER BY i)
          TO ${q(join(out, `events_${String(f + 1).padStart(3, "0")}.ndjson`))}
          (FORMAT json)`);
      }
    } else {
      const out = join(dir, "landing", "readings");
      await Deno.mkdir(out, { recursive: true });
      // Small files from TypeScript: one COPY per file would cost more than the bench.
      const rows = await conn.runAndReadAll(`SELECT i, ${h(1)} AS a, ${h(2)} AS b, ${h(3)} AS c
        FROM range(${size.rows * size.files}) t(i) ORDER BY i`);
      const all = rows.getRows() as unknown as [number | bigint, bigint, bigint, bigint][];
      const statuses = ["ok", " OK", "degraded", "Ok "];
      for (let f = 0; f < size.files; f++) {
        const lines = ["sensor_id,read_at,value,unit,status"];
        for (let r = 0; r < size.rows; r++) {
          const [, a, b, c] = all[f * size.rows + r];
          const na = Number(a), nb = Number(b), nc = Number(c);
          const sec = f * 60 + r;
          const ts = new Date(Date.UTC(2026, 4, 1) + sec * 1000).toISOString().slice(0, 19);
          const value = na < 1000 ? "9999" : (nb / 2000 - 50).toFixed(2);
          lines.push(`${1 + (na % 500)},${ts},${value},C,${statuses[nc % 4]}`);
        }
        await Deno.writeTextFile(
          join(out, `readings_${String(f + 1).padStart(5, "0")}.csv`),
          lines.join("\n") + "\n",
        );
      }
    }
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/**
 * The pipeline YAML of `shape` with its sources in `<dataDir>/landing/` and
 * its lake in `<dir>/lake`, checks and profiling off (as the batch pair).
 *
 * @example
 * ```ts ignore
 * const yaml = shapePipelineYaml("parquet_star", "/data", "/tmp/p");
 * ```
 */
export function shapePipelineYaml(shape: ShapeName, dataDir: string, dir: string): string {
  const spec = shapeSpec(shape);
  const j = JSON.stringify;
  const lines = [
    `pipeline: ${shape}`,
    `lake: ${j(join(dir, "lake"))}`,
    "engine:",
    "  threads: 2",
    "  memory_limit: 2GB",
    "sources:",
  ];
  for (const s of spec.sources) {
    lines.push(
      `  ${s.name}:`,
      `    format: ${s.format}`,
      `    path: ${j(join(dataDir, "landing", s.name))}`,
      `    glob: ${j(s.glob)}`,
      "    allow_outside_project: true",
    );
  }
  lines.push("silver:");
  for (const [name, t] of Object.entries(spec.silver)) {
    lines.push(`  ${name}:`, `    from: ${name}`, "    mode: replace", "    columns:");
    for (const c of t.cols) {
      const parts = [`type: ${j(c.type)}`];
      if (c.notNull) parts.push("nullable: false");
      if (c.expr) parts.push(`expr: ${j(c.expr)}`);
      lines.push(`      ${c.name}: { ${parts.join(", ")} }`);
    }
    if (t.rules?.length) {
      lines.push("    rules:");
      for (const [rn, sql] of t.rules) lines.push(`      - { name: ${rn}, sql: ${j(sql)} }`);
    }
  }
  lines.push("gold:");
  for (const g of spec.gold) {
    lines.push(`  ${g.name}:`, `    sql: ${j(g.sql)}`);
  }
  lines.push("output:", "  tables:");
  for (const g of spec.gold) {
    lines.push(`    ${g.name}: ${g.partitionBy ? `{ partition_by: [${g.partitionBy}] }` : "{}"}`);
  }
  lines.push("quality:", "  checks: false", "  profiling: false", "");
  return lines.join("\n");
}
