/**
 * Each check type against generated data with known defects: it reports the
 * exact number of failing rows, passes the same check on clean data, keeps
 * failing samples with their keys, and reports `error` (not a crash) when
 * the config does not fit the data.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { steppingClock } from "../core/clock.ts";
import { parseConfig } from "../core/config/mod.ts";
import type { RunContext } from "../core/run_context.ts";
import { type CheckResult, checkTargets, runChecks } from "../quality/checks.ts";
import { auditLayer, gateFailures } from "../quality/gate.ts";
import { ensureQualityTables, recordCheckResults, recordProfiles } from "../quality/history.ts";
import { profileTable } from "../quality/profile.ts";
import { withRun } from "../runtime/with_run.ts";

const NOW = new Date("2026-01-02T00:00:00Z");

/**
 * 1,000 orders (seq 0..999) with planted defects:
 * - order_id: seq >= 990 repeat ids 980..989 -> 20 rows in duplicated keys
 * - email: NULL when seq % 50 = 0 (20 rows), "bad-email" when seq % 100 = 7 (10 rows)
 * - status: "lost" when seq % 125 = 3 (8 rows)
 * - quantity: 0 when seq % 200 = 1 (5 rows), 101 when seq % 200 = 2 (5 rows), else seq % 10 + 1
 * - customer_id: 9999 when seq % 100 = 99 (10 orphans), NULL when seq % 250 = 5 (4 rows)
 * - amount: -1 when seq % 333 = 0 (4 rows), else quantity * 2.5
 * - order_ts: 2026-01-01 00:00 + seq minutes (newest 16:39)
 */
const DIRTY_SQL = `SELECT i AS seq,
    CASE WHEN i >= 990 THEN i - 10 ELSE i END AS order_id,
    CASE WHEN i % 50 = 0 THEN NULL WHEN i % 100 = 7 THEN 'bad-email'
         ELSE 'u' || i || '@shop.example' END AS email,
    CASE WHEN i % 125 = 3 THEN 'lost' ELSE ['new', 'paid', 'shipped'][i % 3 + 1] END AS status,
    CAST(CASE WHEN i % 200 = 1 THEN 0 WHEN i % 200 = 2 THEN 101 ELSE i % 10 + 1 END AS INTEGER)
      AS quantity,
    CASE WHEN i % 100 = 99 THEN 9999 WHEN i % 250 = 5 THEN NULL ELSE i % 50 END AS customer_id,
    CAST(CASE WHEN i % 333 = 0 THEN -1
         ELSE (CASE WHEN i % 200 = 1 THEN 0 WHEN i % 200 = 2 THEN 101 ELSE i % 10 + 1 END) * 2.5
         END AS DECIMAL(10,2)) AS amount,
    TIMESTAMP '2026-01-01 00:00:00' + to_minutes(i) AS order_ts
  FROM range(1000) t(i)`;

/** The same shape without defects. */
const CLEAN_SQL = `SELECT i AS seq, i AS order_id, 'u' || i || '@shop.example' AS email,
    ['new', 'paid', 'shipped'][i % 3 + 1] AS status, CAST(i % 10 + 1 AS INTEGER) AS quantity,
    i % 50 AS customer_id, CAST((i % 10 + 1) * 2.5 AS DECIMAL(10,2)) AS amount,
    TIMESTAMP '2026-01-01 23:00:00' - to_minutes(i) AS order_ts
  FROM range(1000) t(i)`;

const COLUMNS = `
      seq: { type: BIGINT }
      order_id: { type: BIGINT }
      email: { type: VARCHAR }
      status: { type: VARCHAR }
      quantity: { type: INTEGER }
      customer_id: { type: BIGINT }
      amount: { type: "DECIMAL(10,2)" }
      order_ts: { type: TIMESTAMP }`;

