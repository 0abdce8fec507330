/**
 * The yardstick of the shape pairs (`parquet_star`, `wide_ndjson`,
 * `many_files`, see `bench/_shapes.ts`): the shape's medallion work as
 * hand-written DuckDB SQL through `@duckdb/node-api`, in one process, into a
 * DuckDB file, with the same engine settings as the Sluice project (2
 * threads, 2GB). Bronze reads every landing file with `_run_id`,
 * `_ingested_at` and `_source_file` (CSV and NDJSON as text, Parquet with its
 * types); silver types, quarantines (reason and raw row as JSON) and keeps
 * the rest; gold runs the shape's models; output writes zstd Parquet.
 *
 *   deno run --allow-ffi=./node_modules --allow-read --allow-write bench/baseline_shapes.ts \
 *     --shape parquet_star --data DIR --work DIR
 *
 * Prints one JSON line: seconds per step and the counted tables' rows.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { stageSql } from "./baseline_sql.ts";
import { type ShapeName, SHAPES, shapeSpec } from "./_shapes.ts";

const q = (s: string) => `'${s.replaceAll("'", "''")}'`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { shape: { type: "string" }, data: { type: "string" }, work: { type: "string" } },
  });
  const shape = values.shape as ShapeName;
  if (!SHAPES.includes(shape) || !values.data || !values.work) {
    console.error(`usage: baseline_shapes.ts --shape ${SHAPES.join("|")} --data DIR --work DIR`);
    Deno.exit(2);
  }
  const spec = shapeSpec(shape);
  const data = resolve(values.data);
  const work = resolve(values.work);
  await Deno.mkdir(join(work, "tmp"), { recursive: true });
  const t0 = performance.now();
  const instance = await DuckDBInstance.create(join(work, "baseline.duckdb"), {
    threads: "2",
    memory_limit: "2GB",
    temp_directory: join(work, "tmp"),
  });
  const conn = await instance.connect();
  const steps: Record<string, number> = {};
  const step = async (name: string, sqls: string[]) => {
    const s0 = performance.now();
    for (const sql of sqls) await conn.run(sql);
    steps[name] = (steps[name] ?? 0) + (performance.now() - s0) / 1000;
  };
  const runId = crypto.randomUUID();
  await step("setup", [
    "CREATE SCHEMA bronze",
    "CREATE SCHEMA silver",
    "CREATE SCHEMA gold",
    "SET search_path = 'gold,silver'",
  ]);
  for (const s of spec.sources) {
    await step("bronze", [
      `CREATE TABLE bronze.${s.name} AS
       SELECT * EXCLUDE (filename), ${q(runId)} AS _run_id, now() AS _ingested_at,
         filename AS _source_file
       FROM ${s.reader(join(data, "landing", s.name))}`,
    ]);
  }
  for (const [name, t] of Object.entries(spec.silver)) {
    const cols = t.cols.map((c) => `"${c.name}"`).join(", ");
    await step("silver", [
      `CREATE OR REPLACE TEMP TABLE _stage AS ${
        stageSql({
          from: name,
          raw: t.raw,
          cols: t.cols.map((c) => ({ ...c, name: `"${c.name}"` })),
          rules: t.rules,
        })
      }`,
      `CREATE TABLE silver.${name}__quarantine AS
       SELECT ${q(runId)} AS _run_id, ${q(name)} AS _table, _reason, _payload, _source_file,
         now() AS _quarantined_at
       FROM _stage WHERE _reason IS NOT NULL`,
      `CREATE TABLE silver.${name} AS SELECT ${cols} FROM _stage WHERE _reason IS NULL`,
      "DROP TABLE _stage",
    ]);
  }
  for (const g of spec.gold) await step("gold", [`CREATE TABLE gold.${g.name} AS ${g.sql}`]);
  const out = join(work, "output");
  await Deno.mkdir(out, { recursive: true });
  for (const g of spec.gold) {
    const target = g.partitionBy ? join(out, g.name) : join(out, `${g.name}.parquet`);
    await step("output", [
      `COPY gold.${g.name} TO ${q(target)} (FORMAT parquet, COMPRESSION zstd${
        g.partitionBy ? `, PARTITION_BY (${g.partitionBy})` : ""
      })`,
    ]);
  }
  await step("checkpoint", ["CHECKPOINT"]);
  const counts: Record<string, number> = {};
  for (const t of [...spec.counted, ...spec.gold.map((g) => `gold.${g.name}`)]) {
    const reader = await conn.runAndReadAll(`SELECT count(*)::DOUBLE AS n FROM ${t}`);
    counts[t] = Number(reader.getRows()[0][0]);
  }
  conn.closeSync();
  instance.closeSync();
  console.log(JSON.stringify({ total: (performance.now() - t0) / 1000, steps, counts }));
}

if (import.meta.main) await main();
