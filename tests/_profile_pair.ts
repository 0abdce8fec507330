/**
 * Two projects fed the same files run by run, one with `quality.scope:
 * changed`, one with `scope: full`, for tests that prove a silver profile
 * derived from the previous one equals a full profile.
 */
import assert from "node:assert/strict";
import { steppingClock } from "../core/clock.ts";
import { loadConfig } from "../core/config/mod.ts";
import { configureLogging, resetLogging } from "../observability/logging.ts";
import { withRun } from "../runtime/with_run.ts";
import { runPipeline } from "../stages/pipeline.ts";
import { makeProject, type Project, query, writeFile } from "./_helpers.ts";

/** A pair of projects and what a test does with them. */
export interface ProfilePair {
  changed: Project;
  full: Project;
  /**
   * Lands `text` as `landing/<table>/<file>` in both projects, runs both as
   * `runId`, asserts the silver profiles are equal and returns the changed
   * project's profile and how it was made (`full: <reason>`, `incremental`, `delta`).
   */
  step(
    runId: string,
    file: string,
    text: string,
  ): Promise<{ method: string | undefined; profile: Record<string, string>[] }>;
  /** Removes both project folders. */
  cleanup(): Promise<void>;
}

/** Runs the pipeline of `p` once as `runId`; returns the silver profile method of `table`. */
async function runIn(p: Project, runId: string, table: string): Promise<string | undefined> {
  const config = await loadConfig(p.configFile);
  const lines: Record<string, unknown>[] = [];
  await configureLogging({ format: "json", write: (l) => lines.push(JSON.parse(l)) });
  try {
    await withRun(config, {
      runId,
      trigger: "test",
      clock: steppingClock(new Date(Date.UTC(2026, 0, 3)), { stepMs: 1 }),
    }, (ctx) => runPipeline(ctx));
  } finally {
    await resetLogging();
  }
  const audited = lines.find((l) => l.event === "layer_audited" && l.layer === "silver");
  const profiles = audited?.profiles as Record<string, string>[] | undefined;
  const found = profiles?.find((x) => x.table === table);
  return found?.method === "full" ? `full: ${found.full}` : found?.method;
}

/** The stored silver profile of `table` in one run, every figure as text. */
async function profileOf(p: Project, table: string, runId: string) {
  return (await query<Record<string, unknown>>(
    p,
    `SELECT column_name, column_type, row_count, null_count, null_ratio, distinct_approx,
       min_value, max_value FROM _sluice.profiles
     WHERE layer = 'silver' AND table_name = '${table}' AND run_id = '${runId}'
     ORDER BY column_name`,
  )).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)])));
}

/** Makes the pair from a config that takes the scope (`changed` or `full`). */
export async function profilePair(
  yaml: (scope: string) => string,
  table: string,
): Promise<ProfilePair> {
  const changed = await makeProject(yaml("changed"));
  const full = await makeProject(yaml("full"));
  return {
    changed,
    full,
    async step(runId, file, text) {
      for (const p of [changed, full]) await writeFile(p.dir, `landing/${table}/${file}`, text);
      const method = await runIn(changed, runId, table);
      await runIn(full, runId, table);
      const profile = await profileOf(changed, table, runId);
      assert.ok(profile.length > 0, `run ${runId} profiled`);
      assert.deepEqual(profile, await profileOf(full, table, runId), `run ${runId}`);
      return { method, profile };
    },
    async cleanup() {
      for (const p of [changed, full]) await Deno.remove(p.dir, { recursive: true });
    },
  };
}
