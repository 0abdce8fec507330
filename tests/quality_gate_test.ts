/**
 * Write-audit-publish: a run whose checks fail at error level publishes
 * nothing (tables and output files stay as they were, byte for byte), keeps
 * the evidence, and exits 3; warnings never stop a run.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { steppingClock } from "../core/clock.ts";
import { loadConfig } from "../core/config/mod.ts";
import { openEngine } from "../core/engine.ts";
import { QualityGateError } from "../core/errors.ts";
import { literal } from "../core/quote.ts";
import { withRun } from "../runtime/with_run.ts";
import { runPipeline } from "../stages/pipeline.ts";
import { makeProject, sluice } from "./_helpers.ts";

const GATE_YAML = `pipeline: gate
lake: ./lake
engine: { threads: 2 }
sources:
  orders:
    format: csv
    path: ./landing/orders
    glob: "*.csv"
    on_change: reingest
silver:
  orders:
    from: orders
    key: [order_id]
    order_by: updated_at
    mode: merge
    # The test files quarantine on purpose, up to half their rows.
    max_quarantine: "50%"
    columns:
      order_id: { type: BIGINT, nullable: false }
      quantity: { type: INTEGER }
      status: { type: VARCHAR, expr: "lower(trim(status))" }
      country: { type: VARCHAR, expr: "upper(trim(country))" }
      updated_at: { type: TIMESTAMP }
    rules:
      - { name: positive_quantity, sql: "quantity > 0" }
    checks:
      - accepted_values: { column: status, values: [new, paid, shipped] }
      - not_null: { column: country, severity: warn }
gold:
  by_country:
    sql: select country, count(*) as orders, sum(quantity) as units from orders group by country order by country
    checks:
      - range: { column: units, max: 1000 }
output:
  tables:
    by_country: {}
`;

/** Writes `orders` rows made by DuckDB SQL (columns order_id, quantity, status, country, updated_at). */
async function writeOrders(dir: string, file: string, select: string): Promise<void> {
  const folder = join(dir, "landing", "orders");
  await Deno.mkdir(folder, { recursive: true });
  const db = await openEngine(":memory:", { allowedDirectories: [folder] });
  try {
    await db.run(`COPY (${select}) TO ${literal(join(folder, file))} (FORMAT csv, HEADER)`);
  } finally {
    db.close();
  }
}

/** 100 clean orders: ids 1..100, quantity 1 to 3, known statuses, 4 countries. */
const CLEAN_100 = `SELECT i + 1 AS order_id, 1 + i % 3 AS quantity,
    ['new', 'paid', 'shipped'][1 + i % 3] AS status, ['de', 'fr', 'us', 'nl'][1 + i % 4] AS country,
    '2026-01-01 10:00:00' AS updated_at
  FROM range(100) t(i)`;

