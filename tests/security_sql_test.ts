/**
 * SQL from config cannot read files, change settings or run a second
 * statement: the SQL guard (`core/sql_guard.ts`, DuckDB's own parser)
 * refuses it at validate time with file:line:col and again at run time, and
 * the DuckDB sandbox refuses the same attacks on its own when the guard is
 * bypassed. Identifiers from config are rejected or quoted safely.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig, parseConfig } from "../core/config/mod.ts";
import { type Engine, openEngine } from "../core/engine.ts";
import { ConfigError, SandboxError, UsageError } from "../core/errors.ts";
import { ident, isIdentifier, rawIdent } from "../core/quote.ts";
import type { RunContext } from "../core/run_context.ts";
import { checkSql, guardSql } from "../core/sql_guard.ts";
import { gold } from "../stages/gold.ts";
import { validatePipeline } from "../stages/validate.ts";
import { listDlq, replayDlq } from "../streaming/dlq.ts";
import {
  event,
  makeStreamProject,
  streamProject,
  streamYaml,
  withDb,
  writeLanding,
} from "./fixtures/streaming.ts";
import { sluiceOut } from "./_helpers.ts";

/** Gold-model SQL the guard refuses, with what the refusal names. */
const REFUSED_QUERIES: [string, RegExp][] = [
  ["select * from read_text('/etc/passwd')", /read_text\(\)/],
  ["select content from read_blob('/etc/shadow')", /read_blob\(\)/],
  ["select * from read_csv('/etc/passwd')", /read_csv\(\)/],
  ["select * from read_csv_auto('../../x.csv')", /read_csv_auto\(\)/],
  ["select * from read_parquet('/data/*.parquet')", /read_parquet\(\)/],
  ["select * from parquet_scan('x.parquet')", /parquet_scan\(\)/],
  ["select * from parquet_metadata('x.parquet')", /parquet_metadata\(\)/],
  ["select * from read_json('/proc/self/environ')", /read_json\(\)/],
  ["select * from read_json_auto('x.json')", /read_json_auto\(\)/],
  ["select * from read_ndjson_objects('x.ndjson')", /read_ndjson_objects\(\)/],
  ["select * from glob('/etc/*')", /glob\(\)/],
  ["select * from sniff_csv('/etc/passwd')", /sniff_csv\(\)/],
  ["select * from iceberg_scan('s3://b/t')", /iceberg_scan\(\)/],
  ["select * from delta_scan('/data/t')", /delta_scan\(\)/],
  ["select * from '/etc/passwd.csv'", /names a file/],
  ["select * from 'data/orders.parquet'", /names a file/],
  ['select * from "../../secrets.json"', /names a file/],
  ["select getenv('HOME') as h", /getenv\(\)/],
  ["select current_setting('allowed_directories') as d", /current_setting\(\)/],
  ["select * from duckdb_settings()", /duckdb_settings\(\)/],
  ["select * from query('select * from read_text(''/etc/passwd'')')", /query\(\)/],
  ["select 1 as x where exists (select * from read_text('/proc/self/status'))", /read_text/],
  ["with t as (select * from read_text('/etc/hosts')) select * from t", /read_text/],
  ["select 1 as x union all select length(content) from read_text('/etc/passwd')", /read_text/],
  ["select 1; drop table silver.orders", /must be one SELECT statement/],
  ["select 1; select 2", /found 2/],
  ["attach '/tmp/x.duckdb' as x", /ATTACH/],
  ["install httpfs", /INSTALL/],
  ["load httpfs", /not allowed/],
  ["set enable_external_access = true", /not allowed/],
  ["reset allowed_directories", /not allowed/],
  ["pragma enable_profiling", /not allowed/],
  ["copy (select 1) to '/tmp/out.csv'", /not allowed/],
  ["export database '/tmp/dump'", /not allowed/],
  ["create table x as select 1", /not allowed/],
  ["drop table silver.orders", /not allowed/],
  ["checkpoint", /not allowed/],
  ["selec 1", /cannot parse/],
];

/** Expressions (rules, column expr, check sql/where, dlq --where) the guard refuses. */
const REFUSED_EXPRESSIONS: string[] = [
  "1=1) OR (1=1",
  "1) = false OR (1",
  "true; DROP TABLE silver.events",
  "true -- the rest is a comment",
  "true /* unterminated",
  "1, 2",
  "1 FROM silver.orders",
  "true) UNION SELECT * FROM read_text('/etc/passwd') WHERE (true",
  "getenv('HOME') IS NOT NULL",
  "amount > (SELECT count(*) FROM read_text('/etc/passwd'))",
  "email IN (SELECT file FROM glob('/home/*'))",
  "current_setting('threads') > 0",
  "(SELECT count(*) FROM 'x.csv') > 0",
];

