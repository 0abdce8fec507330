/**
 * The bad-input corpus (tests/fixtures/bad/corpus.ts) through the landing-folder
 * stream: every CSV and NDJSON case is fed to the real stream
 * (`runStreamPipeline`, trigger available-now) and has ONE outcome: its lines
 * are committed or dead-lettered (reason, file, line and byte offset), or the
 * stream stops with one line naming the file. Row conservation: lines read =
 * written + dead-lettered + blank, and written + dead-lettered = the data lines
 * of the fixture counted here from its bytes (not by Sluice).
 *
 * The corpus is shaped for batch: its records carry no event time, and the
 * stream's watermark column is required, so a record that parses is
 * dead-lettered `schema_violation` "required but missing or null (it is the
 * event time)". Records the stream cannot parse are dead-lettered under their
 * own reason (malformed_csv, malformed_json, malformed_encoding): those are
 * counted as `rejected` below.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SourceError } from "../core/errors.ts";
import { type BadCase, badCases } from "./fixtures/bad/corpus.ts";
import { makeStreamProject, q, streamProject } from "./fixtures/streaming.ts";

/** The stream's one outcome per case: parse rejections, or a one-line error. */
const STREAM_EXPECT: Record<string, { rejected: number; reason?: RegExp } | { error: RegExp }> = {
  "bom.csv": { rejected: 0 },
  "crlf.csv": { rejected: 0 },
  // The stream reads line by line: a quoted newline splits the record (2 halves rejected).
  "quoted_newlines.csv": { rejected: 2, reason: /unbalanced or stray quote/ },
  "ragged_too_few.csv": { rejected: 1, reason: /expected 3 fields \(as in the header\)/ },
  "ragged_too_many.csv": { rejected: 1, reason: /expected 3 fields \(as in the header\)/ },
  "mixed_line_endings.csv": { rejected: 0 },
  "typed_column.csv": { rejected: 0 },
  "wrong_delimiter.csv": { rejected: 0 },
  "unterminated_quote.csv": { rejected: 1, reason: /unbalanced or stray quote/ },
  "invalid_utf8.csv": { rejected: 1, reason: /not valid UTF-8/ },
  "nul_bytes.csv": { rejected: 0 },
  "empty.csv": { rejected: 0 },
  "header_only.csv": { rejected: 0 },
  "duplicate_header.csv": { rejected: 0 },
  "blank_header.csv": { rejected: 0 },
  "long_line.csv": { rejected: 0 },
  "long_line_allowed.csv": { rejected: 0 },
  "thousands.csv": { rejected: 0 },
  "mixed_dates.csv": { rejected: 0 },
  "really_gzip.csv": { error: /^Cannot read stream file really_gzip\.csv: it is gzip-compressed/ },
  "compressed.csv.gz": {
    error: /^Cannot read stream file compressed\.csv\.gz: it is gzip-compressed/,
  },
  "truncated_last_line.ndjson": { rejected: 1, reason: /not valid JSON/ },
  "trailing_garbage.ndjson": { rejected: 1, reason: /not valid JSON/ },
  "json_array.ndjson": { rejected: 2, reason: /not valid JSON/ },
  "blank_lines.ndjson": { rejected: 0 },
  "deep_nesting.ndjson": { rejected: 0 },
  "huge_ints.ndjson": { rejected: 0 },
  "wrong_types.ndjson": { rejected: 0 },
  "duplicate_keys.ndjson": { rejected: 0 },
  "invalid_utf8.ndjson": { rejected: 1, reason: /not valid UTF-8/ },
  "not_objects.ndjson": { rejected: 2, reason: /not a JSON object/ },
  "really_gzip.ndjson": {
    error: /^Cannot read stream file really_gzip\.ndjson: it is gzip-compressed/,
  },
  "bom_crlf.ndjson": { rejected: 0 },
  "long_line.ndjson": { rejected: 0 },
  "declared_type.ndjson": { rejected: 0 },
};

const EVENT_TIME_MISSING = /^field "event_time": required but missing or null/;

function yamlFor(c: BadCase): string {
  return [
    "pipeline: shop",
    "lake: ./lake",
    "engine: { threads: 2 }",
    "sources:",
    "  orders: { format: csv, path: ./orders }",
    "streaming:",
    "  source:",
    `    format: ${c.format}`,
    "    path: ./landing",
    `    glob: "${c.file}"`,
    "    settle: 0s",
    "  columns:",
    "    id: { type: VARCHAR }",
    "    event_time: { type: TIMESTAMPTZ }",
    "  target: events",
    "  dlq: events__dlq",
    "  checkpoint: events_v1",
    "  watermark: { column: event_time, delay: 1 hour }",
    "  fail_on_data_loss: true",
  ].join("\n") + "\n";
}