/** Every file and link under `dir` (links not followed): path -> sha256 or link target. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(join(dir, rel))) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isSymlink) out[path] = `-> ${await Deno.readLink(join(dir, path))}`;
      else if (e.isDirectory) await walk(path);
      else {
        out[path] = createHash("sha256").update(await Deno.readFile(join(dir, path))).digest("hex");
      }
    }
  };
  await walk("");
  return out;
}

async function query<T extends Record<string, unknown>>(
  dir: string,
  sql: string,
): Promise<T[]> {
  const config = await loadConfig(join(dir, "pipeline.yaml"));
  const db = await openEngine(config.engine.database, { allowedDirectories: [config.lake] });
  try {
    return await db.all<T>(sql);
  } finally {
    db.close();
  }
}

Deno.test("an error-level failure in silver exits 3, builds no gold, publishes nothing and keeps the evidence", async () => {
  const p = await makeProject(GATE_YAML);
  try {
    await writeOrders(p.dir, "orders_1.csv", CLEAN_100);
    const first = await sluice([
      "--log-format",
      "json",
      "run",
      "-c",
      p.configFile,
      "--run-id",
      "run1",
    ]);
    assert.equal(first.code, 0, first.stderr);
    const output = join(p.dir, "lake", "output");
    const published = await snapshot(output);
    assert.ok(published["by_country"].startsWith("-> .versions/by_country/run1"));
    const goldBefore = await query(p.dir, "SELECT * FROM gold.by_country ORDER BY country");

    // Two new orders with an unknown status (error check) and one bad quantity (quarantine).
    await writeOrders(
      p.dir,
      "orders_2.csv",
      `SELECT * FROM (VALUES
        (101, '1', 'lost', 'de', '2026-01-02 10:00:00'),
        (102, '2', ' LOST ', 'fr', '2026-01-02 10:00:00'),
        (103, 'two', 'new', 'de', '2026-01-02 10:00:00'))
       t(order_id, quantity, status, country, updated_at)`,
    );
    const failed = await sluice([
      "--log-format",
      "json",
      "run",
      "-c",
      p.configFile,
      "--run-id",
      "run2",
    ]);
    assert.equal(failed.code, 3, failed.stderr);
    assert.match(
      failed.stderr,
      /Data-quality gate failed in silver: 1 check failed; nothing was published/,
    );
    assert.match(
      failed.stderr,
      /silver\.orders accepted_values_status \(accepted_values, error, fail\): 2 of 102 rows/,
    );
    assert.doesNotMatch(failed.stderr, /"logger":"sluice\.gold"/, "the gold stage never started");

    assert.deepEqual(
      await snapshot(output),
      published,
      "published files are byte-for-byte unchanged",
    );
    assert.deepEqual(
      await query(p.dir, "SELECT * FROM gold.by_country ORDER BY country"),
      goldBefore,
    );
    assert.deepEqual(await query(p.dir, "SELECT count(*)::INT AS n FROM silver.orders"), [{
      n: 100,
    }]);
    assert.deepEqual(
      await query(p.dir, "SELECT status FROM _sluice.runs WHERE run_id = 'run2'"),
      [{ status: "quality_failed" }],
    );
    assert.deepEqual(
      await query(
        p.dir,
        "SELECT DISTINCT stage FROM _sluice.stage_tables WHERE run_id = 'run2' ORDER BY stage",
      ),
      [{ stage: "bronze" }, { stage: "extract" }, { stage: "silver" }],
    );
    // Evidence of the failed run: results, failing rows, quarantined rows, profiles.
    assert.deepEqual(
      await query(
        p.dir,
        `SELECT check_name, status, failing_rows::INT AS failing, total_rows::INT AS total
         FROM _sluice.check_results WHERE run_id = 'run2' ORDER BY check_name`,
      ),
      [
        { check_name: "accepted_values_status", status: "fail", failing: 2, total: 102 },
        // The quarantine budget's warning: 1 of the run's 3 rows (within 50%).
        { check_name: "max_quarantine", status: "fail", failing: 1, total: 3 },
        { check_name: "not_null_country", status: "pass", failing: 0, total: 102 },
      ],
    );
    assert.deepEqual(
      await query(
        p.dir,
        `SELECT row_key, sample->>'status' AS status FROM _sluice.check_failures
         WHERE run_id = 'run2' ORDER BY row_key`,
      ),
      [
        { row_key: '{"order_id":101}', status: "lost" },
        { row_key: '{"order_id":102}', status: "lost" },
      ],
    );
    assert.deepEqual(
      await query(
        p.dir,
        "SELECT _run_id, _reason_code FROM silver.orders__quarantine ORDER BY _run_id",
      ),
      [{ _run_id: "run2", _reason_code: "cast_failed" }],
    );
    assert.deepEqual(
      await query(
        p.dir,
        `SELECT DISTINCT layer, table_name, row_count::INT AS n FROM _sluice.profiles
         WHERE run_id = 'run2' ORDER BY layer`,
      ),
      [
        { layer: "bronze", table_name: "orders", n: 3 },
        { layer: "silver", table_name: "orders", n: 102 },
      ],
    );
    assert.deepEqual(await query(p.dir, "SELECT count(*)::INT AS n FROM bronze.orders"), [{
      n: 103,
    }]);

    // The upstream fix (the file sent again) publishes on the next run.
    await writeOrders(
      p.dir,
      "orders_2.csv",
      `SELECT * FROM (VALUES
        (101, '1', 'new', 'de', '2026-01-02 10:00:00'),
        (102, '2', 'paid', 'fr', '2026-01-02 10:00:00'))
       t(order_id, quantity, status, country, updated_at)`,
    );
    const fixed = await sluice(["run", "-c", p.configFile, "--run-id", "run3"]);
    assert.equal(fixed.code, 0, fixed.stderr);
    const after = await snapshot(output);
    assert.equal(after["by_country"], "-> .versions/by_country/run3");
    assert.deepEqual(await query(p.dir, "SELECT count(*)::INT AS n FROM silver.orders"), [{
      n: 102,
    }]);
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

/** Runs the pipeline in-process with a fixed clock. */
async function runIn(dir: string, runId: string, day = 3) {
  const config = await loadConfig(join(dir, "pipeline.yaml"));
  return await withRun(config, {
    runId,
    trigger: "test",
    clock: steppingClock(new Date(Date.UTC(2026, 0, day)), { stepMs: 1 }),
  }, async (ctx) => ({ summary: await runPipeline(ctx), metrics: await ctx.metrics.metrics() }));
}

