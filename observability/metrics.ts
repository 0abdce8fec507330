/**
 * Sluice's Prometheus metrics on a per-run prom-client registry. A cron
 * process starts with fresh values, so per-run figures are gauges. Labels are
 * bounded: pipeline, stage, layer, table, outcome; never run ids or files.
 *
 * @module
 */
import { Gauge, type Registry } from "prom-client";
import type { StageResult } from "../core/run_context.ts";

/** The metric set of one run, registered on a registry. */
export interface SluiceMetrics {
  /** `sluice_stage_duration_seconds{pipeline,stage}`. */
  stageDuration: Gauge<"pipeline" | "stage">;
  /** `sluice_rows{pipeline,layer,table,outcome}`: rows per outcome in this run. */
  rows: Gauge<"pipeline" | "layer" | "table" | "outcome">;
  /** `sluice_run_duration_seconds{pipeline}`. */
  runDuration: Gauge<"pipeline">;
  /** `sluice_run_status{pipeline,status}`: 1 for the run's final status. */
  runStatus: Gauge<"pipeline" | "status">;
  /** `sluice_last_success_timestamp_seconds{pipeline}`: set by successful runs only. */
  lastSuccess: Gauge<"pipeline">;
}

function gauge<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: L[],
): Gauge<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Gauge<L>;
  return new Gauge({ name, help, labelNames, registers: [registry] });
}

/**
 * Returns Sluice's metrics on `registry`, registering them on first use.
 *
 * @example
 * ```ts
 * import { Registry } from "prom-client";
 * import { sluiceMetrics } from "./metrics.ts";
 * const m = sluiceMetrics(new Registry());
 * m.stageDuration.set({ pipeline: "shop", stage: "silver" }, 1.5);
 * ```
 */
export function sluiceMetrics(registry: Registry): SluiceMetrics {
  return {
    stageDuration: gauge(
      registry,
      "sluice_stage_duration_seconds",
      "Wall time of a stage in the last run",
      [
        "pipeline",
        "stage",
      ],
    ),
    rows: gauge(registry, "sluice_rows", "Rows per layer, table and outcome in the last run", [
      "pipeline",
      "layer",
      "table",
      "outcome",
    ]),
    runDuration: gauge(registry, "sluice_run_duration_seconds", "Wall time of the last run", [
      "pipeline",
    ]),
    runStatus: gauge(registry, "sluice_run_status", "1 for the status the last run ended with", [
      "pipeline",
      "status",
    ]),
    lastSuccess: gauge(
      registry,
      "sluice_last_success_timestamp_seconds",
      "Unix time of the last successful run",
      ["pipeline"],
    ),
  };
}

/**
 * Records a stage's duration and row outcomes on the run's metrics.
 *
 * @example
 * ```ts
 * import { Registry } from "prom-client";
 * import { recordStage } from "./metrics.ts";
 * recordStage(new Registry(), "shop", {
 *   stage: "silver", durationMs: 1200,
 *   tables: [{ layer: "silver", table: "orders", rowsIn: 10, passed: 8, quarantined: 1, duplicates: 1 }],
 * });
 * ```
 */
export function recordStage(registry: Registry, pipeline: string, result: StageResult): void {
  const m = sluiceMetrics(registry);
  m.stageDuration.set({ pipeline, stage: result.stage }, result.durationMs / 1000);
  for (const t of result.tables) {
    const base = { pipeline, layer: t.layer, table: t.table };
    m.rows.set({ ...base, outcome: "in" }, t.rowsIn);
    m.rows.set({ ...base, outcome: "passed" }, t.passed);
    m.rows.set({ ...base, outcome: "quarantined" }, t.quarantined);
    m.rows.set({ ...base, outcome: "duplicate" }, t.duplicates);
  }
}
