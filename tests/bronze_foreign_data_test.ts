import assert from "node:assert/strict";
import { join } from "node:path";
import { SourceError } from "../core/errors.ts";
import { ECOMMERCE_PIPELINE_YAML } from "../scaffold/example_pipeline.ts";
import { generateDemoData } from "../scaffold/generate.ts";
import { makeProject, openProject, query, runOnce, sluice, writeFile } from "./_helpers.ts";

const NDJSON_YAML = (format: "ndjson" | "json", glob: string) =>
  `pipeline: foreign
lake: ./lake
engine: { threads: 2 }
sources:
  films:
    format: ${format}
    path: ./landing/films
    glob: "${glob}"
silver:
  films:
    from: films
    max_quarantine: "50%" # one of four records is meant to be quarantined
    columns:
      id: { type: BIGINT }
      title: { type: VARCHAR, from: Title }
      big: { type: HUGEINT }
      exact: { type: "DECIMAL(38,2)" }
      tags: { type: VARCHAR }
      note: { type: VARCHAR }
`;

// Mixed-type fields (a title that is a number), integers beyond 2^53 and
// beyond HUGEINT, a float DuckDB would round, nested values, null vs missing.
const RECORDS = [
  `{"id": 1, "Title": "The Land Girls", "big": 9007199254740993, "exact": 12345678901234567890.50, "tags": ["a", {"b": 1}], "note": null}`,
  `{"id": 2, "Title": 1776, "big": 170141183460469231731687303715884105727, "exact": 1.2e29, "tags": {"k": "v"}}`,
  `{"id": 3, "Title": "Say \\"hi\\"", "big": 170141183460469231731687303715884105728, "exact": 0.10}`,
  `{"id": 9007199254740993, "Title": true, "big": -5, "exact": "7.25", "note": "x"}`,
];

Deno.test("NDJSON bronze holds each scalar's exact text and silver casts it once, exactly", async () => {
  const p = await makeProject(NDJSON_YAML("ndjson", "*.ndjson"), {
    "landing/films/a.ndjson": RECORDS.join("\n") + "\n",
  });
  const summary = await runOnce(p);
  assert.equal(summary.status, "success");
  const bronze = await query<Record<string, string | null>>(
    p,
    `SELECT id, Title, big, exact, tags, note, _source_row FROM bronze.films ORDER BY _source_row`,
  );
  assert.deepEqual(bronze.map((r) => r.Title), ["The Land Girls", "1776", 'Say "hi"', "true"]);
  assert.deepEqual(bronze.map((r) => r.big), [
    "9007199254740993",
    "170141183460469231731687303715884105727",
    "170141183460469231731687303715884105728",
    "-5",
  ]);
  // Numbers exactly as written, not DuckDB's re-printed DOUBLE.
  assert.deepEqual(bronze.map((r) => r.exact), [
    "12345678901234567890.50",
    "1.2e29",
    "0.10",
    "7.25",
  ]);
  assert.equal(bronze[3].id, "9007199254740993");
  // Objects and arrays as JSON text; null and a missing key both NULL.
  assert.deepEqual(JSON.parse(bronze[0].tags!), ["a", { b: 1 }]);
  assert.deepEqual(JSON.parse(bronze[1].tags!), { k: "v" });
  assert.equal(bronze[0].note, null);
  assert.equal(bronze[1].note, null);
  assert.deepEqual(bronze.map((r) => Number(r._source_row)), [1, 2, 3, 4]);
  const silver = await query<Record<string, unknown>>(
    p,
    `SELECT id::VARCHAR AS id, title, big::VARCHAR AS big, exact::VARCHAR AS exact
     FROM silver.films ORDER BY id`,
  );
  assert.deepEqual(silver.map((r) => r.title), ["The Land Girls", "1776", "true"]);
  assert.deepEqual(silver.map((r) => r.big), [
    "9007199254740993",
    "170141183460469231731687303715884105727",
    "-5",
  ]);
  assert.deepEqual(silver.map((r) => r.id), ["1", "2", "9007199254740993"]);
  assert.deepEqual(silver.map((r) => r.exact), [
    "12345678901234567890.50",
    "120000000000000000000000000000.00",
    "7.25",
  ]);
  // 2^127 is beyond HUGEINT: quarantined with a reason naming the value and line.
  const quarantine = await query<{ r: string; line: number }>(
    p,
    `SELECT _reason AS r, _source_row AS line FROM silver.films__quarantine ORDER BY _source_row`,
  );
  assert.equal(quarantine.length, 1);
  assert.match(
    quarantine[0].r,
    /column "big": cannot cast 170141183460469231731687303715884105728 to HUGEINT/,
  );
  assert.equal(Number(quarantine[0].line), 3);
});

