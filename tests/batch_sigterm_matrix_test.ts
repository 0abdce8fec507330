/**
 * The batch crash matrix's SIGTERM lane: `sluice run` of the e-commerce
 * example stops itself (SIGSTOP, `SLUICE_CRASH_AT=<point>:stop`) at every
 * named batch crash point, gets SIGTERM and then SIGCONT, and must end
 * with the documented exit code and ledger status, with nothing partial
 * published, and the run after it must bring the lake to a clean run's.
 *
 * Nothing here depends on timing: the run cannot pass its stop point
 * before the SIGCONT, and the SIGTERM is pending when it resumes.
 */
import assert from "node:assert/strict";
import { BATCH_CRASH_POINTS, type BatchCrashPoint } from "../core/crash_seam.ts";
import {
  arrive,
  assertSameLake,
  type BatchProject,
  demoData,
  type LakeDigest,
  lakeDigest,
  makeProject,
  removeProject,
  runOnce,
  runStatuses,
} from "./fixtures/batch_crash.ts";

/**
 * Points after output is published (stages/pipeline.ts `recordSuccess`): a
 * stop that comes once every stage is done cannot undo anything, so the run
 * sets the stop aside, records `success` (writing it again if the stop
 * interrupted the UPDATE), leaves the checkpoint to the next run (the commits
 * are safe in the WAL) and exits 0. Every other point: 143 cancelled.
 */
const EXPECTED: Partial<Record<BatchCrashPoint, { code: number; status: string }>> = {
  run_finishing: { code: 0, status: "success" },
  run_finished: { code: 0, status: "success" },
  checkpointed: { code: 0, status: "success" },
};
const CANCELLED = { code: 143, status: "cancelled" };

/**
 * At `gold_built` the COMMIT is the next statement and the SIGTERM listener
 * runs on the event loop, so the stop races the COMMIT: either it lands first
 * (the transaction rolls back, silver and gold keep the old rows) or the
 * COMMIT does (they hold the new rows). Both are whole, never a mix, and the
 * run is recorded `cancelled` (exit 143) either way; the next run ends equal to
 * a clean run. From `gold_committed` on, they hold the new rows.
 */
const GOLD_RACE_AT = BATCH_CRASH_POINTS.indexOf("gold_built");
const GOLD_NEW_FROM = BATCH_CRASH_POINTS.indexOf("gold_committed");
/**
 * From `output_written` on, every link points at the new versions: the swaps
 * are file operations with no safe point between them (the stop interrupts
 * DuckDB statements), so a stop there publishes all of them.
 */
const OUTPUT_NEW_FROM = BATCH_CRASH_POINTS.indexOf("output_written");

/** Which of two lakes `got`'s tables (or outputs) equal: all of one, never a mix. */
function whichOf(
  got: Record<string, unknown>,
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  label: string,
): "before" | "after" {
  const names = Object.keys(after).sort();
  assert.deepEqual(Object.keys(got).sort(), names, `${label}: other tables than the clean run's`);
  const same = (a: Record<string, unknown>) => names.every((n) => isDeepEqual(got[n], a[n]));
  if (same(after)) return "after";
  if (same(before)) return "before";
  const mixed = names.map((n) =>
    `${n}: ${
      isDeepEqual(got[n], after[n]) ? "new" : isDeepEqual(got[n], before[n]) ? "old" : "other"
    }`
  );
  assert.fail(`${label}: neither the previous nor the new result (${mixed.join(", ")})`);
}

function isDeepEqual(a: unknown, b: unknown): boolean {
  try {
    assert.deepEqual(a, b);
    return true;
  } catch {
    return false;
  }
}

interface Lane {
  signals: number;
  rowsCompared: number;
  exits: string[];
}

