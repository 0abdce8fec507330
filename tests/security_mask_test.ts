/**
 * `mask: [email, ...]` on a silver table: the masked columns' values never
 * reach failing-row samples (check results), quarantine payloads and
 * reasons, the HTML report or the logs; the silver table itself keeps them,
 * and a masked quarantine cannot be replayed (its payloads hold ***).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { parseConfig } from "../core/config/mod.ts";
import { ConfigError } from "../core/errors.ts";
import { sluiceOut } from "./_helpers.ts";

const EMAILS = ["alice.private@example.org", "bob.hidden@example.org", "not-an-email-carol"];
const PHONE = "+49-555-0199-77";

const YAML = `pipeline: shop
lake: ./lake
engine: { threads: 1 }
sources:
  customers: { format: csv, path: ./landing, glob: "*.csv" }
silver:
  customers:
    from: customers
    key: [id]
    mode: merge
    mask: [email, phone]
    max_quarantine: "100%"
    columns:
      id: { type: BIGINT, nullable: false }
      email: { type: VARCHAR }
      phone: { type: INTEGER }
      age: { type: INTEGER }
    rules:
      - { name: adult, sql: "age >= 18" }
    checks:
      - regex: { column: email, pattern: "^[^@]+@[^@]+$", severity: warn }
      - not_null: { column: phone, severity: warn }
observability:
  report: { path: ./lake/report.html }
`;

function sluice(dir: string, args: string[]): Promise<{ code: number; out: string }> {
  const logs = ["--log-format", "json", "--log-level", "debug"];
  return sluiceOut([...logs, ...args, "-c", join(dir, "pipeline.yaml")]);
}

async function query(dir: string, sql: string): Promise<unknown[][]> {
  const db = await DuckDBInstance.create(join(dir, "lake", "sluice.duckdb"));
  const conn = await db.connect();
  try {
    return (await conn.runAndReadAll(sql)).getRows();
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

Deno.test("masked columns show *** in samples, quarantine payloads and reasons, the report and logs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_mask_" });
  await Deno.mkdir(join(dir, "landing"));
  await Deno.writeTextFile(join(dir, "pipeline.yaml"), YAML);
  await Deno.writeTextFile(
    join(dir, "landing", "customers.csv"),
    [
      "id,email,phone,age",
      `1,${EMAILS[0]},${PHONE},30`, // phone does not cast: quarantined, reason masked
      `2,${EMAILS[1]},,12`, // fails the rule: quarantined, payload masked
      `3,${EMAILS[2]},,40`, // passes, fails the regex and not_null checks: samples masked
    ].join("\n") + "\n",
  );
  const r = await sluice(dir, ["run"]);
  assert.equal(r.code, 0, r.out.slice(-3000));

  // The silver table keeps the real values: mask hides copies, not data.
  assert.deepEqual(await query(dir, "SELECT id, email FROM silver.customers"), [[3n, EMAILS[2]]]);
  const quarantine = await query(
    dir,
    "SELECT _reason, _payload FROM silver.customers__quarantine ORDER BY _source_row",
  );
  assert.equal(quarantine.length, 2);
  assert.match(
    String(quarantine[0][0]),
    /column "phone": cannot cast \*\*\* \(masked\) to INTEGER/,
  );
  for (const [, payload] of quarantine) {
    const p = JSON.parse(String(payload));
    assert.equal(p.email, "***");
    assert.ok("age" in p && p.age !== "***", "unmasked columns stay in the payload");
  }
  const samples = await query(dir, "SELECT sample FROM _sluice.check_failures");
  assert.ok(samples.length >= 2, `failing samples were kept: ${samples.length}`);
  for (const [s] of samples) assert.equal(JSON.parse(String(s)).email, "***", String(s));

  const report = await Deno.readTextFile(join(dir, "lake", "report.html"));
  const found: string[] = [];
  for (const v of [...EMAILS, PHONE]) {
    if (r.out.includes(v)) found.push(`logs: ${v}`);
    if (report.includes(v)) found.push(`report: ${v}`);
    const inCopies = await query(
      dir,
      `SELECT count(*) FROM (
         SELECT _reason::VARCHAR AS t FROM silver.customers__quarantine
         UNION ALL SELECT _payload::VARCHAR FROM silver.customers__quarantine
         UNION ALL SELECT sample::VARCHAR FROM _sluice.check_failures
         UNION ALL SELECT row_key::VARCHAR FROM _sluice.check_failures) WHERE contains(t, '${v}')`,
    );
    if (Number(inCopies[0][0]) > 0) found.push(`quarantine/samples: ${v}`);
  }
  assert.deepEqual(found, []);

  const replay = await sluice(dir, ["dlq", "replay", "--table", "customers__quarantine"]);
  assert.equal(replay.code, 2, replay.out.slice(-2000));
  assert.match(replay.out, /masks email, phone, so its quarantine payloads hold \*\*\*/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("mask must name declared columns", () => {
  const yaml = YAML.replace("mask: [email, phone]", "mask: [email, emial]");
  try {
    parseConfig(yaml, "/srv/shop/pipeline.yaml");
    assert.fail("expected a ConfigError");
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.problems.length, 1, e.message);
    assert.equal(e.problems[0].path, "silver.customers.mask.1");
    assert.match(e.problems[0].message, /mask column "emial" is not among the declared columns/);
  }
});

Deno.test("payload_max_bytes caps copies of raw rows in samples, dlq list and the report, not the quarantine", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_cap_" });
  await Deno.mkdir(join(dir, "landing"));
  const yaml = YAML.replace("    mask: [email, phone]\n", "")
    .replace("observability:", "quality: { payload_max_bytes: 64 }\nobservability:");
  await Deno.writeTextFile(join(dir, "pipeline.yaml"), yaml);
  const long = `${"x".repeat(5000)}@example.org`;
  await Deno.writeTextFile(
    join(dir, "landing", "customers.csv"),
    `id,email,phone,age\n1,${long},1,12\n2,bad-${"y".repeat(5000)},,40\n`,
  );
  const r = await sluice(dir, ["run"]);
  assert.equal(r.code, 0, r.out.slice(-3000));
  // The quarantine keeps the whole payload (it is what a replay reads).
  const [[payload]] = await query(
    dir,
    "SELECT _payload::VARCHAR FROM silver.customers__quarantine",
  );
  assert.ok(String(payload).includes(long), "the quarantine payload is whole");
  // Failing-row samples are capped copies that say so.
  const samples = await query(dir, "SELECT sample FROM _sluice.check_failures");
  assert.ok(samples.length >= 1);
  for (const [s] of samples) {
    const sample = JSON.parse(String(s));
    assert.equal(sample.capped, true, String(s));
    assert.ok(sample.bytes > 5000);
    assert.equal(sample.head.length, 64);
  }
  const listed = await sluice(dir, ["dlq", "list", "--json"]);
  assert.equal(listed.code, 0, listed.out.slice(-2000));
  const row = JSON.parse(listed.out.split("\n").find((l) => l.includes('"_dlq_id"'))!);
  assert.match(row._payload, /^.{64} … \[capped: \d+ bytes\]$/);
  const report = await Deno.readTextFile(join(dir, "lake", "report.html"));
  assert.ok(!report.includes("x".repeat(100)), "the report shows a capped copy");
  assert.match(report, /capped: \d+ bytes/);
  await Deno.remove(dir, { recursive: true });
});
