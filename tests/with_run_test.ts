import assert from "node:assert/strict";
import { join } from "node:path";
import { getLogger } from "@logtape/logtape";
import { steppingClock } from "../core/clock.ts";
import { loadConfig } from "../core/config/mod.ts";
import { SluiceError } from "../core/errors.ts";
import { openPipelineDb } from "../core/pipeline_db.ts";
import { configureLogging, resetLogging } from "../observability/logging.ts";
import { runFieldsOf, runStatusOf, withRun } from "../runtime/with_run.ts";
import { runPipeline } from "../stages/pipeline.ts";
import { makeProject, SHOP_YAML } from "./_helpers.ts";

const ORDERS = "order_id,quantity,country,updated_at\n1,2,de,2026-01-01 10:00:00\n";

async function ledger(configFile: string) {
  const db = await openPipelineDb(await loadConfig(configFile), { access: "ledger" });
  try {
    return await db.all<{ run_id: string; command: string; status: string; error: string | null }>(
      "SELECT run_id, command, status, error FROM _sluice.runs ORDER BY started_at",
    );
  } finally {
    db.close();
  }
}

Deno.test("withRun mints one run id from the clock, puts it on every log line, and closes the database", async () => {
  const p = await makeProject(SHOP_YAML, { "landing/orders/a.csv": ORDERS });
  const lines: Record<string, unknown>[] = [];
  await configureLogging({ format: "json", write: (l) => lines.push(JSON.parse(l)) });
  try {
    const config = await loadConfig(p.configFile);
    const clock = steppingClock(new Date(Date.UTC(2026, 0, 2)));
    const summary = await withRun(config, { clock, trigger: "test" }, async (ctx) => {
      // A logger that knows nothing of the run still gets its id (the log context).
      getLogger(["sluice", "elsewhere"]).info("hello");
      return await runPipeline(ctx);
    });
    assert.match(summary.runId, /^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    assert.equal(
      summary.runId.slice(0, 8),
      Date.UTC(2026, 0, 2).toString(16).padStart(12, "0").slice(0, 8),
    );
    assert.ok(lines.length > 5);
    for (const l of lines) assert.equal(l.run_id, summary.runId, JSON.stringify(l));
    // Closed: another process-level open of the same file succeeds.
    assert.deepEqual((await ledger(p.configFile)).map((r) => [r.run_id, r.status]), [
      [summary.runId, "success"],
    ]);
  } finally {
    await resetLogging();
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("a run that fails before it records itself still gets a ledger row, with its status and error", async () => {
  const p = await makeProject(SHOP_YAML);
  try {
    const config = await loadConfig(p.configFile);
    const boom = new SluiceError('Cannot load source "orders": file is empty');
    await assert.rejects(
      withRun(config, { runId: "r-failed", kind: "check" }, () => Promise.reject(boom)),
      (e) =>
        e === boom && runFieldsOf(e)?.run_id === "r-failed" && runFieldsOf(e)?.pipeline === "shop",
    );
    const stopped = Object.assign(new SluiceError("Cannot finish: time limit reached"), {
      runStatus: "timed_out",
    });
    await assert.rejects(withRun(config, { runId: "r-late" }, () => Promise.reject(stopped)));
    // A run that succeeds without recording anything (dlq list) leaves no row.
    await withRun(config, { runId: "r-quiet", kind: "dlq" }, async () => {});
    assert.deepEqual(await ledger(p.configFile), [
      { run_id: "r-failed", command: "check", status: "failed", error: boom.message },
      { run_id: "r-late", command: "run", status: "timed_out", error: stopped.message },
    ]);
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("withRun refuses a malformed run id before it opens anything", async () => {
  const p = await makeProject(SHOP_YAML);
  try {
    const config = await loadConfig(p.configFile);
    await assert.rejects(
      withRun(config, { runId: "../etc" }, () => Promise.resolve()),
      /Cannot use run id "\.\.\/etc": use 1 to 64 letters, digits/,
    );
    await assert.rejects(Deno.stat(join(p.dir, "lake")), Deno.errors.NotFound);
    assert.equal(runStatusOf(undefined), "success");
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});