const CHECKS = `
      - unique: { column: order_id }
      - unique: { name: unique_id_status, columns: [order_id, status] }
      - not_null: { column: email }
      - not_null: { name: email_second_half, column: email, where: "seq >= 500" }
      - accepted_values: { column: status, values: [new, paid, shipped] }
      - accepted_values: { name: quantity_listed, column: quantity, values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }
      - range: { column: quantity, min: 1, max: 100 }
      - range: { name: quantity_below_10, column: quantity, min: 1, max: 10, max_inclusive: false }
      - range: { name: recent, column: order_ts, min: "2026-01-01 00:00:00", min_inclusive: false }
      - regex: { column: email, pattern: "^[^@]+@[^@]+[.][a-z]+$" }
      - relationships: { column: customer_id, to: customers }
      - row_count: { name: at_least_1000, min: 1000 }
      - row_count: { name: at_most_999, max: 999 }
      - freshness: { name: fresh_6h, column: order_ts, max_age: 6h }
      - freshness: { name: fresh_12h, column: order_ts, max_age: 12h }
      - null_ratio: { name: email_nulls_2pct, column: email, max: 0.02 }
      - null_ratio: { name: email_nulls_1_9pct, column: email, max: 0.019 }
      - expression: { name: amount_covers_quantity, sql: "amount >= quantity" }
      - expression: { name: amount_4_allowed, sql: "amount >= quantity", threshold: 4 }
      - expression: { name: amount_3_allowed, sql: "amount >= quantity", threshold: 3 }
      - expression: { name: amount_0_4pct, sql: "amount >= quantity", threshold: "0.4%" }
      - expression: { name: amount_0_3pct, sql: "amount >= quantity", threshold: "0.3%" }`;

const YAML = `pipeline: quality_checks
lake: ./lake
sources:
  raw: { format: csv, path: ./landing }
silver:
  customers:
    from: raw
    key: [customer_id]
    columns:
      customer_id: { type: BIGINT }
  orders:
    from: raw
    key: [order_id]
    columns:${COLUMNS}
    checks:${CHECKS}
  orders_clean:
    from: raw
    key: [order_id]
    columns:${COLUMNS}
    checks:${CHECKS}
gold:
  daily:
    sql: select 1 as day, 'x' as country
    checks:
      - unique: { columns: [day, country] }
quality:
  sample_size: 3
`;

