/**
 * The yardstick of the streaming benchmark: the same micro-batch work as
 * `sluice stream --trigger available-now`, written as plain DuckDB SQL and
 * run through `@duckdb/node-api` in one process (no Sluice code; on purpose
 * this talks to DuckDB directly, not through `core/engine.ts`).
 *
 * For each batch of `--files-per-batch` files (in name order, which the
 * benchmark data makes the same as modification-time order), ONE
 * transaction: read the files' lines (`read_csv` of one VARCHAR column, no
 * quoting, with each line's number), parse each line as JSON and type the declared fields
 * (`event_id` VARCHAR NOT NULL, `event_time` TIMESTAMPTZ NOT NULL, `country`
 * VARCHAR, `amount` DECIMAL(12,2)), route malformed lines and schema
 * violations to a dead-letter table with reason, detail, file and line, mark
 * late rows against the watermark (largest event time seen earlier in stream
 * order minus the delay, carried across batches in a state table), append
 * the good rows with file and line, dead-letter the late ones, record the
 * files done and the new maximum event time, commit.
 *
 * With `--bulk`, instead loads every file at once with
 * `read_json(..., ignore_errors = true)`: no routing, no watermark, no
 * checkpoint: the floor.
 *
 *   deno run --allow-ffi=./node_modules --allow-read --allow-write bench/baseline_stream.ts \
 *     --landing bench/data/stream_s42_n1000000_f50/landing --work /tmp/bs --files-per-batch 5
 *
 * Prints one JSON line: seconds (open to close), events read, written,
 * dead-lettered by reason, batches.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";

const q = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** The declared fields: name, DuckDB type, required. */
const FIELDS: [string, string, boolean][] = [
  ["event_id", "VARCHAR", true],
  ["event_time", "TIMESTAMPTZ", true],
  ["country", "VARCHAR", false],
  ["amount", "DECIMAL(12,2)", false],
];

