/**
 * Recovery from a bad file: `retractFiles` (`sluice retract`) takes a
 * file's rows out of bronze and everything derived in one transaction;
 * `on_missing` decides what a vanished landed file means; `listLandedFiles`
 * (`sluice files`) shows each file's state.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../core/config/mod.ts";
import { QualityGateError, SourceError, UsageError } from "../core/errors.ts";
import { withRun } from "../runtime/with_run.ts";
import { listLandedFiles } from "../stages/landed_files.ts";
import { retractFiles } from "../stages/retract.ts";
import { makeProject, type Project, query, runOnce, sluice, writeFile } from "./_helpers.ts";

const yaml = (onMissing = "keep") =>
  `pipeline: recovery
lake: ./lake
engine: { threads: 2 }
sources:
  sales:
    format: csv
    path: ./landing/sales
    glob: "*.csv"
    on_change: reingest
    on_missing: ${onMissing}
silver:
  sales:
    from: sales
    mode: append
    columns:
      id: { type: BIGINT }
      amount: { type: INTEGER }
  totals:
    from: sales
    mode: merge
    key: [id]
    columns:
      id: { type: BIGINT }
      amount: { type: INTEGER }
gold:
  revenue:
    sql: select count(*) as sales, sum(amount) as amount from silver.sales
output:
  tables:
    revenue: {}
`;

const GOOD = "id,amount\n1,10\n2,20\n";
const MORE = "id,amount\n3,30\n";
// Every amount fails its cast: over the quarantine budget.
const BAD = "id,amount\n4,x\n5,y\n6,z\n";

async function retract(p: Project, files: string[]) {
  const config = await loadConfig(p.configFile);
  return await withRun(
    config,
    { trigger: "test" },
    (ctx) => retractFiles(ctx, { source: "sales", files }),
  );
}

async function files(p: Project) {
  const config = await loadConfig(p.configFile);
  return await withRun(
    config,
    { trigger: "test" },
    async (ctx) =>
      (await listLandedFiles(ctx)).map((f) => ({
        path: f.path.split("/").pop(),
        state: f.state,
        rows: f.rows,
      })),
  );
}

const revenue = (p: Project) => query(p, "SELECT sales, amount FROM gold.revenue");

Deno.test("retracting a bad file after the gate failed unblocks the run, and the file does not land again", async () => {
  const p = await makeProject(yaml(), { "landing/sales/a.csv": GOOD });
  await runOnce(p);
  await writeFile(p.dir, "landing/sales/b.csv", MORE);
  await writeFile(p.dir, "landing/sales/c.csv", BAD);
  await assert.rejects(() => runOnce(p), QualityGateError);
  await assert.rejects(() => runOnce(p), QualityGateError); // stuck: c.csv's rows stay in bronze
  assert.deepEqual(await revenue(p), [{ sales: 2, amount: 30 }]);

  const r = await retract(p, ["c.csv"]);
  assert.deepEqual(r.files.map((f) => [f.path.split("/").pop(), f.rows]), [["c.csv", 3]]);
  // b.csv, landed by the failed run, is now built and published.
  assert.deepEqual(await revenue(p), [{ sales: 3, amount: 60 }]);
  assert.deepEqual(await query(p, "SELECT count(*) AS n FROM bronze.sales"), [{ n: 3 }]);
  assert.deepEqual(
    await query(
      p,
      "SELECT count(*) AS n FROM silver.sales__quarantine WHERE _source_file LIKE '%c.csv'",
    ),
    [{ n: 0 }],
  );
  assert.deepEqual(
    await query(p, `SELECT command, status FROM _sluice.runs WHERE run_id = '${r.runId}'`),
    [{ command: "retract", status: "success" }],
  );
  assert.deepEqual(
    await query(p, "SELECT rows, reason FROM _sluice.retractions"),
    [{ rows: 3, reason: "retract" }],
  );
  const published = await query<{ n: number }>(
    p,
    `SELECT sales AS n FROM read_parquet('${join(p.dir, "lake/output/revenue")}/**/*.parquet')`,
  );
  assert.deepEqual(published, [{ n: 3 }]);

  // The file is still in the folder, unchanged: the next run does not re-land it.
  await runOnce(p);
  assert.deepEqual(await revenue(p), [{ sales: 3, amount: 60 }]);
  assert.deepEqual(await files(p), [
    { path: "a.csv", state: "landed", rows: 2 },
    { path: "b.csv", state: "landed", rows: 1 },
    { path: "c.csv", state: "retracted", rows: 3 },
  ]);
  // Re-sent fixed, it lands.
  await writeFile(p.dir, "landing/sales/c.csv", "id,amount\n4,40\n");
  await runOnce(p);
  assert.deepEqual(await revenue(p), [{ sales: 4, amount: 100 }]);
});

Deno.test("retracting a good file removes its rows from bronze, every silver mode and gold in one go", async () => {
  const p = await makeProject(yaml(), {
    "landing/sales/a.csv": GOOD,
    "landing/sales/b.csv": "id,amount\n2,25\n3,30\n",
  });
  await runOnce(p);
  assert.deepEqual(
    await query(p, "SELECT id, amount FROM silver.totals ORDER BY id"),
    [{ id: 1, amount: 10 }, { id: 2, amount: 25 }, { id: 3, amount: 30 }],
  );
  await retract(p, [join(p.dir, "landing/sales/b.csv")]);
  assert.deepEqual(await revenue(p), [{ sales: 2, amount: 30 }]);
  // merge: order 2 falls back to a.csv's row, order 3 is gone.
  assert.deepEqual(
    await query(p, "SELECT id, amount FROM silver.totals ORDER BY id"),
    [{ id: 1, amount: 10 }, { id: 2, amount: 20 }],
  );
});

