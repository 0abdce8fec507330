/**
 * `!secret` values never leave the config: a successful run, a failed run
 * and a failing `validate`, with secrets in a CSV reader option, a silver
 * rule, a check expression, a gold model and a Pushgateway password, leave
 * no secret in stdout, stderr (debug level), any file of the lake (the
 * DuckDB file and WAL, textfile metrics, lineage NDJSON, HTML report,
 * published Parquet) nor any text value of any table in the database. A
 * `!secret` on a name is refused.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { ConfigError } from "../core/errors.ts";
import { parseConfig } from "../core/config/mod.ts";
import { sluiceOut } from "./_helpers.ts";

const SECRETS = {
  SLUICE_TEST_SECRET_NULL: "NuLl-sEcReT-7431",
  SLUICE_TEST_SECRET_RULE: "amount < 31337.5",
  SLUICE_TEST_SECRET_CHECK: "amount > -4242.25",
  SLUICE_TEST_SECRET_GOLD:
    "select country, sum(amount) as total from orders where amount < 8675309.5 group by all",
  SLUICE_TEST_SECRET_PUSH: "pUsH-pAsS-5519",
};
/** The failed run's gold model: the same kind of secret, and it does not bind. */
const FAILING_GOLD = "select country, sum(amount_nope) as total from orders where amount < 777.75";

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

const YAML = (deadPort: number) =>
  `pipeline: shop
lake: ./lake
engine: { threads: 1 }
sources:
  orders:
    format: csv
    path: ./landing
    glob: "*.csv"
    options: { null_string: !secret "\${SLUICE_TEST_SECRET_NULL}" }
silver:
  orders:
    from: orders
    max_quarantine: "100%"
    columns:
      id: { type: BIGINT, nullable: false }
      country: { type: VARCHAR }
      amount: { type: "DECIMAL(12,2)" }
    rules:
      - { name: not_huge, sql: !secret "\${SLUICE_TEST_SECRET_RULE}" }
    checks:
      - expression: { name: not_negative, sql: !secret "\${SLUICE_TEST_SECRET_CHECK}", severity: warn }
gold:
  revenue:
    sql: !secret "\${SLUICE_TEST_SECRET_GOLD}"
output:
  tables: { revenue: {} }
observability:
  metrics:
    textfile: { path: ./lake/metrics/sluice.prom }
    pushgateway:
      url: http://127.0.0.1:${deadPort}
      retries: 1
      timeout: 2
      basic_auth: { username: sluice, password: !secret "\${SLUICE_TEST_SECRET_PUSH}" }
  lineage: { file: ./lake/lineage.ndjson, namespace: shop }
  report: { path: ./lake/report.html }
`;

function sluice(
  dir: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; out: string }> {
  const logs = ["--log-format", "json", "--log-level", "debug"];
  return sluiceOut([...logs, ...args, "-c", join(dir, "pipeline.yaml")], { env, net: true });
}

async function* files(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const full = join(dir, e.name);
    if (e.isDirectory) yield* files(full);
    else if (e.isFile) yield full;
  }
}

/** Every place a secret was found: `artifact: secret name`. */
async function leaks(dir: string, text: string, values: Record<string, string>) {
  const found: string[] = [];
  const check = (where: string, content: string) => {
    for (const [name, v] of Object.entries(values)) {
      if (content.includes(v)) found.push(`${where}: ${name}`);
    }
  };
  check("stdout/stderr", text);
  let scanned = 0;
  for await (const f of files(join(dir, "lake"))) {
    scanned++;
    check(f, new TextDecoder("latin1").decode(await Deno.readFile(f)));
  }
  // Text values inside the database, whatever its compression.
  const db = await DuckDBInstance.create(join(dir, "lake", "sluice.duckdb"));
  const conn = await db.connect();
  try {
    const cols = (await conn.runAndReadAll(
      `SELECT schema_name, table_name, column_name FROM duckdb_columns()
       WHERE data_type IN ('VARCHAR', 'JSON') AND NOT internal AND database_name = current_database()`,
    )).getRows();
    for (const [s, t, c] of cols) {
      for (const [name, v] of Object.entries(values)) {
        const q = `SELECT count(*)::INTEGER FROM "${s}"."${t}" WHERE contains("${c}"::VARCHAR, $v)`;
        const n = (await conn.runAndReadAll(q, { v })).getRows()[0][0];
        if (Number(n) > 0) found.push(`table ${s}.${t}.${c}: ${name}`);
      }
    }
    console.log(`  scanned ${scanned} lake files and ${cols.length} text columns`);
  } finally {
    conn.closeSync();
    db.closeSync();
  }
  return found;
}

