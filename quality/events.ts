/**
 * Hands check results and profiles to observability: gauges on the run's
 * registry (the metric set of `observability/metrics.ts`) and structured log
 * events (`check_passed`, `check_failed`, `table_profiled`), each with the
 * run id. The observer reads the stored results back at the end of the run
 * as well, so both agree.
 *
 * - `sluice_check_status{pipeline,layer,table,check,severity,status}`: 1 for the check's status
 * - `sluice_check_failing_rows{pipeline,layer,table,check,severity}`: failing rows
 * - `sluice_column_null_ratio{pipeline,layer,table,column}`: NULL share of a profiled column
 *
 * @module
 */
import type { RunContext } from "../core/run_context.ts";
import { CHECK_STATUSES, sluiceMetrics } from "../observability/metrics.ts";
import type { CheckResult } from "./types.ts";
import type { TableProfile } from "./profile.ts";

/**
 * Sets the check gauges and logs one `check_passed` (info) or `check_failed`
 * (warning for `warn`, error for `error` severity) event per result.
 *
 * @example
 * ```ts ignore
 * observeCheckResults(ctx, results);
 * ```
 */
export function observeCheckResults(ctx: RunContext, results: readonly CheckResult[]): void {
  const m = sluiceMetrics(ctx.metrics);
  const pipeline = ctx.config.pipeline;
  for (const r of results) {
    const labels = {
      pipeline,
      layer: r.layer,
      table: r.table,
      check: r.check,
      severity: r.severity,
    };
    for (const s of CHECK_STATUSES) {
      m.checkStatus.set({ ...labels, status: s }, s === r.status ? 1 : 0);
    }
    if (r.failingRows !== null) m.checkFailingRows.set(labels, r.failingRows);
    const log = ctx.logger.getChild("quality").with({ stage: r.layer });
    const fields = {
      event: r.status === "pass" ? "check_passed" : "check_failed",
      layer: r.layer,
      table: r.table,
      check: r.check,
      check_type: r.type,
      severity: r.severity,
      column: r.column,
      status: r.status,
      failing_rows: r.failingRows,
      total_rows: r.totalRows,
      threshold: r.threshold,
      detail: r.message,
    };
    if (r.status === "pass") log.info("check passed", fields);
    else if (r.severity === "warn") log.warn("check failed", fields);
    else log.error("check failed", fields);
  }
}

/**
 * Sets the profile gauges and logs one `table_profiled` event per table.
 *
 * @example
 * ```ts ignore
 * observeProfiles(ctx, profiles);
 * ```
 */
export function observeProfiles(ctx: RunContext, profiles: readonly TableProfile[]): void {
  const m = sluiceMetrics(ctx.metrics);
  const pipeline = ctx.config.pipeline;
  for (const p of profiles) {
    for (const c of p.columns) {
      if (c.nullRatio !== null) {
        m.nullRatio.set(
          { pipeline, layer: p.layer, table: p.table, column: c.column },
          c.nullRatio,
        );
      }
    }
    const log = ctx.logger.getChild("quality").with({ stage: p.layer });
    log.info("table profiled", {
      event: "table_profiled",
      layer: p.layer,
      table: p.table,
      rows: p.rowCount,
      columns: p.columns.length,
      duration_ms: Math.round(p.durationMs),
    });
    // The per-column detail is for debugging (and the report), not the default log.
    log.debug("column profiles", {
      event: "table_profile_columns",
      layer: p.layer,
      table: p.table,
      profile: p.columns.map((c) => ({
        column: c.column,
        type: c.type,
        null_count: c.nullCount,
        null_ratio: c.nullRatio,
        distinct_approx: c.distinctApprox,
        distinct_exact: c.distinctExact,
        min: c.min,
        max: c.max,
      })),
    });
  }
}
