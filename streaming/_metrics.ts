/**
 * Prometheus metrics of a stream, on the run's registry. Labels are
 * bounded: pipeline, stream (the checkpoint name), reason (a fixed set),
 * kind (data-loss kinds) and window (names from config). Never files. An
 * `outcome` label holds only parts of one whole (records read =
 * `sluice_stream_records_read_total`), so summing it never double-counts.
 *
 * @module
 */
import { Counter, Gauge, type Registry } from "../core/prom.ts";

/** The metric set of a stream. */
export interface StreamMetrics {
  /** `sluice_stream_batches_total{pipeline,stream}`. */
  batches: Counter<"pipeline" | "stream">;
  /** `sluice_stream_records_read_total{pipeline,stream}`: records read (the sum of the outcomes). */
  recordsRead: Counter<"pipeline" | "stream">;
  /** `sluice_stream_records_total{pipeline,stream,outcome}`: written, dead_lettered, blank. */
  records: Counter<"pipeline" | "stream" | "outcome">;
  /** `sluice_stream_dead_letters_total{pipeline,stream,reason}`. */
  deadLetters: Counter<"pipeline" | "stream" | "reason">;
  /** `sluice_stream_bytes_read_total{pipeline,stream}`. */
  bytesRead: Counter<"pipeline" | "stream">;
  /** `sluice_stream_files_finished_total{pipeline,stream}`. */
  filesFinished: Counter<"pipeline" | "stream">;
  /** `sluice_stream_data_loss_total{pipeline,stream,kind}`: files skipped as truncated, removed or rewritten. */
  dataLoss: Counter<"pipeline" | "stream" | "kind">;
  /** `sluice_stream_windows_emitted_total{pipeline,stream,window}`: window rows emitted. */
  windowsEmitted: Counter<"pipeline" | "stream" | "window">;
  /** `sluice_stream_batch_duration_seconds{pipeline,stream}`: the last batch. */
  batchDuration: Gauge<"pipeline" | "stream">;
  /** `sluice_stream_batch_id{pipeline,stream}`: last committed batch id. */
  batchId: Gauge<"pipeline" | "stream">;
  /** `sluice_stream_watermark_timestamp_seconds{pipeline,stream}`. */
  watermark: Gauge<"pipeline" | "stream">;
  /** `sluice_stream_watermark_lag_seconds{pipeline,stream}`: wall clock minus watermark. */
  watermarkLag: Gauge<"pipeline" | "stream">;
  /** `sluice_stream_files_pending{pipeline,stream}`: files matching the glob not yet finished. */
  filesPending: Gauge<"pipeline" | "stream">;
  /** `sluice_stream_behind_bytes{pipeline,stream}`: bytes of those files not yet read. */
  bytesBehind: Gauge<"pipeline" | "stream">;
  /** `sluice_stream_last_commit_timestamp_seconds{pipeline,stream}`. */
  lastCommit: Gauge<"pipeline" | "stream">;
}

function counter<L extends string>(
  r: Registry,
  name: string,
  help: string,
  labels: L[],
): Counter<L> {
  const existing = r.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter({ name, help, labelNames: labels, registers: [r] });
}

function gauge<L extends string>(r: Registry, name: string, help: string, labels: L[]): Gauge<L> {
  const existing = r.getSingleMetric(name);
  if (existing) return existing as Gauge<L>;
  return new Gauge({ name, help, labelNames: labels, registers: [r] });
}

/**
 * Returns the stream metrics on `registry`, registering them on first use.
 *
 * @example
 * ```ts
 * import { Registry } from "prom-client";
 * import { streamMetrics } from "./_metrics.ts";
 * const m = streamMetrics(new Registry());
 * m.batches.inc({ pipeline: "shop", stream: "events_v1" });
 * ```
 */
export function streamMetrics(registry: Registry): StreamMetrics {
  const ps: ("pipeline" | "stream")[] = ["pipeline", "stream"];
  return {
    batches: counter(registry, "sluice_stream_batches_total", "Batches committed", ps),
    recordsRead: counter(
      registry,
      "sluice_stream_records_read_total",
      "Records read (written + dead_lettered + blank in sluice_stream_records_total)",
      ps,
    ),
    records: counter(
      registry,
      "sluice_stream_records_total",
      "Records by outcome (written, dead_lettered, blank)",
      [...ps, "outcome"],
    ),
    deadLetters: counter(
      registry,
      "sluice_stream_dead_letters_total",
      "Records written to the dead-letter queue, by reason",
      [...ps, "reason"],
    ),
    bytesRead: counter(
      registry,
      "sluice_stream_bytes_read_total",
      "Bytes read from landing files",
      ps,
    ),
    filesFinished: counter(
      registry,
      "sluice_stream_files_finished_total",
      "Landing files read to their end",
      ps,
    ),
    dataLoss: counter(
      registry,
      "sluice_stream_data_loss_total",
      "Partly read files skipped because they were truncated, removed or rewritten",
      [...ps, "kind"],
    ),
    windowsEmitted: counter(
      registry,
      "sluice_stream_windows_emitted_total",
      "Window rows emitted once the watermark passed their end",
      [...ps, "window"],
    ),
    batchDuration: gauge(
      registry,
      "sluice_stream_batch_duration_seconds",
      "Wall time of the last batch",
      ps,
    ),
    batchId: gauge(registry, "sluice_stream_batch_id", "Last committed batch id", ps),
    watermark: gauge(
      registry,
      "sluice_stream_watermark_timestamp_seconds",
      "Event-time watermark (Unix seconds)",
      ps,
    ),
    watermarkLag: gauge(
      registry,
      "sluice_stream_watermark_lag_seconds",
      "How far the watermark is behind the wall clock",
      ps,
    ),
    filesPending: gauge(
      registry,
      "sluice_stream_files_pending",
      "Landing files not yet read to their end",
      ps,
    ),
    bytesBehind: gauge(registry, "sluice_stream_behind_bytes", "Landing bytes not yet read", ps),
    lastCommit: gauge(
      registry,
      "sluice_stream_last_commit_timestamp_seconds",
      "Unix time of the last committed batch",
      ps,
    ),
  };
}