/** Opens a fresh project with the tables created from SQL; runs `fn`; cleans up. */
async function withTables(fn: (ctx: RunContext) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sluice_qchecks_" });
  const config = parseConfig(YAML, join(dir, "pipeline.yaml"), { env: () => undefined });
  try {
    await withRun(config, {
      runId: "run_now",
      clock: steppingClock(NOW),
      trigger: "test",
      kind: "check",
    }, async (ctx) => {
      await ctx.db.run(`CREATE TABLE silver.orders AS ${DIRTY_SQL}`);
      await ctx.db.run(`CREATE TABLE silver.orders_clean AS ${CLEAN_SQL}`);
      await ctx.db.run(
        `CREATE TABLE silver.customers AS SELECT range AS customer_id FROM range(50)`,
      );
      // 10 days x 10 rows: countries c0..c7, with c0 three times a day (30 rows in duplicated
      // keys), plus two rows with a NULL country (NULL keys never count as duplicates).
      await ctx.db.run(`CREATE TABLE gold.daily AS
      SELECT i // 10 AS day, 'c' || CASE WHEN i % 10 < 8 THEN i % 10 ELSE 0 END AS country
      FROM range(100) t(i)
      UNION ALL SELECT 1, NULL UNION ALL SELECT 1, NULL`);
      await fn(ctx);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function checksOf(ctx: RunContext, table: string): Promise<Map<string, CheckResult>> {
  const target = checkTargets(ctx.config, "silver").find((t) => t.table === table)!;
  const results = await runChecks(ctx, target, { sampleSize: 3 });
  return new Map(results.map((r) => [r.check, r]));
}

/** Expected [status, failing rows] per check on the dirty table. */
const DIRTY: Record<string, ["pass" | "fail", number | null]> = {
  unique_order_id: ["fail", 20],
  unique_id_status: ["pass", 0],
  not_null_email: ["fail", 20],
  email_second_half: ["fail", 10],
  accepted_values_status: ["fail", 8],
  quantity_listed: ["fail", 10],
  range_quantity: ["fail", 10],
  quantity_below_10: ["fail", 110],
  recent: ["fail", 1],
  regex_email: ["fail", 10],
  relationships_customer_id: ["fail", 10],
  at_least_1000: ["pass", null],
  at_most_999: ["fail", null],
  fresh_6h: ["fail", null],
  fresh_12h: ["pass", null],
  email_nulls_2pct: ["pass", 20],
  email_nulls_1_9pct: ["fail", 20],
  amount_covers_quantity: ["fail", 4],
  amount_4_allowed: ["pass", 4],
  amount_3_allowed: ["fail", 4],
  amount_0_4pct: ["pass", 4],
  amount_0_3pct: ["fail", 4],
};

Deno.test("every check type counts exactly the planted defects", async () => {
  await withTables(async (ctx) => {
    const got = await checksOf(ctx, "orders");
    assert.equal(got.size, Object.keys(DIRTY).length);
    for (const [name, [status, failing]] of Object.entries(DIRTY)) {
      const r = got.get(name);
      assert.ok(r, `no result for ${name}`);
      assert.equal(r.status, status, `${name}: ${r.message}`);
      assert.equal(r.failingRows, failing, `${name}: ${r.message}`);
    }
    assert.equal(got.get("not_null_email")!.totalRows, 1000);
    assert.equal(got.get("email_second_half")!.totalRows, 500);
    assert.equal(got.get("relationships_customer_id")!.totalRows, 1000);
    assert.equal(got.get("at_least_1000")!.totalRows, 1000);
    assert.equal(got.get("amount_0_3pct")!.threshold, "0.3%");
    assert.equal(got.get("amount_3_allowed")!.threshold, "3 rows");
    assert.match(got.get("fresh_6h")!.message, /2026-01-01T16:39:00.000Z, 7h 21m old; allowed 6h/);
  });
});

Deno.test("the same checks pass on clean data with zero failing rows", async () => {
  await withTables(async (ctx) => {
    const got = await checksOf(ctx, "orders_clean");
    assert.equal(got.size, Object.keys(DIRTY).length);
    // Checks that fail any data of this shape: 1,000 rows are more than 999, and the
    // clean quantities 1..10 include the excluded maximum 10 (100 rows).
    const inherent: Record<string, number | null> = { at_most_999: null, quantity_below_10: 100 };
    for (const [name, r] of got) {
      if (name in inherent) {
        assert.equal(r.status, "fail", `${name}: ${r.message}`);
        assert.equal(r.failingRows, inherent[name], name);
        continue;
      }
      assert.equal(r.status, "pass", `${name}: ${r.message}`);
      if (r.failingRows !== null) assert.equal(r.failingRows, 0, name);
      assert.deepEqual(r.samples, [], name);
    }
  });
});

Deno.test("a failing check keeps up to sample_size failing rows with their keys, in key order", async () => {
  await withTables(async (ctx) => {
    const got = await checksOf(ctx, "orders");
    const nulls = got.get("not_null_email")!;
    assert.deepEqual(nulls.samples.map((s) => s.rowKey), [
      '{"order_id":0}',
      '{"order_id":50}',
      '{"order_id":100}',
    ]);
    const first = JSON.parse(nulls.samples[0].sample);
    assert.equal(first.seq, 0);
    assert.equal(first.email, null);
    const dups = got.get("unique_order_id")!;
    assert.deepEqual(dups.samples.map((s) => JSON.parse(s.rowKey!).order_id), [980, 980, 981]);
    const orphans = got.get("relationships_customer_id")!;
    assert.deepEqual(orphans.samples.map((s) => JSON.parse(s.sample).customer_id), [
      9999,
      9999,
      9999,
    ]);
    assert.deepEqual(orphans.samples.map((s) => JSON.parse(s.sample).seq), [99, 199, 299]);
    assert.deepEqual(got.get("at_most_999")!.samples, [], "table-level checks keep no rows");
    assert.deepEqual(got.get("amount_4_allowed")!.samples, [], "passing checks keep no rows");
  });
});

Deno.test("unique over several columns counts every row of a duplicated combination, ignoring NULL keys", async () => {
  await withTables(async (ctx) => {
    const target = checkTargets(ctx.config, "gold")[0];
    const [r] = await runChecks(ctx, target, { sampleSize: 2 });
    assert.equal(r.check, "unique_day_country");
    assert.equal(r.status, "fail");
    assert.equal(r.failingRows, 30);
    assert.equal(r.totalRows, 102);
    // A gold model has no key: the sample is keyed by the checked columns.
    assert.deepEqual(r.samples.map((s) => s.rowKey), [
      '{"day":0,"country":"c0"}',
      '{"day":0,"country":"c0"}',
    ]);
  });
});

Deno.test("a check that does not fit the data is an error, and the transaction survives it", async () => {
  await withTables(async (ctx) => {
    await ctx.db.run("BEGIN TRANSACTION");
    const specs = (yaml: string) =>
      parseConfig(
        YAML.replace(CHECKS, yaml),
        join(ctx.config.dir, "pipeline.yaml"),
        { env: () => undefined },
      );
    const config = specs(`
      - range: { column: quantity, min: "lots" }
      - regex: { column: email, pattern: "([a-z" }
      - freshness: { column: email, max_age: 1h }
      - not_null: { column: seq, where: "no_such_column > 1" }
      - not_null: { column: email }`);
    const target = checkTargets(config, "silver").find((t) => t.table === "orders")!;
    const results = await runChecks({ ...ctx, config }, target);
    assert.deepEqual(results.map((r) => r.status), ["error", "error", "error", "error", "fail"]);
    assert.match(
      results[0].message,
      /min "lots" does not convert to INTEGER \(column "quantity"\)/,
    );
    assert.match(results[1].message, /not a valid RE2 expression/);
    assert.match(results[2].message, /needs a DATE or TIMESTAMP column; "email" is VARCHAR/);
    assert.match(results[3].message, /no_such_column/);
    assert.equal(results[4].failingRows, 20, "the other checks still ran");
    assert.ok(results.every((r) => !r.aborted));
    assert.equal(
      (await ctx.db.one<{ n: number }>("SELECT count(*) AS n FROM silver.orders"))?.n,
      1000,
    );
    await ctx.db.run("ROLLBACK");
  });
});

Deno.test("a runtime SQL error in an expression aborts the transaction and fails the gate even as warn", async () => {
  await withTables(async (ctx) => {
    await ctx.db.run("BEGIN TRANSACTION");
    const config = parseConfig(
      YAML.replace(
        CHECKS,
        `
      - expression: { name: bad_cast, sql: "CAST(email AS INTEGER) > 0", severity: warn }
      - unique: { column: order_id, severity: warn }`,
      ),
      join(ctx.config.dir, "pipeline.yaml"),
      { env: () => undefined },
    );
    const target = checkTargets(config, "silver").find((t) => t.table === "orders")!;
    const results = await runChecks({ ...ctx, config }, target);
    assert.equal(results[0].status, "error");
    assert.equal(results[0].aborted, true);
    assert.match(results[0].message, /Conversion Error/);
    assert.equal(results[1].status, "error");
    assert.match(results[1].message, /not evaluated/);
    assert.deepEqual(gateFailures(results).map((r) => r.check), ["bad_cast", "unique_order_id"]);
    await ctx.db.run("ROLLBACK");
  });
});

Deno.test("missing tables and columns are errors that name them", async () => {
  await withTables(async (ctx) => {
    await ctx.db.run("DROP TABLE silver.customers");
    const got = await checksOf(ctx, "orders");
    const rel = got.get("relationships_customer_id")!;
    assert.equal(rel.status, "error");
    assert.match(rel.message, /table silver.customers does not exist/);
    await ctx.db.run("ALTER TABLE silver.orders DROP COLUMN email");
    const again = await checksOf(ctx, "orders");
    assert.equal(again.get("not_null_email")!.status, "error");
    assert.match(again.get("not_null_email")!.message, /column "email" is not in silver.orders/);
    await ctx.db.run("DROP TABLE silver.orders");
    const gone = await checksOf(ctx, "orders");
    assert.ok([...gone.values()].every((r) => r.status === "error"));
    assert.match(gone.get("unique_order_id")!.message, /does not exist/);
  });
});

/** Records successful runs with the given silver.orders email null counts (of 1000 rows). */
async function history(ctx: RunContext, nullCounts: number[]): Promise<void> {
  await ensureQualityTables(ctx.db);
  for (const [i, nulls] of nullCounts.entries()) {
    const runId = `past_${i}`;
    await ctx.db.run(
      `INSERT INTO _sluice.runs (run_id, pipeline, command, started_at, status)
       VALUES ($r, 'quality_checks', 'run', $t::TIMESTAMPTZ, 'success')`,
      { r: runId, t: new Date(NOW.getTime() - (10 - i) * 86_400_000).toISOString() },
    );
    const p = await profileTable(ctx.db, { layer: "silver", schema: "silver", table: "orders" });
    const email = p.columns.find((c) => c.column === "email")!;
    email.nullCount = nulls;
    email.nullRatio = nulls / 1000;
    p.rowCount = 1000 - i;
    await recordProfiles(ctx.db, runId, [p], NOW);
    await recordCheckResults(ctx.db, runId, [{
      layer: "silver",
      table: "orders",
      check: "grew",
      type: "row_count",
      severity: "error",
      column: null,
      status: "pass",
      failingRows: null,
      totalRows: 800 + i * 10,
      threshold: null,
      message: "",
      samples: [],
      checkedAt: NOW,
    }]);
  }
  // A failed run and a `check` run never count as baselines.
  await ctx.db.run(
    `INSERT INTO _sluice.runs (run_id, pipeline, command, started_at, status) VALUES
     ('failed_run', 'quality_checks', 'run', $t::TIMESTAMPTZ, 'quality_failed'),
     ('check_run', 'quality_checks', 'check', $t::TIMESTAMPTZ, 'success')`,
    { t: new Date(NOW.getTime() - 3_600_000).toISOString() },
  );
  for (const r of ["failed_run", "check_run"]) {
    await recordCheckResults(ctx.db, r, [{
      layer: "silver",
      table: "orders",
      check: "grew",
      type: "row_count",
      severity: "error",
      column: null,
      status: "pass",
      failingRows: null,
      totalRows: 1,
      threshold: null,
      message: "",
      samples: [],
      checkedAt: NOW,
    }]);
  }
}

async function driftChecks(ctx: RunContext, checks: string): Promise<CheckResult[]> {
  const config = parseConfig(
    YAML.replace(CHECKS, checks),
    join(ctx.config.dir, "pipeline.yaml"),
    { env: () => undefined },
  );
  const target = checkTargets(config, "silver").find((t) => t.table === "orders")!;
  return await runChecks({ ...ctx, config }, target);
}

Deno.test("drift compares with the median of the last N successful runs, and row_count with the last one", async () => {
  await withTables(async (ctx) => {
    // Today 20 of 1000 emails are NULL (0.02). Past runs: 10, 10, 12, 30, 11 NULLs.
    await history(ctx, [10, 10, 12, 30, 11]);
    const results = await driftChecks(
      ctx,
      `
      - drift: { name: d5, metric: null_ratio, column: email, max_delta: 0.005, runs: 5 }
      - drift: { name: d5_wide, metric: null_ratio, column: email, max_delta: 0.01, runs: 5 }
      - drift: { name: d2, metric: null_ratio, column: email, max_delta: 0.005, runs: 2 }
      - drift: { name: rows, metric: row_count, max_change_pct: 0.1, runs: 3 }
      - drift: { name: few, metric: null_ratio, column: email, max_delta: 0.001, min_runs: 6 }
      - row_count: { name: grew, max_change_pct: 20 }
      - row_count: { name: grew_5, max_change_pct: 5 }`,
    );
    const by = new Map(results.map((r) => [r.check, r]));
    // median(10,10,12,30,11) = 11 -> 0.011; |0.020 - 0.011| = 0.009
    assert.equal(by.get("d5")!.status, "fail", by.get("d5")!.message);
    assert.match(
      by.get("d5")!.message,
      /median of the last 5 successful runs 0.0110: change 0.0090/,
    );
    assert.equal(by.get("d5_wide")!.status, "pass", by.get("d5_wide")!.message);
    // last 2 runs: 11 and 30 -> median 0.0205
    assert.equal(by.get("d2")!.status, "pass", by.get("d2")!.message);
    assert.match(by.get("d2")!.message, /median of the last 2 successful runs 0.0205/);
    // row counts of the last 3 runs: 998, 997, 996 -> median 997; today 1000 (0.3% more)
    assert.equal(by.get("rows")!.status, "fail", by.get("rows")!.message);
    assert.match(by.get("rows")!.message, /median of the last 3 successful runs 997/);
    assert.equal(by.get("few")!.status, "pass");
    assert.match(by.get("few")!.message, /needs 6 successful runs, found 5/);
    // last successful run counted 840 rows (failed and check runs are ignored): +19%
    assert.equal(by.get("grew")!.status, "pass", by.get("grew")!.message);
    assert.match(by.get("grew")!.message, /\+19% versus 840 in the last successful run/);
    const strict = await driftChecks(
      ctx,
      `
      - row_count: { name: grew, max_change_pct: 15 }`,
    );
    assert.equal(strict[0].status, "fail", strict[0].message);
    assert.match(strict[0].message, /changed more than 15%/);
    // The baseline is the same check's count: a new check has none yet.
    assert.equal(by.get("grew_5")!.status, "pass");
    assert.match(by.get("grew_5")!.message, /no earlier successful run to compare with/);
  });
});

Deno.test("bronze checks see the rows this run landed, quarantine checks the rows it quarantined", async () => {
  await withTables(async (ctx) => {
    await ctx.db.run(`CREATE TABLE bronze.raw AS
      SELECT CASE WHEN i < 5 THEN NULL ELSE i END::VARCHAR AS id,
        CASE WHEN i < 10 THEN 'old_run' ELSE 'run_now' END AS _run_id,
        now() AS _ingested_at, 'f.csv' AS _source_file, i AS _source_row
      FROM range(30) t(i) UNION ALL SELECT NULL, 'run_now', now(), 'g.csv', 1`);
    await ctx.db.run(`CREATE TABLE silver.orders__quarantine AS
      SELECT 'q' || i AS _dlq_id, CASE WHEN i < 4 THEN 'old_run' ELSE 'run_now' END AS _run_id,
        'orders' AS _table, CASE WHEN i IN (0, 5) THEN 'weird' ELSE 'cast_failed' END AS _reason_code,
        now() AS _quarantined_at
      FROM range(7) t(i)`);
    const config = parseConfig(
      YAML.replace(
        "  raw: { format: csv, path: ./landing }",
        `  raw:
    format: csv
    path: ./landing
    checks:
      - not_null: { column: id }`,
      ).replace(
        "    checks:" + CHECKS + "\n  orders_clean:",
        `    checks:
      - row_count: { min: 1 }
    quarantine_checks:
      - accepted_values: { column: _reason_code, values: [cast_failed, rule_failed] }
  orders_clean:`,
      ),
      join(ctx.config.dir, "pipeline.yaml"),
      { env: () => undefined },
    );
    const c = { ...ctx, config };
    const bronze = await auditLayer(c, "bronze", { sources: ["raw"], profiling: true });
    assert.equal(bronze.results.length, 1);
    assert.equal(bronze.results[0].failingRows, 1, "only the NULL id of this run's batch");
    assert.equal(bronze.results[0].totalRows, 21);
    assert.equal(bronze.profiles[0].rowCount, 21);
    assert.deepEqual(bronze.profiles[0].columns.map((p) => p.column), ["id"]);
    const nothingLanded = await auditLayer(c, "bronze", { sources: [] });
    assert.deepEqual(nothingLanded.results, []);

    const silver = await auditLayer(c, "silver", { profiling: false });
    const q = silver.results.find((r) => r.table === "orders__quarantine")!;
    assert.equal(q.check, "accepted_values__reason_code");
    assert.equal(q.totalRows, 3);
    assert.equal(q.failingRows, 1);
    assert.deepEqual(q.samples.map((s) => s.rowKey), ['{"_dlq_id":"q5"}']);
    const latest = await auditLayer(c, "silver", { batch: "latest", profiling: false });
    assert.equal(latest.results.find((r) => r.table === "orders__quarantine")!.totalRows, 3);
  });
});
