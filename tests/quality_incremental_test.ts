/**
 * `sluice check --full`: a full audit sees every row of bronze and of the
 * quarantine tables, where a plain `sluice check` sees their latest batch.
 *
 * @module
 */
import assert from "node:assert/strict";
import { makeProject, sluice, writeFile } from "./_helpers.ts";

const YAML = `pipeline: audit
lake: ./lake
engine: { threads: 2 }
sources:
  orders:
    format: csv
    path: ./landing/orders
    glob: "*.csv"
    checks:
      - accepted_values: { column: status, values: [new, paid], severity: warn }
silver:
  orders:
    from: orders
    key: [order_id]
    mode: merge
    columns:
      order_id: { type: BIGINT, nullable: false }
      status: { type: VARCHAR }
`;

Deno.test("check --full reports a bronze failure of an earlier batch that plain check does not see", async () => {
  const p = await makeProject(YAML, {
    "landing/orders/a.csv": "order_id,status\n1,new\n2,lost\n3,lost\n",
  });
  try {
    const first = await sluice(["run", "-c", p.configFile, "--run-id", "run1"]);
    assert.equal(first.code, 0, first.stderr);
    await writeFile(p.dir, "landing/orders/b.csv", "order_id,status\n4,paid\n5,new\n");
    const second = await sluice(["run", "-c", p.configFile, "--run-id", "run2"]);
    assert.equal(second.code, 0, second.stderr);

    const latest = await sluice(["check", "-c", p.configFile, "--layer", "bronze"]);
    assert.equal(latest.code, 0, latest.stderr);
    assert.match(latest.stdout, /bronze\s+orders\s+accepted_values_status\s+warn\s+pass\s+0\s+2\b/);

    const full = await sluice(["check", "-c", p.configFile, "--layer", "bronze", "--full"]);
    assert.equal(full.code, 0, full.stderr);
    assert.match(full.stdout, /bronze\s+orders\s+accepted_values_status\s+warn\s+fail\s+2\s+5\b/);
  } finally {
    await Deno.remove(p.dir, { recursive: true });
  }
});
