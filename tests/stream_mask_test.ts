/**
 * `streaming.mask`: the masked columns' values never reach a dead letter's
 * copy of the record (`_payload`), a failed cast's `_reason`, the logs,
 * `sluice dlq list` or the report, for invalid, unparseable and late
 * records, NDJSON and CSV alike; the target table keeps the values, and a
 * masked DLQ is not replayed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError } from "../core/errors.ts";
import { parseConfig } from "../core/config/mod.ts";
import {
  event,
  makeStreamProject,
  q,
  runSluice,
  streamProject,
  streamYaml,
  writeLanding,
} from "./fixtures/streaming.ts";

type DeadLetter = { _reason_code: string; _reason: string; _payload: string; _source_row: number };

Deno.test("stream mask keeps masked values out of dead letters, logs, dlq list and the report", async () => {
  const p = await makeStreamProject(streamYaml({ extra: "  mask: [country, amount]" }));
  const lines = [
    event("e1", 7200, { country: "SECRETLAND", amount: 12.5 }),
    event("e2", 7201, { country: "SECRETLAND2", amount: "SECRET-AMOUNT-77" }),
    '{"event_id": "e3", "country": "SECRETLAND3", ',
    event("e4", 0, { country: "SECRETLAND4" }),
    event("e5", 7202, { country: null, amount: "SECRET-AMOUNT-5" }),
    event("e6", 7203, { event_id: null, country: "SECRETLAND6" }),
  ];
  await writeLanding(p, "a.ndjson", lines.join("\n") + "\n");
  try {
    const run = await runSluice([
      "--log-level",
      "debug",
      "stream",
      "-c",
      p.configFile,
      "--trigger",
      "available-now",
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stdout + run.stderr, /SECRET/);

    const dead = await q<DeadLetter>(
      p,
      `SELECT _reason_code, _reason, _payload, _source_row FROM silver.events__dlq
       ORDER BY _source_row`,
    );
    assert.deepEqual(dead.map((d) => [d._source_row, d._reason_code]), [
      [2, "schema_violation"],
      [3, "malformed_json"],
      [4, "late"],
      [5, "schema_violation"],
      [6, "schema_violation"],
    ]);
    assert.equal(dead[0]._reason, 'field "amount": cannot cast *** (masked) to DECIMAL(12,2)');
    const payload = (i: number) => JSON.parse(dead[i]._payload) as Record<string, unknown>;
    assert.deepEqual(
      [payload(0).event_id, payload(0).country, payload(0).amount],
      ["e2", "***", "***"],
    );
    assert.equal(dead[1]._payload, "***", "a record that does not parse is not shown");
    assert.deepEqual([payload(2).event_id, payload(2).country], ["e4", "***"]);
    assert.deepEqual([payload(3).country, payload(3).amount], [null, "***"], "null stays null");
    assert.deepEqual([payload(4).event_id, payload(4).country], [null, "***"]);
    const whole = await q<{ t: string }>(p, `SELECT d::VARCHAR AS t FROM silver.events__dlq AS d`);
    assert.doesNotMatch(whole.map((r) => r.t).join("\n"), /SECRET/);
    // The target keeps the values.
    const kept = await q<{ country: string }>(p, `SELECT country FROM silver.events`);
    assert.deepEqual(kept.map((r) => r.country), ["SECRETLAND"]);

    const list = await runSluice(["dlq", "list", "-c", p.configFile, "--json"]);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout.trim().split("\n").length, 5);
    assert.doesNotMatch(list.stdout + list.stderr, /SECRET/);
    const html = join(p.dir, "report.html");
    const report = await runSluice(["report", "-c", p.configFile, "-o", html]);
    assert.equal(report.code, 0, report.stderr);
    assert.doesNotMatch(await Deno.readTextFile(html), /SECRET/);

    const replay = await runSluice(["dlq", "replay", "-c", p.configFile]);
    assert.equal(replay.code, 2, replay.stderr);
    assert.match(replay.stderr, /Cannot replay events__dlq: the stream masks country, amount/);
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("stream mask replaces only the masked CSV fields' text, and hides a line that does not parse", async () => {
  const p = await makeStreamProject(
    streamYaml({ format: "csv", extra: "  mask: [country]", amountType: "INTEGER" }),
  );
  await writeLanding(
    p,
    "a.csv",
    [
      "event_id,event_time,country,amount",
      "e1,2026-01-01T02:00:00Z,SECRETLAND,5",
      'e2,2026-01-01T02:00:01Z,"SECRET, LAND",x7',
      "e3,2026-01-01T02:00:02Z,,x8",
      'e4,2026-01-01T02:00:03Z,"SECRET LAND,9',
      "e5,2026-01-01T00:00:00Z,SECRETLAND5,6",
    ].join("\n") + "\n",
  );
  try {
    await streamProject(p);
    const dead = await q<DeadLetter>(
      p,
      `SELECT _reason_code, _reason, _payload, _source_row FROM silver.events__dlq
       ORDER BY _source_row`,
    );
    assert.deepEqual(dead.map((d) => [d._reason_code, d._payload]), [
      ["schema_violation", "e2,2026-01-01T02:00:01Z,***,x7"],
      ["schema_violation", "e3,2026-01-01T02:00:02Z,,x8"],
      ["malformed_csv", "***"],
      ["late", "e5,2026-01-01T00:00:00Z,***,6"],
    ]);
    assert.match(dead[0]._reason, /field "amount": cannot cast "x7" to INTEGER/);
    const kept = await q<{ country: string }>(p, `SELECT country FROM silver.events`);
    assert.deepEqual(kept.map((r) => r.country), ["SECRETLAND"]);
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("stream mask must name declared columns other than the watermark column", () => {
  const problems = (extra: string) => {
    try {
      parseConfig(streamYaml({ extra }), "/srv/shop/pipeline.yaml");
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      return e.problems.map((p) => `${p.path}: ${p.message}`);
    }
    return [];
  };
  assert.deepEqual(problems("  mask: [country]"), []);
  const unknown = problems("  mask: [country, phone]");
  assert.equal(unknown.length, 1, unknown.join("\n"));
  assert.match(unknown[0], /^streaming\.mask\.1: "phone" is not among the declared columns/);
  const watermark = problems("  mask: [event_time]");
  assert.equal(watermark.length, 1, watermark.join("\n"));
  assert.match(watermark[0], /^streaming\.mask\.0: "event_time" is the watermark column/);
});
