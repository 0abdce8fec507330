/**
 * Issue 14, fixed cost per run: the `on_missing` policies read the file
 * manifest once for every source instead of once per source. Each source
 * must still see only its own vanished files, under its own policy.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SourceError } from "../core/errors.ts";
import { makeProject, query, runOnce } from "./_helpers.ts";

const yaml = `pipeline: two_sources
lake: ./lake
engine: { threads: 2 }
sources:
  sales:
    format: csv
    path: ./landing/sales
    glob: "*.csv"
    on_missing: keep
  refunds:
    format: csv
    path: ./landing/refunds
    glob: "*.csv"
    on_missing: fail
silver:
  sales:
    from: sales
    mode: append
    columns:
      id: { type: BIGINT }
  refunds:
    from: refunds
    mode: append
    columns:
      id: { type: BIGINT }
`;

Deno.test("a vanished file of one source is judged by that source's on_missing only, with the manifest read once", async () => {
  const p = await makeProject(yaml, {
    "landing/sales/a.csv": "id\n1\n",
    "landing/sales/b.csv": "id\n2\n",
    "landing/refunds/a.csv": "id\n9\n",
  });
  await runOnce(p);
  // sales (keep) loses b.csv: the run goes on and keeps its rows.
  await Deno.remove(join(p.dir, "landing/sales/b.csv"));
  const kept = await runOnce(p);
  assert.equal(kept.status, "success");
  assert.deepEqual(await query(p, "SELECT count(*) AS n FROM bronze.sales"), [{ n: 2 }]);
  // refunds (fail) loses its a.csv, which has the same name as a sales file
  // still present: only refunds' own file is named.
  await Deno.remove(join(p.dir, "landing/refunds/a.csv"));
  await assert.rejects(() => runOnce(p), (e: unknown) => {
    assert.ok(e instanceof SourceError, String(e));
    assert.match(e.message, /^Cannot load source "refunds": 1 landed file\(s\) .*: a\.csv \(/);
    return true;
  });
});
