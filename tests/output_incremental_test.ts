import assert from "node:assert/strict";
import { join } from "node:path";
import { openEngine } from "../core/engine.ts";
import { fingerprints } from "../stages/_output_manifest.ts";
import { makeProject, openProject, type Project, runOnce, writeFile } from "./_helpers.ts";

const YAML = `pipeline: shop
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
    order_by: updated_at
    mode: merge
    columns:
      order_id: { type: BIGINT, nullable: false }
      quantity: { type: INTEGER }
      country: { type: VARCHAR }
      updated_at: { type: TIMESTAMP }
gold:
  daily:
    sql: >-
      select cast(updated_at as date) as order_date, country, count(*) as orders,
      sum(quantity) as units from orders group by all
  countries:
    sql: select distinct country from orders
  totals:
    sql: select count(*) as orders, sum(quantity) as units from orders
output:
  keep_versions: KEEP
  tables:
    daily: { partition_by: [order_date] }
    countries: {}
    totals: {}
`;

const DAYS = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"];

/** 100 orders over five days and two countries. */
function baseOrders(): string {
  const lines = ["order_id,quantity,country,updated_at"];
  for (let i = 1; i <= 100; i++) {
    lines.push(`${i},${1 + (i % 4)},${i % 2 ? "DE" : "US"},${DAYS[i % 5]} 10:00:00`);
  }
  return lines.join("\n") + "\n";
}

/** One new order on 2026-01-03: a 1% increment touching one date partition. */
const INCREMENT = "order_id,quantity,country,updated_at\n101,7,DE,2026-01-03 12:00:00\n";

function yaml(keep = 2): string {
  return YAML.replace("KEEP", String(keep));
}

/** Inode of every Parquet file of a published table, by path relative to its link. */
async function inodes(p: Project, table: string): Promise<Map<string, number>> {
  const root = join(p.dir, "lake/output", table);
  const found = new Map<string, number>();
  const walk = async (dir: string, rel: string) => {
    for await (const e of Deno.readDir(dir)) {
      const path = join(dir, e.name);
      const name = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(path, name);
      else if (e.name.endsWith(".parquet")) found.set(name, (await Deno.stat(path)).ino!);
    }
  };
  await walk(root, "");
  return found;
}

/** Every row of a published table, read as one hive-partitioned dataset, sorted. */
async function dataset(p: Project, table: string): Promise<unknown[]> {
  const ctx = await openProject(p);
  try {
    const glob = join(p.dir, "lake/output", table, "**/*.parquet");
    return await ctx.db.all(
      `SELECT * FROM read_parquet('${glob}', hive_partitioning = true) ORDER BY ALL`,
    );
  } finally {
    ctx.db.close();
  }
}

/** Row count and order-independent checksum of a published dataset, via DuckDB. */
async function checksum(p: Project, table: string): Promise<{ n: number; h: string }> {
  const ctx = await openProject(p);
  try {
    const glob = join(p.dir, "lake/output", table, "**/*.parquet");
    return (await ctx.db.one<{ n: number; h: string }>(
      `SELECT count(*)::BIGINT AS n, sum(hash(r))::VARCHAR AS h
       FROM (SELECT * FROM read_parquet('${glob}', hive_partitioning = true) ORDER BY ALL) r`,
    ))!;
  } finally {
    ctx.db.close();
  }
}

function outputDetails(summary: Awaited<ReturnType<typeof runOnce>>, table: string) {
  const out = summary.stages.find((s) => s.stage === "output")!;
  return out.tables.find((t) => t.table === table)!.details as Record<string, unknown>;
}

