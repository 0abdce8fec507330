/**
 * `quality.scope: changed` profiles: a silver table that only gained rows
 * (mode `append`) is profiled from its previous profile plus the new rows,
 * and its figures equal a full profile. Two projects get the same files run
 * by run, one with `scope: changed`, one with `scope: full`.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { EXACT_DISTINCT_MAX_ROWS } from "../quality/profile.ts";
import { query } from "./_helpers.ts";
import { profilePair } from "./_profile_pair.ts";

const yaml = (scope: string) =>
  `pipeline: pscope
lake: ./lake
engine: { threads: 2 }
quality: { scope: ${scope} }
sources:
  events: { format: csv, path: ./landing/events, glob: "*.csv" }
silver:
  events:
    from: events
    mode: append
    columns:
      id: { type: BIGINT }
      amount: { type: DOUBLE }
      qty: { type: INTEGER }
      day: { type: DATE }
      at: { type: TIMESTAMP }
      price: { type: "DECIMAL(10,2)" }
      label: { type: VARCHAR }
    checks:
      - not_null: { column: id, severity: warn }
`;

const HEADER = "id,amount,qty,day,at,price,label\n";

Deno.test("scope changed profiles of appended rows equal a full profile: first NULL, new min and max", async () => {
  const projects = await profilePair(yaml, "events");
  try {
    const first = await projects.step(
      "run1",
      "a.csv",
      HEADER +
        "1,1.5,3,2026-01-02,2026-01-02 10:00,1.25,x\n2,2.5,4,2026-01-03,2026-01-03 10:00,2.50,y\n",
    );
    // New rows: the first NULL of amount, a new min qty, a new max day/at/price.
    const second = await projects.step(
      "run2",
      "b.csv",
      HEADER + "3,,1,2026-02-01,2026-02-01 11:30,9.99,x\n4,0.25,7,2025-12-31,2026-01-01 00:00,,z\n",
    );
    assert.equal(first.method, "full: rebuilt", "first build");
    assert.equal(second.method, "incremental");
    const amount = second.profile.find((c) => c.column_name === "amount")!;
    assert.equal(amount.null_count, "1");
    assert.equal(amount.min_value, "0.25");
    // A run that consumes nothing new, then more rows.
    const third = await projects.step("run3", "c.csv", HEADER + "5,-3,,,,-1.00,\n");
    assert.equal(third.method, "incremental");
  } finally {
    await projects.cleanup();
  }
});

Deno.test("scope changed profiles equal full profiles over random appends", async () => {
  const cell = fc.record({
    amount: fc.option(fc.integer({ min: -1000, max: 1000 }).map((n) => n / 8), { nil: null }),
    qty: fc.option(fc.integer({ min: -50, max: 50 }), { nil: null }),
    day: fc.option(fc.integer({ min: 0, max: 400 }), { nil: null }),
    label: fc.option(fc.constantFrom("a", "b", "c", "d"), { nil: null }),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(cell, { minLength: 0, maxLength: 6 }), { minLength: 2, maxLength: 4 }),
      async (batches) => {
        const projects = await profilePair(yaml, "events");
        try {
          let id = 0;
          for (const [i, batch] of batches.entries()) {
            const lines = batch.map((c) => {
              const day = c.day === null
                ? ""
                : new Date(Date.UTC(2026, 0, 1) + c.day * 86_400_000).toISOString().slice(0, 10);
              return [
                ++id,
                c.amount ?? "",
                c.qty ?? "",
                day,
                day === "" ? "" : `${day} 08:00`,
                c.amount === null ? "" : (Math.round(c.amount * 100) / 100).toFixed(2),
                c.label ?? "",
              ]
                .join(",");
            });
            await projects.step(`run${i}`, `f${i}.csv`, HEADER + lines.join("\n") + "\n");
          }
        } finally {
          await projects.cleanup();
        }
      },
    ),
    { numRuns: 6 },
  );
});

Deno.test("scope changed profiles of a large append-only table combine kept HyperLogLog states into the full estimate", async () => {
  const projects = await profilePair(yaml, "events");
  try {
    const n = EXACT_DISTINCT_MAX_ROWS + 10_000;
    const rows = (from: number, count: number) =>
      Array.from({ length: count }, (_, k) => {
        const id = from + k;
        return `${id},${id / 4},${id % 97},2026-01-0${1 + (id % 9)},2026-01-02 10:00,1.25,l${
          id % 13
        }`;
      }).join("\n");
    await projects.step("run1", "a.csv", HEADER + rows(1, n) + "\n");
    const second = await projects.step("run2", "b.csv", HEADER + rows(n + 1, 3_000) + "\n");
    assert.equal(second.method, "incremental");
    const states = await query<{ c: string; r: string }>(
      projects.changed,
      `SELECT column_name AS c, run_id AS r FROM _sluice.profile_states ORDER BY 1`,
    );
    // id and amount are estimated (too many values): their states were combined and kept.
    assert.deepEqual(states.filter((s) => ["id", "amount"].includes(s.c)), [
      { c: "amount", r: "run2" },
      { c: "id", r: "run2" },
    ]);
  } finally {
    await projects.cleanup();
  }
});
