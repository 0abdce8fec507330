/**
 * The stream checkpoint, kept in the pipeline's own database so that it is
 * committed in the same DuckDB transaction as the data it describes:
 *
 * - `_sluice.stream_checkpoint`: one row per stream (checkpoint name): last
 *   committed batch id, max event time seen, watermark, last exported batch
 * - `_sluice.stream_files`: every file taken, its byte offset and lines
 *   consumed, status `partial` | `done` | `lost`, and when it was cleaned
 * - `_sluice.stream_slices`: consumed byte ranges of files that were left
 *   partly read, with their SHA-256, to detect a rewritten file
 * - `_sluice.stream_batches`: one row per committed batch (audit log)
 * - `_sluice.stream_windows`: per window, the end up to which windows were emitted
 *
 * @module
 */
import type { Engine } from "../core/engine.ts";
import { CheckpointError, SluiceError } from "../core/errors.ts";
import { literal, qualified } from "../core/quote.ts";
import type { PartialFile, SliceRecord } from "./source.ts";

/**
 * Creates the checkpoint tables if they do not exist.
 *
 * @example
 * ```ts ignore
 * await ensureStreamTables(ctx.db);
 * ```
 */
export async function ensureStreamTables(db: Engine): Promise<void> {
  await db.run(`CREATE SCHEMA IF NOT EXISTS _sluice`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.stream_checkpoint (
    stream VARCHAR, batch_id BIGINT, max_event_time TIMESTAMPTZ, watermark TIMESTAMPTZ,
    delay_ms BIGINT, exported_batch BIGINT, committed_at TIMESTAMPTZ, run_id VARCHAR,
    created_at TIMESTAMPTZ)`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.stream_files (
    stream VARCHAR, path VARCHAR, size BIGINT, mtime_ms DOUBLE, byte_offset BIGINT,
    lines BIGINT, header VARCHAR, status VARCHAR, first_batch BIGINT, last_batch BIGINT,
    finished_at TIMESTAMPTZ, cleaned_at TIMESTAMPTZ, detail VARCHAR)`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.stream_slices (
    stream VARCHAR, path VARCHAR, batch_id BIGINT, start_offset BIGINT, end_offset BIGINT,
    first_line BIGINT, lines BIGINT, sha256 VARCHAR)`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.stream_batches (
    stream VARCHAR, batch_id BIGINT, kind VARCHAR, run_id VARCHAR, started_at TIMESTAMPTZ,
    committed_at TIMESTAMPTZ, files INTEGER, files_finished INTEGER, records_read BIGINT,
    written BIGINT, dead_lettered BIGINT, blank BIGINT, by_reason JSON, bytes_read BIGINT,
    max_event_time TIMESTAMPTZ, watermark TIMESTAMPTZ, windows_emitted BIGINT,
    duration_ms DOUBLE)`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.stream_windows (
    stream VARCHAR, window_name VARCHAR, emitted_until TIMESTAMPTZ)`);
}

/** The committed progress of one stream. */
export interface Checkpoint {
  /** Checkpoint name. */
  stream: string;
  /** Last committed batch id; 0 before the first batch. */
  batchId: number;
  /** Largest event time of a valid row, microseconds since epoch; null before any. */
  maxEventTimeUs: number | null;
  /** Watermark at the last commit, microseconds since epoch; null before any event. */
  watermarkUs: number | null;
  /** Last batch whose rows were exported to Parquet; 0 when none. */
  exportedBatch: number;
}

/**
 * Loads a stream's checkpoint, creating its row (batch 0, no watermark) on
 * first use.
 *
 * @example
 * ```ts ignore
 * const cp = await loadCheckpoint(ctx.db, "events_v1", { runId: ctx.runId, now: new Date() });
 * cp.batchId; // 0 on a new stream
 * ```
 */
export async function loadCheckpoint(
  db: Engine,
  stream: string,
  options: { runId: string; now: Date },
): Promise<Checkpoint> {
  const read = () =>
    db.one<
      {
        batch_id: number;
        max_us: number | null;
        wm_us: number | null;
        exported_batch: number;
      } & Record<string, unknown>
    >(
      `SELECT batch_id, epoch_us(max_event_time) AS max_us, epoch_us(watermark) AS wm_us,
        exported_batch FROM _sluice.stream_checkpoint WHERE stream = $stream`,
      { stream },
    );
  let row = await read();
  if (row === undefined) {
    await db.run(
      `INSERT INTO _sluice.stream_checkpoint VALUES ($stream, 0, NULL, NULL, NULL, 0, NULL,
        $run_id, $now::TIMESTAMPTZ)`,
      { stream, run_id: options.runId, now: options.now.toISOString() },
    );
    row = (await read())!;
  }
  return {
    stream,
    batchId: Number(row.batch_id),
    maxEventTimeUs: row.max_us === null ? null : Number(row.max_us),
    watermarkUs: row.wm_us === null ? null : Number(row.wm_us),
    exportedBatch: Number(row.exported_batch ?? 0),
  };
}

/** What the checkpoint holds about one file. */
export interface FileState {
  /** Absolute path. */
  path: string;
  /** Size when last read. */
  size: number;
  /** Modification time when last read. */
  mtimeMs: number;
  /** Bytes consumed. */
  offset: number;
  /** Lines consumed (header included). */
  lines: number;
  /** The CSV header line, when the file has one. */
  header: string | null;
  /** `partial`, `done` or `lost`. */
  status: "partial" | "done" | "lost";
  /** True once clean_source was applied. */
  cleaned: boolean;
  /** Batch that first read the file. */
  firstBatch: number;
}

/**
 * Loads every file the checkpoint knows for a stream, by path.
 *
 * @example
 * ```ts ignore
 * const files = await loadFileStates(ctx.db, "events_v1");
 * files.get("/landing/a.ndjson")?.status; // "done"
 * ```
 */
export async function loadFileStates(db: Engine, stream: string): Promise<Map<string, FileState>> {
  const rows = await db.all<
    {
      path: string;
      size: number;
      mtime_ms: number;
      byte_offset: number;
      lines: number;
      header: string | null;
      status: FileState["status"];
      cleaned: boolean;
      first_batch: number;
    } & Record<string, unknown>
  >(
    `SELECT path, size, mtime_ms, byte_offset, lines, header, status,
      cleaned_at IS NOT NULL AS cleaned, first_batch
     FROM _sluice.stream_files WHERE stream = $stream`,
    { stream },
  );
  const out = new Map<string, FileState>();
  for (const r of rows) {
    out.set(r.path, {
      path: r.path,
      size: Number(r.size),
      mtimeMs: Number(r.mtime_ms),
      offset: Number(r.byte_offset),
      lines: Number(r.lines),
      header: r.header,
      status: r.status,
      cleaned: r.cleaned,
      firstBatch: Number(r.first_batch),
    });
  }
  return out;
}

/**
 * The consumed ranges of a partly read file, for {@linkcode checkPartialFile}.
 *
 * @example
 * ```ts ignore
 * const partial = await partialFile(ctx.db, "events_v1", state);
 * ```
 */
export async function partialFile(
  db: Engine,
  stream: string,
  state: FileState,
): Promise<PartialFile> {
  const rows = await db.all<{ s: number; e: number; h: string } & Record<string, unknown>>(
    `SELECT start_offset AS s, end_offset AS e, sha256 AS h FROM _sluice.stream_slices
     WHERE stream = $stream AND path = $path ORDER BY start_offset`,
    { stream, path: state.path },
  );
  const slices: SliceRecord[] = rows.map((r) => ({
    start: Number(r.s),
    end: Number(r.e),
    sha256: r.h,
  }));
  return {
    path: state.path,
    size: state.size,
    mtimeMs: state.mtimeMs,
    offset: state.offset,
    slices,
  };
}

/** One file's progress after a batch, written by {@linkcode saveFileProgress}. */
export interface FileProgress
  extends Pick<FileState, "path" | "size" | "mtimeMs" | "offset" | "lines" | "header"> {
  /** `partial` or `done`. */
  status: "partial" | "done";
  /** True when the checkpoint already knew the file. */
  known: boolean;
  /** The range read in this batch and its hash, when the file stays partial. */
  slice?: { start: number; end: number; firstLine: number; lines: number; sha256: string };
}

/**
 * Records the files a batch read (offsets, lines, status, slices of files
 * left partly read). Call inside the batch's transaction.
 *
 * @example
 * ```ts ignore
 * await saveFileProgress(db, "events_v1", 7, files, { now });
 * ```
 */
export async function saveFileProgress(
  db: Engine,
  stream: string,
  batchId: number,
  files: readonly FileProgress[],
  options: { now: Date },
): Promise<void> {
  const now = options.now.toISOString();
  const fresh = files.filter((f) => !f.known);
  if (fresh.length > 0) {
    // One statement for all new files (a batch may finish hundreds of small files).
    const rows = fresh.map((f) =>
      `(${literal(stream)}, ${literal(f.path)}, ${f.size}, ${f.mtimeMs}, ${f.offset}, ${f.lines}, ${
        f.header === null ? "NULL" : literal(f.header)
      }, ${literal(f.status)}, ${batchId}, ${batchId}, ${
        f.status === "done" ? `${literal(now)}::TIMESTAMPTZ` : "NULL"
      }, NULL, NULL)`
    );
    await db.run(`INSERT INTO _sluice.stream_files VALUES ${rows.join(", ")}`);
  }
  for (const f of files.filter((x) => x.known)) {
    await db.run(
      `UPDATE _sluice.stream_files SET size = $size, mtime_ms = $mtime, byte_offset = $offset,
        lines = $lines, header = coalesce(header, $header), status = $status, last_batch = $batch,
        finished_at = CASE WHEN $status = 'done' THEN $now::TIMESTAMPTZ END
       WHERE stream = $stream AND path = $path`,
      {
        stream,
        path: f.path,
        size: f.size,
        mtime: f.mtimeMs,
        offset: f.offset,
        lines: f.lines,
        header: f.header,
        status: f.status,
        batch: batchId,
        now,
      },
    );
  }
  const slices = files.filter((f) => f.slice !== undefined);
  if (slices.length > 0) {
    const rows = slices.map(({ path, slice: sl }) =>
      `(${literal(stream)}, ${literal(path)}, ${batchId}, ${sl!.start}, ${sl!.end}, ${
        sl!.firstLine
      }, ${sl!.lines}, ${literal(sl!.sha256)})`
    );
    await db.run(`INSERT INTO _sluice.stream_slices VALUES ${rows.join(", ")}`);
  }
}

/**
 * Marks a partly read file as lost (it was truncated, removed or rewritten
 * and `fail_on_data_loss` is false): it is never read again.
 *
 * @example
 * ```ts ignore
 * await markFileLost(ctx.db, "events_v1", "/landing/a.ndjson", "truncated: ...");
 * ```
 */
export async function markFileLost(
  db: Engine,
  stream: string,
  path: string,
  detail: string,
): Promise<void> {
  await db.run(
    `UPDATE _sluice.stream_files SET status = 'lost', detail = $detail
     WHERE stream = $stream AND path = $path`,
    { stream, path, detail },
  );
}

/** The new checkpoint values written at the end of a batch. */
export interface CheckpointUpdate {
  /** The batch just committed. */
  batchId: number;
  /** Largest valid event time so far (µs), or null. */
  maxEventTimeUs: number | null;
  /** Watermark (µs), or null. */
  watermarkUs: number | null;
  /** The watermark delay in ms. */
  delayMs: number;
  /** The stream's run id. */
  runId: string;
  /** Commit time. */
  now: Date;
}

/**
 * Advances a stream's checkpoint row. Call inside the batch's transaction.
 *
 * @example
 * ```ts ignore
 * await saveCheckpoint(db, "events_v1", { batchId: 8, maxEventTimeUs, watermarkUs, delayMs, runId, now });
 * ```
 */
export async function saveCheckpoint(
  db: Engine,
  stream: string,
  u: CheckpointUpdate,
): Promise<void> {
  const changed = await db.run(
    `UPDATE _sluice.stream_checkpoint SET batch_id = $batch,
      max_event_time = make_timestamptz($max::BIGINT), watermark = make_timestamptz($wm::BIGINT),
      delay_ms = $delay, committed_at = $now::TIMESTAMPTZ, run_id = $run_id
     WHERE stream = $stream AND batch_id = $batch - 1`,
    {
      stream,
      batch: u.batchId,
      max: u.maxEventTimeUs,
      wm: u.watermarkUs,
      delay: u.delayMs,
      now: u.now.toISOString(),
      run_id: u.runId,
    },
  );
  if (changed !== 1) {
    throw new SluiceError(
      `Cannot commit batch ${u.batchId} of stream "${stream}": its checkpoint is no longer at ` +
        `batch ${u.batchId - 1} (another writer moved it)`,
    );
  }
}

/**
 * Records the last batch exported to Parquet.
 *
 * @example
 * ```ts ignore
 * await saveExportedBatch(ctx.db, "events_v1", 12);
 * ```
 */
export async function saveExportedBatch(
  db: Engine,
  stream: string,
  batchId: number,
): Promise<void> {
  await db.run(
    `UPDATE _sluice.stream_checkpoint SET exported_batch = $batch
     WHERE stream = $stream AND exported_batch < $batch`,
    { stream, batch: batchId },
  );
}

/** The tables a stream's checkpoint describes, for {@linkcode checkpointProblems}. */
export interface CheckpointTables {
  /** The stream's target table in `silver`. */
  target: string;
  /** The stream's dead-letter table in `silver`. */
  dlq: string;
}

type Num = number | bigint | null;
const n = (v: Num | undefined): number => Number(v ?? 0);

/**
 * Checks a stream checkpoint against the data it describes and returns what
 * is inconsistent (empty when it holds):
 *
 * - a checkpoint row exists when files or batches are recorded;
 * - `batch_id` equals the last batch in `_sluice.stream_batches`, whose ids
 *   run 1..batch_id without gaps, and `exported_batch` is not ahead of it;
 * - every file has `byte_offset <= size`, no lines without bytes, and a
 *   partly read file's offset is the end of its last consumed slice;
 * - no file holds more committed rows (target rows plus DLQ rows not
 *   replayed), or a higher line number, than the lines its entry consumed.
 *
 * When the database holds only this checkpoint (a renamed checkpoint starts
 * over on a target that already has rows), the target is checked too: no
 * row of a batch after `batch_id` or of a batch not recorded, and no row
 * from a file `_sluice.stream_files` does not list.
 *
 * @example
 * ```ts ignore
 * await checkpointProblems(db, "events_v1", { target: "events", dlq: "events__dlq" }); // []
 * ```
 */
export async function checkpointProblems(
  db: Engine,
  stream: string,
  tables: CheckpointTables,
): Promise<string[]> {
  const problems: string[] = [];
  const target = qualified("silver", tables.target);
  const dlq = qualified("silver", tables.dlq);
  const p = { stream };
  const cp = await db.one<{ batch_id: Num; exported_batch: Num } & Record<string, unknown>>(
    `SELECT batch_id, exported_batch FROM _sluice.stream_checkpoint WHERE stream = $stream`,
    p,
  );
  const recorded = await db.one<{ files: Num; batches: Num; last: Num; ids: Num }>(
    `SELECT (SELECT count(*) FROM _sluice.stream_files WHERE stream = $stream) AS files,
       count(*) AS batches, max(batch_id) AS last, count(DISTINCT batch_id) AS ids
     FROM _sluice.stream_batches WHERE stream = $stream`,
    p,
  );
  if (cp === undefined) {
    if (n(recorded?.files) > 0 || n(recorded?.batches) > 0) {
      problems.push(
        `_sluice.stream_checkpoint has no row, but ${n(recorded?.files)} files and ` +
          `${n(recorded?.batches)} batches are recorded`,
      );
    }
    return problems;
  }
  const batchId = n(cp.batch_id);
  const last = n(recorded?.last);
  if (batchId !== last) {
    problems.push(
      `checkpoint batch_id is ${batchId}, but _sluice.stream_batches records batches up to ${last}`,
    );
  }
  if (n(recorded?.ids) !== last || n(recorded?.batches) !== last) {
    problems.push(
      `_sluice.stream_batches holds ${n(recorded?.batches)} rows for batch ids up to ${last} ` +
        "(batch ids must run 1, 2, 3... without gaps or repeats)",
    );
  }
  if (n(cp.exported_batch) > batchId) {
    problems.push(
      `exported_batch ${n(cp.exported_batch)} is ahead of the checkpoint's batch_id ${batchId}`,
    );
  }
  const offsets = await db.all<
    & { path: string; size: Num; off: Num; lines: Num; status: string; slice_end: Num }
    & Record<
      string,
      unknown
    >
  >(
    `SELECT f.path, f.size, f.byte_offset AS off, f.lines, f.status,
       (SELECT max(end_offset) FROM _sluice.stream_slices AS s
        WHERE s.stream = f.stream AND s.path = f.path) AS slice_end
     FROM _sluice.stream_files AS f
     WHERE f.stream = $stream AND f.status <> 'lost' AND (f.byte_offset > f.size
       OR f.byte_offset < 0 OR f.lines < 0 OR (f.lines > 0 AND f.byte_offset = 0)
       OR (f.status = 'partial' AND f.byte_offset IS DISTINCT FROM (SELECT max(end_offset)
         FROM _sluice.stream_slices AS s WHERE s.stream = f.stream AND s.path = f.path)))
     ORDER BY f.path LIMIT 5`,
    p,
  );
  for (const f of offsets) {
    problems.push(
      `file ${f.path} (${f.status}) has byte_offset ${n(f.off)} for ${n(f.lines)} lines of a ` +
        `${n(f.size)}-byte file` +
        (f.status === "partial" ? `, but its consumed slices end at byte ${n(f.slice_end)}` : ""),
    );
  }
  // One scan of the target, by file and batch, serves every target-side check.
  await db.run(
    `CREATE OR REPLACE TEMP TABLE _sluice_cp_target AS
     SELECT _source_file AS p, _batch_id AS b, count(*) AS n, max(_source_line) AS m
     FROM ${target} GROUP BY ALL`,
  );
  try {
    await targetProblems(db, stream, { ...tables, dlq, batchId }, problems);
  } finally {
    await db.run("DROP TABLE IF EXISTS _sluice_cp_target");
  }
  return problems;
}

