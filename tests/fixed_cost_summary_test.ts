/**
 * Issue 14, fixed cost per run: the run summary groups its counts by hand
 * instead of through `toLocaleString` (whose first call loads ICU's number
 * formatting in every process); the figures must read exactly as before.
 */
import assert from "node:assert/strict";
import { formatRunSummary } from "../observability/summary.ts";

const COUNTS = [
  0,
  7,
  42,
  999,
  1_000,
  12_345,
  999_999,
  1_000_000,
  98_507,
  123_456_789,
  Number.MAX_SAFE_INTEGER,
];

Deno.test("the run summary writes every count with the same thousands separators as toLocaleString", () => {
  for (const x of COUNTS) {
    const shown = formatRunSummary({
      runId: "r1",
      status: "success",
      durationMs: 1200,
      noop: false,
      stages: [{
        stage: "silver",
        durationMs: 10,
        tables: [{
          layer: "silver",
          table: "orders",
          rowsIn: x,
          passed: x,
          quarantined: 0,
          duplicates: 0,
        }],
      }, {
        stage: "output",
        durationMs: 10,
        tables: [{
          layer: "output",
          table: "daily",
          rowsIn: x,
          passed: x,
          quarantined: 0,
          duplicates: 0,
          details: { path: "/out/daily" },
        }],
      }],
    });
    const expected = x.toLocaleString("en-US");
    const row = shown.split("\n").find((l) => l.startsWith("silver  orders"))!;
    assert.deepEqual(row.split(/\s+/).slice(2, 4), [expected, expected], row);
    assert.ok(shown.includes(`published daily: ${expected} rows -> /out/daily`), shown);
  }
});
