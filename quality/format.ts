/**
 * Plain-text views of check results for the command line.
 *
 * @module
 */
import type { CheckResult } from "./types.ts";

const n = (v: number | null) => (v === null ? "" : v.toLocaleString("en-US"));

/**
 * A table of check results, one line per check, with a closing count line.
 *
 * @example
 * ```ts ignore
 * const shown = formatCheckResults(results);
 * // layer   table    check            severity  status    failing    total  message
 * // silver  orders   unique_order_id  error     pass            0    9,850  0 of 9,850 rows fail ...
 * ```
 */
export function formatCheckResults(results: readonly CheckResult[]): string {
  if (results.length === 0) return "no checks are declared";
  const rows = [
    ["layer", "table", "check", "severity", "status", "failing", "total", "message"],
    ...results.map((r) => [
      r.layer,
      r.table,
      r.check,
      r.severity,
      r.status,
      n(r.failingRows),
      n(r.totalRows),
      r.message,
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const right = new Set([5, 6]);
  const lines = rows.map((row) =>
    row.map((cell, i) =>
      i === row.length - 1 ? cell : right.has(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i])
    ).join("  ").trimEnd()
  );
  const count = (s: string) => results.filter((r) => r.status === s).length;
  lines.push(
    `${results.length} check${results.length === 1 ? "" : "s"}: ${count("pass")} passed, ${
      count("fail")
    } failed, ${count("error")} errored`,
  );
  return lines.join("\n");
}

/**
 * One line per check that did not pass, for the end of a run summary; empty
 * when every check passed.
 *
 * @example
 * ```ts ignore
 * const text = formatCheckProblems(summary.checks);
 * if (text) throw new Error(String(text));
 * // warn  silver.customers not_null_email: 1,987 of 100,000 rows (1.99%) fail not_null; allowed 0 rows
 * ```
 */
export function formatCheckProblems(results: readonly CheckResult[]): string {
  return results.filter((r) => r.status !== "pass").map((r) =>
    `${r.severity.padEnd(5)} ${r.layer}.${r.table} ${r.check}${
      r.status === "error" ? " (error)" : ""
    }: ${r.message}`
  ).join("\n");
}
