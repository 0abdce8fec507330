import assert from "node:assert/strict";
import { join } from "node:path";
import { openEngine } from "../core/engine.ts";
import { SluiceError, SourceError } from "../core/errors.ts";
import { type BadCase, badCases } from "./fixtures/bad/corpus.ts";
import { makeProject, query, runOnce, sluice } from "./_helpers.ts";

function yamlFor(c: BadCase, glob: string): string {
  return `pipeline: bad
lake: ./lake
engine: { threads: 2 }
sources:
  src:
    format: ${c.format}
    path: ./landing
    glob: ${JSON.stringify(glob)}
${c.sourceYaml ? `    ${c.sourceYaml}\n` : ""}`;
}

async function writeParquet(path: string, select: string): Promise<void> {
  const db = await openEngine(":memory:", { allowedDirectories: [join(path, "..")] });
  try {
    await db.run(`COPY (${select}) TO '${path}' (FORMAT parquet)`);
  } finally {
    db.close();
  }
}

async function writeCase(dir: string, c: BadCase): Promise<void> {
  const path = join(dir, "landing", c.file);
  if (c.bytes) return await Deno.writeFile(path, c.bytes);
  await writeParquet(path, c.parquet!.select);
  const b = await Deno.readFile(path);
  if (c.parquet!.damage === "truncate") {
    await Deno.writeFile(path, b.subarray(0, Math.floor(b.length / 2)));
  } else if (c.parquet!.damage === "flip_middle") {
    // Garble the footer's metadata, keeping the PAR1 magic at both ends.
    for (let i = b.length - 60; i < b.length - 8; i++) b[i] = 0xaa;
    await Deno.writeFile(path, b);
  }
}

async function prepare(c: BadCase) {
  const glob = c.before ? `*.${c.format}` : c.file;
  const p = await makeProject(yamlFor(c, glob));
  await Deno.mkdir(join(p.dir, "landing"), { recursive: true });
  if (c.before) {
    const first = join(p.dir, "landing", c.before.file);
    if (c.before.parquet) await writeParquet(first, c.before.parquet);
    else await Deno.writeFile(first, c.before.bytes!);
    const s = await runOnce(p, { stages: ["extract", "bronze"] });
    assert.equal(s.status, "success");
  }
  await writeCase(p.dir, c);
  return p;
}

/** The messages on stderr: plain lines, or the `message` of JSON log lines. */
function messages(stderr: string): string[] {
  return stderr.trim().split("\n").map((l) => {
    if (!l.startsWith("{")) return l;
    try {
      return String(JSON.parse(l).message ?? l);
    } catch {
      return l;
    }
  });
}

const totals = { fixtures: 0, rowsCompared: 0, errors: 0, rejected: 0 };

for (const c of badCases()) {
  const label = "expect" in c && "error" in c.expect
    ? "fails with one line naming the file"
    : `lands ${(c.expect as { landed: number }).landed} and rejects ${
      (c.expect as { rejected: number }).rejected
    }`;
  Deno.test(`bad input ${c.format} ${c.file}: ${label}`, async () => {
    const p = await prepare(c);
    totals.fixtures++;
    if ("error" in c.expect) {
      const expected = c.expect.error;
      await assert.rejects(() => runOnce(p, { stages: ["extract", "bronze"] }), (e) => {
        assert.ok(e instanceof SluiceError, `${c.file}: not a Sluice error: ${e}`);
        assert.ok(e instanceof SourceError, `${c.file}: ${e}`);
        const message = (e as Error).message;
        assert.ok(!message.includes("\n"), `${c.file}: more than one line: ${message}`);
        assert.match(message, expected);
        assert.ok(message.includes(c.file), `${c.file}: the message does not name the file`);
        return true;
      });
      totals.errors++;
      // Nothing of the failed file landed.
      const landed = await query<{ n: number }>(
        p,
        `SELECT count(*)::INTEGER AS n FROM _sluice.files WHERE path = '${c.file}'`,
      );
      assert.equal(landed[0].n, 0);
      return;
    }
    const expect = c.expect;
    const summary = await runOnce(p, { stages: ["extract", "bronze"] });
    assert.equal(summary.status, "success");
    const bronze = summary.stages.find((s) => s.stage === "bronze")!.tables.find((t) =>
      t.table === "src"
    )!;
    const landed = await query<{ n: number }>(
      p,
      `SELECT count(*)::INTEGER AS n FROM bronze.src WHERE _source_file = '${c.file}'`,
    );
    const rejects = await query<{ n: number; reasons: string | null; files: string | null }>(
      p,
      `SELECT count(*)::INTEGER AS n, string_agg(reason, ' || ') AS reasons,
         string_agg(DISTINCT file, ',') AS files
       FROM (SELECT * FROM duckdb_tables() WHERE schema_name = 'bronze'
             AND table_name = 'src__rejects') t, bronze.src__rejects`,
    ).catch(() => [{ n: 0, reasons: null, files: null }]);
    assert.equal(landed[0].n, expect.landed, `${c.file}: rows landed`);
    assert.equal(rejects[0].n, expect.rejected, `${c.file}: records rejected`);
    // Conservation against the independent count of the file's records.
    assert.equal(landed[0].n + rejects[0].n, c.records, `${c.file}: rows in = landed + rejected`);
    assert.equal(bronze.rowsIn, bronze.passed + bronze.quarantined);
    assert.equal(bronze.quarantined, expect.rejected);
    totals.rowsCompared += c.records;
    totals.rejected += rejects[0].n;
    if (expect.rejected > 0) assert.equal(rejects[0].files, c.file);
    if (expect.reason) {
      for (const r of rejects[0].reasons!.split(" || ")) assert.match(r, expect.reason);
    }
    if (expect.check) {
      const [row] = await query<{ v: unknown }>(p, expect.check);
      assert.deepEqual(row.v, expect.equals, `${c.file}: ${expect.check}`);
    }
  });
}