Deno.test("a JSON array file lands with format: json, element numbers in quarantine, and under ndjson names the fix", async () => {
  const array = `[\n  ${RECORDS.join(",\n  ")}\n]\n`;
  const p = await makeProject(NDJSON_YAML("json", "*.json"), { "landing/films/a.json": array });
  const summary = await runOnce(p);
  assert.equal(summary.status, "success");
  const bronze = await query<{ t: string; e: string; row: number }>(
    p,
    `SELECT Title AS t, exact AS e, _source_row AS row FROM bronze.films ORDER BY _source_row`,
  );
  assert.deepEqual(bronze.map((r) => r.t), ["The Land Girls", "1776", 'Say "hi"', "true"]);
  assert.deepEqual(bronze.map((r) => r.e), ["12345678901234567890.50", "1.2e29", "0.10", "7.25"]);
  const q = await query<{ row: number }>(
    p,
    `SELECT _source_row AS row FROM silver.films__quarantine`,
  );
  assert.deepEqual(q.map((r) => Number(r.row)), [3]);

  const wrong = await makeProject(NDJSON_YAML("ndjson", "*.json"), {
    "landing/films/a.json": array,
  });
  await assert.rejects(() => runOnce(wrong), (e) => {
    assert.ok(e instanceof SourceError, String(e));
    assert.equal(
      (e as Error).message,
      'Cannot load source "films": file a.json is a JSON array; use format: json',
    );
    return true;
  });
});

const CSV_YAML = `pipeline: moved
lake: ./lake
engine: { threads: 2 }
sources:
  orders:
    format: csv
    path: ./landing/orders
    glob: "*.csv"
silver:
  orders:
    from: orders
    key: [order_id]
    mode: merge
    columns:
      order_id: { type: BIGINT }
      amount: { type: "DECIMAL(10,2)" }
`;

Deno.test("a moved demo project folder continues where it was: nothing re-lands, bronze is not doubled", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_move_" });
  await generateDemoData(dir, { scale: 2_000, seed: 3 });
  await Deno.writeTextFile(join(dir, "pipeline.yaml"), ECOMMERCE_PIPELINE_YAML);
  const first = await sluice(["run", "-c", join(dir, "pipeline.yaml")]);
  assert.equal(first.code, 0, first.stderr);
  const counts = (project: { dir: string; configFile: string }) =>
    query<{ t: string; n: number }>(
      project,
      `SELECT 'customers' AS t, count(*)::INTEGER AS n FROM bronze.customers
       UNION ALL SELECT 'products', count(*)::INTEGER FROM bronze.products
       UNION ALL SELECT 'orders', count(*)::INTEGER FROM bronze.orders
       UNION ALL SELECT 'silver.orders', count(*)::INTEGER FROM silver.orders
       UNION ALL SELECT 'files', count(*)::INTEGER FROM _sluice.files ORDER BY 1`,
    );
  const before = await counts({ dir, configFile: join(dir, "pipeline.yaml") });
  // The same rename(2) that `mv proj proj.moved` does.
  const moved = `${dir}.moved`;
  await Deno.rename(dir, moved);
  const project = { dir: moved, configFile: join(moved, "pipeline.yaml") };
  const second = await sluice(["run", "-c", project.configFile]);
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(await counts(project), before);
  const paths = await query<{ path: string }>(
    project,
    `SELECT DISTINCT path FROM _sluice.files WHERE starts_with(path, '/')`,
  );
  assert.deepEqual(paths, []);
});

