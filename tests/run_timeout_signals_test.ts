/**
 * Time limits and signals with real `sluice` subprocesses: `--max-runtime`
 * (and `run.max_runtime`) on a gold model that never ends by itself,
 * SIGTERM in the middle of silver, a second signal, and SIGTERM while a
 * stream is between micro-batches. Each time: the documented exit code,
 * nothing partial published, the ledger status, and a next run that ends
 * with the same gold (or stream target) as a clean run.
 */
import assert from "node:assert/strict";
import { basename, join } from "node:path";
import {
  events,
  folderDigest,
  FOREVER,
  goldChecksums,
  ledger,
  makeProject,
  type Project,
  readDb,
  type Running,
  signal,
  sluice,
  start,
} from "./fixtures/run_policies.ts";
import { event, makeStreamProject, streamYaml } from "./fixtures/streaming.ts";

/** The gold checksums of a clean project over the same data, run once. */
async function cleanGold(): Promise<Record<string, string>> {
  const p = await makeProject();
  try {
    const r = await sluice(["run", "-c", p.configFile]);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    return await goldChecksums(p);
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
}

/** Moves the last order file out of the landing folder; returns a function that puts it back. */
async function holdBackLastOrders(p: Project): Promise<() => Promise<void>> {
  const files = (await Array.fromAsync(Deno.readDir(p.ordersDir))).map((e) => e.name).sort();
  const last = join(p.ordersDir, files[files.length - 1]);
  const aside = join(p.dir, basename(last));
  await Deno.rename(last, aside);
  return () => Deno.rename(aside, last);
}

/**
 * Resumes a process that may stop itself at its crash point (SIGSTOP):
 * sends SIGCONT until it has ended. Nothing here depends on timing: until
 * the first SIGCONT the run cannot get past its stop point.
 */
async function resumeUntilDone(run: Running): Promise<void> {
  let exited = false;
  run.done.then(() => exited = true);
  while (!exited) {
    signal(run, "SIGCONT");
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("--max-runtime stops a run in a gold model that never ends: exit 124, nothing new published, ledger timed_out", async () => {
  const p = await makeProject();
  try {
    const putBack = await holdBackLastOrders(p);
    const first = await sluice(["run", "-c", p.configFile]);
    assert.equal(first.code, 0, first.stderr.slice(-2000));
    const published = await folderDigest(p.outputDir);
    const gold = await goldChecksums(p);
    assert.ok(Object.keys(published).length > 0);
    await putBack();

    const slow = await sluice(["run", "-c", p.configFile, "--max-runtime", "2s"], {
      SLUICE_SLOW: FOREVER,
    });
    assert.equal(slow.code, 124, slow.stderr.slice(-2000));
    assert.equal(events(slow, "run_stopping").length, 1);
    assert.match(slow.stderr, /Run stopped: it passed its max runtime of 2s/);
    assert.deepEqual(await folderDigest(p.outputDir), published, "the output folder is unchanged");
    assert.deepEqual(await goldChecksums(p), gold, "the gold tables are unchanged");
    assert.equal((await ledger(p)).at(-1)?.status, "timed_out");

    // The same limit from the config: run.max_runtime.
    await Deno.writeTextFile(
      p.configFile,
      (await Deno.readTextFile(p.configFile)) + "\nrun:\n  max_runtime: 1s\n",
    );
    const fromConfig = await sluice(["run", "-c", p.configFile], { SLUICE_SLOW: FOREVER });
    assert.equal(fromConfig.code, 124, fromConfig.stderr.slice(-2000));
    assert.equal((await ledger(p)).at(-1)?.status, "timed_out");
    assert.deepEqual(await folderDigest(p.outputDir), published);
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("SIGTERM in the middle of silver: exit 143, rolled back, nothing published, the next run equals a clean run", async () => {
  const want = await cleanGold();
  const p = await makeProject();
  try {
    // SIGTERM once silver started; the run stops itself (SIGSTOP) once silver is staged, before
    // its transaction opens, so the signal is handled in silver whichever comes first.
    const run = await start(["run", "-c", p.configFile], { SLUICE_CRASH_AT: "silver_staged:stop" });
    await run.waitFor("stage_started", (r) => r.stage === "silver");
    signal(run, "SIGTERM");
    await resumeUntilDone(run);
    const r = await run.done;
    assert.equal(r.code, 143, r.stderr.slice(-2000));
    assert.equal(events(r, "run_stopping")[0]?.signal, "SIGTERM");
    assert.equal((await ledger(p)).at(-1)?.status, "cancelled");
    const silver = await readDb<{ n: bigint }>(
      p,
      `SELECT count(*) AS n FROM duckdb_tables() WHERE schema_name IN ('silver', 'gold')`,
    );
    assert.equal(Number(silver[0].n), 0, "no silver or gold table was committed");
    assert.deepEqual(await folderDigest(p.outputDir), {}, "nothing was published");

    const next = await sluice(["run", "-c", p.configFile]);
    assert.equal(next.code, 0, next.stderr.slice(-2000));
    assert.deepEqual(await goldChecksums(p), want, "the same gold as a clean run");
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("SIGTERM while bronze reads a large file: exit 143, the ledger says cancelled (not a source failure), the orders did not land", async () => {
  // One file of 400,000 orders, landed after customers and products: reading it takes long
  // enough for the signal to interrupt the reader's statement, which bronze reports wrapped in
  // its own error. The run also stops itself (SIGSTOP) once the orders are inserted (the 3rd
  // source's landing), so the signal is handled in bronze either way.
  const p = await makeProject({ scale: 400_000, files: 1 });
  try {
    const run = await start(["run", "-c", p.configFile], {
      SLUICE_CRASH_AT: "bronze_landing@3:stop",
    });
    await run.waitFor("file_ingested", (r) => r.table === "products");
    signal(run, "SIGTERM");
    await resumeUntilDone(run);
    const r = await run.done;
    assert.equal(r.code, 143, r.stderr.slice(-2000));
    const failed = events(r, "run_failed")[0];
    assert.equal(failed?.status, "cancelled", JSON.stringify(failed));
    assert.equal(failed?.error, "Run stopped by SIGTERM");
    const runs = await ledger(p);
    assert.deepEqual(runs.map((x) => [x.status, x.error]), [[
      "cancelled",
      "Run stopped by SIGTERM",
    ]]);
    // Bronze commits each source on its own: customers and products landed, orders did not.
    const landed = await readDb<{ t: string }>(
      p,
      `SELECT table_name AS t FROM duckdb_tables() WHERE schema_name = 'bronze' ORDER BY 1`,
    );
    assert.ok(!landed.some((x) => x.t === "orders"), JSON.stringify(landed));
    const next = await sluice(["run", "-c", p.configFile]);
    assert.equal(next.code, 0, next.stderr.slice(-2000));
    const orders = await readDb<{ n: bigint }>(p, `SELECT count(*) AS n FROM bronze.orders`);
    assert.ok(Number(orders[0].n) >= 400_000, `the next run landed the orders: ${orders[0].n}`);
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("a second signal exits at once: nothing uncommitted survives and the next run marks it abandoned", async () => {
  const want = await cleanGold();
  const p = await makeProject();
  try {
    // Two signals while a gold model runs that never ends by itself.
    const run = await start(["run", "-c", p.configFile], { SLUICE_SLOW: FOREVER });
    const started = await run.waitFor("run_started");
    await run.waitFor("stage_started", (r) => r.stage === "gold");
    signal(run, "SIGINT");
    signal(run, "SIGTERM");
    const r = await run.done;
    assert.ok(r.code === 130 || r.code === 143, `exit ${r.code}: ${r.stderr.slice(-2000)}`);
    assert.equal(events(r, "run_exit_now").length, 1, "the second signal ended the process");
    assert.deepEqual(await folderDigest(p.outputDir), {}, "nothing was published");

    const next = await sluice(["run", "-c", p.configFile]);
    assert.equal(next.code, 0, next.stderr.slice(-2000));
    assert.deepEqual(events(next, "runs_abandoned")[0]?.run_ids, [started.run_id]);
    assert.deepEqual(await goldChecksums(p), want, "the same gold as a clean run");
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("SIGTERM while a stream works through its files: it finishes the batch, exits 143, and the next run completes like a clean one", async () => {
  const yaml = streamYaml({ maxFiles: 1 });
  const files = Array.from(
    { length: 6 },
    (_, f) =>
      Array.from({ length: 3000 }, (_, i) => event(`e${f}_${i}`, f * 3000 + i)).join("\n") + "\n",
  );
  const project = async () => {
    const sp = await makeStreamProject(yaml);
    for (const [i, text] of files.entries()) {
      await Deno.writeTextFile(join(sp.landing, `part_${i}.ndjson`), text);
    }
    const p: Project = {
      dir: sp.dir,
      configFile: sp.configFile,
      lake: join(sp.dir, "lake"),
      database: join(sp.dir, "lake", "sluice.duckdb"),
      outputDir: join(sp.dir, "lake", "output"),
      ordersDir: join(sp.dir, "orders"),
    };
    return p;
  };
  const target = (p: Project) =>
    readDb<{ n: bigint; h: string }>(
      p,
      `SELECT count(*) AS n, md5(string_agg(event_id || '@' || event_time::VARCHAR, '|'
         ORDER BY event_id)) AS h FROM silver.events`,
    );
  const clean = await project();
  const p = await project();
  try {
    const c = await sluice(["stream", "-c", clean.configFile, "--trigger", "available-now"]);
    assert.equal(c.code, 0, c.stderr.slice(-2000));
    const want = await target(clean);
    assert.equal(Number(want[0].n), 6 * 3000);

    const run = await start(["stream", "-c", p.configFile, "--trigger", "available-now"]);
    await run.waitFor("batch_committed");
    signal(run, "SIGTERM");
    const r = await run.done;
    assert.equal(r.code, 143, r.stderr.slice(-2000));
    assert.match(r.stdout, /batch/i, "the summary of the batches done is printed");
    const committed = events(r, "batch_committed").length;
    assert.ok(committed >= 1 && committed < 6, `stopped early (${committed} batches)`);
    assert.equal((await ledger(p)).at(-1)?.status, "cancelled");
    // The checkpoint matches the target: whole files only.
    const [got] = await target(p);
    assert.equal(Number(got.n) % 3000, 0, "only whole files are in the target");

    const next = await sluice(["stream", "-c", p.configFile, "--trigger", "available-now"]);
    assert.equal(next.code, 0, next.stderr.slice(-2000));
    assert.deepEqual(await target(p), want, "the same target as a clean stream");
  } finally {
    await Deno.remove(clean.dir, { recursive: true });
    await Deno.remove(p.dir, { recursive: true });
  }
});
