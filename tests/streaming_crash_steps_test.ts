import assert from "node:assert/strict";
import { CRASH_STEPS } from "../streaming/stream.ts";
import { checkConsistent, checkFinished, writeCrashData } from "./fixtures/streaming_crash.ts";
import { logRecords, makeStreamProject, runSluice, streamYaml } from "./fixtures/streaming.ts";

const YAML = streamYaml({
  maxFiles: 2,
  maxRecords: 25,
  cleanSource: "archive",
  windows: true,
  export: { maxRecordsPerFile: 7 },
});

Deno.test("kill -9 at every step of a batch, then restart: every line exactly once, watermark right", async () => {
  const p = await makeStreamProject(YAML);
  const data = await writeCrashData(p, 8, 30);
  // Each process dies at one step: in its first batch, or its second (after one full commit).
  const plan = CRASH_STEPS.map((step, i) => `${step}@${i % 2 === 0 ? 1 : 2}`);
  let lastBatch = 0;
  for (const crashAt of plan) {
    const r = await runSluice(["stream", "-c", p.configFile, "--trigger", "available-now"], {
      SLUICE_CRASH_AT: crashAt,
    });
    assert.equal(
      r.signal,
      "SIGKILL",
      `the process was killed at ${crashAt}: ${r.stderr.slice(-2000)}`,
    );
    const logs = logRecords(r.stderr.split("\n"));
    const step = crashAt.split("@")[0];
    assert.ok(logs.some((l) => l.event === "crash_point" && l.step === step), `reached ${crashAt}`);
    const committedHere = logs.filter((l) => l.event === "batch_committed").length;
    const { batch } = await checkConsistent(p, data);
    // A kill before the commit loses the batch; at or after the commit it is kept.
    const committedStep = ["committed", "cleaned", "exported"].includes(step);
    assert.equal(
      batch,
      lastBatch + committedHere + (committedStep ? 1 : 0),
      `batch id after ${crashAt}`,
    );
    lastBatch = batch;
  }
  const done = await runSluice(["stream", "-c", p.configFile, "--trigger", "available-now"]);
  assert.equal(done.code, 0, done.stderr);
  await checkFinished(p, data);
});

Deno.test("a misspelt SLUICE_CRASH_AT stops sluice stream with a usage error before any batch", async () => {
  const p = await makeStreamProject(YAML);
  await writeCrashData(p, 2, 5);
  const r = await runSluice(["stream", "-c", p.configFile, "--trigger", "available-now"], {
    SLUICE_CRASH_AT: "comitted@2",
  });
  assert.equal(r.code, 2, r.stderr);
  const failed = logRecords(r.stderr.split("\n")).find((l) => l.event === "command_failed");
  assert.equal(failed?.error_kind, "usage", r.stderr);
  assert.match(
    String(failed?.message),
    /Cannot use SLUICE_CRASH_AT="comitted@2": write <point>\[@<n>\]\[:stop\] with a point among planned, /,
  );
  assert.doesNotMatch(r.stderr, /batch_committed/);
});
