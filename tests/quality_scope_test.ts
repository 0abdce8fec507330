/**
 * `quality.scope: changed`: silver row-level checks read only the rows a
 * run wrote and the rows that failed them last time, and their results equal
 * a check of every row. Two projects get the same files run by run, one
 * with `scope: changed`, one with `scope: full`; their check results must
 * match (status, failing and total rows, samples).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { steppingClock } from "../core/clock.ts";
import { loadConfig } from "../core/config/mod.ts";
import { withRun } from "../runtime/with_run.ts";
import type { CheckResult } from "../quality/types.ts";
import { runPipeline } from "../stages/pipeline.ts";
import { makeProject, type Project, query, writeFile } from "./_helpers.ts";

const yaml = (scope: string, extra = "") =>
  `pipeline: scope
lake: ./lake
engine: { threads: 2 }
quality: { scope: ${scope}, sample_size: 50 }
sources:
  orders: { format: csv, path: ./landing/orders, glob: "*.csv" }
  customers: { format: csv, path: ./landing/customers, glob: "*.csv" }
silver:
  customers:
    from: customers
    mode: append
    columns:
      customer_id: { type: BIGINT }
  orders:
    from: orders
    key: [order_id]
    order_by: updated_at
    mode: merge
    max_quarantine: "100%"
    columns:
      order_id: { type: BIGINT, nullable: false }
      email: { type: VARCHAR }
      status: { type: VARCHAR }
      qty: { type: INTEGER }
      country: { type: VARCHAR }
      customer_id: { type: BIGINT }
      updated_at: { type: TIMESTAMP }
    checks:
      - not_null: { column: email, severity: warn }
      - accepted_values: { column: status, values: [new, paid], severity: warn }
      - range: { column: qty, min: 0, max: 100, severity: warn, where: "status <> 'new'" }
      - regex: { column: country, pattern: "^[A-Z]{2}$", severity: warn, threshold: "20%" }
      - expression: { name: qty_even, sql: "qty % 2 = 0", severity: warn }
      - unique: { column: email, severity: warn }
      - relationships: { column: customer_id, to: customers, severity: warn }
      - row_count: { min: 1 }
      - null_ratio: { column: email, max: 0.9, severity: warn }
${extra}`;

const HEADER = "order_id,email,status,qty,country,customer_id,updated_at\n";

/** One project per scope. */
async function pair(extra = ""): Promise<{ changed: Project; full: Project }> {
  return {
    changed: await makeProject(yaml("changed", extra)),
    full: await makeProject(yaml("full", extra)),
  };
}

async function runIn(p: Project, runId: string): Promise<CheckResult[]> {
  const config = await loadConfig(p.configFile);
  const summary = await withRun(config, {
    runId,
    trigger: "test",
    clock: steppingClock(new Date(Date.UTC(2026, 0, 3)), { stepMs: 1 }),
  }, (ctx) => runPipeline(ctx));
  return summary.checks;
}

/** What must be equal between scopes: everything but timing and the scope itself. */
function comparable(results: readonly CheckResult[]) {
  return results.filter((r) => r.layer === "silver").map((r) => ({
    table: r.table,
    check: r.check,
    status: r.status,
    failingRows: r.failingRows,
    totalRows: r.totalRows,
    message: r.message,
    samples: r.samples.map((s) => s.rowKey).sort(),
  }));
}

/** Drops the same files into both projects and runs both; returns the changed-scope results. */
async function step(
  projects: { changed: Project; full: Project },
  runId: string,
  files: Record<string, string>,
): Promise<CheckResult[]> {
  for (const p of [projects.changed, projects.full]) {
    for (const [rel, text] of Object.entries(files)) await writeFile(p.dir, rel, text);
  }
  const changed = await runIn(projects.changed, runId);
  const full = await runIn(projects.full, runId);
  assert.deepEqual(comparable(changed), comparable(full), `run ${runId}`);
  return changed;
}

const byCheck = (results: readonly CheckResult[], check: string) =>
  results.find((r) => r.table === "orders" && r.check === check)!;

async function cleanup(projects: { changed: Project; full: Project }) {
  for (const p of [projects.changed, projects.full]) await Deno.remove(p.dir, { recursive: true });
}

