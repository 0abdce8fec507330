import assert from "node:assert/strict";
import fc from "fast-check";
import { join } from "node:path";
import { openEngine } from "../core/engine.ts";
import { EngineError, SandboxError } from "../core/errors.ts";
import { ident, isIdentifier, literal, rawIdent, sqlType } from "../core/quote.ts";

Deno.test("the sandbox refuses files outside the allowed folders and locks its configuration", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "ok.csv"), "a\n1\n");
  const db = await openEngine(join(dir, "t.duckdb"), {
    allowedDirectories: [dir],
    threads: 1,
    memoryLimit: "512MB",
    tempDirectory: join(dir, "tmp"),
  });
  try {
    assert.deepEqual(await db.all(`SELECT a FROM read_csv(${literal(join(dir, "ok.csv"))})`), [{
      a: 1,
    }]);
    await assert.rejects(() => db.all("SELECT * FROM read_csv('/etc/passwd')"), SandboxError);
    await assert.rejects(() => db.run("SET enable_external_access = true"), EngineError);
    await assert.rejects(() => db.run("SET allowed_directories = ['/']"), EngineError);
    const s = await db.one<{ t: string; m: string }>(
      "SELECT current_setting('threads')::VARCHAR AS t, current_setting('memory_limit') AS m",
    );
    assert.equal(s?.t, "1");
    assert.match(s!.m, /^(488\.2 MiB|512\.0 MB|488 MiB)/);
  } finally {
    db.close();
  }
});

Deno.test("a transaction rolls back every write when its body throws", async () => {
  const dir = await Deno.makeTempDir();
  const db = await openEngine(join(dir, "t.duckdb"), { allowedDirectories: [dir] });
  try {
    await db.run("CREATE TABLE t (x INTEGER)");
    await assert.rejects(() =>
      db.transaction(async () => {
        await db.run("INSERT INTO t VALUES (1), (2)");
        await db.transaction(async () => await db.run("INSERT INTO t VALUES (3)"));
        throw new Error("stop");
      })
    );
    assert.deepEqual(await db.all("SELECT count(*) AS n FROM t"), [{ n: 0 }]);
    const n = await db.transaction(() => db.run("INSERT INTO t VALUES (1), (2)"));
    assert.equal(n, 2);
  } finally {
    db.close();
  }
});

Deno.test("a second connection has its own transactions, the same sandbox and search path", async () => {
  const dir = await Deno.makeTempDir();
  const db = await openEngine(join(dir, "t.duckdb"), {
    allowedDirectories: [dir],
    schemas: ["gold"],
    searchPath: ["gold"],
  });
  try {
    await db.run("CREATE TABLE gold.t (x INTEGER)");
    const other = await db.connect();
    try {
      // Unqualified names resolve through the same search path.
      await other.run("INSERT INTO t VALUES (1)");
      await assert.rejects(() => other.all("SELECT * FROM read_csv('/etc/passwd')"), SandboxError);
      await assert.rejects(() => other.run("SET enable_external_access = true"), EngineError);
      // Uncommitted rows of one connection are invisible to the other.
      await other.transaction(async () => {
        await other.run("INSERT INTO t VALUES (2)");
        assert.deepEqual(await db.all("SELECT count(*) AS n FROM t"), [{ n: 1 }]);
      });
      assert.deepEqual(await db.all("SELECT count(*) AS n FROM t"), [{ n: 2 }]);
    } finally {
      other.close();
    }
    // Closing the second connection leaves the database open.
    assert.deepEqual(await db.all("SELECT sum(x) AS s FROM t"), [{ s: 3 }]);
  } finally {
    db.close();
  }
});

Deno.test("literal() round-trips any string through DuckDB unchanged", async () => {
  const db = await openEngine(":memory:", { allowedDirectories: ["/tmp"] });
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: "binary", maxLength: 40 }).filter((s) => !s.includes("\0")),
        async (s) => {
          const row = await db.one<{ v: string }>(`SELECT ${literal(s)} AS v`);
          assert.equal(row?.v, s);
        },
      ),
      { numRuns: 300 },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !s.includes("\0")),
        async (s) => {
          const row = await db.one(`SELECT 1 AS ${rawIdent(s)}`);
          assert.deepEqual(Object.keys(row ?? {}), [s]);
        },
      ),
      { numRuns: 200 },
    );
  } finally {
    db.close();
  }
});

Deno.test("ident() accepts only plain identifiers and sqlType() only type names", () => {
  assert.equal(ident("orders_2026"), '"orders_2026"');
  for (const bad of ["", "1abc", "a b", 'x"; DROP TABLE t; --', "a.b", "ä"]) {
    assert.equal(isIdentifier(bad), false, bad);
    assert.throws(() => ident(bad), TypeError);
  }
  assert.equal(sqlType("decimal(12, 2)"), "DECIMAL(12, 2)");
  assert.throws(() => sqlType("INT); DROP TABLE x; --"), TypeError);
});
