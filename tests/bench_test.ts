/**
 * The benchmark compares like with like, and the fast paths it led to keep
 * their guarantees. Timing decides nothing here: these tests prove that
 * each baseline does the same work as Sluice (same rows out), and that the
 * faster bronze numbering, silver ranking and `--version` path give the same
 * results as before.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isVersionOnly } from "../_fast_version.ts";
import { loadConfig } from "../core/config/mod.ts";
import { type Engine, openEngine } from "../core/engine.ts";
import { literal } from "../core/quote.ts";
import { writeBaselineSpec, writeProject } from "../bench/_project.ts";
import { streamData, writeStreamProject } from "../bench/_stream_data.ts";
import {
  generateShape,
  shapePipelineYaml,
  SHAPES,
  shapeSize,
  shapeSpec,
} from "../bench/_shapes.ts";
import { generateDemoData } from "../scaffold/generate.ts";
import { withRun } from "../runtime/with_run.ts";
import { runPipeline } from "../stages/pipeline.ts";
import { runStreamPipeline } from "../streaming/run.ts";
import { makeProject, query, runOnce } from "./_helpers.ts";

const REPO = new URL("..", import.meta.url).pathname;

/** Runs a bench script with `deno run` and returns its last stdout line as JSON. */
async function benchScript(script: string, args: string[]): Promise<Record<string, unknown>> {
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      `--allow-ffi=${join(REPO, "node_modules")}`,
      "--allow-read",
      "--allow-write",
      join(REPO, script),
      ...args,
    ],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(text.split("\n").pop()!);
}

Deno.test("the plain-SQL batch baseline keeps, quarantines and models the same rows as sluice run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_bench_" });
  const data = join(dir, "data");
  await generateDemoData(data, { scale: 5_000, seed: 7 });
  const config = await writeProject({
    dataDir: data,
    dir: join(dir, "sluice"),
    checks: false,
    profiling: false,
  });
  const facts = async (db: Pick<Engine, "one">) => ({
    bronze: (await db.one<{ n: number }>("SELECT count(*) AS n FROM bronze.orders"))?.n,
    silver: (await db.one<{ n: number }>("SELECT count(*) AS n FROM silver.orders"))?.n,
    quarantined: (await db.one<{ n: number }>(
      "SELECT count(*) AS n FROM silver.orders__quarantine",
    ))?.n,
    customers: (await db.one<{ n: number }>("SELECT count(*) AS n FROM silver.customers"))?.n,
    revenue: (await db.one<{ r: string }>(
      "SELECT sum(revenue)::VARCHAR AS r FROM gold.daily_revenue_by_country",
    ))?.r,
    clv: await db.one<{ n: number; r: string }>(
      "SELECT count(*) AS n, sum(revenue)::VARCHAR AS r FROM gold.customer_lifetime_value",
    ),
    top: (await db.one<{ p: string }>(
      "SELECT string_agg(product_id::VARCHAR, ',' ORDER BY rank, product_id) AS p FROM gold.top_products",
    ))?.p,
  });
  const sluice = await withRun(await loadConfig(config), { trigger: "test" }, async (ctx) => {
    await runPipeline(ctx);
    return await facts(ctx.db);
  });
  const spec = await writeBaselineSpec(join(dir, "spec.json"));
  const out = await benchScript("bench/baseline_sql.ts", [
    "--data",
    data,
    "--work",
    join(dir, "baseline"),
    "--spec",
    spec,
  ]);
  assert.deepEqual(out.counts, {
    "bronze.orders": 5_000,
    "silver.orders": sluice.silver,
    "silver.orders__quarantine": sluice.quarantined,
  });
  const db = await openEngine(join(dir, "baseline", "baseline.duckdb"), {
    allowedDirectories: [dir],
    searchPath: ["gold", "silver"],
  });
  try {
    assert.deepEqual(await facts(db), sluice);
  } finally {
    db.close();
  }
  assert.ok(
    sluice.quarantined! > 0 && sluice.silver! < 5_000,
    "the data has bad and repeated rows",
  );
});

