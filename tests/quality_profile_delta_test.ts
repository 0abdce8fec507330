/**
 * `quality.scope: changed` profiles of a `merge` table: derived from the
 * previous profile and silver's change set (the old and new versions of the
 * rows the run touched), they equal a full profile, including updates that
 * take away the min, the max or the last row of a value, a re-sent file
 * whose rows are retracted, and (on a table
 * large enough for estimated distinct counts) HyperLogLog states that are
 * combined or read again. Two projects get the same files run by run, one
 * with `scope: changed`, one with `scope: full`.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { EXACT_DISTINCT_MAX_ROWS } from "../quality/profile.ts";
import { query } from "./_helpers.ts";
import { profilePair } from "./_profile_pair.ts";

const yaml = (scope: string) =>
  `pipeline: pdelta
lake: ./lake
engine: { threads: 2 }
quality: { scope: ${scope} }
sources:
  items: { format: csv, path: ./landing/items, glob: "*.csv", on_change: reingest }
silver:
  items:
    from: items
    mode: merge
    key: [id]
    order_by: ver
    columns:
      id: { type: BIGINT }
      ver: { type: INTEGER }
      amount: { type: DOUBLE }
      qty: { type: INTEGER }
      day: { type: DATE }
      label: { type: VARCHAR }
      big: { type: BIGINT }
    checks:
      - not_null: { column: id, severity: warn }
`;

const HEADER = "id,ver,amount,qty,day,label,big\n";

interface Item {
  id: number;
  amount: number | null;
  qty: number | null;
  day: number | null;
  label: string | null;
  big: number | null;
}

function csv(items: readonly Item[], ver: number): string {
  return HEADER + items.map((c) =>
    [
      c.id,
      ver,
      c.amount ?? "",
      c.qty ?? "",
      c.day === null
        ? ""
        : new Date(Date.UTC(2026, 0, 1) + c.day * 86_400_000).toISOString().slice(0, 10),
      c.label ?? "",
      c.big ?? "",
    ].join(",")
  ).join("\n") + "\n";
}

const item = (id: number, o: Partial<Item> = {}): Item => ({
  id,
  amount: id / 4,
  qty: id,
  day: id,
  label: `l${id % 3}`,
  big: id * 7,
  ...o,
});

Deno.test("a merge table's profile from its change set equals a full profile when updates take away the min, the max and the last row of a value", async () => {
  const projects = await profilePair(yaml, "items");
  try {
    const first = await projects.step("run1", "a.csv", csv([1, 2, 3, 4, 5].map((i) => item(i)), 1));
    assert.equal(first.method, "full: rebuilt", "first build");
    // id 1 held the min qty and amount, id 5 the max day; label "l2" lives in ids 2 and 5 only.
    const second = await projects.step(
      "run2",
      "b.csv",
      csv([
        item(1, { qty: 3, amount: null }),
        item(5, { day: 2, label: "new" }),
        item(2, { label: "l1" }),
        item(6, { qty: null, big: null }),
      ], 2),
    );
    assert.equal(second.method, "delta");
    const get = (col: string) => second.profile.find((c) => c.column_name === col)!;
    assert.equal(get("qty").min_value, "2");
    assert.equal(get("day").max_value, "2026-01-07");
    assert.equal(get("label").distinct_approx, "3"); // l0, l1, new: l2 is gone
    assert.equal(get("amount").null_count, "1");
    assert.equal(get("id").row_count, "6");
    // A run that lands nothing for the table, then one that only re-sends a row as it was.
    const third = await projects.step("run3", "c.csv", csv([item(3)], 3));
    assert.equal(third.method, "delta");
    // b.csv is sent again without id 5's row: its rows are retracted and id 5 is back
    // to its version of a.csv, the others take the new rows.
    const fourth = await projects.step(
      "run4",
      "b.csv",
      csv([item(1, { qty: 9 }), item(2, { label: "l9" }), item(7)], 2),
    );
    assert.equal(fourth.method, "delta");
    assert.equal(fourth.profile.find((c) => c.column_name === "day")!.max_value, "2026-01-08");
  } finally {
    await projects.cleanup();
  }
});

Deno.test("a merge table's profile from its change set equals a full profile over random upserts", async () => {
  const cell = fc.record({
    id: fc.integer({ min: 1, max: 12 }),
    amount: fc.option(fc.integer({ min: -40, max: 40 }).map((n) => n / 8), { nil: null }),
    qty: fc.option(fc.integer({ min: -5, max: 5 }), { nil: null }),
    day: fc.option(fc.integer({ min: 0, max: 20 }), { nil: null }),
    label: fc.option(fc.constantFrom("a", "b", "c"), { nil: null }),
    big: fc.option(fc.integer({ min: 0, max: 6 }), { nil: null }),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.uniqueArray(cell, { selector: (c) => c.id, maxLength: 6 }), {
        minLength: 2,
        maxLength: 4,
      }),
      async (batches) => {
        const projects = await profilePair(yaml, "items");
        try {
          for (const [i, batch] of batches.entries()) {
            const { method } = await projects.step(`run${i}`, `f${i}.csv`, csv(batch, i + 1));
            // A first build, or a run that wrote nothing to the table, is profiled in full.
            if (i > 0 && batches[0].length > 0 && batch.length > 0) {
              assert.equal(method, "delta", `run${i}`);
            }
          }
        } finally {
          await projects.cleanup();
        }
      },
    ),
    { numRuns: 6 },
  );
});

Deno.test("estimated distinct counts of a large merge table from kept HyperLogLog states equal a full estimate", async () => {
  const n = EXACT_DISTINCT_MAX_ROWS + 20_000;
  const projects = await profilePair(yaml, "items");
  try {
    const base = Array.from({ length: n }, (_, k) => item(k + 1, { label: `l${k % 50}` }));
    await projects.step("run1", "a.csv", csv(base, 1));
    // Inserts only: each estimated column's kept state is combined with the new rows'.
    const inserts = Array.from({ length: 2_000 }, (_, k) => item(n + k + 1));
    const second = await projects.step("run2", "b.csv", csv(inserts, 2));
    assert.equal(second.method, "delta");
    const states = await query<{ c: string; r: string }>(
      projects.changed,
      `SELECT column_name AS c, run_id AS r FROM _sluice.profile_states ORDER BY 1`,
    );
    assert.ok(states.some((s) => s.c === "big" && s.r === "run2"), JSON.stringify(states));
    // Updates that take values of `big` away: that column's state is read again.
    const updates = Array.from({ length: 2_000 }, (_, k) => item(k * 3 + 1, { big: -k }));
    const third = await projects.step("run3", "c.csv", csv(updates, 3));
    assert.equal(third.method, "delta");
  } finally {
    await projects.cleanup();
  }
});
