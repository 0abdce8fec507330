/**
 * Continuous Parquet export of a stream's target table. After a batch
 * commits, its rows are written to `<export>/part-<batch>-<n>.parquet`
 * files of at most `max_records_per_file` rows each. Every file is written
 * under `<export>/.tmp/` and renamed into place, so a reader never sees a
 * half-written file. Names are fixed by batch and position, so re-exporting
 * a batch after a crash replaces its files with identical ones instead of
 * adding duplicates; `_sluice.stream_checkpoint.exported_batch` records the
 * progress.
 *
 * @module
 */
import { join } from "node:path";
import type { StreamingConfig } from "../core/config/mod.ts";
import { ConservationError } from "../core/errors.ts";
import { literal, qualified } from "../core/quote.ts";
import type { RunContext } from "../core/run_context.ts";
import { saveExportedBatch } from "./checkpoint.ts";

/** What one export pass published. */
export interface ExportResult {
  /** Batches exported. */
  batches: number;
  /** Parquet files published. */
  files: number;
  /** Rows written. */
  rows: number;
}

/**
 * The file name of part `part` of batch `batchId`.
 *
 * @example
 * ```ts
 * import { exportFileName } from "./export.ts";
 * exportFileName(12, 0); // "part-0000000012-00000.parquet"
 * ```
 */
export function exportFileName(batchId: number, part: number): string {
  return `part-${String(batchId).padStart(10, "0")}-${String(part).padStart(5, "0")}.parquet`;
}

/**
 * Exports every committed batch after `exportedBatch` (up to `upToBatch`)
 * and records the progress after each batch's files are published.
 *
 * @example
 * ```ts ignore
 * const r = await exportBatches(ctx, { stream: "events_v1", exportedBatch: 3, upToBatch: 5 });
 * r.files; // 2
 * ```
 */
export async function exportBatches(
  ctx: RunContext,
  options: { stream: string; exportedBatch: number; upToBatch: number },
): Promise<ExportResult> {
  const s = ctx.config.streaming as StreamingConfig;
  const result: ExportResult = { batches: 0, files: 0, rows: 0 };
  if (!s.export || options.upToBatch <= options.exportedBatch) return result;
  const dir = s.export.path;
  const tmp = join(dir, ".tmp");
  await Deno.mkdir(tmp, { recursive: true });
  const target = qualified("silver", s.target);
  const batches = await ctx.db.all<{ b: number; n: number } & Record<string, unknown>>(
    `SELECT _batch_id AS b, count(*) AS n FROM ${target}
     WHERE _batch_id > $from AND _batch_id <= $to GROUP BY 1 ORDER BY 1`,
    { from: options.exportedBatch, to: options.upToBatch },
  );
  const max = s.export.max_records_per_file;
  for (const { b, n } of batches) {
    const parts = Math.ceil(n / max);
    let written = 0;
    for (let part = 0; part < parts; part++) {
      const name = exportFileName(b, part);
      const tmpFile = join(tmp, name);
      const rows = parts === 1
        ? `SELECT * FROM ${target} WHERE _batch_id = ${literal(b)}`
        : `SELECT * EXCLUDE (__rn) FROM (SELECT *, row_number() OVER (ORDER BY _source_file,
            _source_line) AS __rn FROM ${target} WHERE _batch_id = ${literal(b)})
           WHERE __rn > ${part * max} AND __rn <= ${(part + 1) * max}`;
      await ctx.db.run(
        `COPY (${rows} ORDER BY _source_file, _source_line) TO ${
          literal(tmpFile)
        } (FORMAT parquet, COMPRESSION zstd)`,
      );
      const check = await ctx.db.one<{ n: number }>(
        `SELECT count(*) AS n FROM read_parquet(${literal(tmpFile)})`,
      );
      written += check?.n ?? 0;
      await Deno.rename(tmpFile, join(dir, name));
      result.files++;
    }
    if (written !== n) {
      throw new ConservationError(
        `Rows do not add up in the export of batch ${b}: ${n} in the table, ${written} in Parquet`,
      );
    }
    result.rows += written;
    result.batches++;
    await saveExportedBatch(ctx.db, options.stream, b);
  }
  if (options.upToBatch > options.exportedBatch) {
    await saveExportedBatch(ctx.db, options.stream, options.upToBatch);
  }
  return result;
}