Deno.test("the plain-SQL stream baseline writes and dead-letters the same events as the Sluice stream", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_bench_" });
  const data = await streamData({ events: 4_000, files: 8, seed: 3, baseDir: dir });
  const config = await writeStreamProject({
    landing: data.landing,
    dir: join(dir, "sluice"),
    filesPerBatch: 3,
  });
  const s = await runStreamPipeline(await loadConfig(config), {
    trigger: "available-now",
    run: { trigger: "test" },
  });
  const base = await benchScript("bench/baseline_stream.ts", [
    "--landing",
    data.landing,
    "--work",
    join(dir, "baseline"),
    "--files-per-batch",
    "3",
  ]);
  assert.equal(s.batches, 3);
  assert.equal(base.batches, 3);
  assert.equal(base.read, s.recordsRead);
  assert.equal(base.written, s.written);
  assert.deepEqual(base.by_reason, s.byReason);
  assert.ok((s.byReason.late ?? 0) > 0 && (s.byReason.malformed_json ?? 0) > 0);
  const bulk = await benchScript("bench/baseline_stream.ts", [
    "--landing",
    data.landing,
    "--work",
    join(dir, "bulk"),
    "--bulk",
  ]);
  assert.equal(bulk.mode, "bulk");
});

Deno.test("bronze numbers rows within each file when large files land in one parallel scan", async () => {
  const yaml = `pipeline: p
lake: ./lake
engine: { threads: 2 }
sources:
  events: { format: csv, path: ./in, glob: "*.csv" }
`;
  const p = await makeProject(yaml);
  await Deno.mkdir(join(p.dir, "in"));
  const db = await openEngine(":memory:", { allowedDirectories: [p.dir] });
  try {
    // Files of different sizes, written out of name order, big enough for
    // DuckDB to read them on several threads.
    for (const [i, rows] of [[3, 90_000], [1, 150_000], [2, 7], [0, 120_000]]) {
      await db.run(
        `COPY (SELECT ${i} * 1000000 + r AS id, md5(r::VARCHAR) AS pad FROM range(1, ${
          rows + 1
        }) t(r))
         TO ${literal(join(p.dir, "in", `f${i}.csv`))} (FORMAT csv, HEADER)`,
      );
    }
  } finally {
    db.close();
  }
  await runOnce(p, { stages: ["extract", "bronze"] });
  const rows = await query<{ file: string; n: number; bad: number; first: number; last: number }>(
    p,
    `SELECT regexp_extract(_source_file, '[^/]+$') AS file, count(*) AS n,
       count(*) FILTER (WHERE id::BIGINT % 1000000 <> _source_row) AS bad,
       min(_source_row) AS first, max(_source_row) AS last
     FROM bronze.events GROUP BY 1 ORDER BY 1`,
  );
  assert.deepEqual(rows, [
    { file: "f0.csv", n: 120_000, bad: 0, first: 1, last: 120_000 },
    { file: "f1.csv", n: 150_000, bad: 0, first: 1, last: 150_000 },
    { file: "f2.csv", n: 7, bad: 0, first: 1, last: 7 },
    { file: "f3.csv", n: 90_000, bad: 0, first: 1, last: 90_000 },
  ]);
});

Deno.test("silver keeps the latest of repeated keys, ties broken by the later file and row", async () => {
  const yaml = `pipeline: p
lake: ./lake
sources:
  orders: { format: csv, path: ./in, glob: "*.csv" }
silver:
  orders:
    from: orders
    key: [order_id]
    order_by: updated_at
    mode: merge
    columns:
      order_id: { type: BIGINT, nullable: false }
      status: { type: VARCHAR }
      updated_at: { type: TIMESTAMP }
`;
  const p = await makeProject(yaml, {
    "in/a.csv": [
      "order_id,status,updated_at",
      "1,old,2026-01-01T00:00:00",
      "1,new,2026-01-02T00:00:00",
      "2,first,2026-01-01T00:00:00",
      "3,a-row2,",
      "3,a-row3,",
      "4,bad,not a date",
      "5,only,2026-01-01T00:00:00",
    ].join("\n"),
    "in/b.csv": [
      "order_id,status,updated_at",
      "2,tie-later-file,2026-01-01T00:00:00",
      "1,older-later-file,2025-12-31T00:00:00",
      "4,good,2026-01-01T00:00:00",
    ].join("\n"),
  });
  const summary = await runOnce(p, { stages: ["extract", "bronze", "silver"] });
  const silver = summary.stages.find((s) => s.stage === "silver")!.tables[0];
  assert.deepEqual(
    [silver.rowsIn, silver.passed, silver.quarantined, silver.duplicates],
    [10, 5, 1, 4],
  );
  const rows = await query<{ order_id: number; status: string }>(
    p,
    "SELECT order_id, status FROM silver.orders ORDER BY order_id",
  );
  assert.deepEqual(rows.map((r) => [r.order_id, r.status]), [
    [1, "new"],
    [2, "tie-later-file"],
    [3, "a-row3"],
    [4, "good"],
    [5, "only"],
  ]);
});

