import assert from "node:assert/strict";
import { join } from "node:path";
import type { Registry } from "prom-client";
import { steppingClock } from "../core/clock.ts";
import { ConfigError, SchemaDriftError } from "../core/errors.ts";
import {
  BASE_MS,
  event,
  makeStreamProject,
  q,
  streamProject,
  streamYaml,
  writeLanding,
} from "./fixtures/streaming.ts";

const enc = new TextEncoder();

/** Byte offset of the start of 1-based line `n` in `text`. */
function offsetOfLine(text: string, n: number): number {
  const lines = text.split("\n");
  return enc.encode(lines.slice(0, n - 1).map((l) => l + "\n").join("")).length;
}

async function metricValue(r: Registry, name: string, labels: Record<string, string> = {}) {
  const m = await r.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value;
}

Deno.test("valid lines land once with file and line; bad lines go to the DLQ with reason, detail, line and offset", async () => {
  const p = await makeStreamProject(streamYaml());
  const text = [
    event("e1", 0),
    '{"event_id": "e2", "event_time": ',
    "[1, 2]",
    event("e4", 1, { amount: "abc", note: "héllo" }),
    "   ",
    JSON.stringify({ event_time: new Date(BASE_MS).toISOString(), country: "FR", amount: 1 }),
    event("e7", 10),
    event("e8", 11), // the last line of a complete file needs no newline
  ].join("\n");
  const file = await writeLanding(p, "a.ndjson", text);
  const s = await streamProject(p);
  assert.equal(s.batches, 1);
  assert.equal(s.recordsRead, 8);
  assert.equal(s.written, 3);
  assert.equal(s.deadLettered, 4);
  assert.deepEqual(s.byReason, { malformed_json: 2, schema_violation: 2 });
  const target = await q(
    p,
    `SELECT event_id, _source_file, _source_line, _batch_id, amount
    FROM silver.events ORDER BY _source_line`,
  );
  assert.deepEqual(target.map((r) => [r.event_id, r._source_file, r._source_line, r._batch_id]), [
    ["e1", file, 1, 1],
    ["e7", file, 7, 1],
    ["e8", file, 8, 1],
  ]);
  const dlq = await q(
    p,
    `SELECT _reason_code, _reason, _payload, _source_file, _source_row,
      _source_offset, _table, _event_time, _dlq_id
    FROM silver.events__dlq ORDER BY _source_row`,
  );
  const lines = text.split("\n");
  assert.deepEqual(dlq.map((r) => [r._reason_code, r._reason, r._source_row, r._source_offset]), [
    ["malformed_json", "not valid JSON", 2, offsetOfLine(text, 2)],
    ["malformed_json", "not a JSON object (got array)", 3, offsetOfLine(text, 3)],
    [
      "schema_violation",
      'field "amount": cannot cast "abc" to DECIMAL(12,2)',
      4,
      offsetOfLine(text, 4),
    ],
    [
      "schema_violation",
      'field "event_id": required but missing or null',
      6,
      offsetOfLine(text, 6),
    ],
  ]);
  assert.deepEqual(dlq.map((r) => r._payload), [lines[1], lines[2], lines[3], lines[5]]);
  for (const r of dlq) {
    assert.equal(r._source_file, file);
    assert.equal(r._table, "events");
    assert.equal(r._event_time, null);
    assert.match(String(r._dlq_id), /^[0-9a-f]{32}$/);
  }
  assert.equal(
    await metricValue(s.metrics, "sluice_stream_records_total", { outcome: "blank" }),
    1,
  );
});

Deno.test("CRLF line ends are removed from rows and payloads, offsets stay exact", async () => {
  const p = await makeStreamProject(streamYaml());
  const text = [event("é1", 0), "{oops", event("e3", 5)].join("\r\n") + "\r\n";
  await writeLanding(p, "a.ndjson", text);
  await streamProject(p);
  const dlq = await q(p, "SELECT _payload, _source_row, _source_offset FROM silver.events__dlq");
  const firstLineBytes = enc.encode(event("é1", 0) + "\r\n").length;
  assert.deepEqual(dlq, [{ _payload: "{oops", _source_row: 2, _source_offset: firstLineBytes }]);
  const ids = await q(p, "SELECT event_id FROM silver.events ORDER BY _source_line");
  assert.deepEqual(ids.map((r) => r.event_id), ["é1", "e3"]);
});

