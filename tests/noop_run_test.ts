import assert from "node:assert/strict";
import { join } from "node:path";
import { SMALL_WAL_BYTES } from "../stages/_wal.ts";
import { makeProject, query, runOnce, SHOP_YAML, writeFile } from "./_helpers.ts";

const ORDERS = "order_id,quantity,country,updated_at\n1,2,de,2026-01-01 00:00:00\n";

async function walSize(dir: string): Promise<number> {
  try {
    return (await Deno.stat(join(dir, "lake", "sluice.duckdb.wal"))).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

Deno.test("no-op runs checkpoint again once their WAL reaches the threshold", async () => {
  const p = await makeProject(SHOP_YAML, { "landing/orders/a.csv": ORDERS });
  await runOnce(p);
  let last = 0;
  for (let i = 0; i < 40; i++) {
    const r = await runOnce(p);
    assert.equal(r.noop, true);
    const wal = await walSize(p.dir);
    if (wal === 0) {
      assert.ok(last >= SMALL_WAL_BYTES / 2, `folded after the WAL grew (it was ${last})`);
      return;
    }
    assert.ok(wal < SMALL_WAL_BYTES + 64 * 1024, `the WAL stays bounded (${wal})`);
    last = wal;
  }
  assert.fail(`40 no-op runs and the WAL was never folded (${last} bytes)`);
});

Deno.test("a no-op run keeps its ledger rows in a small WAL instead of checkpointing; the next run that lands data folds it", async () => {
  const p = await makeProject(SHOP_YAML, { "landing/orders/a.csv": ORDERS });
  await runOnce(p, { runId: "01900000-0000-7000-8000-000000000001" });
  assert.equal(await walSize(p.dir), 0, "a run that landed data checkpoints");

  const noop = await runOnce(p, { runId: "01900000-0000-7000-8000-000000000002" });
  assert.equal(noop.noop, true);
  const wal = await walSize(p.dir);
  assert.ok(wal > 0 && wal < SMALL_WAL_BYTES, `the no-op run left its commits in the WAL (${wal})`);
  await writeFile(p.dir, "landing/orders/b.csv", ORDERS.replace("1,2,de", "2,3,us"));
  const third = await runOnce(p, { runId: "01900000-0000-7000-8000-000000000003" });
  assert.equal(third.noop, false);
  assert.equal(await walSize(p.dir), 0, "the run that landed data folded the WAL");
  assert.deepEqual(
    await query(p, "SELECT count(*)::INTEGER AS n FROM silver.orders"),
    [{ n: 2 }],
  );
  const runs = await query<{ run_id: string; status: string }>(
    p,
    "SELECT run_id, status FROM _sluice.runs ORDER BY started_at",
  );
  assert.deepEqual(runs.map((r) => r.status), ["success", "success", "success"]);
  assert.equal(runs[1].run_id, "01900000-0000-7000-8000-000000000002", "the no-op run's row");
});
