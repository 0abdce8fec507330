/**
 * Retries: exponential backoff with jitter for transient failures only
 * (the clock and the dice injected), and with real `sluice run`
 * subprocesses: an unreachable Pushgateway and lineage endpoint on a closed
 * 127.0.0.1 port (bounded attempts, the run still succeeds), a landing
 * file still being written while extract looks at it (it waits, then lands
 * the whole file), and a database held by another process for a moment.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { retryPolicy } from "../core/config/mod.ts";
import { ConfigError, EngineError, LockHeldError, SourceError } from "../core/errors.ts";
import { backoffDelay, isTransient, withRetry } from "../core/retry.ts";
import { events, makeProject, readDb, start } from "./fixtures/run_policies.ts";

/** A sleep that waits for nothing and remembers what it was asked. */
function fakeSleep(): { sleep: (ms: number) => Promise<void>; slept: number[] } {
  const slept: number[] = [];
  return { slept, sleep: (ms) => (slept.push(ms), Promise.resolve()) };
}

Deno.test("withRetry retries a transient failure with doubling, capped, jittered delays and gives up after the attempts", async () => {
  const { sleep, slept } = fakeSleep();
  const seen: number[] = [];
  let calls = 0;
  await assert.rejects(
    withRetry(
      () => {
        calls++;
        return Promise.reject(new Deno.errors.ConnectionRefused("connection refused"));
      },
      { attempts: 6, initialMs: 100, maxMs: 1000 },
      {
        what: "push",
        sleep,
        random: () => 0.5,
        onRetry: (e) => seen.push(e.attempt),
      },
    ),
    Deno.errors.ConnectionRefused,
  );
  assert.equal(calls, 6);
  assert.deepEqual(slept, [50, 100, 200, 400, 500]);
  assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  // Full jitter: never above the ceiling, never below a tenth of it.
  assert.equal(backoffDelay(4, { attempts: 9, initialMs: 100, maxMs: 1000 }, () => 0.9999), 800);
  assert.equal(backoffDelay(9, { attempts: 9, initialMs: 100, maxMs: 1000 }, () => 0), 100);
});

Deno.test("withRetry returns the first success and fails a permanent error at once", async () => {
  const { sleep, slept } = fakeSleep();
  let calls = 0;
  const value = await withRetry(
    async () => {
      if (++calls < 3) throw new LockHeldError("Cannot open db: another run holds its lock");
      return await Promise.resolve("ok");
    },
    { attempts: 5, initialMs: 10, maxMs: 100 },
    { what: "open", sleep, random: () => 1 },
  );
  assert.equal(value, "ok");
  assert.equal(calls, 3);
  assert.equal(slept.length, 2);

  for (
    const permanent of [
      new EngineError('Cannot run SQL: Parser Error: syntax error at or near "SELEC"'),
      new ConfigError([{ file: "p.yaml", line: 1, col: 1, path: "lake", message: "required" }]),
      new Error("Binder Error: column x not found"),
    ]
  ) {
    let tries = 0;
    await assert.rejects(
      withRetry(
        () => {
          tries++;
          return Promise.reject(permanent);
        },
        { attempts: 5, initialMs: 10, maxMs: 100 },
        { what: "x", sleep },
      ),
      (e) => e === permanent,
    );
    assert.equal(tries, 1, `${permanent.message} is not retried`);
  }
});

Deno.test("isTransient knows lock conflicts and unreachable endpoints, and no permanent error", () => {
  assert.ok(
    isTransient(
      new Error('IO Error: Could not set lock on file "/l/s.duckdb": Conflicting lock is held'),
    ),
  );
  assert.ok(isTransient(new Error("database is locked")));
  assert.ok(
    isTransient(new TypeError("error sending request: tcp connect error: Connection refused")),
  );
  assert.ok(isTransient(new EngineError("Cannot write: No space left", { transient: true })));
  assert.ok(!isTransient(new SourceError('Cannot load source "orders": file is empty')));
  assert.ok(!isTransient(new EngineError("Cannot run SQL: Catalog Error: table x does not exist")));
  assert.deepEqual(retryPolicy({ attempts: 4, initial: "500ms", max: "30s" }), {
    attempts: 4,
    initialMs: 500,
    maxMs: 30_000,
  });
});