Deno.test("a line that is not valid UTF-8 goes to the DLQ as malformed_encoding", async () => {
  const p = await makeStreamProject(streamYaml());
  const good = enc.encode(event("e1", 0) + "\n");
  const bad = new Uint8Array([
    ...enc.encode('{"event_id": "e2", "x": "'),
    0xff,
    0xfe,
    ...enc.encode('"}\n'),
  ]);
  const tail = enc.encode(event("e3", 1) + "\n");
  await Deno.writeFile(join(p.landing, "a.ndjson"), new Uint8Array([...good, ...bad, ...tail]));
  const s = await streamProject(p);
  assert.deepEqual(s.byReason, { malformed_encoding: 1 });
  const dlq = await q(
    p,
    "SELECT _reason_code, _source_row, _source_offset FROM silver.events__dlq",
  );
  assert.deepEqual(dlq, [{
    _reason_code: "malformed_encoding",
    _source_row: 2,
    _source_offset: good.length,
  }]);
  assert.equal((await q(p, "SELECT count(*) AS n FROM silver.events"))[0].n, 2);
});

Deno.test("late rows land in the DLQ with reason late, event time, watermark at arrival and lateness", async () => {
  const p = await makeStreamProject(streamYaml({ delay: "1 hour" }));
  await writeLanding(
    p,
    "a.ndjson",
    [event("e1", 7200), event("e2", 0), event("e3", 3700), event("e4", 3599)].join("\n") + "\n",
  );
  const s = await streamProject(p);
  assert.deepEqual(s.byReason, { late: 2 });
  const late = await q(
    p,
    `SELECT _payload::JSON->>'event_id' AS id, _reason_code, _reason,
      epoch_ms(_event_time) AS et, epoch_ms(_watermark_at_arrival) AS wm, _lateness_seconds
    FROM silver.events__dlq ORDER BY _source_row`,
  );
  assert.deepEqual(late.map((r) => [r.id, r._reason_code, r.et, r.wm, r._lateness_seconds]), [
    ["e2", "late", BASE_MS, BASE_MS + 3600_000, 3600],
    ["e4", "late", BASE_MS + 3599_000, BASE_MS + 3600_000, 1],
  ]);
  assert.equal(
    late[0]._reason,
    "event time 2026-01-01T00:00:00.000Z is 3600 s older than the watermark 2026-01-01T01:00:00.000Z",
  );
  const ids = await q(p, "SELECT event_id FROM silver.events ORDER BY _source_line");
  assert.deepEqual(ids.map((r) => r.event_id), ["e1", "e3"]);
  assert.equal(s.watermark?.getTime(), BASE_MS + 3600_000);
});

Deno.test("a restart keeps the watermark: a row late against an earlier run is dead-lettered", async () => {
  const p = await makeStreamProject(streamYaml({ delay: "1 hour" }));
  await writeLanding(p, "a.ndjson", event("e1", 7200) + "\n");
  const first = await streamProject(p);
  assert.equal(first.watermark?.getTime(), BASE_MS + 3600_000);
  const cp = await q(
    p,
    `SELECT batch_id, epoch_ms(watermark) AS wm, epoch_ms(max_event_time) AS mx
    FROM _sluice.stream_checkpoint`,
  );
  assert.deepEqual(cp, [{ batch_id: 1, wm: BASE_MS + 3600_000, mx: BASE_MS + 7200_000 }]);
  await writeLanding(p, "b.ndjson", [event("e2", 0), event("e3", 3601)].join("\n") + "\n");
  const second = await streamProject(p);
  assert.deepEqual(second.byReason, { late: 1 });
  assert.equal(second.watermark?.getTime(), BASE_MS + 3600_000);
  const late = await q(p, "SELECT epoch_ms(_watermark_at_arrival) AS wm FROM silver.events__dlq");
  assert.deepEqual(late, [{ wm: BASE_MS + 3600_000 }]);
});