const ALLOWED_QUERIES = [
  "select country, sum(amount) as total from silver.orders group by all",
  "with t as (select * from orders) select * from t join customers using (id)",
  "select * from range(10) r(i) join generate_series(1, 3) g(j) on true",
  "select 1 as x;",
  "select 'read_text(''/etc/passwd'')' as just_text",
];

const ALLOWED_EXPRESSIONS = [
  "quantity > 0",
  "nullif(lower(trim(email)), '')",
  "country IN ('DE', 'FR') AND amount BETWEEN 0 AND 1e6",
  "id IN (SELECT id FROM silver.customers)",
  "'it''s -- not a comment' <> name",
  "_reason_code = 'late' AND _source_row >= 4",
];

async function memoryDb(allowed = "/nonexistent_sluice_allowed"): Promise<Engine> {
  return await openEngine(":memory:", {
    allowedDirectories: [allowed],
    schemas: ["bronze", "silver", "gold"],
  });
}

Deno.test("the SQL guard refuses 38 file-reading, setting-changing or multi-statement queries and allows plain SELECTs", async () => {
  const db = await memoryDb();
  try {
    for (const [sql, names] of REFUSED_QUERIES) {
      const problems = await checkSql(db, sql);
      assert.ok(problems.length > 0, `refused: ${sql}`);
      assert.match(problems.map((p) => p.message).join("; "), names, sql);
    }
    for (const sql of ALLOWED_QUERIES) assert.deepEqual(await checkSql(db, sql), [], sql);
    console.log(`  ${REFUSED_QUERIES.length} queries refused, ${ALLOWED_QUERIES.length} allowed`);
  } finally {
    db.close();
  }
});

Deno.test("an expression must parse as ONE expression: 1=1) OR (1=1, comments and ; are refused", async () => {
  const db = await memoryDb();
  try {
    for (const sql of REFUSED_EXPRESSIONS) {
      assert.ok((await checkSql(db, sql, { kind: "expression" })).length > 0, `refused: ${sql}`);
    }
    for (const sql of ALLOWED_EXPRESSIONS) {
      assert.deepEqual(await checkSql(db, sql, { kind: "expression" }), [], sql);
    }
    await assert.rejects(
      () => guardSql(db, "getenv('HOME') = ''", { what: "rule x", kind: "expression" }),
      (e: unknown) =>
        e instanceof SandboxError && /^Cannot run rule x: the SQL calls getenv\(\)/.test(e.message),
    );
  } finally {
    db.close();
  }
});

