import assert from "node:assert/strict";
import { join } from "node:path";
import { createHash } from "node:crypto";
import fc from "fast-check";
import {
  fileSha256,
  forgetContents,
  globToRegExp,
  hashFile,
  listFiles,
  readSmallFiles,
  SMALL_FILE_BYTES,
  sniffFile,
  statFile,
} from "../stages/_files.ts";
import { openEngine } from "../core/engine.ts";
import { literal } from "../core/quote.ts";
import { makeProject, openProject, query, runOnce, writeFile } from "./_helpers.ts";

Deno.test("globs match *, ?, **, classes and alternatives against relative paths", async () => {
  const re = (g: string) => globToRegExp(g);
  assert.ok(re("orders_*.csv").test("orders_0001.csv"));
  assert.ok(!re("orders_*.csv").test("sub/orders_1.csv"));
  assert.ok(re("**/*.csv").test("a/b/c.csv"));
  assert.ok(re("**/*.csv").test("c.csv"));
  assert.ok(re("day=?/*.{csv,tsv}").test("day=1/x.tsv"));
  assert.ok(re("[ab]*.json").test("b1.json"));
  assert.ok(!re("[!ab]*.json").test("b1.json"));
  assert.ok(!re("*.csv").test("x.csv.gz"));

  const dir = await Deno.makeTempDir();
  for (const f of ["b.csv", "a.csv", "sub/c.csv", ".hidden.csv", "notes.txt"]) {
    await writeFile(dir, f, "x\n");
  }
  assert.deepEqual(await listFiles(dir, "*.csv"), [join(dir, "a.csv"), join(dir, "b.csv")]);
  assert.deepEqual(await listFiles(dir, "**/*.csv"), [
    join(dir, "a.csv"),
    join(dir, "b.csv"),
    join(dir, "sub/c.csv"),
  ]);
});