Deno.test("lateness does not depend on where batches end", async () => {
  const lines: string[] = [];
  for (let i = 0; i < 40; i++) {
    // Mostly increasing times with a few far-back rows and some small disorder.
    const t = i % 7 === 3 ? i * 600 - 5000 : i % 5 === 1 ? i * 600 - 1200 : i * 600;
    lines.push(event(`e${i}`, t));
  }
  const outcomes: string[][] = [];
  for (const maxRecords of [1, 3, 1000]) {
    const p = await makeStreamProject(streamYaml({ delay: "30 minutes", maxRecords }));
    await writeLanding(p, "a.ndjson", lines.slice(0, 25).join("\n") + "\n");
    await writeLanding(p, "b.ndjson", lines.slice(25).join("\n") + "\n");
    const s = await streamProject(p);
    // A batch that ends a file goes on with the next one: ceil(40 / 3) batches.
    assert.equal(s.batches, maxRecords === 1 ? 40 : maxRecords === 3 ? 14 : 1);
    const late = await q(
      p,
      "SELECT _payload::JSON->>'event_id' AS id FROM silver.events__dlq ORDER BY 1",
    );
    outcomes.push(late.map((r) => String(r.id)));
  }
  assert.ok(outcomes[0].length > 0);
  assert.deepEqual(outcomes[1], outcomes[0]);
  assert.deepEqual(outcomes[2], outcomes[0]);
});

