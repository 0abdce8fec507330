import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { closest, loadConfig, parseConfig, redactSecrets } from "../core/config/mod.ts";
import { ConfigError } from "../core/errors.ts";

const VALID = `pipeline: shop
lake: ./lake
engine: { threads: 2, memory_limit: 1GB }
sources:
  orders: { format: csv, path: ./landing, glob: "orders_*.csv", options: { delimiter: ",", header: true } }
silver:
  orders:
    from: orders
    key: [order_id]
    order_by: updated_at
    mode: merge
    columns:
      order_id: { type: BIGINT, nullable: false }
      updated_at: { type: TIMESTAMP }
      country: { type: VARCHAR, expr: "upper(trim(country))" }
    rules:
      - { name: positive_qty, sql: "quantity > 0" }
gold:
  revenue: { sql: "select country, count(*) n from orders group by 1" }
output:
  tables: { revenue: { partition_by: [country] } }
`;

/** An env getter over a fixed map, so tests do not depend on the real environment. */
function envOf(vars: Record<string, string> = {}): (name: string) => string | undefined {
  return (name) => vars[name];
}

/** Parses `text` expecting failure; returns `LINE:COL path: message` lines. */
function problemsOf(text: string, vars: Record<string, string> = {}): string[] {
  try {
    parseConfig(text, "/srv/shop/pipeline.yaml", { env: envOf(vars) });
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    return e.problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`);
  }
  assert.fail("expected the config to be rejected");
}

Deno.test("a valid full config loads with defaults filled in and paths resolved", () => {
  const config = parseConfig(VALID, "/srv/shop/pipeline.yaml", { env: envOf() });
  assert.equal(config.pipeline, "shop");
  assert.equal(config.file, "/srv/shop/pipeline.yaml");
  assert.equal(config.dir, "/srv/shop");
  assert.equal(config.lake, "/srv/shop/lake");
  assert.deepEqual(config.engine, {
    threads: 2,
    memory_limit: "1GB",
    database: "/srv/shop/lake/sluice.duckdb",
    temp_directory: "/srv/shop/lake/tmp",
  });
  assert.deepEqual(config.sources.orders, {
    format: "csv",
    path: "/srv/shop/landing",
    glob: "orders_*.csv",
    options: { delimiter: ",", header: true },
    on_change: "fail",
    schema_drift: "evolve",
    on_empty: "fail",
    on_missing: "keep",
  });
  const silver = config.silver.orders;
  assert.equal(silver.mode, "merge");
  assert.deepEqual(silver.key, ["order_id"]);
  assert.deepEqual(silver.columns.updated_at, { type: "TIMESTAMP", nullable: true });
  assert.deepEqual(silver.rules, [{ name: "positive_qty", sql: "quantity > 0" }]);
  assert.equal(config.gold.revenue.sql, "select country, count(*) n from orders group by 1");
  assert.deepEqual(config.output, {
    path: "/srv/shop/lake/output",
    keep_versions: 2,
    tables: { revenue: { partition_by: ["country"] } },
  });
  assert.deepEqual(config.secrets, []);
  assert.match(config.hash, /^[0-9a-f]{64}$/);
});

Deno.test("a misspelt key, a wrong type and a missing env var are reported at once with positions", () => {
  const text = `pipeline: shop
lakee: ./lake
engine:
  threads: "two"
sources:
  orders:
    format: csv
    path: \${LANDING}
`;
  let error: unknown;
  try {
    parseConfig(text, "pipeline.yaml", { env: envOf() });
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof ConfigError);
  assert.equal(error.exitCode, 2);
  assert.deepEqual(error.message.split("\n"), [
    'pipeline.yaml:2:1 lakee: unknown key "lakee" (did you mean "lake"?)',
    'pipeline.yaml:4:12 engine.threads: expected a number, got string "two" ' +
    "(write digits without quotes, e.g. 4)",
    'pipeline.yaml:8:11 sources.orders.path: environment variable "LANDING" is not set ' +
    "(set it or write ${LANDING:-default})",
  ]);
  assert.deepEqual(error.problems[0], {
    file: "pipeline.yaml",
    line: 2,
    col: 1,
    path: "lakee",
    message: 'unknown key "lakee" (did you mean "lake"?)',
  });
});

Deno.test("an unknown nested key is reported at the key itself, with a suggestion or the valid keys", () => {
  const text = VALID.replace(
    "      updated_at: { type: TIMESTAMP }",
    "      updated_at: { typ: TIMESTAMP, colour: red }",
  );
  assert.deepEqual(problemsOf(text), [
    '14:21 silver.orders.columns.updated_at.typ: unknown key "typ" (did you mean "type"?)',
    '14:37 silver.orders.columns.updated_at.colour: unknown key "colour" ' +
    "(valid: type, from, expr, nullable, format)",
  ]);
});

Deno.test("a missing required key is reported at its parent mapping", () => {
  const text = `pipeline: shop
lake: ./lake
sources:
  orders:
    path: ./landing
`;
  assert.deepEqual(problemsOf(text), [
    '5:5 sources.orders.format: missing required key "format" (one of csv, ndjson, json, parquet)',
  ]);
});

Deno.test("an enum error lists the valid options and suggests the closest", () => {
  const text = VALID
    .replace("format: csv", "format: parqet")
    .replace("mode: merge", "mode: upsert");
  assert.deepEqual(problemsOf(text), [
    '5:21 sources.orders.format: must be one of csv, ndjson, json, parquet, got string "parqet" ' +
    '(did you mean "parquet"?)',
    '11:11 silver.orders.mode: must be one of replace, append, merge, scd2, got string "upsert"',
  ]);
});

Deno.test("${VAR:-default} uses the variable when set and the default otherwise", () => {
  const text = `pipeline: \${NAME:-shop}
lake: \${LAKE:-./lake}
engine:
  threads: \${THREADS:-4}
  memory_limit: "\${MEM:-1GB}"
sources:
  orders: { format: csv, path: "\${LANDING:-./landing}/\${REGION}" }
`;
  const unset = parseConfig(text, "/srv/shop/pipeline.yaml", { env: envOf({ REGION: "eu" }) });
  assert.equal(unset.pipeline, "shop");
  assert.equal(unset.lake, "/srv/shop/lake");
  assert.equal(unset.engine.threads, 4, "an unquoted interpolated number is read as a number");
  assert.equal(unset.engine.memory_limit, "1GB");
  assert.equal(unset.sources.orders.path, "/srv/shop/landing/eu");

  const set = parseConfig(text, "/srv/shop/pipeline.yaml", {
    env: envOf({ NAME: "shop_eu", LAKE: "/data/lake", THREADS: "8", LANDING: "", REGION: "eu" }),
  });
  assert.equal(set.pipeline, "shop_eu");
  assert.equal(set.lake, "/data/lake");
  assert.equal(set.engine.threads, 8);
  assert.equal(
    set.sources.orders.path,
    "/srv/shop/landing/eu",
    "an empty variable takes the default",
  );
});

Deno.test("$${ escapes a literal ${ and a lone $ is kept", () => {
  const text = VALID.replace(
    'revenue: { sql: "select country, count(*) n from orders group by 1" }',
    // A replacer function, because a replacement string treats "$$" specially.
    () =>
      'revenue: { sql: "select \'$${NOT_A_VAR}\' as a, $$raw$$ as b, $1 as c", description: "$${X:-y}" }',
  );
  const config = parseConfig(text, "/srv/shop/pipeline.yaml", { env: envOf({ NOT_A_VAR: "no" }) });
  assert.equal(config.gold.revenue.sql, "select '${NOT_A_VAR}' as a, $$raw$$ as b, $1 as c");
  assert.equal(config.gold.revenue.description, "${X:-y}");
});

Deno.test("a malformed ${...} reference is a positioned problem", () => {
  const text = VALID.replace("lake: ./lake", 'lake: "${LAKE DIR}"')
    .replace("pipeline: shop", "pipeline: ${NAME");
  assert.deepEqual(problemsOf(text), [
    '1:11 pipeline: "${" is not closed by "}" (write ${NAME} or ${NAME:-default}; ' +
    "write $${ for a literal ${)",
    '2:7 lake: "${LAKE DIR}" is not a variable reference (write ${NAME} or ${NAME:-default} ' +
    "with a name of letters, digits and _; write $${ for a literal ${)",
  ]);
});

Deno.test("an unreadable environment variable names the --allow-env flag", () => {
  const denied = (name: string): string | undefined => {
    throw new Deno.errors.NotCapable(`Requires env access to "${name}"`);
  };
  const text = VALID.replace("lake: ./lake", "lake: ${SLUICE_LAKE:-./lake}");
  assert.throws(
    () => parseConfig(text, "/srv/shop/pipeline.yaml", { env: denied }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.deepEqual(e.problems.map((p) => [p.line, p.col, p.path, p.message]), [
        [
          2,
          7,
          "lake",
          'environment variable "SLUICE_LAKE" is not readable (allow it with --allow-env=SLUICE_LAKE)',
        ],
      ]);
      return true;
    },
  );
});

Deno.test("by default ${VAR} reads the process environment", () => {
  Deno.env.set("SLUICE_TEST_CONFIG_LAKE", "/data/shop_lake");
  try {
    const text = VALID.replace("lake: ./lake", "lake: ${SLUICE_TEST_CONFIG_LAKE}");
    const config = parseConfig(text, "/srv/shop/pipeline.yaml");
    assert.equal(config.lake, "/data/shop_lake");
  } finally {
    Deno.env.delete("SLUICE_TEST_CONFIG_LAKE");
  }
});

Deno.test("a !secret value is listed in secrets, hidden from the hash and never shown in errors", () => {
  const withSecret = VALID.replace(
    'options: { delimiter: ",", header: true }',
    'options: { delimiter: ",", header: true, null_string: !secret "${NULL_TOKEN}" }',
  );
  const a = parseConfig(withSecret, "/srv/shop/pipeline.yaml", {
    env: envOf({ NULL_TOKEN: "s3cr3t-1" }),
  });
  const b = parseConfig(withSecret, "/srv/shop/pipeline.yaml", {
    env: envOf({ NULL_TOKEN: "s3cr3t-2" }),
  });
  assert.deepEqual(a.secrets, ["s3cr3t-1"]);
  assert.equal(a.sources.orders.options?.null_string, "s3cr3t-1");
  assert.equal(a.hash, b.hash, "the hash does not depend on secret values");
  const other = parseConfig(withSecret.replace("threads: 2", "threads: 3"), "/srv/shop/p.yaml", {
    env: envOf({ NULL_TOKEN: "s3cr3t-1" }),
  });
  assert.notEqual(a.hash, other.hash, "the hash depends on the settings");

  const secret = "hunter 2 (do not print)";
  const invalid = VALID
    .replace("pipeline: shop", "pipeline: !secret ${PIPELINE_NAME}")
    .replace("threads: 2", 'threads: !secret "${THREADS}"')
    .replace("from: orders", "from: !secret ${PIPELINE_NAME}");
  try {
    parseConfig(invalid, "/srv/shop/pipeline.yaml", {
      env: envOf({ PIPELINE_NAME: secret, THREADS: secret }),
    });
    assert.fail("expected the config to be rejected");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.ok(!e.message.includes(secret), e.message);
    assert.ok(!JSON.stringify(e.problems).includes(secret));
    assert.deepEqual(e.problems.map((p) => `${p.line}:${p.col} ${p.path}`), [
      "1:19 pipeline",
      "3:28 engine.threads",
      "8:19 silver.orders.from",
    ]);
    assert.match(e.problems[0].message, /must be an identifier.*got a secret value \(not shown\)/);
    assert.match(e.problems[1].message, /^expected a number, got a secret value \(not shown\)/);
    assert.match(e.problems[2].message, /must be an identifier.*got a secret value \(not shown\)/);
  }
  // A secret that marks a name is refused (names reach metrics, lineage and the database).
  const named = problemsOf(VALID.replace("from: orders", "from: !secret ${SOURCE}"), {
    SOURCE: "hidden_src",
  });
  assert.equal(named.length, 1, named.join("\n"));
  assert.match(named[0], /^8:19 silver\.orders\.from: !secret cannot mark a name/);
  assert.ok(!named[0].includes("hidden_src"));
});

Deno.test("relative paths resolve against the config file's folder", async () => {
  const root = await Deno.makeTempDir({ prefix: "sluice_config_test_" });
  try {
    const projectDir = join(root, "project");
    await Deno.mkdir(projectDir);
    const file = join(projectDir, "pipeline.yaml");
    await Deno.writeTextFile(
      file,
      VALID
        .replace(
          "engine: { threads: 2, memory_limit: 1GB }",
          "engine: { database: ./lake/db/x.duckdb }",
        )
        .replace("path: ./landing", "path: ../shared/landing, allow_outside_project: true")
        .replace("output:\n", "output:\n  path: lake/published\n"),
    );
    // A relative file name, read from another working directory than the file's.
    const config = await loadConfig(relative(Deno.cwd(), file), { env: envOf() });
    assert.equal(config.file, file);
    assert.equal(config.dir, projectDir);
    assert.equal(config.lake, join(projectDir, "lake"));
    assert.equal(config.engine.database, join(projectDir, "lake", "db", "x.duckdb"));
    assert.equal(config.engine.temp_directory, join(projectDir, "lake", "tmp"));
    assert.equal(config.sources.orders.path, join(root, "shared", "landing"));
    assert.equal(config.output.path, join(projectDir, "lake", "published"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("an unreadable config file is a ConfigError naming the file", async () => {
  const root = await Deno.makeTempDir({ prefix: "sluice_config_test_" });
  try {
    const file = join(root, "missing.yaml");
    await assert.rejects(loadConfig(file), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.problems.length, 1);
      assert.equal(e.problems[0].file, file);
      assert.match(e.problems[0].message, /^cannot read the config file: /);
      return true;
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("semantic errors: unknown source, merge without key, unknown output table", () => {
  const text = `pipeline: shop
lake: ./lake
sources:
  orders: { format: csv, path: ./landing }
silver:
  orders:
    from: ordrs
    mode: merge
    columns:
      order_id: { type: BIGINT }
gold:
  revenue: { sql: "select 1" }
output:
  tables: { revenu: {}, orders: }
`;
  assert.deepEqual(problemsOf(text), [
    '7:11 silver.orders.from: unknown source "ordrs" (did you mean "orders"?)',
    "8:11 silver.orders.mode: mode merge needs a key " +
    "(add key: [column, ...] naming the columns that identify a row)",
    '14:13 output.tables.revenu: unknown table "revenu" (did you mean "revenue"?)',
  ]);
});

Deno.test("semantic errors: key columns, order_by without key, gold reusing a silver name", () => {
  const text = `pipeline: shop
lake: ./lake
sources:
  orders: { format: csv, path: ./landing }
silver:
  orders:
    from: orders
    key: [order_id, lineno]
    columns:
      order_id: { type: BIGINT }
      line_no: { type: INTEGER }
  customers:
    from: orders
    order_by: updated_at
    mode: scd2
    columns: { id: { type: BIGINT } }
gold:
  orders: { sql: "select 1" }
`;
  assert.deepEqual(problemsOf(text), [
    '8:21 silver.orders.key.1: key column "lineno" is not among the declared columns ' +
    '(did you mean "line_no"?)',
    '14:15 silver.customers.order_by: order_by column "updated_at" is not among the declared ' +
    "columns (columns: id)",
    "14:15 silver.customers.order_by: order_by needs a key (it picks the latest row among rows " +
    "with the same key; add key: [column, ...] or remove order_by)",
    "15:11 silver.customers.mode: mode scd2 needs a key " +
    "(add key: [column, ...] naming the columns that identify a row)",
    '18:3 gold.orders: gold model "orders" has the same name as silver table "orders" ' +
    "(silver and gold share one namespace; rename one)",
  ]);
});

Deno.test("the engine database and spill folder must be inside the lake", () => {
  const text = VALID.replace(
    "engine: { threads: 2, memory_limit: 1GB }",
    "engine: { database: ./sluice.duckdb, temp_directory: /tmp/spill }",
  );
  assert.deepEqual(problemsOf(text), [
    '3:21 engine.database: must be inside the lake folder "/srv/shop/lake", got ' +
    '"/srv/shop/sluice.duckdb" (the DuckDB sandbox only allows the lake and the source folders)',
    '3:54 engine.temp_directory: must be inside the lake folder "/srv/shop/lake", got ' +
    '"/tmp/spill" (the DuckDB sandbox only allows the lake and the source folders)',
  ]);
});

Deno.test("a YAML syntax error is reported with its line and column", () => {
  const text = `pipeline: shop
lake: ./lake
sources:
  orders: { format: csv, path: ./landing
silver: {}
`;
  const problems = problemsOf(text);
  assert.equal(problems.length, 1, problems.join("\n"));
  assert.match(problems[0], /^5:1 .*: invalid YAML: /);
});

Deno.test("duplicate keys and an unquoted ${VAR} inside { } get explanatory messages", () => {
  assert.deepEqual(problemsOf("pipeline: shop\nlake: a\nlake: b\nsources: {}\n"), [
    "3:1 lake: this key appears more than once in the same mapping (keep one)",
  ]);
  const flow = problemsOf(
    "pipeline: shop\nlake: ./lake\nsources:\n  orders: { format: csv, path: ${DIR} }\n",
  );
  assert.equal(flow.length, 1, flow.join("\n"));
  assert.match(
    flow[0],
    /^4:33 .*quote a value that uses \$\{VAR\}, e\.g\. path: "\$\{LANDING\}"\)$/,
  );
});

Deno.test("an empty file and empty sections read clearly", () => {
  assert.deepEqual(problemsOf("# nothing yet\n"), [
    "1:1 : the file is empty (it needs at least pipeline, lake, sources)",
  ]);
  // A section whose lines are all commented out is as if absent.
  const config = parseConfig(
    "pipeline: shop\nlake: ./lake\nengine:\n  # threads: 4\nsources:\n  o: { format: csv, path: . }\nsilver:\n",
    "/srv/shop/pipeline.yaml",
    { env: envOf() },
  );
  assert.deepEqual(config.silver, {});
  assert.equal(config.engine.database, "/srv/shop/lake/sluice.duckdb");
});

Deno.test("closest suggests near misses only", () => {
  assert.equal(closest("lakee", ["pipeline", "lake", "engine"]), "lake");
  assert.equal(closest("memroy_limit", ["threads", "memory_limit"]), "memory_limit");
  assert.equal(closest("Lake", ["lake"]), "lake");
  assert.equal(closest("upd", ["id"]), undefined);
  assert.equal(closest("xyz", ["pipeline", "lake", "engine"]), undefined);
  assert.equal(closest("a", []), undefined);
});

Deno.test("redactSecrets replaces every secret occurrence, longest first", () => {
  assert.equal(
    redactSecrets("user=admin pw=hunter2 again hunter2", ["hunter2"]),
    "user=admin pw=*** again ***",
  );
  assert.equal(redactSecrets("token abc123", ["abc", "abc123"]), "token ***");
  assert.equal(redactSecrets("nothing to hide", ["", "zzz"]), "nothing to hide");
});
