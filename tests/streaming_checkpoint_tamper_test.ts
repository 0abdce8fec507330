/**
 * Tampering with a real stream lake's checkpoint (rewinding the batch id,
 * zeroing a partial file's byte offset, emptying `_sluice.stream_files`) is
 * detected when the stream starts: it refuses with a CheckpointError (exit
 * 65) naming what is inconsistent, instead of re-reading (duplicates) or
 * skipping (lost rows). An untampered lake with the same history resumes.
 */
import assert from "node:assert/strict";
import { CheckpointError } from "../core/errors.ts";
import {
  event,
  makeStreamProject,
  q,
  runSluice,
  type StreamProject,
  streamProject,
  streamYaml,
  withDb,
  writeLanding,
} from "./fixtures/streaming.ts";

const lines = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => event(`e${from + i}`, from + i)).join("\n") + "\n";

/**
 * A lake after 3 committed batches: a.ndjson (6 lines) and b.ndjson (6
 * lines, 4 of them read: partial), 4 records per batch, one file at a time.
 */
async function lakeWithPartialFile(): Promise<StreamProject> {
  const p = await makeStreamProject(streamYaml({ maxRecords: 4, maxFiles: 1 }));
  const a = await writeLanding(p, "a.ndjson", lines(0, 6));
  const b = await writeLanding(p, "b.ndjson", lines(100, 6));
  const old = new Date(Date.now() - 60_000);
  await Deno.utime(a, old, old);
  await Deno.utime(b, new Date(old.getTime() + 1000), new Date(old.getTime() + 1000));
  for (let i = 0; i < 3; i++) await streamProject(p, { trigger: "once" });
  const files = await q(p, "SELECT path, status, lines FROM _sluice.stream_files ORDER BY path");
  assert.deepEqual(files.map((f) => [f.status, f.lines]), [["done", 6], ["partial", 4]]);
  assert.deepEqual(await q(p, "SELECT batch_id FROM _sluice.stream_checkpoint"), [{ batch_id: 3 }]);
  return p;
}

async function tamper(p: StreamProject, sql: string): Promise<void> {
  await withDb(p, async (ctx) => {
    await ctx.db.run(sql);
  });
}

async function refusal(p: StreamProject): Promise<CheckpointError> {
  const before = await q(p, "SELECT count(*) AS n FROM silver.events");
  const e = await streamProject(p).then(() => undefined, (e) => e);
  assert.ok(e instanceof CheckpointError, `expected a CheckpointError, got ${e}`);
  assert.equal(e.exitCode, 65);
  assert.equal(e.transient, false);
  // Nothing was read or written after the refusal.
  assert.deepEqual(await q(p, "SELECT count(*) AS n FROM silver.events"), before);
  return e;
}

Deno.test("an untampered stream lake passes the checkpoint invariants and resumes to 12 rows", async () => {
  const p = await lakeWithPartialFile();
  const s = await streamProject(p);
  assert.equal(s.written, 2);
  const rows = await q(p, "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM silver.events");
  assert.deepEqual(rows, [{ n: 12, d: 12 }]);
});

Deno.test("a rewound stream_checkpoint.batch_id refuses to start with exit 65 naming batch_id", async () => {
  const p = await lakeWithPartialFile();
  await tamper(p, "UPDATE _sluice.stream_checkpoint SET batch_id = 1");
  const e = await refusal(p);
  assert.match(
    e.message,
    /checkpoint batch_id is 1, but _sluice\.stream_batches records batches up to 3/,
  );
  assert.match(e.message, /is behind silver\.events, which holds rows of batch 3/);
});

Deno.test("a rewound batch_id with its stream_batches rows deleted is still refused by the target's batch ids", async () => {
  const p = await lakeWithPartialFile();
  await tamper(p, "UPDATE _sluice.stream_checkpoint SET batch_id = 1");
  await tamper(p, "DELETE FROM _sluice.stream_batches WHERE batch_id > 1");
  const e = await refusal(p);
  assert.match(
    e.message,
    /checkpoint batch_id 1 is behind silver\.events, which holds rows of batch 3/,
  );
});

Deno.test("a zeroed byte_offset of a partly read file refuses to start with exit 65 naming the file", async () => {
  const p = await lakeWithPartialFile();
  await tamper(p, "UPDATE _sluice.stream_files SET byte_offset = 0 WHERE status = 'partial'");
  const e = await refusal(p);
  assert.match(e.message, /file \S+b\.ndjson \(partial\) has byte_offset 0 for 4 lines/);
  assert.match(e.message, /its consumed slices end at byte \d+/);
});

Deno.test("a zeroed byte_offset and line count of a partly read file is refused by its committed rows", async () => {
  const p = await lakeWithPartialFile();
  await tamper(
    p,
    "UPDATE _sluice.stream_files SET byte_offset = 0, lines = 0 WHERE status = 'partial'",
  );
  await tamper(p, "DELETE FROM _sluice.stream_slices");
  const e = await refusal(p);
  assert.match(e.message, /b\.ndjson holds 4 committed rows up to line 4, but .* says 0 lines/);
});

Deno.test("an emptied _sluice.stream_files refuses to start with exit 65 naming the unlisted files", async () => {
  const p = await lakeWithPartialFile();
  await tamper(p, "DELETE FROM _sluice.stream_files");
  const e = await refusal(p);
  assert.match(
    e.message,
    /silver\.events holds rows from files _sluice\.stream_files does not list/,
  );
  assert.match(e.message, /a\.ndjson: 6 rows/);
});

Deno.test("sluice stream exits 65 with one line naming the inconsistency on a tampered checkpoint", async () => {
  const p = await lakeWithPartialFile();
  await tamper(p, "UPDATE _sluice.stream_checkpoint SET batch_id = 2");
  const r = await runSluice(["stream", "-c", p.configFile, "--trigger", "once"]);
  assert.equal(r.code, 65, r.stderr);
  assert.match(r.stderr + r.stdout, /checkpoint batch_id is 2, but _sluice\.stream_batches/);
  assert.deepEqual(await q(p, "SELECT count(*) AS n FROM silver.events"), [{ n: 10 }]);
});
