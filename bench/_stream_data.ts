/**
 * The streaming benchmark's landing folder: NDJSON event files with a
 * realistic share of bad and late lines, made in DuckDB from `range(n)` and a
 * seeded `hash()` (same seed and count, same bytes), cached under
 * `bench/data/`. File modification times are set one second apart in name
 * order, so "stream order" (mtime, then name) is the same for every reader.
 *
 * Of every 1000 events: 10 are truncated JSON (`malformed_json`), 5 carry
 * `"amount": "abc"` and 2 lack `event_id` (`schema_violation`), 10 are three
 * hours older than their neighbours (late under a one-hour watermark delay),
 * the rest are valid. Event times advance through one day.
 *
 * @module
 */
import { join } from "node:path";
import { literal, openEngine } from "../mod.ts";
import { BENCH_DATA_DIR } from "./_project.ts";

/**
 * The streaming data set.
 *
 * @example
 * ```ts ignore
 * const data: StreamData = await streamData({ events: 10_000, files: 10, seed: 1 });
 * ```
 */
export interface StreamData {
  /** Folder holding the `.ndjson` files. */
  landing: string;
  /** Number of lines (events, good and bad). */
  events: number;
  /** Number of files. */
  files: number;
  /** Expected outcome by construction (before watermark effects on good rows). */
  expected: { malformed: number; schemaViolations: number; late: number };
}

/**
 * Watermark delay the benchmark streams with (both sides).
 *
 * @example
 * ```ts ignore
 * const args = ["--delay-seconds", String(STREAM_DELAY_SECONDS)];
 * ```
 */
export const STREAM_DELAY_SECONDS = 3600;

/**
 * Returns the landing folder of `events` lines in `files` NDJSON files,
 * generating it once (under `baseDir`, default `bench/data/`).
 *
 * @example
 * ```ts ignore
 * const data = await streamData({ events: 1_000_000, files: 50, seed: 42 });
 * ```
 */
export async function streamData(
  options: { events: number; files: number; seed: number; baseDir?: string },
): Promise<StreamData> {
  const { events, files, seed } = options;
  const dir = join(options.baseDir ?? BENCH_DATA_DIR, `stream_s${seed}_n${events}_f${files}`);
  const landing = join(dir, "landing");
  const marker = join(dir, ".complete");
  if (!(await pathExists(marker))) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(landing, { recursive: true });
    const db = await openEngine(":memory:", { allowedDirectories: [dir] });
    try {
      const h = (salt: string) => `hash(i, ${literal(seed)}::BIGINT, ${literal(salt)})`;
      await db.run(`CREATE TEMP TABLE ev AS
        SELECT i, CAST(i * ${literal(files)} // ${literal(events)} AS BIGINT) AS file, k,
          'e' || i AS id,
          strftime(timezone('UTC', TIMESTAMPTZ '2026-06-01 00:00:00+00'
            + to_microseconds(CAST(i * (86400000000 // ${literal(events)}) AS BIGINT)
              + CAST(${h("jitter")} % 30000000 AS BIGINT))
            - CASE WHEN k >= 17 AND k < 27 THEN INTERVAL 3 HOUR ELSE INTERVAL 0 HOUR END),
            '%Y-%m-%dT%H:%M:%S.%gZ') AS ts,
          ['DE', 'DE', 'US', 'FR', 'GB', 'NL', 'ES', 'IT'][1 + CAST(${h("country")} % 8 AS INTEGER)]
            AS country,
          printf('%d.%02d', ${h("amount")} % 500, ${h("cents")} % 100) AS amount
        FROM (SELECT i, ${h("kind")} % 1000 AS k FROM range(${literal(events)}) t(i))`);
      await db.run(`CREATE TEMP TABLE lines AS
        SELECT file, i, CASE
          WHEN k < 10 THEN '{"event_id": "' || id || '", "event_time": '
          WHEN k < 15 THEN '{"event_id": "' || id || '", "event_time": "' || ts ||
            '", "country": "' || country || '", "amount": "abc"}'
          WHEN k < 17 THEN '{"event_time": "' || ts || '", "country": "' || country ||
            '", "amount": ' || amount || '}'
          ELSE '{"event_id": "' || id || '", "event_time": "' || ts || '", "country": "' ||
            country || '", "amount": ' || amount || '}'
        END AS line
        FROM ev`);
      const width = Math.max(4, String(files).length);
      for (let f = 0; f < files; f++) {
        const file = join(landing, `events_${String(f + 1).padStart(width, "0")}.ndjson`);
        await db.run(
          `COPY (SELECT line FROM lines WHERE file = ${f} ORDER BY i) TO ${literal(file)}
           (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\t')`,
        );
        const at = new Date(Date.UTC(2026, 5, 1) + f * 1000);
        await Deno.utime(file, at, at);
      }
    } finally {
      db.close();
    }
    await Deno.writeTextFile(marker, new Date().toISOString());
  }
  const per = (lo: number, hi: number) => Math.round((events * (hi - lo)) / 1000);
  return {
    landing,
    events,
    files,
    expected: { malformed: per(0, 10), schemaViolations: per(10, 17), late: per(17, 27) },
  };
}

/**
 * Writes `<dir>/pipeline.yaml` for `sluice stream` over `landing`: the four
 * declared fields, target `events`, DLQ `events__dlq`, checkpoint
 * `events_v1`, a one-hour watermark on `event_time`, fail-on-data-loss on,
 * `filesPerBatch` files per batch (records and bytes never the limit).
 * Returns the config file's path.
 *
 * @example
 * ```ts ignore
 * const file = await writeStreamProject({ landing, dir: "/tmp/s", filesPerBatch: 5 });
 * ```
 */
export async function writeStreamProject(
  options: { landing: string; dir: string; filesPerBatch: number; threads?: number },
): Promise<string> {
  const batchSource = join(options.dir, "batch_source");
  await Deno.mkdir(batchSource, { recursive: true });
  const yaml = `pipeline: bench_stream
lake: ${JSON.stringify(join(options.dir, "lake"))}
engine: { threads: ${options.threads ?? 2} }
sources:
  unused: { format: csv, path: ${JSON.stringify(batchSource)} }
streaming:
  source:
    format: ndjson
    path: ${JSON.stringify(options.landing)}
    allow_outside_project: true
    glob: "*.ndjson"
    settle: 0s
  columns:
    event_id: { type: VARCHAR, nullable: false }
    event_time: { type: TIMESTAMPTZ, nullable: false }
    country: { type: VARCHAR }
    amount: { type: "DECIMAL(12,2)" }
  target: events
  dlq: events__dlq
  checkpoint: events_v1
  watermark: { column: event_time, delay: ${STREAM_DELAY_SECONDS} seconds }
  fail_on_data_loss: true
  max_files_per_trigger: ${options.filesPerBatch}
  max_records_per_trigger: 100000000
  max_bytes_per_trigger: 1GB
`;
  const file = join(options.dir, "pipeline.yaml");
  await Deno.writeTextFile(file, yaml);
  return file;
}

/** True when `path` exists (a cache marker file). */
async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
