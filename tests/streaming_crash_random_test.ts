import assert from "node:assert/strict";
import { checkConsistent, checkFinished, writeCrashData } from "./fixtures/streaming_crash.ts";
import {
  makeStreamProject,
  runSluice,
  spawnSluice,
  streamYaml,
  watchLines,
} from "./fixtures/streaming.ts";

/** A small seeded PRNG (mulberry32), so a failing run can be repeated with SLUICE_TEST_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("at least 20 kill -9 at random points, then restart until done: every line exactly once", async () => {
  const seed = Number(Deno.env.get("SLUICE_TEST_SEED") ?? 20260101);
  const random = prng(seed);
  const p = await makeStreamProject(streamYaml({
    maxFiles: 2,
    maxRecords: 12,
    interval: "50ms",
    cleanSource: "archive",
    windows: true,
    export: { maxRecordsPerFile: 5 },
  }));
  let data = await writeCrashData(p, 12, 30);
  let midBatch = 0;
  const progress: number[] = [];
  // --trigger interval never stops by itself, so every attempt ends in a kill -9.
  for (let kill = 0; kill < 20; kill++) {
    const child = spawnSluice(["stream", "-c", p.configFile, "--trigger", "interval"]);
    const out = child.stdout.cancel();
    const err = watchLines(child.stderr);
    // Somewhere after the database opened: reading, appending, committing, cleaning,
    // exporting, or waiting for the next batch.
    const started = await err.until((l) => l.includes('"event":"stream_started"'));
    assert.ok(started, err.lines.join("\n"));
    await new Promise((r) => setTimeout(r, random() * 800));
    child.kill("SIGKILL");
    const status = await child.status;
    await out;
    await err.done;
    assert.equal(status.signal, "SIGKILL", err.lines.join("\n"));
    if (err.lines.some((l) => l.includes('"event":"batch_committed"'))) midBatch++;
    const { batch, consumed } = await checkConsistent(p, data);
    progress.push(batch);
    // Keep work ahead of the kills: when everything was read, land more files.
    if (consumed === data.kinds.size) data = await writeCrashData(p, 6, 30, data);
  }
  const r = await runSluice(["stream", "-c", p.configFile, "--trigger", "available-now"]);
  assert.equal(r.code, 0, r.stderr);
  await checkFinished(p, data);
  console.log(
    `seed ${seed}: 20 kills, ${midBatch} after a batch committed in that process; ` +
      `committed batch after each kill: ${progress.join(" ")}`,
  );
});
