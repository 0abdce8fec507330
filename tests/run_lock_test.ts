/**
 * The overlap policy with real concurrent `sluice run` subprocesses: ten
 * started together under `fail`, `skip` and `wait`; a lock left by a run
 * killed with SIGKILL is taken over and the killed run marked `abandoned`.
 */
import assert from "node:assert/strict";
import { acquireRunLock, lockPathFor, readLockHolder } from "../core/run_lock.ts";
import { systemClock } from "../core/clock.ts";
import { parseConfig } from "../core/config/mod.ts";
import { ConfigError } from "../core/errors.ts";
import {
  events,
  folderDigest,
  FOREVER,
  ledger,
  makeProject,
  type Running,
  signal,
  sluice,
  start,
} from "./fixtures/run_policies.ts";

const N = 10;

/** Starts `n` runs together; returns them once all have started. */
async function startRuns(
  n: number,
  args: string[],
  env: Record<string, string>,
): Promise<Running[]> {
  return await Promise.all(Array.from({ length: n }, () => start(args, env)));
}

/** The one run of `runs` that logged `run_started` (holds the lock), once it did. */
async function holderOf(runs: Running[]): Promise<Running> {
  return await Promise.any(runs.map(async (r) => {
    const rec = await r.waitFor("run_started");
    if (rec.event !== "run_started") throw new Error("exited");
    return r;
  }));
}

