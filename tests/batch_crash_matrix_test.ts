/**
 * The batch crash matrix: `sluice run` of the e-commerce example, killed
 * with SIGKILL at every named crash point (the `SLUICE_CRASH_AT` seam of
 * core/crash_seam.ts) and at seeded random moments, with new order files
 * arriving between attempts, then run to completion. The lake must end
 * equal to a clean run's over the same files.
 *
 * Repeat a failing run with `SLUICE_TEST_SEED=<printed seed>`.
 */
import assert from "node:assert/strict";
import {
  arrive,
  assertSameLake,
  type BatchProject,
  demoData,
  lakeDigest,
  makeProject,
  prng,
  removeProject,
  runOnce,
  runStatuses,
} from "./fixtures/batch_crash.ts";

/**
 * The named kills, in order. `@n` is the n-th time the point is reached in
 * that process: the first run lands three sources (`bronze_landed@2` is
 * after the second one's commit); `stage_recorded` is reached after
 * extract, bronze and output; `output_linking` and `output_swapping`
 * before and after each of the three link swaps.
 */
const NAMED = [
  "bronze_landing@2",
  "run_recorded",
  "extracted",
  "bronze_landing",
  "bronze_landed",
  "bronze_numbered",
  "stage_recorded@1",
  "stage_recorded@2",
  "bronze_audited",
  "silver_staged",
  "gold_built",
  "gold_committed",
  "output_written",
  "output_linking@2",
  "output_swapping@1",
  "output_swapping@2",
  "output_published",
  "stage_recorded@3",
  "run_finishing",
  "run_finished",
  "checkpointed",
];

/** Kills after these points come after the run's `success` was committed. */
const AFTER_SUCCESS = new Set(["run_finished", "checkpointed"]);

/** Random kills per CI run; with the named ones at least 40 in all. */
const RANDOM_KILLS = 24;

interface Kill {
  runId: string;
  at: string;
}

async function finish(p: BatchProject, label: string): Promise<void> {
  await arrive(p, p.pending.length);
  const r = await runOnce(p, { runId: `${label}-final` });
  assert.equal(r.code, 0, `${label}: the run after the kills failed:\n${r.stderr.slice(-3000)}`);
}

async function namedLane(p: BatchProject): Promise<Kill[]> {
  const kills: Kill[] = [];
  for (const [i, at] of NAMED.entries()) {
    if (i > 0) await arrive(p, 1); // new landing files between attempts
    const runId = `named-${String(i).padStart(2, "0")}`;
    const r = await runOnce(p, { runId, env: { SLUICE_CRASH_AT: at } });
    assert.equal(
      r.signal,
      "SIGKILL",
      `crash point ${at} was never reached (exit ${r.code}):\n${r.stderr.slice(-3000)}`,
    );
    kills.push({ runId, at });
  }
  await finish(p, "named");
  return kills;
}

async function randomLane(p: BatchProject, seed: number, runMs: number): Promise<Kill[]> {
  const random = prng(seed);
  const kills: Kill[] = [];
  // The kill comes a random time after the run_started line, within `range`; a run that
  // finished first narrows the range (machines differ in speed), a kill widens it a little.
  let range = runMs;
  let finished = false;
  for (let attempt = 0; kills.length < RANDOM_KILLS; attempt++) {
    assert.ok(attempt < RANDOM_KILLS * 4, `only ${kills.length} kills in ${attempt} attempts`);
    // A new file after a finished run (else the next one has nothing to do) and now and then.
    if (finished || attempt % 3 === 1) await arrive(p, 1);
    const delay = Math.round(random() * range);
    const runId = `random-${String(attempt).padStart(2, "0")}`;
    const r = await runOnce(p, { runId, killAfterMs: delay });
    finished = r.signal !== "SIGKILL";
    if (!finished) {
      kills.push({ runId, at: `${delay}ms` });
      range *= 1.05;
    } else {
      assert.equal(r.code, 0, `attempt ${attempt} failed on its own:\n${r.stderr.slice(-3000)}`);
      range = Math.max(50, range * 0.7);
    }
  }
  await finish(p, "random");
  return kills;
}

Deno.test("a batch run killed with SIGKILL at every crash point and at random moments ends equal to a clean run", async () => {
  const seed = Number(Deno.env.get("SLUICE_TEST_SEED") ?? Date.now() % 1_000_000);
  console.log(`batch crash matrix: seed ${seed} (repeat with SLUICE_TEST_SEED=${seed})`);
  const data = await demoData({ scale: 4_000, files: 40, seed: 11 });
  // One order file of 100 rows a run: the example's 1% bronze threshold on bad timestamps
  // (0.25% of all rows) would stop runs that happen to get two; crashes are the subject here.
  const yaml = (text: string) => text.replace('threshold: "1%"', 'threshold: "10%"');
  const clean = await makeProject(data, { initialOrders: 40, yaml });
  const named = await makeProject(data, { initialOrders: 1, yaml });
  const randomP = await makeProject(data, { initialOrders: 1, yaml });
  try {
    const t0 = performance.now();
    const c = await runOnce(clean, { runId: "clean" });
    assert.equal(c.code, 0, c.stderr);
    // How long a run takes here, from its run_started line: the range of random kills.
    const runMs = Math.max(300, performance.now() - t0 - 400);
    const want = await lakeDigest(clean);

    const [namedKills, randomKills] = await Promise.all([
      namedLane(named),
      randomLane(randomP, seed, runMs),
    ]);

    let compared = 0;
    for (const [p, label] of [[named, "named"], [randomP, "random"]] as const) {
      compared += assertSameLake(await lakeDigest(p), want, `${label} crash project`);
      for await (const e of Deno.readDir(p.outputDir)) {
        assert.ok(!e.name.endsWith(".tmp"), `${label}: a killed run's ${e.name} was left behind`);
      }
    }

    // The ledger: no killed run counts as a success unless it had committed its success, and
    // none stays "running": the next run that takes the lock marks it "abandoned".
    let abandoned = 0;
    let unrecorded = 0;
    let succeeded = 0;
    const named_ = await runStatuses(named);
    for (const k of namedKills) {
      const status = named_.get(k.runId);
      if (AFTER_SUCCESS.has(k.at)) {
        assert.equal(status, "success", `${k.runId} killed at ${k.at} after its success commit`);
        succeeded++;
        continue;
      }
      assert.ok(
        status === "failed" || status === "abandoned",
        `${k.runId} killed at ${k.at} is "${status}" in the ledger`,
      );
      if (status === "abandoned") abandoned++;
    }
    const random_ = await runStatuses(randomP);
    for (const k of randomKills) {
      const status = random_.get(k.runId);
      if (status === undefined) unrecorded++;
      else if (status === "success") succeeded++; // killed after committing its success
      else {
        assert.ok(status === "failed" || status === "abandoned", `${k.runId}: ${status}`);
        if (status === "abandoned") abandoned++;
      }
    }
    const kills = namedKills.length + randomKills.length;
    console.log(
      `batch crash matrix: ${kills} kills (${namedKills.length} at named points, ` +
        `${randomKills.length} at random moments), ${compared} rows compared ×2 projects, ` +
        `${succeeded} killed after their success commit, ${unrecorded} before their ledger row, ` +
        `${abandoned} marked "abandoned" by the next run`,
    );
    assert.ok(kills >= 40, `only ${kills} kills`);
  } finally {
    for (const p of [clean, named, randomP]) await removeProject(p);
    await Deno.remove(data.dir, { recursive: true }).catch(() => {});
  }
});
