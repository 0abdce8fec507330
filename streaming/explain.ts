/**
 * `sluice explain -c FILE`: the delivery guarantee of the configured stream
 * in plain words, from the config alone (no database is opened).
 *
 * @module
 */
import type { PipelineConfig } from "../core/config/mod.ts";
import { isJetStreaming, sizeBytes } from "../core/config/mod.ts";
import { formatDuration, parseDuration } from "../core/duration.ts";
import { requireStreaming } from "./stream.ts";
import { explainJetStream } from "./jetstream/explain.ts";

function n(x: number): string {
  return x.toLocaleString("en-US");
}

/**
 * Explains what the stream guarantees: exactly-once into which table, what
 * goes to the dead-letter queue and why, what happens on data loss, how
 * files are chosen and cleaned, windows and export.
 *
 * @example
 * ```ts ignore
 * const shown = explainStream(await loadConfig("pipeline.yaml"));
 * ```
 */
export function explainStream(config: PipelineConfig): string {
  if (isJetStreaming(config.streaming)) return explainJetStream(config);
  const s = requireStreaming(config);
  const src = s.source;
  const target = `silver.${s.target}`;
  const dlq = `silver.${s.dlq}`;
  const delay = formatDuration(parseDuration(s.watermark.delay));
  const format = src.format === "ndjson" ? "NDJSON (one JSON object per line)" : "CSV";
  const complete = src.marker_suffix !== undefined
    ? `a marker file "<name>${src.marker_suffix}" exists next to it`
    : `its size and modification time have not changed for ${
      formatDuration(parseDuration(src.settle))
    } (and agree between two looks)`;
  const required = Object.entries(s.columns)
    .filter(([name, c]) => !c.nullable || name === s.watermark.column).map(([name]) => name);
  const out: string[] = [];
  const para = (title: string, text: string) =>
    out.push(`${title}\n  ${text.replace(/\n/g, "\n  ")}`);
  out.push(
    `Stream "${s.checkpoint}" of pipeline "${config.pipeline}": ${format} files from ${src.path} ` +
      `into ${target}.`,
  );
  para(
    "Delivery: exactly-once into " + target,
    `Every valid record is appended to ${target} exactly once, even if the process is killed at ` +
      `any moment.\nEach batch reads at most ${n(s.max_files_per_trigger)} files, ` +
      `${n(s.max_records_per_trigger)} records and ${
        n(sizeBytes(s.max_bytes_per_trigger))
      } bytes; a bigger file is read\nacross batches by byte offset. The batch's good rows, its dead ` +
      `letters, the windows it closes\nand its checkpoint (files and byte offsets done, watermark, ` +
      `batch id) are written in ONE DuckDB\ntransaction, so a crash leaves all of the batch or ` +
      `none of it; the next run resumes from\nthe last commit under the checkpoint name ` +
      `"${s.checkpoint}" (_sluice.stream_checkpoint).`,
  );
  para(
    "Files",
    `Files matching "${src.glob}" are taken in order of modification time, then name. A file is\n` +
      `complete, and taken, once ${complete}.\n` +
      `A file name is read once; changing a file after it was read completely has no effect.`,
  );
  para(
    `Dead-letter queue: ${dlq}`,
    `Nothing is dropped. These rows go to ${dlq} with the raw line, file, line number, byte offset,\n` +
      `reason and detail:\n` +
      (src.format === "ndjson"
        ? `- malformed_json: the line is not a JSON object\n`
        : `- malformed_csv: wrong field count or unbalanced quotes\n`) +
      `- malformed_encoding: the line is not valid UTF-8\n` +
      `- schema_violation: a field does not cast to its declared type` +
      (required.length
        ? `, or a required field\n  (${required.join(", ")}) is missing or null\n`
        : "\n") +
      `- late: event time (${s.watermark.column}) older than the watermark, which is the latest ` +
      `event time seen\n  before the row minus ${delay}; kept with its event time, the watermark ` +
      `at arrival\n  and how late it was\n` +
      `Blank lines are counted and skipped. Replay with \`sluice dlq -c ${config.file} replay\` after a fix\n` +
      `(idempotent: replaying twice adds nothing the second time).`,
  );
  para(
    "Watermark",
    `Stored in the checkpoint and kept across restarts. A row's lateness depends only on the rows\n` +
      `before it in stream order, not on where batches end.`,
  );
  para(
    "Data loss",
    s.fail_on_data_loss
      ? `If a file the checkpoint holds as partly read is truncated, removed or rewritten, the run\n` +
        `stops with an error naming the file (fail_on_data_loss: true) and commits nothing further.`
      : `If a file the checkpoint holds as partly read is truncated, removed or rewritten, the rest\n` +
        `of it is skipped with a warning (event data_loss) and counted in\n` +
        `sluice_stream_data_loss_total (fail_on_data_loss: false); the run goes on.`,
  );
  para(
    "Source files after reading",
    s.clean_source === "off"
      ? "Left in place (clean_source: off)."
      : s.clean_source === "archive"
      ? `Moved to ${s.archive_path} after the commit that finished them (clean_source: archive).`
      : "Deleted after the commit that finished them (clean_source: delete).",
  );
  const windows = Object.entries(s.windows);
  if (windows.length > 0) {
    para(
      "Windows",
      windows.map(([name, w]) =>
        `gold.${name}: tumbling ${formatDuration(parseDuration(w.size))} windows${
          w.group_by.length ? ` per ${w.group_by.join(", ")}` : ""
        } of ${
          Object.keys(w.aggregates).join(", ")
        },\n  emitted once each when the watermark passes ` +
        `the window's end; exactly once, never changed later.`
      ).join("\n"),
    );
  }
  if (s.export) {
    para(
      "Parquet export",
      `Each committed batch is exported to ${s.export.path} as part-<batch>-<n>.parquet files of at ` +
        `most\n${
          n(s.export.max_records_per_file)
        } rows, each published by an atomic rename. A crash ` +
        `before the export is recorded\nrewrites the same file names, so every row appears in ` +
        `exactly one file.`,
    );
  }
  para(
    "Triggers",
    `--trigger once: one batch. --trigger available-now: every file pending at the start, then exit.\n` +
      `--trigger interval: a batch every ${
        formatDuration(parseDuration(s.trigger_interval))
      } until SIGINT/SIGTERM, which finish the\ncurrent batch (never half-commit it) and exit 130 or 143.`,
  );
  return out.join("\n\n");
}