Deno.test("a 1% increment rewrites only the date partition it touched; the others are hard links", async () => {
  const p = await makeProject(yaml(), { "landing/orders/a.csv": baseOrders() });
  await runOnce(p);
  const before = await inodes(p, "daily");
  assert.equal(before.size, 5);
  const countriesBefore = await inodes(p, "countries");
  const totalsBefore = await inodes(p, "totals");

  await writeFile(p.dir, "landing/orders/b.csv", INCREMENT);
  const second = await runOnce(p);
  const after = await inodes(p, "daily");
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
  for (const [file, ino] of after) {
    if (file.startsWith("order_date=2026-01-03/")) {
      assert.notEqual(ino, before.get(file), `${file} should be a new file`);
    } else {
      assert.equal(ino, before.get(file), `${file} should be a hard link of the previous version`);
      const info = await Deno.stat(join(p.dir, "lake/output/daily", file));
      assert.ok(info.nlink! >= 2, `${file} should have two names`);
    }
  }
  const d = outputDetails(second, "daily");
  assert.equal(d.partitions_written, 1);
  assert.equal(d.partitions_linked, 4);
  assert.equal(d.files_linked, 4);
  // The unpartitioned table the increment did not change is linked whole;
  // the one it changed is written again.
  assert.deepEqual(await inodes(p, "countries"), countriesBefore);
  assert.equal(outputDetails(second, "countries").files_linked, 1);
  const totalsAfter = await inodes(p, "totals");
  assert.notEqual(totalsAfter.get("part-00000.parquet"), totalsBefore.get("part-00000.parquet"));
  assert.equal(outputDetails(second, "totals").files_linked, 0);

  // Row for row the same as a lake that saw both files in one run.
  const fresh = await makeProject(yaml(), {
    "landing/orders/a.csv": baseOrders(),
    "landing/orders/b.csv": INCREMENT,
  });
  await runOnce(fresh);
  for (const table of ["daily", "countries", "totals"]) {
    assert.deepEqual(await dataset(p, table), await dataset(fresh, table), table);
    assert.deepEqual(await checksum(p, table), await checksum(fresh, table), table);
  }
  const rows = await dataset(p, "daily") as { order_date: unknown; orders: number }[];
  assert.equal(rows.reduce((n, r) => n + Number(r.orders), 0), 101);
});

Deno.test("a partition that disappears is not in the new version, and the rest stay linked", async () => {
  const p = await makeProject(yaml(), { "landing/orders/a.csv": baseOrders() });
  await runOnce(p);
  const before = await inodes(p, "daily");
  await Deno.writeTextFile(
    p.configFile,
    yaml().replace(
      "from orders group by all",
      "from orders where updated_at < '2026-01-05' group by all",
    ),
  );
  await writeFile(p.dir, "landing/orders/b.csv", INCREMENT);
  await runOnce(p);
  const after = await inodes(p, "daily");
  assert.equal([...after.keys()].some((f) => f.startsWith("order_date=2026-01-05/")), false);
  assert.equal(after.size, 4);
  for (const [file, ino] of after) {
    if (!file.startsWith("order_date=2026-01-03/")) assert.equal(ino, before.get(file), file);
  }
  const rows = await dataset(p, "daily") as { order_date: Date }[];
  assert.equal(rows.some((r) => String(r.order_date).includes("2026-01-05")), false);
});

Deno.test("pruning old versions keeps the linked files of the published version readable", async () => {
  const p = await makeProject(yaml(0), { "landing/orders/a.csv": baseOrders() });
  await runOnce(p);
  const first = await dataset(p, "daily");
  const before = await inodes(p, "daily");
  await writeFile(p.dir, "landing/orders/b.csv", INCREMENT);
  await runOnce(p);
  // keep_versions 0: only the published version folder is left.
  const versions: string[] = [];
  for await (const e of Deno.readDir(join(p.dir, "lake/output/.versions/daily"))) {
    versions.push(e.name);
  }
  assert.equal(versions.length, 1);
  const after = await inodes(p, "daily");
  for (const [file, ino] of after) {
    if (file.startsWith("order_date=2026-01-03/")) continue;
    assert.equal(ino, before.get(file), file);
    const info = await Deno.stat(join(p.dir, "lake/output/daily", file));
    assert.equal(info.nlink, 1, `${file} lost its old name only`);
  }
  const rows = await dataset(p, "daily") as { order_date: unknown; orders: number }[];
  assert.equal(rows.length, first.length);
  assert.equal(rows.reduce((n, r) => n + Number(r.orders), 0), 101);

  // A third run with nothing changed in gold links everything, still readable.
  await writeFile(
    p.dir,
    "landing/orders/c.csv",
    "order_id,quantity,country,updated_at\n101,7,DE,2026-01-03 12:00:00\n",
  );
  await runOnce(p);
  assert.deepEqual(await dataset(p, "daily"), rows);
});

Deno.test("changing the partition columns writes every file again", async () => {
  const p = await makeProject(yaml(), { "landing/orders/a.csv": baseOrders() });
  await runOnce(p);
  const before = await inodes(p, "daily");
  await Deno.writeTextFile(
    p.configFile,
    yaml().replace("daily: { partition_by: [order_date] }", "daily: { partition_by: [country] }"),
  );
  await writeFile(p.dir, "landing/orders/b.csv", INCREMENT);
  const second = await runOnce(p);
  const after = await inodes(p, "daily");
  assert.equal(after.size, 2);
  for (const ino of after.values()) assert.equal([...before.values()].includes(ino), false);
  assert.equal(outputDetails(second, "daily").files_linked, 0);
});