/** Parse, type and classify the staged lines of one batch (table `b_read`). */
function classifySql(): string {
  const raws = FIELDS.map(([n]) =>
    `CASE WHEN ok THEN json_extract_string(line, '$.${n}') END AS r_${n}`
  );
  const typed = FIELDS.map(([n, t]) => `TRY_CAST(r_${n} AS ${t}) AS ${n}`);
  const violations = FIELDS.flatMap(([n, t, required]) => [
    `CASE WHEN r_${n} IS NOT NULL AND ${n} IS NULL THEN 'field "${n}": cannot cast "' || ` +
    `left(r_${n}, 200) || '" to ${t}' END`,
    ...(required ? [`CASE WHEN r_${n} IS NULL THEN 'field "${n}": required but missing' END`] : []),
  ]);
  return `SELECT seq, file, line, ${FIELDS.map(([n]) => n).join(", ")},
      CASE WHEN NOT ok THEN 'malformed_json' WHEN violation <> '' THEN 'schema_violation' END AS code,
      CASE WHEN NOT ok THEN 'not valid JSON' WHEN violation <> '' THEN violation END AS detail
    FROM (
      SELECT *, concat_ws('; ', ${violations.join(", ")}) AS violation
      FROM (SELECT *, ${typed.join(", ")}
            FROM (SELECT *, ${raws.join(", ")}
                  FROM (SELECT *, json_valid(line) AND starts_with(line, '{') AS ok FROM b_read))))`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      landing: { type: "string" },
      work: { type: "string" },
      "files-per-batch": { type: "string", default: "5" },
      "delay-seconds": { type: "string", default: "3600" },
      threads: { type: "string", default: "2" },
      bulk: { type: "boolean", default: false },
      timings: { type: "boolean", default: false },
    },
  });
  if (!values.landing || !values.work) {
    console.error(
      "usage: baseline_stream.ts --landing DIR --work DIR [--files-per-batch 5] [--bulk]",
    );
    Deno.exit(2);
  }
  const landing = resolve(values.landing);
  const work = resolve(values.work);
  await Deno.mkdir(work, { recursive: true });
  const files: string[] = [];
  for await (const e of Deno.readDir(landing)) {
    if (e.isFile && e.name.endsWith(".ndjson")) files.push(join(landing, e.name));
  }
  files.sort();
  const perBatch = Number(values["files-per-batch"]);
  const delay = Number(values["delay-seconds"]);

  const t0 = performance.now();
  const instance = await DuckDBInstance.create(join(work, "stream.duckdb"), {
    threads: values.threads!,
  });
  const raw = await instance.connect();
  const timings: Record<string, number> = {};
  const conn = {
    run: async (sql: string) => {
      const t = performance.now();
      const r = await raw.run(sql);
      const k = sql.trim().slice(0, 40).replace(/\s+/g, " ");
      timings[k] = (timings[k] ?? 0) + (performance.now() - t) / 1000;
      return r;
    },
    runAndReadAll: (sql: string) => raw.runAndReadAll(sql),
    closeSync: () => raw.closeSync(),
  };
  const scalar = async (sql: string): Promise<number> => {
    const r = await conn.runAndReadAll(sql);
    return Number(r.getRows()[0][0] ?? 0);
  };
  if (values.bulk) {
    const columns = FIELDS.map(([n, t]) => `${n}: '${t}'`).join(", ");
    await conn.run(`CREATE TABLE events AS SELECT * FROM read_json(${q(join(landing, "*.ndjson"))},
      format = 'newline_delimited', ignore_errors = true, columns = {${columns}})`);
    const written = await scalar("SELECT count(*) FROM events");
    await conn.run("CHECKPOINT");
    conn.closeSync();
    instance.closeSync();
    const seconds = (performance.now() - t0) / 1000;
    console.log(JSON.stringify({ seconds, written, files: files.length, mode: "bulk" }));
    return;
  }

  const cols = FIELDS.map(([n, t]) => `${n} ${t}`).join(", ");
  await conn.run(`CREATE TABLE events (${cols}, _batch_id BIGINT, _source_file VARCHAR,
    _source_line BIGINT, _ingested_at TIMESTAMPTZ)`);
  await conn.run(`CREATE TABLE events__dlq (_reason_code VARCHAR, _reason VARCHAR, _payload VARCHAR,
    _source_file VARCHAR, _source_row BIGINT, _event_time TIMESTAMPTZ,
    _watermark_at_arrival TIMESTAMPTZ, _quarantined_at TIMESTAMPTZ)`);
  await conn.run(`CREATE TABLE files_done (path VARCHAR, batch_id BIGINT, lines BIGINT)`);
  await conn.run(`CREATE TABLE stream_state (batch_id BIGINT, max_event_time TIMESTAMPTZ)`);
  await conn.run(`INSERT INTO stream_state VALUES (0, NULL)`);

  let batches = 0;
  let read = 0;
  for (let b = 0; b < files.length; b += perBatch) {
    const batchFiles = files.slice(b, b + perBatch);
    const batchId = ++batches;
    await conn.run("BEGIN TRANSACTION");
    // Whole lines as one column: no quoting, a delimiter that never occurs
    // (U+0001), order kept, so row_number() OVER () is the stream order.
    await conn.run(`CREATE OR REPLACE TEMP TABLE b_read AS
      SELECT row_number() OVER () AS seq, filename AS file, line
      FROM read_csv(${`[${batchFiles.map(q).join(", ")}]`}, columns = {'line': 'VARCHAR'},
        header = false, delim = '\u0001', quote = '', escape = '', auto_detect = false,
        filename = true)`);
    // Each file's first sequence number: line number = seq - first + 1.
    await conn.run(`CREATE OR REPLACE TEMP TABLE b_files AS
      SELECT file, min(seq) AS first, count(*) AS lines FROM b_read GROUP BY file`);
    await conn.run(`CREATE OR REPLACE TEMP TABLE b_rows AS ${classifySql()}`);
    await conn.run(`CREATE OR REPLACE TEMP TABLE b_late AS
      SELECT seq, event_time, wm FROM (
        SELECT seq, event_time,
          greatest((SELECT max_event_time FROM stream_state),
            max(event_time) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING))
            - to_seconds(${delay}::BIGINT) AS wm
        FROM b_rows WHERE code IS NULL)
      WHERE event_time < wm`);
    await conn.run(`INSERT INTO events
      SELECT ${FIELDS.map(([n]) => n).join(", ")}, ${batchId}, file, seq - f.first + 1, now()
      FROM b_rows JOIN b_files AS f USING (file)
      WHERE code IS NULL AND seq NOT IN (SELECT seq FROM b_late)`);
    await conn.run(`INSERT INTO events__dlq
      SELECT code, detail, line, file, seq - f.first + 1, NULL, NULL, now()
      FROM b_rows JOIN b_files AS f USING (file) WHERE code IS NOT NULL
      UNION ALL
      SELECT 'late', 'event time ' || l.event_time || ' older than the watermark ' || l.wm,
        r.line, r.file, r.seq - f.first + 1, l.event_time, l.wm, now()
      FROM b_late AS l JOIN b_rows AS r USING (seq) JOIN b_files AS f USING (file)`);
    await conn.run(`INSERT INTO files_done SELECT file, ${batchId}, lines FROM b_files`);
    await conn.run(`UPDATE stream_state SET batch_id = ${batchId},
      max_event_time = greatest(max_event_time,
        (SELECT max(event_time) FROM b_rows WHERE code IS NULL))`);
    read += await scalar("SELECT sum(lines) FROM b_files");
    await conn.run("COMMIT");
  }
  const written = await scalar("SELECT count(*) FROM events");
  const reasons: Record<string, number> = {};
  const r = await conn.runAndReadAll(
    "SELECT _reason_code, count(*)::DOUBLE FROM events__dlq GROUP BY 1 ORDER BY 1",
  );
  for (const [code, n] of r.getRows()) reasons[String(code)] = Number(n);
  await conn.run("CHECKPOINT");
  conn.closeSync();
  instance.closeSync();
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({
    seconds,
    read,
    written,
    dead_lettered: Object.values(reasons).reduce((a, b) => a + b, 0),
    by_reason: reasons,
    batches,
    mode: "micro-batch",
  }));
  if (Deno.args.includes("--timings")) console.error(timings);
}

if (import.meta.main) await main();
