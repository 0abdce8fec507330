/**
 * Sluice's Prometheus metrics on a per-run prom-client registry. A cron
 * process starts with fresh values, so per-run figures are gauges; the one
 * counter (`sluice_runs_total`) is read from the run ledger, which outlives
 * the process. Labels are bounded: pipeline, stage, layer, table, column,
 * check, severity, outcome, status; never run ids or file names.
 *
 * | metric | type | labels |
 * | --- | --- | --- |
 * | `sluice_stage_duration_seconds` | gauge | pipeline, stage |
 * | `sluice_rows_in` | gauge | pipeline, layer, table |
 * | `sluice_rows` | gauge | pipeline, layer, table, outcome (passed, quarantined, duplicate) |
 * | `sluice_files_found` | gauge | pipeline, source |
 * | `sluice_files` | gauge | pipeline, source, outcome (new, reingest, unchanged, ignored, empty_skipped) |
 * | `sluice_column_null_ratio` | gauge | pipeline, layer, table, column |
 * | `sluice_check_status` | gauge | pipeline, layer, table, check, severity, status (pass, fail, error) |
 * | `sluice_check_failing_rows` | gauge | pipeline, layer, table, check, severity |
 * | `sluice_run_status` | gauge | pipeline, status (success, failed, quality_failed) |
 * | `sluice_run_duration_seconds` | gauge | pipeline |
 * | `sluice_last_run_timestamp_seconds` | gauge | pipeline |
 * | `sluice_last_success_timestamp_seconds` | gauge | pipeline |
 * | `sluice_runs_total` | counter | pipeline, status |
 * | `sluice_build_info` | gauge | version, duckdb_version |
 *
 * A metric with an `outcome` label holds only the parts of one whole, so
 * `sum without (outcome)` is that whole: rows in = passed + quarantined +
 * duplicate (`sluice_rows_in`), files found = the file outcomes
 * (`sluice_files_found`). No figure is exported twice.
 *
 * @module
 */
import { Counter as PromCounter, Gauge as PromGauge } from "../core/prom.ts";
import type { Counter, Gauge, Logger, Registry } from "../core/npm_types.ts";
import type { StageResult } from "../core/run_context.ts";

/**
 * Statuses a run can end with; `sluice_run_status` has one series per status.
 *
 * @example
 * ```ts
 * import { RUN_STATUSES } from "./metrics.ts";
 * RUN_STATUSES.includes("quality_failed"); // true
 * ```
 */
export const RUN_STATUSES: readonly string[] = ["success", "failed", "quality_failed"];
/**
 * Statuses of a data-quality check; `sluice_check_status` has one series per status.
 *
 * @example
 * ```ts
 * import { CHECK_STATUSES } from "./metrics.ts";
 * CHECK_STATUSES; // ["pass", "fail", "error"]
 * ```
 */
export const CHECK_STATUSES: readonly string[] = ["pass", "fail", "error"];

/**
 * The labels of the per-check metrics (`sluice_check_status` adds `status`).
 *
 * @example
 * ```ts
 * import type { CheckLabels } from "./metrics.ts";
 * const label: CheckLabels = "severity";
 * ```
 */
export type CheckLabels = "pipeline" | "layer" | "table" | "check" | "severity";

/** The metric set of one run, registered on a registry. */
export interface SluiceMetrics {
  /** `sluice_stage_duration_seconds{pipeline,stage}`. */
  stageDuration: Gauge<"pipeline" | "stage">;
  /** `sluice_rows_in{pipeline,layer,table}`: rows that entered the table's stage in this run. */
  rowsIn: Gauge<"pipeline" | "layer" | "table">;
  /** `sluice_rows{pipeline,layer,table,outcome}`: where they went (passed, quarantined, duplicate). */
  rows: Gauge<"pipeline" | "layer" | "table" | "outcome">;
  /** `sluice_files_found{pipeline,source}`: files extract listed for the source in this run. */
  filesFound: Gauge<"pipeline" | "source">;
  /** `sluice_files{pipeline,source,outcome}`: what extract did with them, per outcome. */
  files: Gauge<"pipeline" | "source" | "outcome">;
  /** `sluice_column_null_ratio{pipeline,layer,table,column}`: 0..1. */
  nullRatio: Gauge<"pipeline" | "layer" | "table" | "column">;
  /** `sluice_check_status{...,status}`: 1 for the check's status, 0 for the others. */
  checkStatus: Gauge<CheckLabels | "status">;
  /** `sluice_check_failing_rows{pipeline,layer,table,check,severity}`. */
  checkFailingRows: Gauge<CheckLabels>;
  /** `sluice_run_duration_seconds{pipeline}`. */
  runDuration: Gauge<"pipeline">;
  /** `sluice_run_status{pipeline,status}`: 1 for the run's final status, 0 for the others. */
  runStatus: Gauge<"pipeline" | "status">;
  /** `sluice_last_run_timestamp_seconds{pipeline}`: when the last run ended, any status. */
  lastRun: Gauge<"pipeline">;
  /** `sluice_last_success_timestamp_seconds{pipeline}`: only successful runs advance it. */
  lastSuccess: Gauge<"pipeline">;
  /** `sluice_runs_total{pipeline,status}`: runs recorded in the ledger. */
  runsTotal: Counter<"pipeline" | "status">;
  /** `sluice_build_info{version,duckdb_version}`: always 1. */
  buildInfo: Gauge<"version" | "duckdb_version">;
}

function gauge<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: L[],
): Gauge<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Gauge<L>;
  return new PromGauge({ name, help, labelNames, registers: [registry] });
}

function counter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: L[],
): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new PromCounter({ name, help, labelNames, registers: [registry] });
}