Deno.test("a big file is read across batches by byte offset, every line exactly once", async () => {
  const p = await makeStreamProject(streamYaml({ maxRecords: 3 }));
  const text = Array.from({ length: 10 }, (_, i) => event(`e${i + 1}`, i)).join("\n") + "\n";
  const file = await writeLanding(p, "big.ndjson", text);
  const one = await streamProject(p, { trigger: "once" });
  assert.equal(one.batches, 1);
  assert.equal(one.written, 3);
  const partial = await q(p, `SELECT status, byte_offset, lines FROM _sluice.stream_files`);
  assert.deepEqual(partial, [{ status: "partial", byte_offset: offsetOfLine(text, 4), lines: 3 }]);
  const rest = await streamProject(p);
  assert.equal(rest.batches, 3);
  const rows = await q(
    p,
    "SELECT event_id, _source_line, _batch_id FROM silver.events ORDER BY _source_line",
  );
  assert.deepEqual(rows.map((r) => r._source_line), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(rows.map((r) => r._batch_id), [1, 1, 1, 2, 2, 2, 3, 3, 3, 4]);
  const done = await q(p, `SELECT status, byte_offset, lines, size FROM _sluice.stream_files`);
  assert.deepEqual(done, [{
    status: "done",
    byte_offset: enc.encode(text).length,
    lines: 10,
    size: enc.encode(text).length,
  }]);
  const slices = await q(
    p,
    `SELECT start_offset, end_offset, first_line, lines FROM _sluice.stream_slices
    WHERE path = '${file}' ORDER BY start_offset`,
  );
  assert.deepEqual(slices.map((r) => [r.first_line, r.lines]), [[1, 3], [4, 3], [7, 3]]);
});

Deno.test("a file bigger than max_bytes_per_trigger is read in byte slices, offsets and lines exact", async () => {
  const p = await makeStreamProject(streamYaml({ maxBytes: "300B" }));
  const lines = Array.from({ length: 12 }, (_, i) => event(`é${i + 1}`, i));
  lines[4] = "{broken";
  const text = lines.join("\r\n") + "\r\n";
  await writeLanding(p, "big.ndjson", text);
  await writeLanding(p, "small.ndjson", event("s1", 100) + "\n");
  const s = await streamProject(p);
  assert.ok(s.batches >= 3, `read across batches (${s.batches})`);
  const rows = await q(
    p,
    "SELECT event_id, _source_line FROM silver.events WHERE event_id LIKE 'é%' ORDER BY _source_line",
  );
  assert.deepEqual(rows.map((r) => r._source_line), [1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12]);
  const crlf = text.split("\r\n");
  const offset = enc.encode(crlf.slice(0, 4).map((l) => l + "\r\n").join("")).length;
  const dlq = await q(p, "SELECT _payload, _source_row, _source_offset FROM silver.events__dlq");
  assert.deepEqual(dlq, [{ _payload: "{broken", _source_row: 5, _source_offset: offset }]);
  const files = await q(
    p,
    "SELECT path, status, lines, byte_offset FROM _sluice.stream_files ORDER BY path",
  );
  assert.deepEqual(files.map((f) => [f.status, f.lines, f.byte_offset]), [
    ["done", 12, enc.encode(text).length],
    ["done", 1, enc.encode(event("s1", 100) + "\n").length],
  ]);
  const slices = await q(p, "SELECT count(*) AS n FROM _sluice.stream_slices");
  assert.equal(
    slices[0].n,
    s.batches - 1,
    "each batch that left the file partly read recorded its slice",
  );
});

Deno.test("max_files_per_trigger bounds a batch; files go in modification-time order, then name", async () => {
  const p = await makeStreamProject(streamYaml({ maxFiles: 2 }));
  const names = ["c.ndjson", "a.ndjson", "b.ndjson", "d.ndjson", "e.ndjson"];
  for (const [i, n] of names.entries()) {
    const path = await writeLanding(p, n, event(n, i) + "\n");
    // c is oldest; a and b share a time (name decides); then d, e.
    const mtime = new Date(
      BASE_MS + (n === "c.ndjson" ? 0 : n === "a.ndjson" || n === "b.ndjson" ? 1000 : i * 1000),
    );
    await Deno.utime(path, mtime, mtime);
  }
  const s = await streamProject(p);
  assert.equal(s.batches, 3);
  const rows = await q(
    p,
    "SELECT event_id, _batch_id FROM silver.events ORDER BY _batch_id, event_id",
  );
  assert.deepEqual(rows.map((r) => `${r._batch_id}:${r.event_id}`), [
    "1:a.ndjson",
    "1:c.ndjson",
    "2:b.ndjson",
    "2:d.ndjson",
    "3:e.ndjson",
  ]);
});

Deno.test("CSV: header, quoted fields with delimiters and doubled quotes; wrong field counts are malformed_csv", async () => {
  const p = await makeStreamProject(
    streamYaml({ format: "csv", csvOptions: '{ delimiter: ";" }' }),
  );
  const t = (s: number) => new Date(BASE_MS + s * 1000).toISOString();
  const text = [
    "event_id;event_time;country;amount;extra",
    `e1;${t(0)};DE;1.5;x`,
    `"e;2";${t(1)};"F""R";2;`,
    `e3;${t(2)};DE;1`,
    `e4;${t(3)};"DE;3;x`,
    `e5;not-a-time;DE;3;x`,
    `e6;${t(4)};;4;x`,
  ].join("\n") + "\n";
  await writeLanding(p, "a.csv", text);
  const s = await streamProject(p);
  assert.deepEqual(s.byReason, { malformed_csv: 2, schema_violation: 1 });
  const rows = await q(
    p,
    "SELECT event_id, country, amount, _source_line FROM silver.events ORDER BY _source_line",
  );
  assert.deepEqual(rows, [
    { event_id: "e1", country: "DE", amount: 1.5, _source_line: 2 },
    { event_id: "e;2", country: 'F"R', amount: 2, _source_line: 3 },
    { event_id: "e6", country: null, amount: 4, _source_line: 7 },
  ]);
  const dlq = await q(
    p,
    "SELECT _reason_code, _reason, _source_row FROM silver.events__dlq ORDER BY _source_row",
  );
  assert.deepEqual(dlq, [
    {
      _reason_code: "malformed_csv",
      _reason: "expected 5 fields (as in the header), got 4",
      _source_row: 4,
    },
    { _reason_code: "malformed_csv", _reason: "unbalanced or stray quote", _source_row: 5 },
    {
      _reason_code: "schema_violation",
      _reason: 'field "event_time": cannot cast "not-a-time" to TIMESTAMPTZ',
      _source_row: 6,
    },
  ]);
});

Deno.test("CSV files split across batches keep their header for later slices", async () => {
  const p = await makeStreamProject(streamYaml({ format: "csv", maxRecords: 2 }));
  const t = (s: number) => new Date(BASE_MS + s * 1000).toISOString();
  const rows = Array.from({ length: 5 }, (_, i) => `${t(i)},e${i},${i}.5,FR`);
  await writeLanding(p, "a.csv", ["event_time,event_id,amount,country", ...rows].join("\n") + "\n");
  const s = await streamProject(p);
  assert.equal(s.batches, 3);
  assert.equal(s.written, 5);
  const got = await q(
    p,
    "SELECT event_id, amount, country, _source_line FROM silver.events ORDER BY _source_line",
  );
  assert.deepEqual(got.map((r) => [r.event_id, r.amount, r.country, r._source_line]), [
    ["e0", 0.5, "FR", 2],
    ["e1", 1.5, "FR", 3],
    ["e2", 2.5, "FR", 4],
    ["e3", 3.5, "FR", 5],
    ["e4", 4.5, "FR", 6],
  ]);
});

Deno.test("windows are emitted once the watermark passes their end, exactly once across runs", async () => {
  const p = await makeStreamProject(streamYaml({ delay: "1 minute", windows: true }));
  await writeLanding(
    p,
    "1.ndjson",
    [event("e1", 10), event("e2", 20, { country: "FR", amount: 5 }), event("e3", 70)].join("\n") +
      "\n",
  );
  await streamProject(p);
  assert.deepEqual(await q(p, "SELECT * FROM gold.per_minute"), []);
  await writeLanding(p, "2.ndjson", event("e4", 200, { amount: 7 }) + "\n");
  await streamProject(p);
  await streamProject(p); // nothing new: nothing emitted twice
  const windows = () =>
    q(
      p,
      `SELECT epoch(window_start)::BIGINT - ${
        BASE_MS / 1000
      } AS s, country, events, revenue, _batch_id
      FROM gold.per_minute ORDER BY s, country`,
    );
  assert.deepEqual(await windows(), [
    { s: 0, country: "DE", events: 1, revenue: 10, _batch_id: 2 },
    { s: 0, country: "FR", events: 1, revenue: 5, _batch_id: 2 },
    { s: 60, country: "DE", events: 1, revenue: 10, _batch_id: 2 },
  ]);
  await writeLanding(p, "3.ndjson", [event("late", 30), event("e5", 400)].join("\n") + "\n");
  const s = await streamProject(p);
  assert.deepEqual(s.byReason, { late: 1 });
  assert.deepEqual((await windows()).slice(3), [{
    s: 180,
    country: "DE",
    events: 1,
    revenue: 7,
    _batch_id: 3,
  }]);
});

Deno.test("clean_source archive moves a file only after the commit that finished it", async () => {
  const p = await makeStreamProject(streamYaml({ cleanSource: "archive", maxRecords: 2 }));
  await writeLanding(
    p,
    "a.ndjson",
    [event("e1", 0), event("e2", 1), event("e3", 2)].join("\n") + "\n",
  );
  await streamProject(p, { trigger: "once" });
  assert.ok(await Deno.stat(join(p.landing, "a.ndjson")), "partly read file stays");
  await streamProject(p);
  await assert.rejects(() => Deno.stat(join(p.landing, "a.ndjson")), Deno.errors.NotFound);
  const archived = await Deno.readTextFile(join(p.dir, "archive", "a.ndjson"));
  assert.equal(archived.split("\n").length, 4);
  const files = await q(
    p,
    "SELECT status, cleaned_at IS NOT NULL AS cleaned FROM _sluice.stream_files",
  );
  assert.deepEqual(files, [{ status: "done", cleaned: true }]);
});

Deno.test("clean_source delete removes finished files and their markers", async () => {
  const p = await makeStreamProject(streamYaml({ cleanSource: "delete", markerSuffix: ".done" }));
  await writeLanding(p, "a.ndjson", event("e1", 0) + "\n");
  await writeLanding(p, "a.ndjson.done", "");
  await streamProject(p);
  assert.deepEqual([...Deno.readDirSync(p.landing)], []);
  assert.equal((await q(p, "SELECT count(*) AS n FROM silver.events"))[0].n, 1);
});

Deno.test("marker_suffix: a file is taken only once its marker exists", async () => {
  const p = await makeStreamProject(streamYaml({ markerSuffix: ".ok" }));
  await writeLanding(p, "a.ndjson", event("e1", 0) + "\n");
  const before = await streamProject(p);
  assert.equal(before.batches, 0);
  await writeLanding(p, "a.ndjson.ok", "");
  const after = await streamProject(p);
  assert.equal(after.batches, 1);
  assert.equal(after.written, 1);
});

Deno.test("settle: a file changed less than settle ago is not taken yet", async () => {
  const p = await makeStreamProject(streamYaml({ settle: "10 minutes" }));
  await writeLanding(p, "a.ndjson", event("e1", 0) + "\n");
  const now = Date.now();
  const young = await streamProject(p, {
    trigger: "once",
    run: { clock: steppingClock(new Date(now)) },
  });
  assert.equal(young.batches, 0);
  const old = await streamProject(p, {
    trigger: "once",
    run: { clock: steppingClock(new Date(now + 11 * 60_000)) },
  });
  assert.equal(old.batches, 1);
});

Deno.test("export publishes Parquet files of at most max_records_per_file rows, each row once", async () => {
  const p = await makeStreamProject(streamYaml({ export: { maxRecordsPerFile: 3 } }));
  await writeLanding(
    p,
    "a.ndjson",
    Array.from({ length: 7 }, (_, i) => event(`a${i}`, i)).join("\n") + "\n",
  );
  await streamProject(p);
  await writeLanding(p, "b.ndjson", [event("b0", 10), "{bad"].join("\n") + "\n");
  await streamProject(p);
  const dir = join(p.dir, "lake", "export", "events");
  const files = [...Deno.readDirSync(dir)].filter((e) => e.isFile).map((e) => e.name).sort();
  assert.deepEqual(files, [
    "part-0000000001-00000.parquet",
    "part-0000000001-00001.parquet",
    "part-0000000001-00002.parquet",
    "part-0000000002-00000.parquet",
  ]);
  const counts = await q(
    p,
    `SELECT filename, count(*) AS n FROM read_parquet('${dir}/*.parquet', filename = true)
    GROUP BY 1 ORDER BY 1`,
  );
  assert.deepEqual(counts.map((r) => r.n), [3, 3, 1, 1]);
  const distinct = await q(
    p,
    `SELECT count(DISTINCT event_id) AS n FROM read_parquet('${dir}/*.parquet')`,
  );
  assert.equal(distinct[0].n, 8);
  const cp = await q(p, "SELECT exported_batch FROM _sluice.stream_checkpoint");
  assert.deepEqual(cp, [{ exported_batch: 2 }]);
});

Deno.test("metrics and the batch log: records by outcome, dead letters by reason, watermark, lag, backlog", async () => {
  const p = await makeStreamProject(streamYaml({ maxFiles: 1 }));
  const a = await writeLanding(
    p,
    "a.ndjson",
    [event("e1", 7200), "{x", event("e2", 0)].join("\n") + "\n",
  );
  const b = await writeLanding(p, "b.ndjson", event("e3", 7300) + "\n");
  // File times before the injected clock, so both files count as complete.
  await Deno.utime(a, new Date(BASE_MS), new Date(BASE_MS));
  await Deno.utime(b, new Date(BASE_MS + 1000), new Date(BASE_MS + 1000));
  const now = new Date(BASE_MS + 10_000_000);
  const s = await streamProject(p, { trigger: "once", run: { clock: steppingClock(now) } });
  const r = s.metrics;
  assert.equal(await metricValue(r, "sluice_stream_records_read_total"), 3);
  assert.equal(await metricValue(r, "sluice_stream_records_total", { outcome: "written" }), 1);
  assert.equal(await metricValue(r, "sluice_stream_dead_letters_total", { reason: "late" }), 1);
  assert.equal(
    await metricValue(r, "sluice_stream_dead_letters_total", { reason: "malformed_json" }),
    1,
  );
  assert.equal(
    await metricValue(r, "sluice_stream_watermark_timestamp_seconds"),
    BASE_MS / 1000 + 3600,
  );
  assert.equal(await metricValue(r, "sluice_stream_watermark_lag_seconds"), 10_000 - 3600);
  assert.equal(await metricValue(r, "sluice_stream_files_pending"), 1);
  const bSize = (await Deno.stat(join(p.landing, "b.ndjson"))).size;
  assert.equal(await metricValue(r, "sluice_stream_behind_bytes"), bSize);
  assert.equal(
    await metricValue(r, "sluice_stream_batch_id", { stream: "events_v1", pipeline: "shop" }),
    1,
  );
  const batches = await q(
    p,
    `SELECT batch_id, kind, records_read, written, dead_lettered, by_reason::VARCHAR AS r
    FROM _sluice.stream_batches`,
  );
  assert.deepEqual(batches, [{
    batch_id: 1,
    kind: "files",
    records_read: 3,
    written: 1,
    dead_lettered: 2,
    r: '{"malformed_json":1,"late":1}',
  }]);
});

Deno.test("a declared column new to the target is added; a changed type is schema drift", async () => {
  const p = await makeStreamProject(streamYaml());
  await writeLanding(p, "a.ndjson", event("e1", 0, { channel: "web" }) + "\n");
  await streamProject(p);
  const withChannel = streamYaml({ extra: "" }).replace(
    "    amount:",
    "    channel: { type: VARCHAR }\n    amount:",
  );
  await Deno.writeTextFile(p.configFile, withChannel);
  await writeLanding(p, "b.ndjson", event("e2", 1, { channel: "app" }) + "\n");
  await streamProject(p);
  const rows = await q(p, "SELECT event_id, channel FROM silver.events ORDER BY event_id");
  assert.deepEqual(rows, [{ event_id: "e1", channel: null }, { event_id: "e2", channel: "app" }]);
  await Deno.writeTextFile(p.configFile, streamYaml({ amountType: "DOUBLE" }));
  await assert.rejects(() => streamProject(p), SchemaDriftError);
});

Deno.test("a stream target named like a batch silver table is a config error with its position", async () => {
  const yaml = streamYaml() +
    "silver:\n  events:\n    from: orders\n    columns: { id: { type: BIGINT } }\n";
  const p = await makeStreamProject(yaml);
  const e = await streamProject(p).then(() => undefined, (e) => e);
  assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
  const problem = e.problems[0];
  assert.equal(problem.path, "streaming.target");
  const line = yaml.split("\n").findIndex((l) => l.startsWith("  target: events")) + 1;
  assert.equal(problem.line, line);
});

Deno.test("once runs one batch, available-now drains the folder, max_batches stops early", async () => {
  const p = await makeStreamProject(streamYaml({ maxFiles: 1 }));
  for (let i = 0; i < 4; i++) await writeLanding(p, `${i}.ndjson`, event(`e${i}`, i) + "\n");
  const once = await streamProject(p, { trigger: "once" });
  assert.deepEqual([once.batches, once.stoppedBy], [1, "done"]);
  const two = await streamProject(p, { maxBatches: 2 });
  assert.deepEqual([two.batches, two.stoppedBy, two.lastBatchId], [2, "max_batches", 3]);
  const rest = await streamProject(p);
  assert.deepEqual([rest.batches, rest.stoppedBy, rest.lastBatchId], [1, "done", 4]);
  const again = await streamProject(p);
  assert.equal(again.batches, 0);
  assert.equal((await q(p, "SELECT count(*) AS n FROM silver.events"))[0].n, 4);
});

Deno.test("an aborted signal stops before the next batch and never half-commits one", async () => {
  const p = await makeStreamProject(streamYaml({ maxFiles: 1 }));
  for (let i = 0; i < 3; i++) await writeLanding(p, `${i}.ndjson`, event(`e${i}`, i) + "\n");
  const controller = new AbortController();
  controller.abort();
  const s = await streamProject(p, { trigger: "interval", signal: controller.signal });
  assert.deepEqual([s.batches, s.stoppedBy], [0, "signal"]);
});