Deno.test("retract refuses a file the source has not landed, naming the landed ones", async () => {
  const p = await makeProject(yaml(), { "landing/sales/a.csv": GOOD });
  await runOnce(p);
  await assert.rejects(() => retract(p, ["nope.csv"]), (e: unknown) => {
    assert.ok(e instanceof UsageError, String(e));
    assert.match(
      e.message,
      /Cannot retract from source "sales": it has no landed file "nope.csv" \(landed: a\.csv/,
    );
    return true;
  });
  assert.deepEqual(await revenue(p), [{ sales: 2, amount: 30 }]);
});

Deno.test("a vanished bad file is kept under on_missing: keep, fails the run under fail, and is retracted under retract", async () => {
  for (const policy of ["keep", "fail", "retract"] as const) {
    const p = await makeProject(yaml(policy), { "landing/sales/a.csv": GOOD });
    await runOnce(p);
    await writeFile(p.dir, "landing/sales/c.csv", BAD);
    await assert.rejects(() => runOnce(p), QualityGateError);
    await Deno.remove(join(p.dir, "landing/sales/c.csv"));
    await writeFile(p.dir, "landing/sales/d.csv", MORE);
    if (policy === "keep") {
      // Its rows stay in bronze: the gate keeps failing, and files says why.
      await assert.rejects(() => runOnce(p), QualityGateError);
      assert.deepEqual((await files(p)).find((f) => f.path === "c.csv")?.state, "missing");
      assert.deepEqual(await query(p, "SELECT count(*) AS n FROM bronze.sales"), [{ n: 6 }]);
    } else if (policy === "fail") {
      await assert.rejects(() => runOnce(p), (e: unknown) => {
        assert.ok(e instanceof SourceError, String(e));
        assert.match(
          e.message,
          /Cannot load source "sales": 1 landed file\(s\) are no longer in .*c\.csv \(on_missing: fail/,
        );
        return true;
      });
    } else {
      await runOnce(p);
      assert.deepEqual(await revenue(p), [{ sales: 3, amount: 60 }]);
      assert.deepEqual(await query(p, "SELECT count(*) AS n FROM bronze.sales"), [{ n: 3 }]);
      assert.deepEqual((await files(p)).find((f) => f.path === "c.csv")?.state, "retracted");
    }
  }
});

Deno.test("a landed good file that vanishes under on_missing: retract leaves silver, in every mode, and gold", async () => {
  const p = await makeProject(yaml("retract"), {
    "landing/sales/a.csv": GOOD,
    "landing/sales/b.csv": "id,amount\n2,25\n3,30\n",
  });
  await runOnce(p);
  await Deno.remove(join(p.dir, "landing/sales/b.csv"));
  const s = await runOnce(p);
  assert.equal(s.noop, false);
  assert.deepEqual(await revenue(p), [{ sales: 2, amount: 30 }]);
  assert.deepEqual(
    await query(p, "SELECT id, amount FROM silver.totals ORDER BY id"),
    [{ id: 1, amount: 10 }, { id: 2, amount: 20 }],
  );
});

Deno.test("files lists each landed file's state: landed, changed, missing", async () => {
  const p = await makeProject(yaml("keep").replace("on_change: reingest", "on_change: ignore"), {
    "landing/sales/a.csv": GOOD,
    "landing/sales/b.csv": MORE,
  });
  await runOnce(p);
  await writeFile(p.dir, "landing/sales/a.csv", "id,amount\n1,11\n2,20\n");
  await Deno.remove(join(p.dir, "landing/sales/b.csv"));
  assert.deepEqual(await files(p), [
    { path: "a.csv", state: "changed", rows: 2 },
    { path: "b.csv", state: "missing", rows: 1 },
  ]);
});

Deno.test("sluice retract and sluice files work from the command line", async () => {
  const p = await makeProject(yaml(), { "landing/sales/a.csv": GOOD, "landing/sales/b.csv": MORE });
  const run = await sluice(["run", "-c", p.configFile]);
  assert.equal(run.code, 0, run.stderr);
  const r = await sluice(["retract", "-c", p.configFile, "--source", "sales", "b.csv", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout) as { files: { path: string; rows: number }[] };
  assert.deepEqual(result.files.map((f) => [f.path.split("/").pop(), f.rows]), [["b.csv", 1]]);
  const f = await sluice(["files", "-c", p.configFile, "--json"]);
  assert.equal(f.code, 0, f.stderr);
  const listed = JSON.parse(f.stdout) as { path: string; state: string }[];
  assert.deepEqual(listed.map((x) => [x.path.split("/").pop(), x.state]), [
    ["a.csv", "landed"],
    ["b.csv", "retracted"],
  ]);
  assert.deepEqual(await revenue(p), [{ sales: 2, amount: 30 }]);
  const again = await sluice(["retract", "-c", p.configFile, "--source", "sales", "b.csv"]);
  assert.equal(again.code, 2, again.stderr); // a usage error: b.csv is no longer landed
});