Deno.test("no !secret value appears in any output or artifact of a successful and a failed run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_secrets_" });
  await Deno.mkdir(join(dir, "landing"));
  await Deno.writeTextFile(
    join(dir, "landing", "orders_1.csv"),
    "id,country,amount\n1,DE,10.50\n2,FR,99999\n3,DE,\n4,,7\n",
  );
  await Deno.writeTextFile(join(dir, "pipeline.yaml"), YAML(freePort()));
  const env = { ...SECRETS };

  const ok = await sluice(dir, ["run"], env);
  assert.equal(ok.code, 0, ok.out.slice(-3000));
  const report = await Deno.readTextFile(join(dir, "lake", "report.html"));
  assert.ok(report.length > 1000, "the report was written");
  await Deno.stat(join(dir, "lake", "lineage.ndjson"));
  await Deno.stat(join(dir, "lake", "metrics", "sluice.prom"));
  assert.deepEqual(await leaks(dir, ok.out, SECRETS), []);
  // The scanner finds a value that is meant to be there (in files and in tables).
  const probe = await leaks(dir, "", { probe: "orders_1.csv" });
  assert.ok(probe.some((l) => l.startsWith("table ")), probe.join("\n"));
  assert.ok(probe.some((l) => l.endsWith("sluice.duckdb: probe")), probe.join("\n"));

  // A failed run: the gold model (still a secret) does not bind.
  await Deno.writeTextFile(
    join(dir, "landing", "orders_2.csv"),
    "id,country,amount\n5,IT,1\n",
  );
  const failEnv = { ...env, SLUICE_TEST_SECRET_GOLD: FAILING_GOLD };
  const failed = await sluice(dir, ["run"], failEnv);
  assert.notEqual(failed.code, 0, failed.out.slice(-3000));
  assert.match(failed.out, /amount_nope/);
  const withFailing = { ...SECRETS, SLUICE_TEST_SECRET_GOLD: FAILING_GOLD };
  assert.deepEqual(await leaks(dir, failed.out, withFailing), []);

  // validate prints the bind error of the secret SQL without the secret.
  const validate = await sluice(dir, ["validate"], failEnv);
  assert.equal(validate.code, 2, validate.out);
  assert.match(validate.out, /gold\.revenue\.sql/);
  assert.ok(!validate.out.includes(FAILING_GOLD), validate.out);
  assert.deepEqual(await leaks(dir, validate.out, withFailing), []);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a !secret on a name (pipeline, source, column, stream table) is a config error", () => {
  const yaml = `pipeline: !secret "\${NAME}"
lake: ./lake
sources:
  orders: { format: csv, path: ./landing }
silver:
  orders:
    from: orders
    key: [!secret "\${KEY}"]
    columns:
      id: { type: BIGINT }
`;
  try {
    parseConfig(yaml, "/srv/shop/pipeline.yaml", {
      env: (n) => ({ NAME: "shop", KEY: "id" })[n],
    });
    assert.fail("expected a ConfigError");
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    const lines = e.problems.map((p) => `${p.path}: ${p.message}`);
    assert.equal(lines.length, 2, lines.join("\n"));
    assert.match(lines[0], /^pipeline: !secret cannot mark a name/);
    assert.match(lines[1], /^silver\.orders\.key\.0: !secret cannot mark a name/);
  }
});

Deno.test("a failing run prints its one-line error with a !secret path redacted, also made absolute", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_secrets_" });
  const secret = "hidden-s3cret-dir-4711";
  await Deno.writeTextFile(
    join(dir, "pipeline.yaml"),
    `pipeline: shop
lake: ./lake
sources:
  orders: { format: csv, path: !secret "./\${SLUICE_TEST_SECRET_DIR}" }
`,
  );
  for (const format of ["text", "json"]) {
    const logs = ["--log-format", format, "--log-level", "debug"];
    const { code, out } = await sluiceOut([...logs, "run", "-c", join(dir, "pipeline.yaml")], {
      env: { SLUICE_TEST_SECRET_DIR: secret },
    });
    assert.equal(code, 1, out);
    assert.match(out, /Cannot read source \\?"orders\\?": folder \*\*\* does not exist/);
    assert.ok(!out.includes(secret), `${format}: ${out}`);
  }
  await Deno.remove(dir, { recursive: true });
});