Deno.test("the fingerprint tells apart partitions whose duplicate rows cancel out under xor", async () => {
  const db = await openEngine(":memory:", { allowedDirectories: [] });
  try {
    await db.run(`CREATE TABLE a AS SELECT * FROM (VALUES (1, 'x'), (1, 'x'), (2, 'y')) t(p, v)`);
    await db.run(`CREATE TABLE b AS SELECT * FROM (VALUES (1, 'z'), (1, 'z'), (2, 'y')) t(p, v)`);
    const fa = await fingerprints(db, "main", "a", ["p"]);
    const fb = await fingerprints(db, "main", "b", ["p"]);
    const one = (f: typeof fa, k: string) => f.find((e) => e.key[0] === k)!;
    // p = 1: two equal rows each, so both xors are 0 and both counts 2.
    assert.equal(one(fa, "1").xor, one(fb, "1").xor);
    assert.equal(one(fa, "1").rows, one(fb, "1").rows);
    assert.notEqual(one(fa, "1").sum, one(fb, "1").sum);
    assert.deepEqual(one(fa, "2"), one(fb, "2"));
  } finally {
    db.close();
  }
});

const VERSIONED = `pipeline: shop
lake: ./lake
engine: { threads: 2 }
sources:
  orders: { format: csv, path: ./landing/orders, glob: "*.csv" }
  notes: { format: csv, path: ./landing/notes, glob: "*.csv" }
silver:
  orders:
    from: orders
    key: [order_id]
    order_by: updated_at
    mode: merge
    columns:
      order_id: { type: BIGINT, nullable: false }
      quantity: { type: INTEGER }
      country: { type: VARCHAR }
      updated_at: { type: TIMESTAMP }
  notes:
    from: notes
    mode: append
    columns:
      note: { type: VARCHAR }
gold:
  per_country:
    materialized: incremental
    unique_key: country
    sql: select country, count(*) as orders, sum(quantity) as units from orders group by all
output:
  tables:
    per_country: {}
`;

Deno.test("an incremental model gold left unchanged is linked without a scan; one it changed is written, never linked by an unscanned entry", async () => {
  const p = await makeProject(VERSIONED, {
    "landing/orders/a.csv": baseOrders(),
    "landing/notes/n0.csv": "note\nfirst\n",
  });
  await runOnce(p);
  const published = async () => {
    const file = join(p.dir, "lake/output/per_country", "_sluice_output.json");
    return JSON.parse(await Deno.readTextFile(file));
  };
  const first = await inodes(p, "per_country");

  // Silver changes, but not a table the model reads: gold keeps it, output links it.
  await writeFile(p.dir, "landing/notes/n1.csv", "note\nhello\n");
  const second = await runOnce(p);
  assert.deepEqual(await inodes(p, "per_country"), first);
  assert.equal(outputDetails(second, "per_country").files_linked, 1);
  const firstRun = (await published()).source_version;
  assert.equal(typeof firstRun, "string");

  // Two increments that change one country each with the same row count (2 rows):
  // each is written again, and the second is not mistaken for the first.
  const seen: number[] = [...first.values()];
  for (
    const [i, line] of ["101,7,DE,2026-01-03 12:00:00", "102,9,US,2026-01-04 12:00:00"].entries()
  ) {
    await writeFile(
      p.dir,
      `landing/orders/inc${i}.csv`,
      `order_id,quantity,country,updated_at\n${line}\n`,
    );
    const run = await runOnce(p);
    const ino = (await inodes(p, "per_country")).get("part-00000.parquet")!;
    assert.ok(!seen.includes(ino), `increment ${i} writes a new file`);
    seen.push(ino);
    assert.equal(outputDetails(run, "per_country").files_written, 1);
    const m = await published();
    assert.equal(m.partitions[0].xor, "", "an incrementally changed table is not scanned");
    assert.notEqual(m.source_version, firstRun);
  }
  await writeFile(p.dir, "landing/notes/n2.csv", "note\nagain\n");
  const last = await runOnce(p);
  assert.equal(outputDetails(last, "per_country").files_linked, 1);

  const fresh = await makeProject(VERSIONED, {
    "landing/orders/a.csv": baseOrders(),
    "landing/notes/n0.csv": "note\nfirst\n",
    "landing/orders/inc0.csv":
      "order_id,quantity,country,updated_at\n101,7,DE,2026-01-03 12:00:00\n",
    "landing/orders/inc1.csv":
      "order_id,quantity,country,updated_at\n102,9,US,2026-01-04 12:00:00\n",
  });
  await runOnce(fresh);
  assert.deepEqual(await dataset(p, "per_country"), await dataset(fresh, "per_country"));
  assert.deepEqual(await checksum(p, "per_country"), await checksum(fresh, "per_country"));
  for (const q of [p, fresh]) await Deno.remove(q.dir, { recursive: true });
});
