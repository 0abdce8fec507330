import assert from "node:assert/strict";
import { join } from "node:path";
import { openEngine } from "../core/engine.ts";
import { ensureOnce } from "../core/ensure_once.ts";
import { ensureLedger } from "../observability/ledger.ts";

Deno.test("idempotent DDL runs once per connection, and again after a transaction that rolled it back", async () => {
  const dir = await Deno.makeTempDir();
  const db = await openEngine(join(dir, "t.duckdb"), { allowedDirectories: [dir] });
  try {
    let calls = 0;
    const create = async () => {
      calls++;
      await db.run("CREATE TABLE IF NOT EXISTS t (x INTEGER)");
    };
    // Inside a transaction that rolls back: the table is gone, so it is not remembered.
    await assert.rejects(
      db.transaction(async () => {
        await ensureOnce(db, "t", create);
        throw new Error("roll back");
      }),
      /roll back/,
    );
    assert.equal(await db.one("SELECT 1 FROM duckdb_tables() WHERE table_name = 't'"), undefined);
    await ensureOnce(db, "t", create);
    await ensureOnce(db, "t", create);
    assert.equal(calls, 2);
    assert.deepEqual(await db.all("SELECT count(*)::INTEGER AS n FROM t"), [{ n: 0 }]);

    // Another connection to the same database keeps its own memory.
    const other = await db.connect();
    let otherCalls = 0;
    await ensureOnce(other, "t", async () => {
      otherCalls++;
      await other.run("CREATE TABLE IF NOT EXISTS t (x INTEGER)");
    });
    assert.equal(otherCalls, 1);
    other.close();

    // The ledger's 7 statements run once: a dropped ledger table is not recreated.
    await ensureLedger(db);
    await db.run("DROP TABLE _sluice.run_inputs");
    await ensureLedger(db);
    assert.equal(
      await db.one("SELECT 1 FROM duckdb_tables() WHERE table_name = 'run_inputs'"),
      undefined,
    );
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});