Deno.test("scope changed gives the results of a full check: new, fixed, persisting and cross-run failures", async () => {
  const projects = await pair();
  try {
    const first = await step(projects, "run1", {
      "landing/customers/c1.csv": "customer_id\n1\n2\n",
      "landing/orders/a.csv": HEADER +
        "1,a@x,new,2,DE,1,2026-01-01 10:00\n" +
        "2,b@x,lost,4,FR,1,2026-01-01 10:00\n" + // accepted_values fails; fixed in run2
        "3,,paid,6,NL,2,2026-01-01 10:00\n" + // not_null fails; nothing touches it again
        "4,d@x,paid,8,US,9,2026-01-01 10:00\n", // orphan until customer 9 arrives in run3
    });
    // A first build is checked in full.
    assert.equal(byCheck(first, "not_null_email").scope, "full");
    assert.equal(byCheck(first, "accepted_values_status").failingRows, 1);

    const second = await step(projects, "run2", {
      "landing/orders/b.csv": HEADER +
        "2,b@x,paid,4,FR,1,2026-01-02 10:00\n" + // (b) an update of order 2 fixes its failure
        "5,e@x,new,3,xx,1,2026-01-02 10:00\n" + // (a) new rows only: regex and qty_even fail
        "6,a@x,paid,10,IT,2,2026-01-02 10:00\n", // (d) duplicates order 1's email
    });
    const notNull = byCheck(second, "not_null_email");
    assert.equal(notNull.scope, "changed");
    assert.equal(notNull.failingRows, 1, "(c) order 3 still fails without being read again");
    assert.ok(notNull.rowsChecked! < notNull.totalRows!, "only candidate rows are read");
    assert.equal(byCheck(second, "accepted_values_status").failingRows, 0, "(b) fixed");
    assert.equal(byCheck(second, "qty_even").failingRows, 1);
    assert.equal(byCheck(second, "unique_email").failingRows, 2, "(d) old and new row");
    assert.equal(byCheck(second, "unique_email").scope, "changed");
    assert.equal(byCheck(second, "relationships_customer_id").failingRows, 1);

    // The parent gains customer 9: the orphan of run 1 passes (it is read again).
    const third = await step(projects, "run3", { "landing/customers/c2.csv": "customer_id\n9\n" });
    const rel = byCheck(third, "relationships_customer_id");
    assert.equal(rel.scope, "changed");
    assert.equal(rel.failingRows, 0);
    assert.equal(byCheck(third, "unique_email").failingRows, 2, "no new rows, still failing");

    // Order 6 changes its email: the duplicate is gone on both rows.
    const fourth = await step(projects, "run4", {
      "landing/orders/c.csv": HEADER + "6,f@x,paid,10,IT,2,2026-01-03 10:00\n",
    });
    assert.equal(byCheck(fourth, "unique_email").failingRows, 0);
    assert.equal(byCheck(fourth, "not_null_email").failingRows, 1);
  } finally {
    await cleanup(projects);
  }
});

Deno.test("scope changed keeps the failing rows of each check in _sluice.check_state_rows", async () => {
  const projects = await pair();
  try {
    await step(projects, "run1", {
      "landing/customers/c1.csv": "customer_id\n1\n",
      "landing/orders/a.csv": HEADER + "1,,new,2,DE,1,2026-01-01 10:00\n" +
        "2,b@x,paid,2,DE,1,2026-01-01 10:00\n",
    });
    const kept = await query<{ check_name: string; source_row: bigint }>(
      projects.changed,
      `SELECT check_name, source_row FROM _sluice.check_state_rows WHERE table_name = 'orders'`,
    );
    assert.deepEqual(kept.map((r) => [r.check_name, Number(r.source_row)]), [[
      "not_null_email",
      1,
    ]]);
    const full = await query<{ n: bigint }>(
      projects.full,
      `SELECT count(*) AS n FROM duckdb_tables() WHERE table_name = 'check_state_rows'`,
    );
    assert.equal(Number(full[0].n), 0, "scope full keeps no state");
  } finally {
    await cleanup(projects);
  }
});