Deno.test("with the guard bypassed, the DuckDB sandbox still refuses file reads, writes, ATTACH, INSTALL and SET", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_sandbox_" });
  const db = await memoryDb(dir);
  try {
    const attacks = [
      "select * from read_text('/etc/passwd')",
      "select * from read_csv('/etc/passwd')",
      "select * from glob('/etc/*')",
      "select * from '/etc/hostname.csv'",
      `select * from read_text('${dir}/../../etc/passwd')`,
      "copy (select 1) to '/tmp/sluice_sandbox_escape.csv'",
      "attach '/tmp/sluice_sandbox_escape.duckdb' as x",
      "install httpfs",
      "set enable_external_access = true",
      "set allowed_directories = ['/']",
      "reset lock_configuration",
    ];
    for (const sql of attacks) {
      await assert.rejects(() => db.all(sql), `the engine refuses: ${sql}`);
    }
    await assert.rejects(() => db.all("select * from read_text('/etc/passwd')"), SandboxError);
    // Inside the allowed folder it works: the sandbox, not a broken engine, refused.
    await Deno.writeTextFile(join(dir, "ok.txt"), "hello");
    const ok = await db.all(`select content from read_text('${join(dir, "ok.txt")}')`);
    assert.deepEqual(ok, [{ content: "hello" }]);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

const PROJECT = `pipeline: shop
lake: ./lake
sources:
  orders: { format: csv, path: ./landing }
silver:
  orders:
    from: orders
    columns:
      id: { type: BIGINT }
      note: { type: VARCHAR, expr: "getenv('HOME')" }
    rules:
      - { name: sneaky, sql: "id > (select count(*) from read_text('/etc/passwd'))" }
    checks:
      - expression: { name: glob_check, sql: "id IN (select 1 from glob('/etc/*'))" }
      - not_null: { column: id, where: "1=1) OR (1=1" }
gold:
  leak:
    sql: |
      select content
      from read_text('/etc/passwd')
`;

Deno.test("validate refuses file-reading gold, rule, expr and check SQL with file:line:col and the key path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_guard_" });
  try {
    const file = join(dir, "pipeline.yaml");
    await Deno.writeTextFile(file, PROJECT);
    const config = await loadConfig(file);
    const e = await validatePipeline(config, { locate: config.locate }).then(() => null, (e) => e);
    assert.ok(e instanceof ConfigError, String(e));
    const byPath = new Map(e.problems.map((p) => [p.path, p]));
    const expect: [string, RegExp][] = [
      ["silver.orders.columns.note.expr", /getenv\(\)/],
      ["silver.orders.rules.0.sql", /read_text\(\)/],
      ["silver.orders.checks.0.expression.sql", /glob\(\)/],
      ["silver.orders.checks.1.not_null.where", /cannot parse as one SQL expression/],
      ["gold.leak.sql", /read_text\(\).*\(SQL line 2 col 6\)/],
    ];
    for (const [path, message] of expect) {
      const p = byPath.get(path);
      assert.ok(p, `a problem at ${path}: ${e.message}`);
      assert.match(p.message, /^refused: the SQL /);
      assert.match(p.message, message);
      assert.ok(p.line > 0 && p.col > 0, `${path} has a position`);
      assert.equal(p.file, file);
    }
    assert.equal(byPath.get("gold.leak.sql")!.line, 18, "the line of its sql: key");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gold at run time refuses a model that reads /etc/passwd, even without validate", async () => {
  const config = parseConfig(
    `pipeline: shop
lake: ./lake
sources:
  orders: { format: csv, path: ./landing }
gold:
  leak: { sql: "select content from read_text('/etc/passwd')" }
`,
    "/srv/shop/pipeline.yaml",
  );
  const db = await memoryDb();
  try {
    const ctx = { db, config, runId: "test" } as unknown as RunContext;
    const e = await gold(ctx).then(() => null, (e) => e);
    assert.ok(e instanceof SandboxError, String(e));
    assert.match(
      e.message,
      /^Cannot run gold model "leak": the SQL calls table function read_text\(\).*\(at line 1 col 21\)/,
    );
    assert.deepEqual(await db.all("select count(*)::INTEGER as n from duckdb_tables()"), [{
      n: 0,
    }]);
  } finally {
    db.close();
  }
});

/** Names an attacker might put in config where an identifier is expected. */
const INJECTION_NAMES = [
  'orders"; DROP TABLE x; --',
  "orders'; DROP TABLE x; --",
  "orders; DROP TABLE x",
  "orders -- comment",
  "orders /* c */",
  "a.b",
  "silver.orders",
  "1orders",
  "",
  " orders",
  "orders ",
  "ord ers",
  "ord\ters",
  "ord\ners",
  "ord\u0000ers",
  "оrders", // Cyrillic о
  "ordеrs", // Cyrillic е
  "orders\u200b", // zero-width space
  "ｏｒｄｅｒｓ", // full-width
  "ordérs",
  "orders`",
  "orders)",
  "orders(",
  "x OR 1=1",
  "$1",
  "?",
  "*",
  "orders\\",
  "../orders",
  "a".repeat(64),
  "orders\u202e", // right-to-left override
  '""',
];

/** Reserved words are valid names: they are always quoted. */
const RESERVED = ["select", "from", "order", "group", "table", "where", "user", "default"];

Deno.test("32 injection strings as config names are rejected by validation with their key path", () => {
  for (const name of INJECTION_NAMES) {
    assert.equal(isIdentifier(name), false, JSON.stringify(name));
    assert.throws(() => ident(name), TypeError);
    const yaml = `pipeline: shop
lake: ./lake
sources:
  orders: { format: csv, path: ./landing }
silver:
  orders:
    from: orders
    columns:
      ${JSON.stringify(name)}: { type: VARCHAR }
`;
    const e = (() => {
      try {
        parseConfig(yaml, "/srv/shop/pipeline.yaml");
      } catch (e) {
        return e;
      }
    })();
    assert.ok(e instanceof ConfigError, `rejected: ${JSON.stringify(name)}`);
    assert.ok(
      e.problems.some((p) => p.path.startsWith("silver.orders.columns")),
      `${JSON.stringify(name)}: ${e.message}`,
    );
  }
  console.log(`  ${INJECTION_NAMES.length} injection names rejected`);
});