Deno.test("an old manifest with absolute paths is migrated to relative ones, also after a move", async () => {
  const p = await makeProject(CSV_YAML, {
    "landing/orders/a.csv": "order_id,amount\n1,10.00\n2,20.00\n",
  });
  assert.equal((await runOnce(p)).status, "success");
  // Make the lake look like one written by the old version, at another folder.
  const old = "/srv/old_place/landing/orders/";
  const ctx = await openProject(p);
  await ctx.db.run(`UPDATE _sluice.files SET path = '${old}' || path`);
  await ctx.db.run(`UPDATE bronze.orders SET _source_file = '${old}' || _source_file`);
  // Silver rows that carry their file (lineage) are migrated too.
  const lineage = await ctx.db.one(
    `SELECT 1 AS x FROM duckdb_columns() WHERE schema_name = 'silver' AND table_name = 'orders'
       AND column_name = '_source_file'`,
  );
  if (lineage) {
    await ctx.db.run(`UPDATE silver.orders SET _source_file = '${old}' || _source_file`);
  }
  ctx.db.close();
  const summary = await runOnce(p);
  assert.equal(summary.status, "success");
  const rows = await query<{ n: number; f: string }>(
    p,
    `SELECT count(*)::INTEGER AS n, min(_source_file) AS f FROM bronze.orders`,
  );
  assert.deepEqual(rows[0], { n: 2, f: "a.csv" });
  const files = await query<{ path: string }>(p, `SELECT path FROM _sluice.files`);
  assert.deepEqual(files.map((r) => r.path), ["a.csv"]);
  if (lineage) {
    const silver = await query<{ f: string }>(
      p,
      `SELECT DISTINCT _source_file AS f FROM silver.orders`,
    );
    assert.deepEqual(silver, [{ f: "a.csv" }]);
  }
});

Deno.test("a changed file under on_change: fail says what changed", async () => {
  const p = await makeProject(CSV_YAML, { "landing/orders/a.csv": "order_id,amount\n1,10.00\n" });
  assert.equal((await runOnce(p)).status, "success");
  // Same size, different content.
  await writeFile(p.dir, "landing/orders/a.csv", "order_id,amount\n1,90.00\n");
  await assert.rejects(() => runOnce(p), (e) => {
    assert.ok(e instanceof SourceError, String(e));
    assert.match(
      (e as Error).message,
      /^Cannot load source "orders": file a\.csv changed since it was ingested \(content hash differs; size 24 → 24(; mtime \S+ → \S+)?\); set on_change: reingest or ignore$/,
    );
    return true;
  });
});

Deno.test("a retracted file sent again with other content lands as new, whatever on_change says", async () => {
  const p = await makeProject(CSV_YAML, { "landing/orders/a.csv": "order_id,amount\n1,10.00\n" });
  assert.equal((await sluice(["run", "-c", p.configFile])).code, 0);
  const r = await sluice(["retract", "-c", p.configFile, "--source", "orders", "a.csv"]);
  assert.equal(r.code, 0, r.stderr);
  // on_change is fail (the default): a changed landed file would stop the run.
  await writeFile(p.dir, "landing/orders/a.csv", "order_id,amount\n1,10.00\n2,20.00\n");
  const again = await sluice(["run", "-c", p.configFile]);
  assert.equal(again.code, 0, again.stderr);
  const rows = await query<{ b: number; s: number }>(
    p,
    `SELECT (SELECT count(*) FROM bronze.orders)::INTEGER AS b,
       (SELECT count(*) FROM silver.orders)::INTEGER AS s`,
  );
  assert.deepEqual(rows[0], { b: 2, s: 2 });
});
