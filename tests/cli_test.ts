import assert from "node:assert/strict";
import { join } from "node:path";
import { openEngine } from "../core/engine.ts";
import { makeProject, SHOP_YAML, sluice } from "./_helpers.ts";

Deno.test("validate reports a misspelt key, a wrong type and a missing env variable with line:col and exits 2", async () => {
  const p = await makeProject(`pipeline: shop
lakee: ./lake
engine:
  threads: two
sources:
  orders:
    format: csv
    path: \${SLUICE_TEST_SURELY_UNSET_DIR}
`);
  const r = await sluice(["validate", "-c", p.configFile]);
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.deepEqual(lines, [
    `${p.configFile}:2:1 lakee: unknown key "lakee" (did you mean "lake"?)`,
    `${p.configFile}:4:12 engine.threads: expected a number, got string "two" (write digits without quotes, e.g. 4)`,
    `${p.configFile}:8:11 sources.orders.path: environment variable "SLUICE_TEST_SURELY_UNSET_DIR" is not set (set it or write \${SLUICE_TEST_SURELY_UNSET_DIR:-default})`,
  ]);
  assert.equal(r.stdout, "");
});

Deno.test("validate binds gold SQL against the declared tables and prints ok", async () => {
  const ok = await makeProject(SHOP_YAML);
  // validate reports a source folder that does not exist.
  await Deno.mkdir(join(ok.dir, "landing/orders"), { recursive: true });
  const r = await sluice(["validate", "-c", ok.configFile]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), "ok");

  const bad = await makeProject(SHOP_YAML.replace("sum(quantity) as units", "sum(qty) as units"));
  const b = await sluice(["validate", "-c", bad.configFile]);
  assert.equal(b.code, 2);
  assert.match(b.stderr, /pipeline\.yaml:\d+:\d+ gold\.by_country\.sql: does not bind: .*"qty"/);
});

Deno.test("run prints a summary and exits 0; a second process on the same lake exits 75", async () => {
  const p = await makeProject(SHOP_YAML, {
    "landing/orders/a.csv": "order_id,quantity,country,updated_at\n1,2,de,2026-01-01 10:00:00\n",
  });
  const r = await sluice([
    "run",
    "-c",
    p.configFile,
    "--run-id",
    "test-run-1",
    "--log-format",
    "json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^run test-run-1: success/);
  assert.match(r.stdout, /silver\s+orders\s+1\s+1\s+0\s+0/);
  for (const line of r.stderr.trim().split("\n")) {
    assert.equal(JSON.parse(line).run_id, "test-run-1");
  }

  // Hold the database in this process: the run must report the lock, exit 75.
  const db = await openEngine(join(p.dir, "lake/sluice.duckdb"), { allowedDirectories: [p.dir] });
  try {
    const locked = await sluice(["run", "-c", p.configFile]);
    assert.equal(locked.code, 75, locked.stderr);
    assert.match(locked.stderr, /another run holds the database lock/);
  } finally {
    db.close();
  }
});

Deno.test("usage mistakes exit 2 with one line and no stack trace", async () => {
  const p = await makeProject(SHOP_YAML);
  const r = await sluice(["run", "-c", p.configFile, "--stages", "brnze"]);
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr.trim(),
    `sluice: Cannot run: unknown stage "brnze" (valid: extract, bronze, silver, gold, output)`,
  );
  const missing = await sluice(["run"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /required option '-c, --config <file>'/);
  const nofile = await sluice(["validate", "-c", join(p.dir, "nope.yaml")]);
  assert.equal(nofile.code, 2);
  assert.doesNotMatch(nofile.stderr, /\bat .*\.ts:\d+/);
});

Deno.test("--version prints the Sluice, DuckDB and Deno versions and exits 0", async () => {
  const r = await sluice(["--version"]);
  assert.equal(r.code, 0);
  assert.match(
    r.stdout.trim(),
    /^sluice \d+\.\d+\.\d+\nduckdb v\d+\.\d+\.\d+\ndeno \d+\.\d+\.\d+$/,
  );
});

Deno.test("init scaffolds a project that validates and demo data runs through it", async () => {
  const dir = join(await Deno.makeTempDir(), "proj");
  const r = await sluice(["init", dir]);
  assert.equal(r.code, 0, r.stderr);
  const v = await sluice(["validate", "-c", join(dir, "pipeline.yaml")]);
  assert.equal(v.code, 0, v.stderr);
  const again = await sluice(["init", dir]);
  assert.equal(again.code, 2);
});

Deno.test("a failed run's error is printed once in text logs, and as a JSON line naming the run in JSON logs", async () => {
  const yaml = SHOP_YAML.replace(
    "group by country\n",
    "group by country\n    checks:\n      - range: { column: units, max: 1 }\n",
  );
  const p = await makeProject(yaml, {
    "landing/orders/a.csv": "order_id,quantity,country,updated_at\n1,5,de,2026-01-01 10:00:00\n",
  });
  const text = await sluice(["--log-format", "text", "run", "-c", p.configFile]);
  assert.equal(text.code, 3, text.stderr);
  assert.equal(text.stdout, "", "a failed run prints no summary on stdout");
  const mentions = text.stderr.split("\n").filter((l) => l.includes("units"));
  const errorLines = text.stderr.split("\n").filter((l) => l.startsWith("sluice: "));
  assert.equal(errorLines.length, 1, text.stderr);
  assert.ok(mentions.length >= 1);
  assert.doesNotMatch(text.stderr, /run failed/, "the run_failed line is not shown as well");

  const json = await sluice([
    "--log-format",
    "json",
    "run",
    "-c",
    p.configFile,
    "--run-id",
    "failing-2",
  ]);
  assert.equal(json.code, 3);
  const records = json.stderr.trim().split("\n").map((l) => JSON.parse(l));
  const failed = records.filter((r) => r.event === "command_failed");
  assert.equal(failed.length, 1);
  assert.equal(failed[0].run_id, "failing-2");
  assert.equal(failed[0].exit_code, 3);
  assert.ok(records.every((r) => r.run_id === "failing-2"));
});
