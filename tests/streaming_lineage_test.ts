/**
 * A stream run goes through the same run observer as a batch run: OpenLineage
 * START and COMPLETE (or FAIL) events for the run, to the file transport, and
 * the run metrics (`sluice_run_status`) on the stream's registry.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { RunEvent } from "../observability/lineage.ts";
import {
  event,
  makeStreamProject,
  streamProject,
  streamYaml,
  writeLanding,
} from "./fixtures/streaming.ts";

const LINEAGE =
  "observability:\n  lineage:\n    file: ./lineage.ndjson\n    namespace: shop-stream";

async function readEvents(dir: string): Promise<RunEvent[]> {
  const text = await Deno.readTextFile(join(dir, "lineage.ndjson"));
  return text.trim().split("\n").map((l) => JSON.parse(l) as RunEvent);
}

Deno.test("a stream run emits OpenLineage START then COMPLETE for its run to the lineage file", async () => {
  const p = await makeStreamProject(streamYaml({ extra: LINEAGE }));
  try {
    await writeLanding(p, "a.ndjson", [event("e1", 1), event("e2", 2)].join("\n") + "\n");
    const s = await streamProject(p, { run: { runId: "stream-run-1" } });
    assert.equal(s.written, 2);
    const events = await readEvents(p.dir);
    assert.deepEqual(events.map((e) => [e.eventType, e.job.name]), [
      ["START", "shop"],
      ["COMPLETE", "shop"],
    ]);
    assert.equal(events[0].job.namespace, "shop-stream");
    assert.equal(events[0].run.runId, events[1].run.runId, "one run, START and its end");
    const status = await s.metrics.getSingleMetric("sluice_run_status")!.get();
    const one = status.values.filter((v) => v.value === 1).map((v) => v.labels.status);
    assert.deepEqual(one, ["success"], "the stream's registry has the run metrics too");
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("a stream run that fails emits OpenLineage FAIL with the error", async () => {
  // A window aggregate reading a file: the SQL guard stops the stream before its first batch.
  const bad = [
    "  windows:",
    "    per_minute:",
    "      size: 1 minute",
    "      group_by: [country]",
    `      aggregates: { n: "(SELECT count(*) FROM read_text('/etc/hostname'))" }`,
    LINEAGE,
  ].join("\n");
  const p = await makeStreamProject(streamYaml({ extra: bad }));
  try {
    await writeLanding(p, "a.ndjson", event("e1", 1) + "\n");
    const e = await streamProject(p).then(() => undefined, (e: Error) => e);
    assert.ok(e instanceof Error, "the stream failed");
    const events = await readEvents(p.dir);
    assert.deepEqual(events.map((ev) => ev.eventType), ["START", "FAIL"]);
    const facets = events[1].run.facets as Record<string, { message?: string }>;
    assert.ok(facets.errorMessage?.message?.includes("read_text"), JSON.stringify(facets));
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});