Deno.test("file hashes are the SHA-256 of the content, read whole or streamed", async () => {
  const dir = await Deno.makeTempDir();
  const small = await writeFile(dir, "abc.csv", "abc");
  assert.equal(
    await hashFile(small),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  // Over the 64 MiB whole-file limit: streamed through node:crypto.
  const bytes = new Uint8Array(65 * 1024 * 1024).map((_, i) => i % 251);
  const big = join(dir, "big.bin");
  await Deno.writeFile(big, bytes);
  assert.equal(await hashFile(big), createHash("sha256").update(bytes).digest("hex"));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a small file read once gives the same kind and hash as reading it apart; a large or changed one keeps no content", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Bytes that hit every kind: gzip, zstd and Parquet magic (with and without the footer),
    // a JSON array after a BOM and blanks, text, empty.
    const prefixes = [
      [0x1f, 0x8b],
      [0x28, 0xb5, 0x2f, 0xfd],
      [0x50, 0x41, 0x52, 0x31],
      [0xef, 0xbb, 0xbf, 0x20, 0x0a, 0x5b],
      [0x69, 0x64, 0x0a],
      [],
    ];
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...prefixes),
        fc.uint8Array({ maxLength: 6000 }),
        fc.boolean(),
        async (prefix, body, footer) => {
          const bytes = new Uint8Array([
            ...prefix,
            ...body,
            ...(footer ? [0x50, 0x41, 0x52, 0x31] : []),
          ]);
          const path = join(dir, `f${n++}.bin`);
          await Deno.writeFile(path, bytes);
          const fp = await statFile(path);
          await readSmallFiles([fp]);
          assert.deepEqual(fp.content, bytes);
          assert.deepEqual(await sniffFile(path, fp.content), await sniffFile(path));
          assert.equal(await fileSha256(fp), await hashFile(path));
          forgetContents([fp]);
          assert.equal(fp.content, undefined);
        },
      ),
      { numRuns: 60 },
    );
    const big = join(dir, "big.csv");
    await Deno.writeFile(big, new Uint8Array(SMALL_FILE_BYTES + 1));
    const changed = join(dir, "changed.csv");
    await Deno.writeTextFile(changed, "id\n1\n");
    const fps = [await statFile(big), await statFile(changed)];
    await Deno.writeTextFile(changed, "id\n1\n2\n"); // grew after it was listed
    await readSmallFiles(fps);
    assert.deepEqual(fps.map((f) => f.content), [undefined, undefined]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** One CSV source of integer ids, typed in silver. */
const EVENTS_YAML = `pipeline: p
lake: ./lake
sources:
  events:
    format: csv
    path: ./in
    glob: "*.csv"
silver:
  events:
    from: events
    columns: { id: { type: INTEGER } }
`;

Deno.test("bronze numbers rows within each file and records every file in the manifest", async () => {
  const files: Record<string, string> = {};
  for (let f = 0; f < 3; f++) {
    const lines = ["id"];
    for (let i = 1; i <= 1000 + f; i++) lines.push(String(f * 10_000 + i));
    files[`in/f${f}.csv`] = lines.join("\n") + "\n";
  }
  const p = await makeProject(EVENTS_YAML, files);
  await runOnce(p);
  const rows = await query<{ file: string; bad: number; n: number; first: number; last: number }>(
    p,
    `SELECT regexp_extract(_source_file, '[^/]+$') AS file,
       count(*) FILTER (WHERE id::INTEGER % 10000 <> _source_row) AS bad,
       count(*) AS n, min(_source_row) AS first, max(_source_row) AS last
     FROM bronze.events GROUP BY 1 ORDER BY 1`,
  );
  assert.deepEqual(rows, [
    { file: "f0.csv", bad: 0, n: 1000, first: 1, last: 1000 },
    { file: "f1.csv", bad: 0, n: 1001, first: 1, last: 1001 },
    { file: "f2.csv", bad: 0, n: 1002, first: 1, last: 1002 },
  ]);
  const manifest = await query<{ n: number; rows: number; hashed: number }>(
    p,
    `SELECT count(*) AS n, sum(rows) AS rows, count(*) FILTER (WHERE length(sha256) = 64) AS hashed
     FROM _sluice.files WHERE status = 'ingested'`,
  );
  assert.deepEqual(manifest, [{ n: 3, rows: 3003, hashed: 3 }]);
});

Deno.test("rows a stopped run landed but did not number are numbered before the next run reads them", async () => {
  const csv = (f: number, n: number) =>
    ["id", ...Array.from({ length: n }, (_, i) => String(f * 10_000 + i + 1))].join("\n") + "\n";
  const p = await makeProject(EVENTS_YAML, { "in/f0.csv": csv(0, 500), "in/f1.csv": csv(1, 700) });
  await runOnce(p, { runId: "run-1", stages: ["extract", "bronze"] });
  // The state a crash between bronze's landing commit and its numbering
  // commit leaves behind: rows and manifest committed, numbers not yet.
  const ctx = await openProject(p);
  try {
    await ctx.db.run(`UPDATE bronze.events SET _source_row = NULL`);
    await ctx.db.run(`INSERT INTO _sluice.bronze_unnumbered VALUES ('events', 'run-1')`);
  } finally {
    ctx.db.close();
  }
  await writeFile(p.dir, "in/f2.csv", csv(2, 300));
  const summary = await runOnce(p, { runId: "run-2" });
  assert.equal(summary.status, "success");
  const rows = await query<{ file: string; bad: number; n: number; last: number }>(
    p,
    `SELECT regexp_extract(_source_file, '[^/]+$') AS file,
       count(*) FILTER (WHERE _source_row IS NULL OR id::INTEGER % 10000 <> _source_row) AS bad,
       count(*) AS n, max(_source_row) AS last
     FROM bronze.events GROUP BY 1 ORDER BY 1`,
  );
  assert.deepEqual(rows, [
    { file: "f0.csv", bad: 0, n: 500, last: 500 },
    { file: "f1.csv", bad: 0, n: 700, last: 700 },
    { file: "f2.csv", bad: 0, n: 300, last: 300 },
  ]);
  assert.deepEqual(await query(p, `SELECT * FROM _sluice.bronze_unnumbered`), []);
  assert.deepEqual(await query(p, `SELECT count(*) AS n FROM silver.events`), [{ n: 1500 }]);
});

Deno.test("NDJSON and Parquet sources land in bronze and type in silver", async () => {
  const yaml = `pipeline: p
lake: ./lake
sources:
  clicks:
    format: ndjson
    path: ./clicks
    glob: "*.ndjson"
  prices:
    format: parquet
    path: ./prices
    glob: "*.parquet"
silver:
  clicks:
    from: clicks
    max_quarantine: "100%" # two of three clicks are meant to be quarantined
    columns:
      user_id: { type: BIGINT, nullable: false }
      page: { type: VARCHAR }
      meta: { type: JSON }
  prices:
    from: prices
    columns:
      sku: { type: VARCHAR }
      price: { type: "DECIMAL(10,2)" }
`;
  const p = await makeProject(yaml, {
    "clicks/a.ndjson":
      `{"user_id": 1, "page": "/a", "meta": {"ref": "x"}}\n{"user_id": "oops", "page": "/b"}\n{"page": "/c"}\n`,
  });
  await Deno.mkdir(join(p.dir, "prices"), { recursive: true });
  const db = await openEngine(":memory:", { allowedDirectories: [p.dir] });
  await db.run(
    `COPY (SELECT 'sku' || i AS sku, i * 1.5 AS price FROM range(1, 4) t(i)) TO ${
      literal(join(p.dir, "prices/p.parquet"))
    } (FORMAT parquet)`,
  );
  db.close();
  const summary = await runOnce(p);
  const silver = summary.stages.find((s) => s.stage === "silver")!.tables;
  const clicks = silver.find((t) => t.table === "clicks")!;
  assert.deepEqual([clicks.rowsIn, clicks.passed, clicks.quarantined], [3, 1, 2]);
  assert.deepEqual(await query(p, "SELECT user_id, page, meta->>'ref' AS ref FROM silver.clicks"), [
    { user_id: 1, page: "/a", ref: "x" },
  ]);
  const prices = silver.find((t) => t.table === "prices")!;
  assert.equal(prices.passed, 3);
  assert.deepEqual(
    await query(p, "SELECT sku, price::DOUBLE AS price FROM silver.prices ORDER BY sku"),
    [{ sku: "sku1", price: 1.5 }, { sku: "sku2", price: 3 }, { sku: "sku3", price: 4.5 }],
  );
});

Deno.test("a source folder that does not exist fails with a message naming it", async () => {
  const p = await makeProject(`pipeline: p
lake: ./lake
sources:
  events: { format: csv, path: ./nowhere }
`);
  await assert.rejects(
    () => runOnce(p),
    /Cannot read source "events": folder .*nowhere does not exist/,
  );
});
