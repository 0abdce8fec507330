import assert from "node:assert/strict";
import {
  event,
  logRecords,
  makeStreamProject,
  q,
  runSluice,
  spawnSluice,
  streamYaml,
  watchLines,
  writeLanding,
} from "./fixtures/streaming.ts";

Deno.test("sluice stream --trigger available-now processes a 50-file folder and exits 0", async () => {
  const p = await makeStreamProject(streamYaml({ maxFiles: 7 }));
  for (let f = 0; f < 50; f++) {
    const rows = Array.from({ length: 20 }, (_, i) => event(`f${f}_${i}`, f * 20 + i));
    if (f % 10 === 3) rows.push("{broken");
    await writeLanding(p, `f_${String(f).padStart(2, "0")}.ndjson`, rows.join("\n") + "\n");
  }
  const r = await runSluice(["stream", "-c", p.configFile, "--trigger", "available-now"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /stream events_v1 \(available-now\): 8 batches, 1,005 read, 1,000 written, 5 dead-lettered \(malformed_json 5\)/,
  );
  const logs = logRecords(r.stderr.split("\n"));
  const committed = logs.filter((l) => l.event === "batch_committed");
  assert.equal(committed.length, 8);
  for (const l of committed) {
    for (
      const k of [
        "records_read",
        "written",
        "dead_lettered",
        "by_reason",
        "duration_ms",
        "watermark",
        "watermark_lag_seconds",
        "files_pending",
        "bytes_behind",
      ]
    ) {
      assert.ok(k in l, `batch_committed has ${k}`);
    }
    assert.equal(typeof l.run_id, "string");
  }
  assert.deepEqual(committed.at(-1)?.files_pending, 0);
  const files = await q(p, "SELECT count(*) AS n FROM _sluice.stream_files WHERE status = 'done'");
  assert.equal(files[0].n, 50);
  const again = await runSluice(["stream", "-c", p.configFile, "--trigger", "once"]);
  assert.equal(again.code, 0);
  assert.match(again.stdout, /0 batches/);
});

Deno.test("sluice stream --trigger interval stops cleanly on SIGTERM and exits 143", async () => {
  const p = await makeStreamProject(streamYaml({ interval: "1s", maxFiles: 1 }));
  await writeLanding(p, "a.ndjson", event("e1", 0) + "\n");
  const child = spawnSluice(["stream", "-c", p.configFile, "--trigger", "interval"]);
  const err = watchLines(child.stderr);
  const stdout = new Response(child.stdout).text();
  assert.ok(await err.until((l) => l.includes('"event":"batch_committed"')), err.lines.join("\n"));
  child.kill("SIGTERM");
  const status = await child.status;
  await err.done;
  assert.equal(status.code, 143, err.lines.join("\n"));
  assert.equal(status.signal, null);
  const logs = logRecords(err.lines);
  assert.ok(logs.some((l) => l.event === "run_stopping" && l.signal === "SIGTERM"));
  const stopped = logs.find((l) => l.event === "stream_stopped");
  assert.equal(stopped?.reason, "signal");
  assert.match(await stdout, /stopped: signal/);
  const runs = await q(p, "SELECT status FROM _sluice.runs WHERE command = 'stream'");
  assert.deepEqual(runs, [{ status: "cancelled" }]);
  assert.equal((await q(p, "SELECT count(*) AS n FROM silver.events"))[0].n, 1);
});

Deno.test("sluice stream without a streaming: section is a config error (exit 2)", async () => {
  const p = await makeStreamProject(
    "pipeline: shop\nlake: ./lake\nsources:\n  orders: { format: csv, path: ./orders }\n",
  );
  const r = await runSluice(["stream", "-c", p.configFile, "--trigger", "once"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /streaming: missing the streaming: section/);
  const bad = await runSluice(["stream", "-c", p.configFile, "--trigger", "sometimes"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Allowed choices are once, available-now, interval/);
});

Deno.test("a duration typo in the config fails sluice stream with FILE:LINE:COL", async () => {
  const p = await makeStreamProject(streamYaml({ delay: '"1 hourz"' }));
  const r = await runSluice(["stream", "-c", p.configFile, "--trigger", "once"]);
  assert.equal(r.code, 2);
  const line = streamYaml().split("\n").findIndex((l) => l.includes("delay:")) + 1;
  assert.match(
    r.stderr,
    new RegExp(`pipeline\\.yaml:${line}:\\d+ streaming\\.watermark\\.delay: unknown unit "hourz"`),
  );
});

Deno.test("data loss stops sluice stream with one line naming the file (exit 1)", async () => {
  const p = await makeStreamProject(streamYaml({ maxRecords: 2 }));
  const file = await writeLanding(
    p,
    "big.ndjson",
    [0, 1, 2, 3].map((i) => event(`e${i}`, i)).join("\n") + "\n",
  );
  const first = await runSluice(["stream", "-c", p.configFile, "--trigger", "once"]);
  assert.equal(first.code, 0, first.stderr);
  await Deno.writeTextFile(file, "{}\n");
  const r = await runSluice(["stream", "-c", p.configFile, "--trigger", "available-now"]);
  assert.equal(r.code, 1);
  const line = logRecords(r.stderr.split("\n")).find((l) => l.event === "command_failed");
  assert.match(
    String(line?.message),
    new RegExp(`sluice: Cannot continue stream "events_v1": ${file} was truncated`),
  );
  assert.equal(line?.error_kind, "data_loss");
});

Deno.test("sluice explain prints the delivery guarantee in plain words", async () => {
  const p = await makeStreamProject(
    streamYaml({ failOnDataLoss: false, cleanSource: "archive", windows: true }),
  );
  const r = await runSluice(["explain", "-c", p.configFile]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Delivery: exactly-once into silver\.events/);
  assert.match(r.stdout, /ONE DuckDB\s+transaction/);
  assert.match(r.stdout, /Dead-letter queue: silver\.events__dlq/);
  assert.match(r.stdout, /- late: event time \(event_time\) older than the watermark/);
  assert.match(r.stdout, /the rest\s+of it is skipped with a warning/);
  assert.match(r.stdout, /Moved to .*archive after the commit/);
  assert.match(r.stdout, /gold\.per_minute: tumbling 1m windows per country/);
});

Deno.test("sluice dlq list and replay work from the command line", async () => {
  const p = await makeStreamProject(streamYaml({ countryRequired: true }));
  await writeLanding(
    p,
    "a.ndjson",
    [event("e1", 0), event("e2", 1, { country: null }), "{x"].join("\n") + "\n",
  );
  assert.equal((await runSluice(["stream", "-c", p.configFile, "--trigger", "once"])).code, 0);
  const list = await runSluice(["dlq", "-c", p.configFile, "list", "--reason", "schema_violation"]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /events__dlq\s+schema_violation\s+1\s+0/);
  assert.match(list.stdout, /field "country": required but missing or null/);
  const json = await runSluice(["dlq", "-c", p.configFile, "list", "--json"]);
  const rows = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(rows.map((r) => r._reason_code).sort(), ["malformed_json", "schema_violation"]);
  await Deno.writeTextFile(p.configFile, streamYaml({ countryRequired: false }));
  const replay = await runSluice(["dlq", "-c", p.configFile, "replay"]);
  assert.equal(replay.code, 0, replay.stderr);
  assert.match(
    replay.stdout,
    /events__dlq: replayed 1 of 2 selected row\(s\) into silver\.events; still failing: malformed_json 1/,
  );
  const twice = await runSluice(["dlq", "-c", p.configFile, "replay"]);
  assert.match(twice.stdout, /replayed 0 of 1 selected/);
  const bad = await runSluice(["dlq", "-c", p.configFile, "list", "--where", "1=1; DROP TABLE x"]);
  assert.equal(bad.code, 2);
  const wrong = await runSluice(["dlq", "-c", p.configFile, "purge"]);
  assert.equal(wrong.code, 2);
  assert.equal((await q(p, "SELECT count(*) AS n FROM silver.events"))[0].n, 2);
});
