import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../core/config/mod.ts";
import { ConfigError } from "../core/errors.ts";
import { openEngine } from "../core/engine.ts";
import { validatePipeline } from "../stages/validate.ts";
import { makeProject, sluice, writeFile } from "./_helpers.ts";

const FLIGHTS_YAML = (format: string, glob: string, columns: string) =>
  `pipeline: flights
lake: ./lake
sources:
  flights:
    format: ${format}
    path: ./landing
    glob: "${glob}"
silver:
  flights:
    from: flights
    columns:
${columns}
`;

async function problemsOf(file: string): Promise<string[]> {
  const config = await loadConfig(file);
  const e = await validatePipeline(config, { locate: config.locate }).then(() => null, (e) => e);
  if (e === null) return [];
  assert.ok(e instanceof ConfigError, String(e));
  return e.problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`);
}

Deno.test("validate reports a silver column the CSV source does not have, with line:col and the columns", async () => {
  const p = await makeProject(
    FLIGHTS_YAML(
      "csv",
      "*.csv",
      `      date: { type: DATE }
      delay: { type: INTEGER }
      tail_number: { type: VARCHAR }`,
    ),
    { "landing/f1.csv": "date,delay,origin,tail_numbr\n2026-01-01,5,SFO,N1\n" },
  );
  assert.deepEqual(await problemsOf(p.configFile), [
    '14:20 silver.flights.columns.tail_number: source "flights" has no column "tail_number" ' +
    '(columns: date, delay, origin, tail_numbr; did you mean "tail_numbr"?)',
  ]);
  // The CLI: exit 2, FILE:LINE:COL, no generated SQL or internal alias.
  const r = await sluice(["validate", "-c", p.configFile]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /pipeline\.yaml:14:20 silver\.flights\.columns\.tail_number: source "flights"/,
  );
  assert.doesNotMatch(r.stderr, /__raw|SELECT/);
});

Deno.test("validate reads Parquet schemas and NDJSON and JSON keys for the column check", async () => {
  const cols = `      id: { type: BIGINT }
      amount: { type: DOUBLE }`;
  const pq = await makeProject(FLIGHTS_YAML("parquet", "*.parquet", cols));
  await Deno.mkdir(join(pq.dir, "landing"));
  const db = await openEngine(":memory:", { allowedDirectories: [pq.dir] });
  await db.run(`COPY (SELECT 1 AS id, 2.5 AS amt) TO '${join(pq.dir, "landing/a.parquet")}'`);
  db.close();
  assert.deepEqual(await problemsOf(pq.configFile), [
    '13:15 silver.flights.columns.amount: source "flights" has no column "amount" ' +
    "(columns: id, amt)",
  ]);
  const nd = await makeProject(FLIGHTS_YAML("ndjson", "*.ndjson", cols), {
    "landing/a.ndjson": '{"id": 1, "amount": 2}\n{"id": 2, "note": "x"}\n',
  });
  assert.deepEqual(await problemsOf(nd.configFile), []);
  const js = await makeProject(FLIGHTS_YAML("json", "*.json", cols), {
    "landing/a.json": '[{"id": 1}, {"id": 2, "amount_usd": 2}]',
  });
  assert.deepEqual(await problemsOf(js.configFile), [
    '13:15 silver.flights.columns.amount: source "flights" has no column "amount" ' +
    "(columns: id, amount_usd)",
  ]);
});

Deno.test("an unknown type is a config error at its key with a did-you-mean from DuckDB's types", async () => {
  const p = await makeProject(
    FLIGHTS_YAML(
      "csv",
      "*.csv",
      `      delay: { type: INTEGR }
      date: { type: "DECIMALL(10,2)" }`,
    ),
    { "landing/f1.csv": "date,delay\n2026-01-01,5\n" },
  );
  assert.deepEqual(await problemsOf(p.configFile), [
    '12:22 silver.flights.columns.delay.type: unknown type "INTEGR" (did you mean "INTEGER"?)',
    '13:21 silver.flights.columns.date.type: unknown type "DECIMALL(10,2)" ' +
    '(did you mean "DECIMAL(10,2)"?)',
  ]);
  const r = await sluice(["validate", "-c", p.configFile]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /:12:\d+ silver\.flights\.columns\.delay\.type: unknown type "INTEGR"/);
});

Deno.test("validate reports a source folder that does not exist, and a file bronze could not read", async () => {
  const p = await makeProject(
    FLIGHTS_YAML("csv", "*.csv", `      delay: { type: INTEGER }`),
  );
  assert.deepEqual(await problemsOf(p.configFile), [
    `6:11 sources.flights.path: folder ${join(p.dir, "landing")} does not exist`,
  ]);
  await writeFile(p.dir, "landing/dup.csv", "delay,Delay\n1,2\n");
  const problems = await problemsOf(p.configFile);
  assert.equal(problems.length, 1);
  assert.match(
    problems[0],
    /sources\.flights: Cannot load source "flights": file dup\.csv has the column name "Delay" twice/,
  );
});

Deno.test("at run time a missing source column fails with validate's message, never an internal alias", async () => {
  const p = await makeProject(
    FLIGHTS_YAML(
      "csv",
      "*.csv",
      `      delay: { type: INTEGER }
      tail_number: { type: VARCHAR }`,
    ),
    { "landing/f1.csv": "date,delay\n2026-01-01,5\n" },
  );
  const r = await sluice(["run", "-c", p.configFile]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /pipeline\.yaml:13:20 silver\.flights\.columns\.tail_number: source \\?"flights\\?" has no column \\?"tail_number\\?" \(columns: date, delay\)/,
  );
  assert.doesNotMatch(r.stderr, /__raw|__src/);
});

Deno.test("at run time an unknown type is a config error at its key (exit 2), not generated SQL", async () => {
  const p = await makeProject(
    FLIGHTS_YAML("csv", "*.csv", `      delay: { type: INTEGR }`),
    { "landing/f1.csv": "date,delay\n2026-01-01,5\n" },
  );
  const r = await sluice(["run", "-c", p.configFile]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /pipeline\.yaml:12:22 silver\.flights\.columns\.delay\.type: unknown type \\?"INTEGR\\?" \(did you mean \\?"INTEGER\\?"\?\)/,
  );
  assert.doesNotMatch(r.stderr, /TRY_CAST|__raw|SELECT/);
});