Deno.test("rejected CSV and NDJSON records carry file, line and the raw text", async () => {
  const [c] = badCases().filter((b) => b.file === "ragged_too_few.csv");
  const p = await prepare(c);
  await runOnce(p, { stages: ["extract", "bronze"] });
  const rows = await query<Record<string, unknown>>(
    p,
    `SELECT file, record, line, raw, _run_id IS NOT NULL AS has_run FROM bronze.src__rejects`,
  );
  assert.deepEqual(rows, [{
    file: "ragged_too_few.csv",
    record: 2,
    line: 3,
    raw: "2,x",
    has_run: true,
  }]);
  const [n] = badCases().filter((b) => b.file === "truncated_last_line.ndjson");
  const q = await prepare(n);
  await runOnce(q, { stages: ["extract", "bronze"] });
  const nd = await query<Record<string, unknown>>(
    q,
    `SELECT file, line, byte_offset, raw FROM bronze.src__rejects`,
  );
  const good = new TextEncoder().encode(
    Array.from({ length: 99 }, (_, i) => `{"id": ${i + 1}, "name": "n${i + 1}"}`).join("\n") +
      "\n",
  ).length;
  assert.deepEqual(nd, [{
    file: "truncated_last_line.ndjson",
    line: 100,
    byte_offset: good,
    raw: '{"id": 100, "na',
  }]);
});

Deno.test("a glob that matches nothing on the first run fails with one line naming the folder", async () => {
  const p = await makeProject(yamlFor({
    file: "x",
    format: "csv",
    records: 0,
    expect: { landed: 0, rejected: 0 },
    outcome: "",
  }, "orders_*.csv"));
  await Deno.mkdir(join(p.dir, "landing"));
  const r = await sluice(["run", "-c", p.configFile]);
  assert.equal(r.code, 1);
  const lines = messages(r.stderr).filter((l) => l.includes("sluice:"));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(
    lines[0],
    /Cannot load source "src": no file in \S+landing matches "orders_\*\.csv" and nothing was landed before/,
  );
});

Deno.test("unrecoverable files exit 1 with one line and no stack trace from the CLI", async () => {
  for (const name of ["really_gzip.csv", "csv_named.parquet", "truncated.parquet"]) {
    const [c] = badCases().filter((b) => b.file === name);
    const p = await prepare(c);
    const r = await sluice(["run", "-c", p.configFile]);
    assert.equal(r.code, 1, `${name}: ${r.stderr}`);
    assert.ok(!/\n\s+at /.test(r.stderr), `${name}: stack trace in ${r.stderr}`);
    assert.ok(!/internal error/.test(r.stderr), r.stderr);
    const errors = messages(r.stderr).filter((l) => l.includes(name) && l.includes("sluice:"));
    assert.equal(errors.length, 1, r.stderr);
    assert.ok(!errors[0].includes("\n"));
    assert.ok(!/Possible fixes|sniffing/i.test(r.stderr), r.stderr);
  }
});

Deno.test("bad-input corpus totals", () => {
  console.log(
    `bad-input corpus: ${totals.fixtures} fixtures tried, ${totals.rowsCompared} rows compared, ` +
      `${totals.rejected} records rejected, ${totals.errors} one-line errors`,
  );
  // The corpus itself: at least 25 cases, each file name once.
  const files = badCases().map((c) => c.file);
  assert.ok(files.length >= 25, `${files.length} cases`);
  assert.equal(new Set(files).size, files.length);
});

Deno.test("rows after rejected CSV records keep their record numbers in _source_row", async () => {
  const lines = ["id,a,b"];
  const rejected = new Set([3, 4, 9, 20]);
  for (let i = 1; i <= 25; i++) lines.push(rejected.has(i) ? `${i},short` : `${i},x,y`);
  const p = await makeProject(
    `pipeline: bad
lake: ./lake
sources:
  src:
    format: csv
    path: ./landing
`,
    { "landing/r.csv": lines.join("\n") + "\n" },
  );
  await runOnce(p, { stages: ["extract", "bronze"] });
  const rows = await query<{ id: string; row: number }>(
    p,
    `SELECT id, _source_row AS row FROM bronze.src ORDER BY _source_row`,
  );
  assert.equal(rows.length, 21);
  for (const r of rows) assert.equal(Number(r.row), Number(r.id), `row of id ${r.id}`);
  const rej = await query<{ record: number }>(
    p,
    `SELECT record FROM bronze.src__rejects ORDER BY record`,
  );
  assert.deepEqual(rej.map((r) => Number(r.record)), [3, 4, 9, 20]);
});