Deno.test("a gold check failure rolls silver back too", async () => {
  const p = await makeProject(GATE_YAML);
  try {
    await writeOrders(p.dir, "orders_1.csv", CLEAN_100);
    await runIn(p.dir, "run1");
    const goldBefore = await query(p.dir, "SELECT * FROM gold.by_country ORDER BY country");
    // 1,000 more units for one country: gold's range check fails.
    await writeOrders(
      p.dir,
      "orders_2.csv",
      `SELECT 1000 + i AS order_id, 100 AS quantity, 'new' AS status, 'de' AS country,
         '2026-01-02 10:00:00' AS updated_at FROM range(10) t(i)`,
    );
    await assert.rejects(() => runIn(p.dir, "run2"), (e: unknown) => {
      assert.ok(e instanceof QualityGateError);
      assert.equal(e.exitCode, 3);
      assert.match(e.message, /failed in gold/);
      assert.match(e.message, /gold\.by_country range_units .*1 of 4 rows/);
      return true;
    });
    assert.deepEqual(await query(p.dir, "SELECT count(*)::INT AS n FROM silver.orders"), [{
      n: 100,
    }]);
    assert.deepEqual(
      await query(p.dir, "SELECT * FROM gold.by_country ORDER BY country"),
      goldBefore,
    );
    assert.deepEqual(
      await query(
        p.dir,
        "SELECT layer, status FROM _sluice.check_results WHERE run_id = 'run2' ORDER BY layer, check_name",
      ),
      [
        { layer: "gold", status: "fail" },
        { layer: "silver", status: "pass" },
        { layer: "silver", status: "pass" },
      ],
    );
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("warn-level failures are reported but never stop a run", async () => {
  const p = await makeProject(GATE_YAML);
  try {
    await writeOrders(
      p.dir,
      "orders_1.csv",
      `SELECT i + 1 AS order_id, 1 AS quantity, 'new' AS status,
         CASE WHEN i < 3 THEN NULL ELSE 'de' END AS country, '2026-01-01' AS updated_at
       FROM range(10) t(i)`,
    );
    const { summary, metrics } = await runIn(p.dir, "run1");
    assert.equal(summary.status, "success");
    const warn = summary.checks.find((c) => c.check === "not_null_country")!;
    assert.equal(warn.status, "fail");
    assert.equal(warn.severity, "warn");
    assert.equal(warn.failingRows, 3);
    assert.ok((await Deno.lstat(join(p.dir, "lake", "output", "by_country"))).isSymlink);
    assert.match(
      metrics,
      /sluice_check_status\{pipeline="gate",layer="silver",table="orders",check="not_null_country",severity="warn",status="fail"\} 1/,
    );
    assert.match(
      metrics,
      /sluice_check_failing_rows\{pipeline="gate",layer="silver",table="orders",check="not_null_country",severity="warn"\} 3/,
    );
    assert.match(
      metrics,
      /sluice_column_null_ratio\{pipeline="gate",layer="silver",table="orders",column="country"\} 0.3/,
    );
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("an error-level bronze check stops the run before silver but keeps the landed rows", async () => {
  const yaml = GATE_YAML.replace(
    "    on_change: reingest\n",
    "    on_change: reingest\n    checks:\n      - not_null: { column: order_id }\n",
  );
  const p = await makeProject(yaml);
  try {
    await writeOrders(
      p.dir,
      "orders_1.csv",
      `SELECT CASE WHEN i = 4 THEN NULL ELSE i END AS order_id, 1 AS quantity, 'new' AS status,
         'de' AS country, '2026-01-01' AS updated_at FROM range(10) t(i)`,
    );
    await assert.rejects(() => runIn(p.dir, "run1"), /failed in bronze: 1 check failed/);
    assert.deepEqual(await query(p.dir, "SELECT count(*)::INT AS n FROM bronze.orders"), [{
      n: 10,
    }]);
    assert.deepEqual(
      await query(
        p.dir,
        "SELECT count(*)::INT AS n FROM duckdb_tables() WHERE schema_name IN ('silver', 'gold')",
      ),
      [{ n: 0 }],
    );
    assert.equal(
      await Deno.lstat(join(p.dir, "lake", "output", "by_country")).catch(() => null),
      null,
    );
    assert.deepEqual(
      await query(p.dir, "SELECT failing_rows::INT AS f FROM _sluice.check_results"),
      [{ f: 1 }],
    );
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("quarantine retention keeps the rows of the last N runs", async () => {
  const yaml = `${GATE_YAML}quality:\n  quarantine_retention: { runs: 2 }\n`;
  const p = await makeProject(yaml);
  try {
    for (const n of [1, 2, 3]) {
      await writeOrders(
        p.dir,
        `orders_${n}.csv`,
        `SELECT ${n * 100} + i AS order_id, CASE WHEN i < ${n} THEN 'x' ELSE '1' END AS quantity,
           'new' AS status, 'de' AS country, '2026-01-01' AS updated_at FROM range(10) t(i)`,
      );
      await runIn(p.dir, `run${n}`, n);
    }
    assert.deepEqual(
      await query(
        p.dir,
        "SELECT _run_id, count(*)::INT AS n FROM silver.orders__quarantine GROUP BY 1 ORDER BY 1",
      ),
      [{ _run_id: "run2", n: 2 }, { _run_id: "run3", n: 3 }],
    );
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("quality checks and profiling can be turned off", async () => {
  const yaml = `${GATE_YAML}quality: { checks: false, profiling: false }\n`;
  const p = await makeProject(yaml);
  try {
    await writeOrders(
      p.dir,
      "orders_1.csv",
      `SELECT i AS order_id, 1 AS quantity, 'lost' AS status, 'de' AS country,
         '2026-01-01' AS updated_at FROM range(10) t(i)`,
    );
    const { summary } = await runIn(p.dir, "run1");
    assert.equal(summary.status, "success");
    assert.deepEqual(summary.checks, []);
    assert.deepEqual(
      await query(
        p.dir,
        `SELECT count(*)::INT AS n FROM duckdb_tables()
         WHERE schema_name = '_sluice' AND table_name IN ('check_results', 'profiles')`,
      ),
      [{ n: 0 }],
    );
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("sluice check runs the checks alone and exits 3 on an error-level failure", async () => {
  const p = await makeProject(GATE_YAML);
  try {
    await writeOrders(p.dir, "orders_1.csv", CLEAN_100);
    const run = await sluice(["run", "-c", p.configFile, "--run-id", "run1"]);
    assert.equal(run.code, 0, run.stderr);
    const ok = await sluice(["check", "-c", p.configFile]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /silver\s+orders\s+accepted_values_status\s+error\s+pass\s+0\s+100/);
    assert.match(ok.stdout, /3 checks: 3 passed, 0 failed, 0 errored/);

    // Someone edits the table by hand: the check command notices.
    const config = await loadConfig(p.configFile);
    const db = await openEngine(config.engine.database, { allowedDirectories: [config.lake] });
    await db.run("UPDATE silver.orders SET status = 'lost' WHERE order_id <= 7");
    db.close();
    const bad = await sluice(["check", "-c", p.configFile, "--layer", "silver"]);
    assert.equal(bad.code, 3, bad.stderr);
    assert.match(bad.stdout, /accepted_values_status\s+error\s+fail\s+7\s+100/);
    assert.doesNotMatch(bad.stdout, /by_country/);
    assert.match(bad.stderr, /Data-quality gate failed: 1 check failed/);
    const gold = await sluice(["check", "-c", p.configFile, "--layer", "gold"]);
    assert.equal(gold.code, 0, gold.stderr);
    assert.match(gold.stdout, /1 check: 1 passed/);
    assert.deepEqual(
      await query(
        p.dir,
        "SELECT command, status FROM _sluice.runs WHERE command = 'check' ORDER BY started_at",
      ),
      [
        { command: "check", status: "success" },
        { command: "check", status: "quality_failed" },
        { command: "check", status: "success" },
      ],
    );
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});
