/**
 * The short human summary printed at the end of `sluice run` and `sluice demo`.
 *
 * @module
 */
import type { RunSummary } from "../core/run_context.ts";

/**
 * `x` with thousands separators, as `toLocaleString("en-US")` writes it.
 * Integers are grouped by hand: the first `toLocaleString` of a process loads
 * ICU's number formatting, about 18 ms paid by every run, no-op runs included.
 */
function n(x: number): string {
  if (!Number.isSafeInteger(x)) return x.toLocaleString("en-US");
  const digits = String(Math.abs(x));
  let grouped = digits.slice(0, ((digits.length - 1) % 3) + 1);
  for (let i = grouped.length; i < digits.length; i += 3) grouped += `,${digits.slice(i, i + 3)}`;
  return x < 0 || Object.is(x, -0) ? `-${grouped}` : grouped;
}

/**
 * Formats a run summary as a small text table: rows per layer and table,
 * quarantined, duplicates, outputs written and durations. Extract counts
 * files, not rows: its row says `(files)` and its files already seen go in
 * their own `unchanged` column (shown when extract ran).
 *
 * @example
 * ```ts
 * import { formatRunSummary } from "./summary.ts";
 * const shown = formatRunSummary({ runId: "r1", status: "success", durationMs: 1200, stages: [], noop: true });
 * ```
 */
export function formatRunSummary(summary: RunSummary): string {
  const lines: string[] = [];
  lines.push(
    `run ${summary.runId}: ${summary.status}${
      summary.noop ? " (no new files, nothing to do)" : ""
    } in ${(summary.durationMs / 1000).toFixed(2)}s`,
  );
  const withFiles = summary.stages.some((s) => s.tables.some((t) => t.details?.unit === "files"));
  const header = ["layer", "table", "in", "passed", "quarantined", "duplicates"];
  if (withFiles) header.push("unchanged");
  header.push("seconds");
  const rows: string[][] = [];
  for (const stage of summary.stages) {
    for (const t of stage.tables) {
      const files = t.details?.unit === "files";
      const row = [
        t.layer,
        t.table + (files ? " (files)" : ""),
        n(t.rowsIn),
        n(t.passed),
        n(t.quarantined),
        files ? "" : n(t.duplicates),
      ];
      if (withFiles) row.push(files ? n(t.duplicates) : "");
      rows.push([...row, ""]);
    }
    rows.push([
      stage.stage,
      ...header.slice(1, -1).map(() => ""),
      (stage.durationMs / 1000).toFixed(2),
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) =>
    r.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ").trimEnd();
  lines.push(fmt(header));
  for (const r of rows) lines.push(fmt(r));
  const outputs = summary.stages.find((s) => s.stage === "output")?.tables ?? [];
  for (const o of outputs) {
    lines.push(`published ${o.table}: ${n(o.passed)} rows -> ${String(o.details?.path ?? "")}`);
  }
  return lines.join("\n");
}
