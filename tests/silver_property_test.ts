/**
 * Property: whatever sequence of new, re-sent (changed content), retracted
 * and vanished files a landing folder goes through, after each run every
 * silver table (append, merge, scd2, replace) and every gold table holds
 * what a from-scratch build of the files currently landed gives (rows
 * compared sorted, without the run-specific columns `_bronze_run_id`,
 * `valid_from` and `valid_to`; `_source_file` compared by file name).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { loadConfig } from "../core/config/mod.ts";
import { withRun } from "../runtime/with_run.ts";
import { retractFiles } from "../stages/retract.ts";
import { openPipelineDb } from "../core/pipeline_db.ts";
import { makeProject, type Project, runOnce, writeFile } from "./_helpers.ts";

const YAML = `pipeline: prop
lake: ./lake
engine: { threads: 1 }
sources:
  ev:
    format: csv
    path: ./landing/ev
    glob: "*.csv"
    on_change: reingest
    on_missing: retract
silver:
  s_append:
    from: ev
    mode: append
    max_quarantine: "100%"
    columns:
      slot: { type: INTEGER }
      k: { type: INTEGER }
      v: { type: INTEGER }
      ts: { type: BIGINT }
  s_merge:
    from: ev
    mode: merge
    max_quarantine: "100%"
    key: [k]
    order_by: ts
    columns:
      k: { type: INTEGER }
      v: { type: INTEGER }
      ts: { type: BIGINT }
  s_scd2:
    from: ev
    mode: scd2
    max_quarantine: "100%"
    key: [slot, k]
    columns:
      slot: { type: INTEGER }
      k: { type: INTEGER }
      v: { type: INTEGER }
  s_replace:
    from: ev
    mode: replace
    max_quarantine: "100%"
    key: [k]
    order_by: ts
    columns:
      k: { type: INTEGER }
      v: { type: INTEGER }
      ts: { type: BIGINT }
gold:
  by_key:
    sql: select k, count(*) as n, sum(v) as total from s_append group by k
  latest:
    sql: select count(*) as keys, sum(v) as total from s_merge
quality: { profiling: false }
`;

/** What happens to the folder before a run. */
type Action =
  | { kind: "new"; rows: [number, string][] }
  | { kind: "resend"; pick: number; rows: [number, string][] }
  | { kind: "retract"; pick: number }
  | { kind: "delete"; pick: number };

// A value is a small integer, now and then one that fails its cast (quarantined).
const valueArb = fc.oneof(
  { weight: 9, arbitrary: fc.integer({ min: -9, max: 9 }).map(String) },
  { weight: 1, arbitrary: fc.constant("x") },
);
const rowsArb = fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), valueArb), {
  minLength: 1,
  maxLength: 4,
});
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { weight: 3, arbitrary: rowsArb.map((rows) => ({ kind: "new" as const, rows })) },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.nat(), rowsArb).map(([pick, rows]) => ({
      kind: "resend" as const,
      pick,
      rows,
    })),
  },
  { weight: 1, arbitrary: fc.nat().map((pick) => ({ kind: "retract" as const, pick })) },
  { weight: 1, arbitrary: fc.nat().map((pick) => ({ kind: "delete" as const, pick })) },
);

/** A file of the folder: its name and content, and whether it is retracted. */
interface Slot {
  name: string;
  content: string;
  retracted: boolean;
}

const TABLES: Record<string, string> = {
  s_append: `SELECT slot, k, v, ts, regexp_replace(_source_file, '^.*/', '') AS f, _source_row
    FROM silver.s_append`,
  s_merge: `SELECT k, v, ts, regexp_replace(_source_file, '^.*/', '') AS f, _source_row
    FROM silver.s_merge`,
  s_scd2: `SELECT slot, k, v, is_current, regexp_replace(_source_file, '^.*/', '') AS f,
    _source_row FROM silver.s_scd2`,
  s_replace: `SELECT k, v, ts, regexp_replace(_source_file, '^.*/', '') AS f, _source_row
    FROM silver.s_replace`,
  by_key: "SELECT * FROM gold.by_key",
  latest: "SELECT * FROM gold.latest",
};

/** Every table of a project, each as its sorted rows (JSON text). */
async function snapshot(p: Project): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  const db = await openPipelineDb(await loadConfig(p.configFile));
  try {
    for (const [t, sql] of Object.entries(TABLES)) {
      const exists = await db.one(
        `SELECT 1 AS x FROM duckdb_tables() WHERE table_name = $t`,
        { t },
      );
      const rows = exists
        ? await db.all<{ j: string }>(`SELECT to_json(x)::VARCHAR AS j FROM (${sql}) AS x`)
        : [];
      out[t] = rows.map((r) => r.j).sort();
    }
  } finally {
    db.close();
  }
  return out;
}

Deno.test("after any sequence of new, re-sent, retracted and vanished files, silver and gold equal a from-scratch build", async () => {
  let ts = 0;
  const csv = (slot: number, rows: [number, string][]) =>
    "slot,k,v,ts\n" + rows.map(([k, v]) => `${slot},${k},${v},${++ts}`).join("\n") + "\n";
  await fc.assert(
    fc.asyncProperty(rowsArb, fc.array(actionArb, { maxLength: 3 }), async (first, more) => {
      // The first run lands a file (a source with nothing ever landed is an error).
      const actions: Action[] = [{ kind: "new", rows: first }, ...more];
      const p = await makeProject(YAML);
      await Deno.mkdir(join(p.dir, "landing/ev"), { recursive: true });
      const slots: Slot[] = [];
      let named = 0;
      const dirs = [p.dir];
      try {
        for (const a of actions) {
          const live = slots.filter((s) => !s.retracted);
          if (a.kind === "new") {
            const s = { name: `f${named}.csv`, content: "", retracted: false };
            s.content = csv(named++, a.rows);
            slots.push(s);
            await writeFile(p.dir, `landing/ev/${s.name}`, s.content);
          } else if (a.kind === "resend" && slots.length > 0) {
            const s = slots[a.pick % slots.length];
            s.content = csv(Number(s.name.slice(1, -4)), a.rows);
            s.retracted = false;
            await writeFile(p.dir, `landing/ev/${s.name}`, s.content);
          } else if (a.kind === "retract" && live.length > 0) {
            const s = live[a.pick % live.length];
            const config = await loadConfig(p.configFile);
            await withRun(
              config,
              { trigger: "test" },
              (ctx) => retractFiles(ctx, { source: "ev", files: [s.name] }),
            );
            s.retracted = true;
          } else if (a.kind === "delete" && live.length > 0) {
            const s = live[a.pick % live.length];
            await Deno.remove(join(p.dir, "landing/ev", s.name));
            slots.splice(slots.indexOf(s), 1);
          }
          await runOnce(p);
          const landed = slots.filter((x) => !x.retracted);
          const got = await snapshot(p);
          if (landed.length === 0) {
            // Nothing landed: every silver table is empty (gold has no input).
            for (const t of ["s_append", "s_merge", "s_scd2", "s_replace"]) {
              assert.deepEqual(got[t], [], `${t} ${JSON.stringify(actions)}`);
            }
            continue;
          }
          // The reference: the files landed now, built from scratch in one run.
          const fresh = await makeProject(YAML);
          dirs.push(fresh.dir);
          for (const s of landed) await writeFile(fresh.dir, `landing/ev/${s.name}`, s.content);
          await runOnce(fresh);
          assert.deepEqual(got, await snapshot(fresh), JSON.stringify(actions));
        }
      } finally {
        for (const d of dirs) await Deno.remove(d, { recursive: true });
      }
    }),
    { numRuns: 10 },
  );
});
