import assert from "node:assert/strict";
import { join } from "node:path";
import { DataLossError } from "../core/errors.ts";
import {
  event,
  makeStreamProject,
  q,
  streamProject,
  streamYaml,
  writeLanding,
} from "./fixtures/streaming.ts";

const lines = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => event(`e${from + i}`, from + i)).join("\n") + "\n";

/** A project whose big.ndjson (10 lines) was read 4 lines in, plus other.ndjson not yet read. */
async function partlyRead(failOnDataLoss: boolean) {
  const p = await makeStreamProject(streamYaml({ maxRecords: 4, maxFiles: 1, failOnDataLoss }));
  const big = await writeLanding(p, "big.ndjson", lines(0, 10));
  const mtime = new Date(Date.now() - 60_000);
  await Deno.utime(big, mtime, mtime);
  await streamProject(p, { trigger: "once" });
  const other = await writeLanding(p, "other.ndjson", lines(100, 2));
  const later = new Date(Date.now() - 30_000);
  await Deno.utime(other, later, later);
  const state = await q(p, "SELECT status, lines FROM _sluice.stream_files");
  assert.deepEqual(state, [{ status: "partial", lines: 4 }]);
  return { p, big };
}

async function metric(r: import("prom-client").Registry, kind: string) {
  const m = await r.getSingleMetric("sluice_stream_data_loss_total")?.get();
  return m?.values.find((v) => v.labels.kind === kind)?.value ?? 0;
}

Deno.test("a truncated in-progress file fails the run when fail_on_data_loss is true", async () => {
  const { p, big } = await partlyRead(true);
  const text = await Deno.readTextFile(big);
  await Deno.writeTextFile(big, text.slice(0, 50));
  const e = await streamProject(p).then(() => undefined, (e) => e);
  assert.ok(e instanceof DataLossError, `expected a DataLossError, got ${e}`);
  assert.match(e.message, /big\.ndjson was truncated to 50 bytes after \d+ were read/);
  assert.ok(e.message.includes(big), "names the file");
  assert.equal(e.exitCode, 1);
  assert.equal(e.transient, false);
  // Nothing after the loss was committed: the other file is untouched.
  const cp = await q(p, "SELECT batch_id FROM _sluice.stream_checkpoint");
  assert.deepEqual(cp, [{ batch_id: 1 }]);
  assert.equal((await q(p, "SELECT count(*) AS n FROM silver.events"))[0].n, 4);
  const runs = await q(
    p,
    "SELECT status FROM _sluice.runs WHERE command = 'stream' ORDER BY started_at",
  );
  assert.deepEqual(runs.map((r) => r.status), ["success", "failed"]);
});

Deno.test("a truncated in-progress file is counted and skipped when fail_on_data_loss is false", async () => {
  const { p, big } = await partlyRead(false);
  const text = await Deno.readTextFile(big);
  await Deno.writeTextFile(big, text.slice(0, 50));
  const s = await streamProject(p);
  assert.equal(s.dataLoss, 1);
  assert.equal(await metric(s.metrics, "truncated"), 1);
  assert.equal(s.written, 2, "the other file is still read");
  const files = await q(p, "SELECT path, status, detail FROM _sluice.stream_files ORDER BY path");
  assert.equal(files[0].status, "lost");
  assert.match(String(files[0].detail), /^truncated: was truncated to 50 bytes/);
  assert.equal(files[1].status, "done");
  // The lost file is not read again, and not counted again.
  const again = await streamProject(p);
  assert.deepEqual([again.batches, again.dataLoss], [0, 0]);
  assert.equal((await q(p, "SELECT count(*) AS n FROM silver.events"))[0].n, 6);
});

Deno.test("a removed in-progress file is data loss of kind removed", async () => {
  const { p, big } = await partlyRead(false);
  await Deno.remove(big);
  const s = await streamProject(p);
  assert.equal(await metric(s.metrics, "removed"), 1);
  const e = await makeFailing(true, async (f) => await Deno.remove(f));
  assert.match(e.message, /was removed after \d+ of its bytes were read/);
});

Deno.test("a rewritten in-progress file (same size, other bytes already read) is data loss", async () => {
  const e = await makeFailing(true, async (f) => {
    const text = await Deno.readTextFile(f);
    await Deno.writeTextFile(f, text.replace('"e1"', '"x1"'));
  });
  assert.match(e.message, /was rewritten: bytes 0 to \d+, already read, have changed/);
  const { p, big } = await partlyRead(false);
  const text = await Deno.readTextFile(big);
  await Deno.writeTextFile(big, text.replace('"e2"', '"x2"'));
  const s = await streamProject(p);
  assert.equal(await metric(s.metrics, "rewritten"), 1);
});

Deno.test("bytes appended to an in-progress file are read on; a finished file may be removed", async () => {
  const { p, big } = await partlyRead(true);
  await Deno.writeTextFile(big, lines(10, 2), { append: true });
  const s = await streamProject(p);
  assert.equal(s.dataLoss, 0);
  assert.equal((await q(p, "SELECT count(*) AS n FROM silver.events"))[0].n, 14);
  await Deno.remove(big);
  await Deno.remove(join(p.landing, "other.ndjson"));
  const after = await streamProject(p);
  assert.deepEqual([after.batches, after.dataLoss], [0, 0]);
});

async function makeFailing(
  fail: boolean,
  damage: (file: string) => Promise<void>,
): Promise<DataLossError> {
  const { p, big } = await partlyRead(fail);
  await damage(big);
  const e = await streamProject(p).then(() => undefined, (e) => e);
  assert.ok(e instanceof DataLossError, `expected a DataLossError, got ${e}`);
  return e;
}