Deno.test("the --version fast path answers only a lone version flag of the CLI", () => {
  assert.ok(isVersionOnly(["--version"], "file:///srv/sluice/cli.ts"));
  assert.ok(isVersionOnly(["-V"], "file:///srv/sluice/cli.ts"));
  assert.ok(!isVersionOnly(["--log-format", "json", "--version"], "file:///srv/sluice/cli.ts"));
  assert.ok(!isVersionOnly(["run", "--version"], "file:///srv/sluice/cli.ts"));
  assert.ok(!isVersionOnly(["--version"], "file:///srv/sluice/tests/cli_test.ts"));
  assert.ok(!isVersionOnly([], "file:///srv/sluice/cli.ts"));
});

Deno.test("each shape pair's plain-SQL baseline lands, quarantines and models the same rows as sluice run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_bench_shapes_" });
  for (const shape of SHAPES) {
    const data = join(dir, shape, "data");
    await generateShape(shape, data, { size: shapeSize(shape, 0.002), seed: 5 });
    const proj = join(dir, shape, "sluice");
    await Deno.mkdir(proj, { recursive: true });
    const config = join(proj, "pipeline.yaml");
    await Deno.writeTextFile(config, shapePipelineYaml(shape, data, proj));
    const spec = shapeSpec(shape);
    const tables = [...spec.counted, ...spec.gold.map((g) => `gold.${g.name}`)];
    const sluice = await withRun(await loadConfig(config), { trigger: "test" }, async (ctx) => {
      await runPipeline(ctx);
      const counts: Record<string, number> = {};
      for (const t of tables) {
        counts[t] = (await ctx.db.one<{ n: number }>(`SELECT count(*)::DOUBLE AS n FROM ${t}`))!.n;
      }
      return counts;
    });
    const out = await benchScript("bench/baseline_shapes.ts", [
      "--shape",
      shape,
      "--data",
      data,
      "--work",
      join(dir, shape, "baseline"),
    ]);
    assert.deepEqual(out.counts, sluice, shape);
    assert.ok(sluice[tables[0]] > 0, `${shape} landed rows`);
  }
  // Parquet rows are numbered by the reader: every bronze row has its file row.
  const lake = join(dir, "parquet_star", "sluice", "lake", "sluice.duckdb");
  const db = await openEngine(lake, { allowedDirectories: [dir] });
  try {
    const r = await db.one<{ bad: number; n: number }>(
      `SELECT count(*) FILTER (WHERE _source_row IS DISTINCT FROM trip_id + 1) AS bad,
         count(*) AS n FROM bronze.trips`,
    );
    assert.equal(r!.bad, 0);
    assert.ok(r!.n > 0);
  } finally {
    db.close();
  }
});

Deno.test("the cost-curve picture in docs is drawn from the committed incremental results, one line per series", async () => {
  const out = await Deno.makeTempFile({ suffix: ".svg" });
  const files = ["100k", "1m", "10m"].map((s) => join(REPO, `bench/results_incremental_${s}.json`));
  const run = await new Deno.Command("deno", {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      join(REPO, "bench/plot_incremental.ts"),
      "--out",
      out,
      "--title",
      "Sluice run time against lake size (2026-12-04)",
      ...files,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
  const svg = await Deno.readTextFile(out);
  await Deno.remove(out);
  const lines = [...svg.matchAll(/data-series="(\w+)"[^>]*points="([^"]+)"/g)];
  assert.deepEqual(lines.map((m) => m[1]), ["full", "increment", "noop"]);
  for (const m of lines) assert.equal(m[2].split(" ").length, 3, m[1]);
  // The increment's points lie below the full run's at every size.
  const ys = (i: number) => lines[i][2].split(" ").map((p) => Number(p.split(",")[1]));
  ys(0).forEach((y, k) => assert.ok(ys(1)[k] > y, `size ${k}`));
  assert.equal(svg, await Deno.readTextFile(join(REPO, "docs/incremental_cost.svg")));
});
