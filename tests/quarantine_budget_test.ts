/**
 * The quarantine budget (`max_quarantine`) per silver table: a systematic
 * mistake that quarantines most rows stops the publish (exit 3) and names
 * the top reasons; a few quarantined rows are a warning.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { QualityGateError } from "../core/errors.ts";
import { makeProject, query, runOnce, sluice, writeFile } from "./_helpers.ts";

const yaml = (column: string, budget = "") =>
  `pipeline: budget
lake: ./lake
engine: { threads: 2 }
sources:
  flights:
    format: csv
    path: ./landing/flights
    glob: "*.csv"
silver:
  flights:
    from: flights
    mode: append
    ${budget}
    columns:
      flight: { type: VARCHAR }
      ${column}
      delay: { type: INTEGER }
gold:
  delays:
    sql: select count(*) as flights, sum(delay) as minutes from flights
output:
  tables:
    delays: {}
`;

const flights = (n: number, day: (i: number) => string, delay = (i: number) => String(i)) =>
  "flight,day,delay\n" +
  Array.from({ length: n }, (_, i) => `F${i},${day(i)},${delay(i)}`).join("\n") + "\n";

async function outputFiles(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else out[p] = (await Deno.stat(p)).mtime?.getTime() ?? 0;
    }
  };
  await walk(dir);
  return out;
}

Deno.test("a date column without format quarantines every row: exit 3, gold and output untouched, the top reason named", async () => {
  // Day 1 is ISO: DATE casts it. Day 2's file is day/month/year: without
  // `format:` every row fails the cast.
  const p = await makeProject(yaml("day: { type: DATE }"), {
    "landing/flights/d1.csv": flights(
      20,
      (i) => `2026-01-${String(1 + (i % 28)).padStart(2, "0")}`,
    ),
  });
  const first = await sluice(["run", "-c", p.configFile]);
  assert.equal(first.code, 0, first.stderr);
  const goldBefore = await query(p, "SELECT * FROM gold.delays");
  assert.deepEqual(goldBefore, [{ flights: 20, minutes: 190 }]);
  const published = await outputFiles(join(p.dir, "lake", "output"));
  assert.ok(Object.keys(published).length > 0);

  await writeFile(
    p.dir,
    "landing/flights/d2.csv",
    flights(40, (i) => `${String(1 + (i % 28)).padStart(2, "0")}/02/2026`),
  );
  const second = await sluice(["run", "-c", p.configFile]);
  assert.equal(second.code, 3, second.stderr);
  // The CLI logs JSON lines when not on a terminal: read the quotes back.
  const said = (second.stdout + second.stderr).replaceAll('\\"', '"');
  assert.match(said, /40 of 40 rows \(100%\) quarantined, more than max_quarantine 10%/);
  assert.match(said, /column "day": cannot cast … to DATE \(40 rows, e\.g\. "\d\d\/02\/2026"\)/);
  assert.deepEqual(await query(p, "SELECT * FROM gold.delays"), goldBefore);
  assert.deepEqual(await query(p, "SELECT count(*) AS n FROM silver.flights"), [{ n: 20 }]);
  assert.deepEqual(await outputFiles(join(p.dir, "lake", "output")), published);
  // The failed run's evidence is kept.
  assert.deepEqual(
    await query(p, "SELECT count(*) AS n FROM silver.flights__quarantine"),
    [{ n: 40 }],
  );
});

Deno.test("quarantined rows within the budget are a warning and the run publishes", async () => {
  const p = await makeProject(yaml("day: { type: VARCHAR }"), {
    "landing/flights/d1.csv": flights(50, () => "x", (i) => (i < 3 ? "late" : String(i))),
  });
  const summary = await runOnce(p) as Awaited<ReturnType<typeof runOnce>> & {
    checks: { check: string; severity: string; status: string; message: string }[];
  };
  const budget = summary.checks.find((c) => c.check === "max_quarantine")!;
  assert.equal(budget.status, "fail");
  assert.equal(budget.severity, "warn");
  assert.match(budget.message, /^3 of 50 rows \(6\.00%\) quarantined, within max_quarantine 10%/);
  assert.match(
    budget.message,
    /column "delay": cannot cast … to INTEGER \(3 rows, e\.g\. "late"\)/,
  );
  assert.deepEqual(await query(p, "SELECT flights FROM gold.delays"), [{ flights: 47 }]);
});

Deno.test("max_quarantine takes a row count or a percentage; over it the gate fails, at zero quarantine nothing is reported", async () => {
  const bad = flights(50, () => "x", (i) => (i < 3 ? "late" : String(i)));
  const count = await makeProject(yaml("day: { type: VARCHAR }", "max_quarantine: 2"), {
    "landing/flights/d1.csv": bad,
  });
  await assert.rejects(() => runOnce(count), (e: unknown) => {
    assert.ok(e instanceof QualityGateError, String(e));
    assert.match(
      e.message,
      /silver\.flights max_quarantine .*3 of 50 rows .* more than max_quarantine 2/,
    );
    return true;
  });
  const pct = await makeProject(yaml("day: { type: VARCHAR }", 'max_quarantine: "5%"'), {
    "landing/flights/d1.csv": bad,
  });
  await assert.rejects(() => runOnce(pct), QualityGateError);
  const clean = await makeProject(yaml("day: { type: VARCHAR }", "max_quarantine: 0"), {
    "landing/flights/d1.csv": flights(5, () => "x"),
  });
  const s = await runOnce(clean) as Awaited<ReturnType<typeof runOnce>> & {
    checks: { check: string; status: string }[];
  };
  // Nothing quarantined: no budget result at all.
  assert.equal(s.checks.find((c) => c.check === "max_quarantine"), undefined);
});