/** One project: for each point, a new order file, a stopped+SIGTERMed run, then a run to completion. */
async function lane(p: BatchProject, points: BatchCrashPoint[]): Promise<Lane> {
  const out: Lane = { signals: 0, rowsCompared: 0, exits: [] };
  const first = await runOnce(p, { runId: "first" });
  assert.equal(first.code, 0, first.stderr.slice(-3000));
  let before: LakeDigest = await lakeDigest(p);
  for (const point of points) {
    const i = BATCH_CRASH_POINTS.indexOf(point);
    assert.equal(await arrive(p, 1), 1, "a new order file for every point");
    const runId = `term-${point}`;
    const r = await runOnce(p, {
      runId,
      env: { SLUICE_CRASH_AT: `${point}:stop` },
      onStopped: (send) => {
        send("SIGTERM"); // pending while stopped; the harness then sends SIGCONT
        out.signals += 2;
        return Promise.resolve();
      },
    });
    const want = EXPECTED[point] ?? CANCELLED;
    assert.equal(r.signal, null, `${point}: ended by ${r.signal}, not by its own exit`);
    assert.equal(r.code, want.code, `${point}: exit ${r.code}:\n${r.stderr.slice(-3000)}`);
    // At `checkpointed` nothing is left to await but the close: the process may
    // exit before the SIGTERM listener gets a turn, which is as good an end.
    assert.ok(
      point === "checkpointed" || r.stderr.includes('"event":"run_stopping"'),
      `${point}: the run never logged run_stopping (was it stopped at all?)`,
    );
    assert.equal((await runStatuses(p)).get(runId), want.status, `${point}: ledger status`);
    const mid = await lakeDigest(p, { bronze: false });
    for await (const e of Deno.readDir(p.outputDir)) {
      assert.ok(!e.name.endsWith(".tmp"), `${point}: a temporary link ${e.name} was left behind`);
    }

    const next = await runOnce(p, { runId: `after-${point}` });
    assert.equal(next.code, 0, `${point}: the next run failed:\n${next.stderr.slice(-3000)}`);
    const after = await lakeDigest(p);
    assert.notDeepEqual(after.tables, before.tables, `${point}: the new file changed nothing`);

    const tables = whichOf(mid.tables, before.tables, after.tables, `${point}: silver/gold`);
    const outputs = whichOf(mid.outputs, before.outputs, after.outputs, `${point}: outputs`);
    if (i !== GOLD_RACE_AT) {
      assert.equal(tables, i >= GOLD_NEW_FROM ? "after" : "before", `${point}: silver/gold`);
    }
    assert.equal(outputs, i >= OUTPUT_NEW_FROM ? "after" : "before", `${point}: outputs`);
    out.rowsCompared += Object.values(mid.tables).reduce((n, d) => n + d.rows, 0) +
      Object.values(mid.outputs).reduce((n, d) => n + d.rows, 0);
    out.exits.push(`${point}=${r.code}/${want.status}${i === GOLD_RACE_AT ? `/${tables}` : ""}`);
    before = after;
  }
  return out;
}

Deno.test("a batch run sent SIGTERM at every crash point exits 143 cancelled (0 once its success is recorded), publishes nothing partial, and the next run ends equal to a clean run", async () => {
  const points = [...BATCH_CRASH_POINTS];
  const files = points.length + 4;
  const data = await demoData({ scale: files * 100, files, seed: 12 });
  // One order file a run: the example's 1% threshold on bad timestamps could stop a run that
  // gets an unlucky file; signals are the subject here.
  const yaml = (text: string) => text.replace('threshold: "1%"', 'threshold: "10%"');
  const half = Math.ceil(points.length / 2);
  const lanes = [points.slice(0, half), points.slice(half)];
  const clean = await makeProject(data, { initialOrders: data.orders.length, yaml });
  const projects = await Promise.all(
    lanes.map(() => makeProject(data, { initialOrders: 2, yaml })),
  );
  try {
    // Two subprocesses at a time: the lanes run side by side; the clean run goes first.
    const c = await runOnce(clean, { runId: "clean" });
    assert.equal(c.code, 0, c.stderr.slice(-3000));
    const want = await lakeDigest(clean);
    const results = await Promise.all(lanes.map((l, i) => lane(projects[i], l)));
    let compared = 0;
    for (const [i, p] of projects.entries()) {
      await arrive(p, p.pending.length);
      const r = await runOnce(p, { runId: "final" });
      assert.equal(r.code, 0, r.stderr.slice(-3000));
      compared += assertSameLake(await lakeDigest(p), want, `SIGTERM lane ${i + 1}`);
    }
    const signals = results.reduce((n, r) => n + r.signals, 0);
    compared += results.reduce((n, r) => n + r.rowsCompared, 0);
    console.log(
      `batch SIGTERM matrix: ${points.length} crash points, ${signals} signals sent ` +
        `(SIGTERM + SIGCONT), ${compared} rows compared; ` +
        results.flatMap((r) => r.exits).join(" "),
    );
    assert.equal(signals, points.length * 2);
  } finally {
    for (const p of [clean, ...projects]) await removeProject(p);
    await Deno.remove(data.dir, { recursive: true }).catch(() => {});
  }
});