Deno.test("reserved words and hostile file-header names are quoted safely and round-trip through DuckDB", async () => {
  const db = await memoryDb();
  try {
    for (const name of RESERVED) {
      assert.ok(isIdentifier(name));
      await db.run(`CREATE TABLE ${ident(name)} (${ident(name)} VARCHAR)`);
      await db.run(`INSERT INTO ${ident(name)} VALUES ('ok')`);
      const rows = await db.all(`SELECT ${ident(name)} FROM ${ident(name)}`);
      assert.deepEqual(rows, [{ [name]: "ok" }], name);
    }
    // Header names come from files, not config: rawIdent keeps them as text.
    const headers = INJECTION_NAMES.filter((n) => n !== "" && !n.includes("\0"));
    const cols = headers.map((h, i) => `${rawIdent(h)} VARCHAR DEFAULT 'v${i}'`);
    await db.run(`CREATE TABLE hostile (${cols.join(", ")})`);
    await db.run(`INSERT INTO hostile DEFAULT VALUES`);
    const [row] = await db.all(`SELECT ${headers.map(rawIdent).join(", ")} FROM hostile`);
    assert.deepEqual(Object.keys(row), headers);
    assert.deepEqual(Object.values(row), headers.map((_, i) => `v${i}`));
    assert.deepEqual(
      (await db.all("SELECT table_name FROM duckdb_tables() ORDER BY 1")).length,
      RESERVED.length + 1,
      "no statement hidden in a name ran",
    );
    assert.throws(() => rawIdent("a\0b"), TypeError);
  } finally {
    db.close();
  }
});

Deno.test('dlq --where "1=1) OR (1=1" and other filter escapes are refused on a real stream DLQ', async () => {
  const p = await makeStreamProject(streamYaml());
  await writeLanding(
    p,
    "a.ndjson",
    [event("e1", 0), "{not json", event("e3", 2)].join("\n") + "\n",
  );
  await streamProject(p);
  await withDb(p, async (ctx) => {
    assert.equal((await listDlq(ctx, { where: "_source_row = 2" })).total, 1);
    for (
      const where of [
        "1=1) OR (1=1",
        "_source_row = 99) OR (TRUE",
        "false) UNION ALL SELECT * FROM silver.events WHERE (true",
        "true -- c",
        "_payload IN (SELECT content FROM read_text('/etc/passwd'))",
      ]
    ) {
      await assert.rejects(
        () => listDlq(ctx, { where }),
        (e: unknown) => e instanceof UsageError && /one SQL condition/.test(e.message),
        where,
      );
      await assert.rejects(() => replayDlq(ctx, { where }, { dryRun: true }), UsageError, where);
    }
  });
});

function runCli(file: string): Promise<{ code: number; out: string }> {
  return sluiceOut(["--log-format", "text", "run", "-c", file]);
}

Deno.test("sluice run (no validate) refuses a file-reading silver rule (exit 1) and check expression (gate, exit 3)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_guard_run_" });
  try {
    await Deno.mkdir(join(dir, "landing"));
    await Deno.writeTextFile(join(dir, "landing", "a.csv"), "id\n1\n");
    const file = join(dir, "pipeline.yaml");
    const base = `pipeline: shop
lake: ./lake
sources:
  orders: { format: csv, path: ./landing }
silver:
  orders:
    from: orders
    columns:
      id: { type: BIGINT }
`;
    await Deno.writeTextFile(
      file,
      base + `    rules:
      - { name: sneaky, sql: "id > (select count(*) from read_text('/etc/passwd'))" }
`,
    );
    const rule = await runCli(file);
    assert.equal(rule.code, 1, rule.out);
    assert.match(
      rule.out,
      /Cannot run silver "orders" rule "sneaky": the SQL calls table function read_text\(\)/,
    );
    await Deno.writeTextFile(
      file,
      base + `    checks:
      - expression: { name: globber, sql: "id IN (select 1 from glob('/etc/*'))" }
`,
    );
    const check = await runCli(file);
    assert.equal(check.code, 3, check.out);
    assert.match(
      check.out,
      /globber \(expression, error, error\): refused: the SQL calls table function glob\(\)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a stream window aggregate that reads a file is refused by validate and by the stream", async () => {
  const yaml = streamYaml({ windows: true }).replace(
    'revenue: "sum(amount)"',
    `revenue: "sum(amount) + (select count(*) from read_text('/etc/passwd'))"`,
  );
  const p = await makeStreamProject(yaml);
  await writeLanding(p, "a.ndjson", event("e1", 0) + "\n");
  const config = await loadConfig(p.configFile);
  const e = await validatePipeline(config, { locate: config.locate }).then(() => null, (e) => e);
  assert.ok(e instanceof ConfigError, String(e));
  assert.match(
    e.message,
    /streaming\.windows\.per_minute\.aggregates\.revenue: refused: the SQL calls table function read_text\(\)/,
  );
  const run = await streamProject(p).then(() => null, (e) => e);
  assert.ok(run instanceof SandboxError, String(run));
  assert.match(run.message, /^Cannot run window "per_minute" aggregate "revenue": the SQL calls/);
});
