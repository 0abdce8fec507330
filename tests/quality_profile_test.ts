/**
 * Profiling: every table of every layer is profiled in one scan per table,
 * and the stored figures for the demo match independent SQL counts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { steppingClock } from "../core/clock.ts";
import { loadConfig } from "../core/config/mod.ts";
import { openEngine } from "../core/engine.ts";
import { qualified, rawIdent } from "../core/quote.ts";
import { recordProfiles } from "../quality/history.ts";
import { EXACT_DISTINCT_MAX_ROWS, profileSql, profileTable } from "../quality/profile.ts";
import { runDemo } from "../scaffold/demo.ts";

interface ProfileRow extends Record<string, unknown> {
  layer: string;
  table_name: string;
  column_name: string;
  column_type: string;
  row_count: number;
  null_count: number;
  null_ratio: number | null;
  distinct_approx: number | null;
  min_value: string | null;
  max_value: string | null;
}

Deno.test("the demo's profiles match independent SQL counts for every column of every table", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_qprofile_" });
  try {
    const { summary, configFile } = await runDemo(dir, {
      scale: 4_000,
      seed: 11,
      clock: steppingClock(new Date("2026-07-01T06:00:00Z"), { stepMs: 1 }),
    });
    assert.equal(summary.status, "success");
    const config = await loadConfig(configFile);
    const db = await openEngine(config.engine.database, { allowedDirectories: [config.lake] });
    try {
      const rows = await db.all<ProfileRow>(
        `SELECT layer, table_name, column_name, column_type, row_count::BIGINT AS row_count,
           null_count::BIGINT AS null_count, null_ratio, distinct_approx::BIGINT AS distinct_approx,
           min_value, max_value
         FROM _sluice.profiles WHERE run_id = $run ORDER BY layer, table_name, column_name`,
        { run: summary.runId },
      );
      const tables = new Set(rows.map((r) => `${r.layer}.${r.table_name}`));
      assert.deepEqual([...tables].sort(), [
        "bronze.customers",
        "bronze.orders",
        "bronze.products",
        "gold.customer_lifetime_value",
        "gold.daily_revenue_by_country",
        "gold.top_products",
        "silver.customers",
        "silver.orders",
        "silver.products",
      ]);
      let compared = 0;
      for (const r of rows) {
        const table = qualified(r.layer, r.table_name);
        const c = rawIdent(r.column_name);
        const scope = r.layer === "bronze" ? `WHERE _run_id = '${summary.runId}'` : "";
        const ordered = /^(BIGINT|INTEGER|DECIMAL|DOUBLE|DATE|TIMESTAMP|HUGEINT)/.test(
          r.column_type,
        );
        const expected = (await db.one<Record<string, unknown>>(
          `SELECT count(*)::BIGINT AS n, (count(*) - count(${c}))::BIGINT AS nulls,
             count(DISTINCT ${c})::BIGINT AS exact_distinct,
             ${ordered ? `CAST(min(${c}) AS VARCHAR)` : "NULL"} AS lo,
             ${ordered ? `CAST(max(${c}) AS VARCHAR)` : "NULL"} AS hi
           FROM ${table} ${scope}`,
        ))!;
        const where = `${r.layer}.${r.table_name}.${r.column_name}`;
        assert.equal(r.row_count, expected.n, where);
        assert.equal(r.null_count, expected.nulls, where);
        assert.equal(r.null_ratio, Number(expected.n) === 0 ? null : r.null_count / r.row_count);
        // Demo tables at this scale are small enough for exact distinct counts.
        assert.equal(r.distinct_approx, expected.exact_distinct, where);
        assert.equal(r.min_value, expected.lo, where);
        assert.equal(r.max_value, expected.hi, where);
        compared++;
      }
      // Bronze profiles leave out bronze's own bookkeeping columns.
      assert.ok(!rows.some((r) => r.column_name.startsWith("_")));
      assert.equal(compared, rows.length);
      assert.ok(compared > 40, `compared ${compared} columns`);
      // The demo's known mess shows up: about 2% of customer emails are missing.
      const email = rows.find((r) => r.layer === "silver" && r.column_name === "email")!;
      assert.ok(email.null_ratio! > 0.005 && email.null_ratio! < 0.05, `${email.null_ratio}`);
      // No error-level check fails on the demo data; the known warnings do.
      const checks = await db.all<{ check_name: string; severity: string; status: string }>(
        `SELECT check_name, severity, status FROM _sluice.check_results WHERE run_id = $run
         AND status <> 'pass' ORDER BY check_name`,
        { run: summary.runId },
      );
      assert.ok(checks.every((c) => c.severity === "warn"), JSON.stringify(checks));
      assert.deepEqual(checks.map((c) => c.check_name), [
        "max_quarantine", // the demo's quarantined rows, within the budget
        "not_null_email",
        "relationships_customer_id",
      ]);
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("profiling a table is one aggregate query over all its columns", () => {
  const sql = profileSql({ schema: "silver", table: "orders" }, [
    { name: "order_id", type: "BIGINT" },
    { name: "email", type: "VARCHAR" },
    { name: "tags", type: "VARCHAR[]" },
    { name: "order_ts", type: "TIMESTAMP" },
  ]);
  assert.equal(sql.match(/\bSELECT\b/g)?.length, 1);
  assert.equal(sql.match(/\bFROM\b/g)?.length, 1);
  assert.match(sql, /approx_count_distinct\("order_id"\)/);
  assert.match(
    profileSql({ schema: "s", table: "t" }, [{ name: "a", type: "INTEGER", exact: true }]),
    /count\(DISTINCT "a"\)/,
  );
  assert.match(sql, /CAST\(min\("order_ts"\) AS VARCHAR\)/);
  assert.doesNotMatch(sql, /min\("email"\)/, "no min/max for text");
  assert.doesNotMatch(sql, /approx_count_distinct\("tags"\)/, "no distinct count for lists");
});

Deno.test("a table with no rows has a NULL null ratio, not a division by zero", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_qprofile_" });
  const db = await openEngine(join(dir, "p.duckdb"), {
    allowedDirectories: [dir],
    schemas: ["silver"],
  });
  try {
    await db.run("CREATE TABLE silver.empty (id BIGINT, note VARCHAR)");
    const p = await profileTable(db, { layer: "silver", schema: "silver", table: "empty" });
    assert.equal(p.rowCount, 0);
    assert.deepEqual(p.columns.map((c) => [c.column, c.nullCount, c.nullRatio, c.min]), [
      ["id", 0, null, null],
      ["note", 0, null, null],
    ]);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("big tables estimate distinct counts, then count low-cardinality columns exactly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_qprofile_" });
  const db = await openEngine(join(dir, "p.duckdb"), {
    allowedDirectories: [dir],
    schemas: ["silver", "_sluice"],
  });
  try {
    const n = EXACT_DISTINCT_MAX_ROWS + 1;
    await db.run(
      `CREATE TABLE silver.big AS SELECT i % 5000 AS k, i AS id FROM range(${n}) t(i)`,
    );
    const first = await profileTable(db, { layer: "silver", schema: "silver", table: "big" });
    const expected = await db.one<{ k: number; id: number }>(
      `SELECT approx_count_distinct(k)::BIGINT AS k, approx_count_distinct(id)::BIGINT AS id
       FROM silver.big`,
    );
    assert.equal(first.rowCount, n);
    assert.deepEqual(first.columns.map((c) => [c.distinctApprox, c.distinctExact]), [
      [expected?.k, false],
      [expected?.id, false],
    ]);
    // With a stored profile, the column known to have few values is counted exactly.
    await recordProfiles(db, "r1", [first], new Date("2026-01-01T00:00:00Z"));
    const second = await profileTable(db, { layer: "silver", schema: "silver", table: "big" });
    assert.deepEqual(second.columns.map((c) => [c.distinctApprox, c.distinctExact]), [
      [5000, true],
      [expected?.id, false],
    ]);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});