/** A 127.0.0.1 port nothing listens on (bound, then closed). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("an unreachable Pushgateway and lineage endpoint on a closed port are retried a bounded number of times and the run still succeeds", async () => {
  const port = closedPort();
  const p = await makeProject({
    yaml: (t) =>
      t + `
observability:
  metrics:
    pushgateway: { url: "http://127.0.0.1:${port}", retries: 3, timeout: 2 }
  lineage:
    url: "http://127.0.0.1:${port}/api/v1/lineage"
    retries: 2
    timeout: 2
`,
  });
  try {
    const run = await start(["run", "-c", p.configFile]);
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    const retries = events(r, "retry");
    assert.equal(retries.filter((e) => e.what === "pushgateway").length, 3, "3 retries, 4 tries");
    // The endpoint is given up after the first event's retries; the rest are dropped.
    assert.equal(retries.filter((e) => e.what === "lineage").length, 2);
    for (const e of retries) {
      assert.equal(e.level, "warn");
      assert.ok(Number(e.delay_ms) > 0);
    }
    assert.equal(events(r, "metrics_push_failed")[0]?.attempts, 4);
    assert.equal(
      (await readDb<{ status: string }>(p, "SELECT status FROM _sluice.runs"))[0].status,
      "success",
    );
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("a landing file still being written while extract looks at it is waited for, then landed whole", async () => {
  const p = await makeProject({
    runYaml: "  retries: { attempts: 40, initial: 200ms, max: 400ms }",
  });
  try {
    const existing = (await Array.fromAsync(Deno.readDir(p.ordersDir))).map((e) => e.name).sort();
    const template = (await Deno.readTextFile(join(p.ordersDir, existing[0]))).split("\n");
    const header = template[0];
    const rows = template.slice(1).filter((l) => l.trim() !== "");
    const growing = join(p.ordersDir, "orders_9999.csv");
    const file = await Deno.open(growing, { write: true, create: true, append: true });
    const enc = new TextEncoder();
    await file.write(enc.encode(header + "\n"));
    let written = 0;
    let writing = true;
    // The writer appends a row every 20 ms until the run says it is waiting for the file.
    const writer = (async () => {
      while (writing) {
        await file.write(enc.encode(rows[written % rows.length] + "\n"));
        written++;
        await new Promise((r) => setTimeout(r, 20));
      }
      // The end of the file: the rest in one go.
      for (let i = 0; i < 50; i++) {
        await file.write(enc.encode(rows[written % rows.length] + "\n"));
        written++;
      }
      file.close();
    })();
    const run = await start(["run", "-c", p.configFile]);
    const seen = await run.waitFor("retry", (e) => e.what === "source_file");
    assert.equal(seen.event, "retry", "extract saw the file grow");
    assert.match(String(seen.error), /orders_9999\.csv: it is still being written/);
    writing = false;
    await writer;
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    const landed = await readDb<{ n: bigint }>(
      p,
      `SELECT count(*) AS n FROM bronze.orders WHERE _source_file = 'orders_9999.csv'`,
    );
    assert.equal(Number(landed[0].n), written, "every row of the finished file was landed");
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("a database held by another process for a moment is retried when the run opens it", async () => {
  const p = await makeProject({
    runYaml: "  retries: { attempts: 50, initial: 100ms, max: 200ms }",
  });
  try {
    await Deno.mkdir(p.lake, { recursive: true });
    // Another process (this test) holds DuckDB's own lock on the file, not the run lock.
    const other = await DuckDBInstance.create(p.database);
    const run = await start(["run", "-c", p.configFile]);
    const seen = await run.waitFor("retry", (e) => e.what === "database_open");
    assert.equal(seen.event, "retry", "the run found the database locked and retried");
    other.closeSync();
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr.slice(-3000));
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});