const TABLE = ["pipeline", "layer", "table"] as const;
const CHECK = ["pipeline", "layer", "table", "check", "severity"] as const;

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
      ["pipeline", "stage"],
    ),
    rowsIn: gauge(
      registry,
      "sluice_rows_in",
      "Rows that entered a layer's table in the last run (the sum of sluice_rows' outcomes)",
      [...TABLE],
    ),
    rows: gauge(
      registry,
      "sluice_rows",
      "Rows per layer, table and outcome (passed, quarantined, duplicate) in the last run",
      [...TABLE, "outcome"],
    ),
    filesFound: gauge(
      registry,
      "sluice_files_found",
      "Source files extract listed in the last run (the sum of sluice_files' outcomes)",
      ["pipeline", "source"],
    ),
    files: gauge(
      registry,
      "sluice_files",
      "Source files extract listed in the last run, per outcome",
      ["pipeline", "source", "outcome"],
    ),
    nullRatio: gauge(
      registry,
      "sluice_column_null_ratio",
      "Share of null values (0..1) per column of the tables the last run wrote",
      [...TABLE, "column"],
    ),
    checkStatus: gauge(
      registry,
      "sluice_check_status",
      "1 for the status (pass, fail, error) a data-quality check had in the last run",
      [...CHECK, "status"],
    ),
    checkFailingRows: gauge(
      registry,
      "sluice_check_failing_rows",
      "Rows failing a data-quality check in the last run",
      [...CHECK],
    ),
    runDuration: gauge(registry, "sluice_run_duration_seconds", "Wall time of the last run", [
      "pipeline",
    ]),
    runStatus: gauge(
      registry,
      "sluice_run_status",
      "1 for the status the last run ended with (success, failed, quality_failed)",
      ["pipeline", "status"],
    ),
    lastRun: gauge(
      registry,
      "sluice_last_run_timestamp_seconds",
      "Unix time the last run ended, whatever its status",
      ["pipeline"],
    ),
    lastSuccess: gauge(
      registry,
      "sluice_last_success_timestamp_seconds",
      "Unix time of the last successful run (failed runs never advance it)",
      ["pipeline"],
    ),
    runsTotal: counter(
      registry,
      "sluice_runs_total",
      "Runs recorded in the run ledger, per final status",
      ["pipeline", "status"],
    ),
    buildInfo: gauge(
      registry,
      "sluice_build_info",
      "Sluice and DuckDB versions of the process (always 1)",
      ["version", "duckdb_version"],
    ),
  };
}

const FILE_OUTCOMES = ["new", "reingest", "unchanged", "ignored", "empty_skipped"] as const;

/**
 * Records a stage's duration and row outcomes on the run's metrics. The
 * extract stage counts files, so its figures go to `sluice_files`.
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
    if (t.details?.unit === "files") {
      m.filesFound.set({ pipeline, source: t.table }, t.rowsIn);
      for (const outcome of FILE_OUTCOMES) {
        const n = t.details[outcome];
        if (typeof n === "number") m.files.set({ pipeline, source: t.table, outcome }, n);
      }
      continue;
    }
    const base = { pipeline, layer: t.layer, table: t.table };
    m.rowsIn.set(base, t.rowsIn);
    m.rows.set({ ...base, outcome: "passed" }, t.passed);
    m.rows.set({ ...base, outcome: "quarantined" }, t.quarantined);
    m.rows.set({ ...base, outcome: "duplicate" }, t.duplicates);
  }
}

/** One sample of a metric, as logged and as the report reads it. */
export interface MetricSample {
  /** Metric name, e.g. `sluice_rows`. */
  metric: string;
  /** `gauge`, `counter`... */
  type: string;
  /** Label values. */
  labels: Record<string, string | number>;
  /** The value. */
  value: number;
}

/**
 * Every sample on `registry`, in registration order.
 *
 * @example
 * ```ts
 * import { Registry } from "prom-client";
 * import { metricSamples, sluiceMetrics } from "./metrics.ts";
 * const registry = new Registry();
 * sluiceMetrics(registry).runDuration.set({ pipeline: "shop" }, 2);
 * const samples = await metricSamples(registry);
 * // [{ metric: "sluice_run_duration_seconds", type: "gauge", labels: { pipeline: "shop" }, value: 2 }]
 * ```
 */
export async function metricSamples(registry: Registry): Promise<MetricSample[]> {
  const out: MetricSample[] = [];
  for (const family of await registry.getMetricsAsJSON()) {
    for (const v of family.values) {
      out.push({
        metric: (v as { metricName?: string }).metricName ?? family.name,
        type: String(family.type),
        labels: { ...v.labels } as Record<string, string | number>,
        value: v.value,
      });
    }
  }
  return out;
}

/**
 * Logs every metric sample as one `metric` event (`metric`, `type`,
 * `labels`, `value`), so log pipelines see the same figures Prometheus does.
 * The logger's context (run_id, pipeline) goes on every line. Level `info`
 * unless `level: "debug"` is asked for.
 *
 * @example
 * ```ts
 * import { getLogger } from "@logtape/logtape";
 * import { Registry } from "prom-client";
 * import { logMetrics } from "./metrics.ts";
 * await logMetrics(new Registry(), getLogger(["sluice", "metrics"]).with({ run_id: "r1" }));
 * ```
 */
export async function logMetrics(
  registry: Registry,
  logger: Logger,
  options: { level?: "info" | "debug" } = {},
): Promise<number> {
  const samples = await metricSamples(registry);
  const log = options.level === "debug" ? logger.debug.bind(logger) : logger.info.bind(logger);
  for (const s of samples) {
    log("metric {metric}", {
      event: "metric",
      metric: s.metric,
      type: s.type,
      labels: s.labels,
      value: s.value,
    });
  }
  return samples.length;
}