async function targetProblems(
  db: Engine,
  stream: string,
  t: CheckpointTables & { batchId: number },
  problems: string[],
): Promise<void> {
  const p = { stream };
  const { dlq, batchId } = t;
  const counts = await db.all<
    { path: string; lines: Num; rows: Num; max_line: Num } & Record<string, unknown>
  >(
    `WITH r AS (
       SELECT p, sum(n) AS n, max(m) AS m FROM _sluice_cp_target GROUP BY 1
       UNION ALL
       SELECT _source_file, count(*) FILTER (WHERE _replayed_at IS NULL), max(_source_row)
       FROM ${dlq} GROUP BY 1),
     a AS (SELECT p, sum(n) AS n, max(m) AS m FROM r GROUP BY p)
     SELECT f.path, f.lines, a.n AS rows, a.m AS max_line
     FROM _sluice.stream_files AS f JOIN a ON a.p = f.path
     WHERE f.stream = $stream AND f.status <> 'lost' AND (a.n > f.lines OR a.m > f.lines)
     ORDER BY f.path LIMIT 5`,
    p,
  );
  for (const c of counts) {
    problems.push(
      `file ${c.path} holds ${n(c.rows)} committed rows up to line ${n(c.max_line)}, but its ` +
        `_sluice.stream_files entry says ${n(c.lines)} lines were consumed`,
    );
  }
  const others = await db.one<{ n: Num }>(
    `SELECT count(*) AS n FROM _sluice.stream_checkpoint WHERE stream <> $stream`,
    p,
  );
  if (n(others?.n) > 0) return;
  const ahead = await db.one<{ max_batch: Num; unknown_batches: Num }>(
    `SELECT max(b) AS max_batch, count(DISTINCT b) FILTER (WHERE b NOT IN
       (SELECT batch_id FROM _sluice.stream_batches WHERE stream = $stream)) AS unknown_batches
     FROM _sluice_cp_target`,
    p,
  );
  if (n(ahead?.max_batch) > batchId) {
    problems.push(
      `checkpoint batch_id ${batchId} is behind silver.${t.target}, which holds rows of ` +
        `batch ${n(ahead?.max_batch)}`,
    );
  } else if (n(ahead?.unknown_batches) > 0) {
    problems.push(
      `silver.${t.target} holds rows of ${n(ahead?.unknown_batches)} batches that ` +
        "_sluice.stream_batches does not record",
    );
  }
  const unlisted = await db.all<{ path: string; rows: Num } & Record<string, unknown>>(
    `SELECT p AS path, sum(n) AS rows FROM _sluice_cp_target
     WHERE p NOT IN (SELECT path FROM _sluice.stream_files WHERE stream = $stream)
     GROUP BY 1 ORDER BY 1 LIMIT 3`,
    p,
  );
  if (unlisted.length > 0) {
    problems.push(
      `silver.${t.target} holds rows from files _sluice.stream_files does not list (` +
        unlisted.map((u) => `${u.path}: ${n(u.rows)} rows`).join(", ") + ")",
    );
  }
}

/**
 * Refuses to start a stream whose checkpoint contradicts its data: throws a
 * {@linkcode CheckpointError} (exit 65) naming every inconsistency found by
 * {@linkcode checkpointProblems}.
 *
 * @example
 * ```ts ignore
 * await verifyCheckpoint(db, "events_v1", { target: "events", dlq: "events__dlq" });
 * ```
 */
export async function verifyCheckpoint(
  db: Engine,
  stream: string,
  tables: CheckpointTables,
): Promise<void> {
  const problems = await checkpointProblems(db, stream, tables);
  if (problems.length === 0) return;
  throw new CheckpointError(
    `Cannot start stream "${stream}": its checkpoint is inconsistent with the data it ` +
      `describes (edited or damaged?): ${problems.join("; ")}. Restore the database from a ` +
      "backup, or start over under a new checkpoint name",
    { context: { stream, problems } },
  );
}