/** Data lines of a fixture, counted from its bytes: split on LF, no header, no blank lines. */
function dataLines(c: BadCase): { data: number; blank: number } {
  const parts = new TextDecoder().decode(c.bytes!).split("\n");
  if (parts.at(-1) === "") parts.pop();
  if (c.format === "csv") parts.shift();
  const blank = parts.filter((l) => l.replace(/[\r\uFEFF]/g, "").trim() === "").length;
  return { data: parts.length - blank, blank };
}

const streamCases = badCases().filter((c) =>
  (c.format === "csv" || c.format === "ndjson") && c.bytes !== undefined
);
const totals = { tried: 0, rows: 0, deadLettered: 0, errors: 0 };

Deno.test("every CSV and NDJSON corpus case has a stream outcome", () => {
  const missing = streamCases.map((c) => c.file).filter((f) => !(f in STREAM_EXPECT));
  assert.deepEqual(missing, []);
  assert.ok(streamCases.length >= 30, `only ${streamCases.length} stream cases`);
});

for (const c of streamCases) {
  const want = STREAM_EXPECT[c.file];
  if (want === undefined) continue;
  const name = "error" in want
    ? `stream bad input ${c.file}: stops with one line naming the file`
    : `stream bad input ${c.file}: dead-letters ${want.rejected} unparsable line(s), loses none`;
  Deno.test(name, async () => {
    const p = await makeStreamProject(yamlFor(c));
    try {
      await Deno.writeFile(join(p.landing, c.file), c.bytes!);
      totals.tried++;
      if ("error" in want) {
        const err = await streamProject(p).then(() => undefined, (e) => e);
        assert.ok(err instanceof SourceError, `expected a SourceError, got ${err}`);
        assert.match(err.message, want.error);
        assert.ok(!err.message.includes("\n"), `not one line: ${err.message}`);
        totals.errors++;
        // Nothing of the file was committed.
        const rows = await q(p, "SELECT count(*)::INTEGER AS n FROM silver.events").catch(
          () => [{ n: 0 }],
        );
        assert.equal(rows[0].n, 0);
        return;
      }
      const s = await streamProject(p);
      const { data, blank } = dataLines(c);
      // Conservation, against the fixture's own line count.
      assert.equal(s.written + s.deadLettered, data, JSON.stringify(s.byReason));
      assert.equal(s.recordsRead, data + blank);
      if (c.expect !== undefined && "landed" in c.expect && data === c.records) {
        assert.equal(s.written + s.deadLettered, c.records);
      }
      const dlq = await q<{ reason: string; file: string; line: number; off: number }>(
        p,
        `SELECT _reason AS reason, _source_file AS file, _source_row::INTEGER AS line,
           _source_offset::INTEGER AS off FROM silver.events__dlq ORDER BY _source_row`,
      ).catch(() => []);
      assert.equal(dlq.length, s.deadLettered);
      const rejected = dlq.filter((r) => !EVENT_TIME_MISSING.test(r.reason));
      assert.equal(rejected.length, want.rejected, JSON.stringify(rejected));
      for (const r of rejected) if (want.reason) assert.match(r.reason, want.reason);
      for (const r of dlq) {
        assert.ok(r.file.endsWith(`/${c.file}`), r.file);
        assert.ok(r.line >= 1 && r.off >= 0, `line ${r.line} offset ${r.off}`);
      }
      totals.rows += data;
      totals.deadLettered += rejected.length;
    } finally {
      await Deno.remove(p.dir, { recursive: true });
    }
  });
}

Deno.test("a BOM is not part of the stream's first CSV column or first NDJSON key", async () => {
  for (
    const [format, file, text] of [
      ["csv", "bom.csv", "\uFEFFevent_time,id\n2026-01-01T00:00:00Z,a\n"],
      ["ndjson", "bom.ndjson", '\uFEFF{"event_time": "2026-01-01T00:00:00Z", "id": "a"}\r\n'],
    ] as const
  ) {
    const c = { file, format, records: 1 } as BadCase;
    const p = await makeStreamProject(yamlFor(c));
    try {
      await Deno.writeTextFile(join(p.landing, file), text);
      const s = await streamProject(p);
      assert.deepEqual(
        [s.written, s.deadLettered],
        [1, 0],
        `${file}: ${JSON.stringify(s.byReason)}`,
      );
      const rows = await q<{ id: string }>(p, "SELECT id FROM silver.events");
      assert.deepEqual(rows.map((r) => r.id), ["a"]);
    } finally {
      await Deno.remove(p.dir, { recursive: true });
    }
  }
});

Deno.test("stream bad-input totals", () => {
  console.log(
    `stream bad-input corpus: ${totals.tried} fixtures tried, ${totals.rows} rows compared, ` +
      `${totals.deadLettered} unparsable lines dead-lettered, ${totals.errors} one-line errors`,
  );
  assert.ok(totals.tried > 0);
});
