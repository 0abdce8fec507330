/**
 * `clean_source: archive` and a damaged WAL: files are moved only after the
 * commit that finished them is CHECKPOINTed into the database file, and on
 * start archived files the checkpoint does not hold as done are moved back
 * and read again. No source line is lost.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  event,
  makeStreamProject,
  q,
  runSluice,
  type StreamProject,
  streamProject,
  streamYaml,
  writeLanding,
} from "./fixtures/streaming.ts";

const FILES = 6;
const LINES = 40;

async function landing(p: StreamProject, files: number, lines: number): Promise<void> {
  for (let f = 0; f < files; f++) {
    const rows = Array.from({ length: lines }, (_, i) => event(`f${f}_${i}`, f * lines + i));
    const path = await writeLanding(p, `f_${f}.ndjson`, rows.join("\n") + "\n");
    const t = new Date(Date.now() - 120_000 + f * 1000);
    await Deno.utime(path, t, t);
  }
}

async function archived(dir: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

Deno.test("kill after a cleaned batch, WAL truncated to half, restart: every source line lands once", async () => {
  const p = await makeStreamProject(streamYaml({ cleanSource: "archive", maxFiles: 1 }));
  await landing(p, FILES, LINES);
  const killed = await runSluice(["stream", "-c", p.configFile, "--trigger", "available-now"], {
    SLUICE_CRASH_AT: "cleaned@3",
  });
  assert.equal(killed.signal, "SIGKILL", killed.stderr.slice(-2000));
  const archive = join(p.dir, "archive");
  const moved = await archived(archive);
  assert.ok(moved.length >= 3, `3 files were archived before the kill, got ${moved}`);
  const wal = join(p.dir, "lake", "sluice.duckdb.wal");
  const size = (await Deno.stat(wal).catch(() => ({ size: 0 }))).size;
  if (size > 0) await Deno.truncate(wal, Math.floor(size / 2));
  const done = await runSluice(["stream", "-c", p.configFile, "--trigger", "available-now"]);
  assert.equal(done.code, 0, done.stderr.slice(-2000));
  const [row] = await q(
    p,
    "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM silver.events",
  );
  const dlq = await q(p, "SELECT count(*) AS n FROM silver.events__dlq");
  console.log(
    `  WAL ${size} bytes truncated to ${Math.floor(size / 2)}; ` +
      `${row.n} rows vs ${FILES * LINES} source lines`,
  );
  assert.deepEqual(row, { n: FILES * LINES, d: FILES * LINES });
  assert.deepEqual(dlq, [{ n: 0 }]);
  assert.equal((await archived(archive)).length, FILES, "every file ends in the archive");
});

Deno.test("an archived file the checkpoint does not hold as done is moved back and read again", async () => {
  const p = await makeStreamProject(streamYaml({ cleanSource: "archive" }));
  await landing(p, 2, 10);
  await streamProject(p);
  const archive = join(p.dir, "archive");
  assert.deepEqual(await archived(archive), ["f_0.ndjson", "f_1.ndjson"]);
  // A file archived by a commit that was later lost (e.g. a database restored from a backup).
  const rows = Array.from({ length: 7 }, (_, i) => event(`lost_${i}`, 500 + i));
  await Deno.writeTextFile(join(archive, "f_9.ndjson"), rows.join("\n") + "\n");
  const s = await streamProject(p);
  assert.equal(s.written, 7);
  assert.deepEqual(await q(p, "SELECT count(*) AS n FROM silver.events"), [{ n: 27 }]);
  assert.deepEqual(await archived(archive), ["f_0.ndjson", "f_1.ndjson", "f_9.ndjson"]);
  const files = await q(p, "SELECT count(*) AS n FROM _sluice.stream_files WHERE status = 'done'");
  assert.deepEqual(files, [{ n: 3 }]);
});