Deno.test("ten runs started together under on_overlap fail: one runs, nine exit 75 naming the holder's pid, host and start", async () => {
  const p = await makeProject({ runYaml: "  on_overlap: fail" });
  try {
    const runs = await startRuns(N, ["run", "-c", p.configFile], { SLUICE_SLOW: FOREVER });
    const holder = await holderOf(runs);
    const others = runs.filter((r) => r !== holder);
    const finished = await Promise.all(others.map((r) => r.done));
    const holderLock = await readLockHolder(lockPathFor(p.database));
    assert.equal(holderLock?.pid, holder.pid, "the lock file names the running process");
    for (const f of finished) {
      assert.equal(f.code, 75, f.stderr);
      const line = f.stderr.split("\n").find((l) => l.includes("command_failed")) ?? f.stderr;
      assert.match(
        line,
        new RegExp(`pid ${holder.pid} on host \\S+ .*since \\d{4}-\\d\\d-\\d\\dT`),
      );
      assert.equal(events(f, "run_started").length, 0, "a refused run never started");
    }
    signal(holder, "SIGTERM");
    const h = await holder.done;
    assert.equal(h.code, 143, h.stderr.slice(-2000));
    const runsInLedger = await ledger(p);
    assert.equal(runsInLedger.length, 1, "only the holder ran");
    assert.equal(runsInLedger[0].status, "cancelled");
    assert.deepEqual(await folderDigest(p.outputDir), {}, "nothing was published");
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("ten runs started together under on_overlap skip: one runs, nine exit 0 and are recorded skipped by the next run", async () => {
  const p = await makeProject({ runYaml: "  on_overlap: skip" });
  try {
    const runs = await startRuns(N, ["run", "-c", p.configFile], { SLUICE_SLOW: FOREVER });
    const holder = await holderOf(runs);
    const others = runs.filter((r) => r !== holder);
    const finished = await Promise.all(others.map((r) => r.done));
    for (const f of finished) {
      assert.equal(f.code, 0, f.stderr);
      const skipped = events(f, "run_skipped");
      assert.equal(skipped.length, 1, f.stderr);
      assert.equal(skipped[0].holder_pid, holder.pid);
      assert.equal(events(f, "command_failed").length, 0, "a skip is not an error");
    }
    signal(holder, "SIGTERM");
    assert.equal((await holder.done).code, 143);
    // The holder had the database: the skips wait beside it for the next run.
    const next = await sluice(["run", "-c", p.configFile]);
    assert.equal(next.code, 0, next.stderr.slice(-2000));
    // A skip recorded before the holder tidied up is folded by the holder, the rest by the next run.
    const folded = [
      ...events(await holder.done, "skipped_runs_recorded"),
      ...events(next, "skipped_runs_recorded"),
    ]
      .reduce((n, e) => n + Number(e.runs), 0);
    assert.equal(folded, N - 1);
    const statuses = (await ledger(p)).map((r) => r.status).sort();
    assert.deepEqual(
      statuses,
      [
        "cancelled",
        ...Array.from({ length: N - 1 }, () => "skipped"),
        "success",
      ].sort(),
    );
    for (const r of (await ledger(p)).filter((r) => r.status === "skipped")) {
      assert.match(r.error ?? "", new RegExp(`held by pid ${holder.pid} on host`));
    }
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("ten runs started together under on_overlap wait: they run one at a time and all succeed", async () => {
  // The first run builds a gold model of 3e8 rows (seconds); the others wait, then find no new file.
  const p = await makeProject({ runYaml: "  on_overlap: wait\n  wait_timeout: 10m" });
  try {
    const runs = await startRuns(N, ["run", "-c", p.configFile], { SLUICE_SLOW: "300000" });
    const finished = await Promise.all(runs.map((r) => r.done));
    for (const f of finished) assert.equal(f.code, 0, f.stderr.slice(-2000));
    assert.ok(
      finished.some((f) => events(f, "lock_waiting").length === 1),
      "at least one run found the lock busy and waited",
    );
    const rows = await ledger(p);
    assert.equal(rows.length, N);
    assert.ok(rows.every((r) => r.status === "success"));
    // Two writers never ran at once: each run started after the one before it finished.
    for (let i = 1; i < rows.length; i++) {
      assert.ok(
        rows[i].started >= rows[i - 1].finished!,
        `run ${rows[i].run_id} started before ${rows[i - 1].run_id} finished`,
      );
    }
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("on_overlap wait gives up after wait_timeout with exit 75", async () => {
  const p = await makeProject();
  try {
    const holder = await start(["run", "-c", p.configFile], { SLUICE_SLOW: FOREVER });
    await holder.waitFor("run_started");
    const waiter = await sluice([
      "run",
      "-c",
      p.configFile,
      "--on-overlap",
      "wait",
      "--wait-timeout",
      "1s",
    ]);
    assert.equal(waiter.code, 75, waiter.stderr);
    assert.equal(events(waiter, "lock_waiting").length, 1);
    assert.match(waiter.stderr, new RegExp(`pid ${holder.pid} .*\\(waited \\d+ ms\\)`));
    signal(holder, "SIGTERM");
    assert.equal((await holder.done).code, 143);
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("a lock left by a run killed with SIGKILL is taken over with a warning and the run is marked abandoned", async () => {
  const p = await makeProject();
  try {
    const victim = await start(["run", "-c", p.configFile], { SLUICE_SLOW: FOREVER });
    const started = await victim.waitFor("run_started");
    await victim.waitFor("stage_started", (r) => r.stage === "gold");
    signal(victim, "SIGKILL");
    await victim.done;
    const left = await readLockHolder(lockPathFor(p.database));
    assert.equal(left?.pid, victim.pid, "the killed run's name is still in the lock file");

    const next = await sluice(["run", "-c", p.configFile]);
    assert.equal(next.code, 0, next.stderr.slice(-2000));
    const [takeover] = events(next, "stale_lock_taken_over");
    assert.equal(takeover?.level, "warn");
    assert.equal(takeover.holder_pid, victim.pid);
    assert.equal(takeover.reason, `pid ${victim.pid} ended without releasing it`);
    const [abandoned] = events(next, "runs_abandoned");
    assert.deepEqual(abandoned.run_ids, [started.run_id]);
    const rows = await ledger(p);
    const killed = rows.find((r) => r.run_id === started.run_id)!;
    assert.equal(killed.status, "abandoned");
    assert.equal(killed.finished, null, "its real end is unknown");
    assert.match(killed.error ?? "", /noticed at \d{4}-.* by run /);
    assert.equal(rows.find((r) => r.run_id !== started.run_id)?.status, "success");
    // The lock is free again, and empty.
    assert.equal(await Deno.readTextFile(lockPathFor(p.database)), "");
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("the run lock is exclusive inside one process too, and is free again after release", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/db.duckdb.lock`;
    const opts = { runId: "a", command: "run", clock: systemClock } as const;
    const first = await acquireRunLock(path, { ...opts, policy: "fail" });
    assert.ok(first.acquired);
    const second = await acquireRunLock(path, { ...opts, runId: "b", policy: "skip" });
    assert.equal(second.acquired, false);
    if (!second.acquired) assert.equal(second.holder?.run_id, "a");
    await assert.rejects(
      acquireRunLock(path, { ...opts, runId: "c", policy: "wait", waitTimeoutMs: 50, pollMs: 10 }),
      /held by pid \d+ on host .* \(run a, command run\) since .*\(waited \d+ ms\)/,
    );
    if (first.acquired) first.lock.release();
    const third = await acquireRunLock(path, { ...opts, runId: "d", policy: "fail" });
    assert.ok(third.acquired);
    if (third.acquired) {
      assert.equal(third.stale, undefined, "a released lock is not a stale one");
      third.lock.release();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the run: section is validated: unknown policy, a duration without a unit, unknown keys", () => {
  const base = "pipeline: shop\nlake: ./lake\nsources:\n  orders: { format: csv, path: ./o }\n";
  const ok = parseConfig(
    base + "run:\n  on_overlap: wait\n  wait_timeout: 5m\n  max_runtime: 2h\n",
    "/tmp/p.yaml",
  );
  assert.equal(ok.run?.on_overlap, "wait");
  assert.deepEqual(ok.run?.retries, { attempts: 3, initial: "200ms", max: "5s" });
  const problems = (text: string) => {
    try {
      parseConfig(base + text, "/tmp/p.yaml");
    } catch (e) {
      if (e instanceof ConfigError) {
        return e.problems.map((p) => `${p.line} ${p.path}: ${p.message}`);
      }
      throw e;
    }
    return [];
  };
  const [policy] = problems("run:\n  on_overlap: sometimes\n");
  assert.match(policy, /^6 run\.on_overlap: .*fail.*skip.*wait/);
  const [unit] = problems("run:\n  max_runtime: 90\n");
  assert.match(unit, /^6 run\.max_runtime: "90" has no unit/);
  const [unknown] = problems("run:\n  retries: { attempts: 2, backoff: 1s }\n");
  assert.match(unknown, /run\.retries/);
});