Deno.test("a changed check spec or a full refresh is checked in full", async () => {
  const projects = await pair();
  try {
    await step(projects, "run1", {
      "landing/customers/c1.csv": "customer_id\n1\n",
      "landing/orders/a.csv": HEADER + "1,a@x,new,2,DE,1,2026-01-01 10:00\n",
    });
    const text = await Deno.readTextFile(projects.changed.configFile);
    await Deno.writeTextFile(
      projects.changed.configFile,
      text.replace("values: [new, paid]", "values: [new]"),
    );
    await Deno.writeTextFile(
      projects.full.configFile,
      (await Deno.readTextFile(projects.full.configFile)).replace(
        "values: [new, paid]",
        "values: [new]",
      ),
    );
    const second = await step(projects, "run2", {
      "landing/orders/b.csv": HEADER + "2,b@x,paid,2,DE,1,2026-01-02 10:00\n",
    });
    assert.equal(byCheck(second, "accepted_values_status").scope, "full");
    assert.equal(byCheck(second, "accepted_values_status").failingRows, 1);
    assert.equal(byCheck(second, "not_null_email").scope, "changed");

    const config = await loadConfig(projects.changed.configFile);
    const refreshed = await withRun(
      config,
      { runId: "run3", trigger: "test" },
      (ctx) => runPipeline(ctx, { fullRefresh: true }),
    );
    assert.equal(byCheck(refreshed.checks, "not_null_email").scope, "full");
  } finally {
    await cleanup(projects);
  }
});

Deno.test("a run with checks off forgets the state, so the next run checks in full", async () => {
  const projects = await pair();
  try {
    await step(projects, "run1", {
      "landing/customers/c1.csv": "customer_id\n1\n",
      "landing/orders/a.csv": HEADER + "1,a@x,new,2,DE,1,2026-01-01 10:00\n",
    });
    const p = projects.changed;
    const text = await Deno.readTextFile(p.configFile);
    await Deno.writeTextFile(
      p.configFile,
      text.replace("scope: changed,", "scope: changed, checks: false,"),
    );
    await writeFile(p.dir, "landing/orders/b.csv", HEADER + "2,,paid,2,DE,1,2026-01-02 10:00\n");
    await runIn(p, "run2");
    await Deno.writeTextFile(p.configFile, text);
    await writeFile(p.dir, "landing/orders/c.csv", HEADER + "3,c@x,paid,2,DE,1,2026-01-03 10:00\n");
    const third = await runIn(p, "run3");
    assert.equal(byCheck(third, "not_null_email").scope, "full");
    assert.equal(byCheck(third, "not_null_email").failingRows, 1, "order 2 of the unchecked run");
  } finally {
    await cleanup(projects);
  }
});

Deno.test("random increments: scope changed and scope full agree run after run", async () => {
  const row = fc.record({
    id: fc.integer({ min: 1, max: 12 }),
    email: fc.constantFrom("", "a@x", "b@x", "c@x", "d@x", "e@x"),
    status: fc.constantFrom("new", "paid", "lost"),
    qty: fc.integer({ min: -2, max: 103 }),
    country: fc.constantFrom("DE", "fr", "NL"),
    customer: fc.integer({ min: 1, max: 4 }),
  });
  const runs = fc.array(
    fc.record({
      orders: fc.array(row, { minLength: 0, maxLength: 6 }),
      customer: fc.option(fc.integer({ min: 1, max: 4 })),
    }),
    { minLength: 2, maxLength: 3 },
  );
  let n = 0;
  await fc.assert(
    fc.asyncProperty(runs, async (plan) => {
      const projects = await pair();
      try {
        await step(projects, `r${n}_0`, {
          "landing/customers/c0.csv": "customer_id\n1\n",
          "landing/orders/o0.csv": HEADER + "100,z@x,new,2,DE,1,2026-01-01 00:00\n",
        });
        for (const [i, inc] of plan.entries()) {
          const files: Record<string, string> = {};
          // Unique ids per file: a file's own duplicates would be ranked, not merged.
          const seen = new Set<number>();
          const rows = inc.orders.filter((r) => !seen.has(r.id) && seen.add(r.id));
          if (rows.length > 0) {
            files[`landing/orders/o${i + 1}.csv`] = HEADER +
              rows.map((r) =>
                `${r.id},${r.email},${r.status},${r.qty},${r.country},${r.customer},2026-01-0${
                  i + 2
                } 00:00\n`
              ).join("");
          }
          if (inc.customer !== null) {
            files[`landing/customers/c${i + 1}.csv`] = `customer_id\n${inc.customer}\n`;
          }
          if (Object.keys(files).length === 0) continue;
          await step(projects, `r${n}_${i + 1}`, files);
        }
      } finally {
        n++;
        await cleanup(projects);
      }
    }),
    { numRuns: 5 },
  );
});
