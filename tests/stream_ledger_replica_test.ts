/**
 * While `sluice stream` runs it holds the pipeline's DuckDB file; the
 * read-only commands fall back to the ledger replica the stream writes
 * after each committed batch (`<lake>/.ledger_replica.duckdb`), say so on
 * stderr, and show the data as of the last batch.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../core/config/mod.ts";
import { openLedgerReplica } from "../core/ledger_replica.ts";
import {
  event,
  logRecords,
  makeStreamProject,
  q,
  runSluice,
  spawnSluice,
  streamProject,
  streamYaml,
  watchLines,
  writeLanding,
} from "./fixtures/streaming.ts";

Deno.test("runs and dlq list answer from the ledger replica while sluice stream runs", async () => {
  const p = await makeStreamProject(streamYaml({ interval: "1s", maxFiles: 1 }));
  await writeLanding(
    p,
    "a.ndjson",
    [event("e1", 0), "{not json", event("e2", 1)].join("\n") + "\n",
  );
  const child = spawnSluice(["stream", "-c", p.configFile, "--trigger", "interval"]);
  const err = watchLines(child.stderr);
  const stdout = new Response(child.stdout).text();
  try {
    const committed = (n: number) =>
      err.until(() =>
        logRecords(err.lines).filter((l) => l.event === "batch_committed").length >= n
      );
    assert.ok(await committed(1), err.lines.join("\n"));

    const runs = await runSluice(["runs", "-c", p.configFile, "--json"]);
    assert.equal(runs.code, 0, runs.stderr);
    assert.match(runs.stderr, /held by a running stream; showing the ledger replica as of/);
    const listed = JSON.parse(runs.stdout) as { command: string; status: string }[];
    assert.deepEqual(listed.map((r) => [r.command, r.status]), [["stream", "running"]]);

    const dlq1 = await runSluice(["dlq", "list", "-c", p.configFile, "--json"]);
    assert.equal(dlq1.code, 0, dlq1.stderr);
    assert.match(dlq1.stderr, /showing the ledger replica as of/);
    const rows1 = dlq1.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(rows1.map((r) => [r._reason_code, r._source_row]), [["malformed_json", 2]]);

    // A second batch: the replica follows it.
    await writeLanding(p, "b.ndjson", ["[1]", event("e3", 2)].join("\n") + "\n");
    assert.ok(await committed(2), err.lines.join("\n"));
    const dlq2 = await runSluice(["dlq", "list", "-c", p.configFile, "--json"]);
    assert.equal(dlq2.code, 0, dlq2.stderr);
    const rows2 = dlq2.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(rows2.map((r) => r._reason_code).sort(), ["malformed_json", "malformed_json"]);
    for (
      const args of [
        ["files", "-c", p.configFile],
        ["report", "-c", p.configFile, "-o", join(p.dir, "report.html")],
      ]
    ) {
      const r = await runSluice(args);
      assert.equal(r.code, 0, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /showing the ledger replica as of/);
    }
    const text = await runSluice(["dlq", "list", "-c", p.configFile]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /events__dlq/);
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await err.done;
    await stdout;
  }
  // Stopped: the commands read the database itself again, and the replica has the final status.
  const after = await runSluice(["runs", "-c", p.configFile, "--json"]);
  assert.equal(after.code, 0, after.stderr);
  assert.doesNotMatch(after.stderr, /replica/);
  assert.deepEqual(
    (JSON.parse(after.stdout) as { status: string }[]).map((r) => r.status),
    ["cancelled"],
  );
  await Deno.remove(p.dir, { recursive: true });
});

Deno.test("the ledger replica holds the ledger and DLQ as of the last batch", async () => {
  const p = await makeStreamProject(streamYaml({}));
  await writeLanding(p, "a.ndjson", [event("e1", 0), "{bad", event("e2", 1)].join("\n") + "\n");
  await streamProject(p);
  const config = await loadConfig(p.configFile);
  const replica = await openLedgerReplica(config);
  assert.ok(replica, "no replica written");
  try {
    assert.equal(replica.path, join(config.lake, ".ledger_replica.duckdb"));
    const [b] = await replica.db.all<{ n: number; dead: number }>(
      "SELECT count(*)::INTEGER AS n, sum(dead_lettered)::INTEGER AS dead FROM _sluice.stream_batches",
    );
    assert.deepEqual(b, { n: 1, dead: 1 });
    const [r] = await replica.db.all<{ status: string }>(
      "SELECT status FROM _sluice.runs WHERE command = 'stream'",
    );
    assert.equal(r.status, "success");
    const [d] = await replica.db.all<{ n: number }>(
      "SELECT count(*)::INTEGER AS n FROM silver.events__dlq",
    );
    assert.equal(d.n, 1);
    // Read-only: the replica cannot be written through.
    await assert.rejects(replica.db.run("DELETE FROM _sluice.runs"), /read-only/i);
  } finally {
    replica.db.close();
  }
  // The source database agrees.
  assert.equal((await q(p, "SELECT count(*)::INTEGER AS n FROM silver.events__dlq"))[0].n, 1);
  await Deno.remove(p.dir, { recursive: true });
});
