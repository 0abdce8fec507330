/**
 * Test helpers: temp pipeline projects with real files and real DuckDB.
 *
 * @module
 */
import { join } from "node:path";
import { loadConfig } from "../core/config/mod.ts";
import type { PipelineConfig } from "../core/config/mod.ts";
import type { Engine } from "../core/engine.ts";
import { openPipelineDb } from "../core/pipeline_db.ts";
import { withRun } from "../runtime/with_run.ts";
import { runPipeline } from "../stages/pipeline.ts";
import type { RunSummary } from "../core/run_context.ts";

/** A temp folder with a pipeline.yaml. */
export interface Project {
  dir: string;
  configFile: string;
}

/** Creates a temp project with `yaml` as pipeline.yaml and the given files. */
export async function makeProject(
  yaml: string,
  files: Record<string, string> = {},
): Promise<Project> {
  const dir = await Deno.makeTempDir({ prefix: "sluice_test_" });
  const configFile = join(dir, "pipeline.yaml");
  await Deno.writeTextFile(configFile, yaml);
  for (const [rel, content] of Object.entries(files)) await writeFile(dir, rel, content);
  return { dir, configFile };
}

/** Writes a file under `dir`, creating folders. */
export async function writeFile(dir: string, rel: string, content: string): Promise<string> {
  const path = join(dir, rel);
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeTextFile(path, content);
  return path;
}

/** Loads the project's config, runs the pipeline once, closes the database. */
export async function runOnce(
  project: Project,
  options: { runId?: string; stages?: ("extract" | "bronze" | "silver" | "gold" | "output")[] } =
    {},
): Promise<RunSummary> {
  const config = await loadConfig(project.configFile);
  return await withRun(
    config,
    { runId: options.runId, trigger: "test" },
    (ctx) => runPipeline(ctx, { stages: options.stages }),
  );
}

/** Opens the project's database for queries; close it with `ctx.db.close()`. */
export async function openProject(project: Project): Promise<{ db: Engine }> {
  const config: PipelineConfig = await loadConfig(project.configFile);
  return { db: await openPipelineDb(config) };
}

/** Runs a query against the project's database and closes it. */
export async function query<T extends Record<string, unknown>>(
  project: Project,
  sql: string,
): Promise<T[]> {
  const ctx = await openProject(project);
  try {
    return await ctx.db.all<T>(sql);
  } finally {
    ctx.db.close();
  }
}

/** How {@linkcode sluice} runs the CLI. */
export interface SluiceOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Also grant `--allow-net=127.0.0.1`. */
  net?: boolean;
}

/** Runs the CLI as a subprocess and returns its exit code and output. */
export async function sluice(
  args: string[],
  options: SluiceOptions = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const nodeModules = new URL("../node_modules", import.meta.url).pathname;
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      "--no-prompt",
      `--allow-ffi=${nodeModules}`,
      "--allow-read",
      "--allow-write",
      "--allow-env=SLUICE_*,LOG_TOKENS,LOG_STREAM,NO_COLOR,TERM",
      ...(options.net ? ["--allow-net=127.0.0.1"] : []),
      cli,
      ...args,
    ],
    cwd: options.cwd,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** {@linkcode sluice} with stdout and stderr joined into one `out`. */
export async function sluiceOut(
  args: string[],
  options: SluiceOptions = {},
): Promise<{ code: number; out: string }> {
  const r = await sluice(args, options);
  return { code: r.code, out: `${r.stdout}\n${r.stderr}` };
}

/** A small two-source config used by many tests. */
export const SHOP_YAML = `pipeline: shop
lake: ./lake
engine: { threads: 2 }
sources:
  orders:
    format: csv
    path: ./landing/orders
    glob: "*.csv"
    on_change: fail
silver:
  orders:
    from: orders
    key: [order_id]
    order_by: updated_at
    mode: merge
    # The test files quarantine on purpose, up to half their rows.
    max_quarantine: "50%"
    columns:
      order_id: { type: BIGINT, nullable: false }
      quantity: { type: INTEGER }
      country: { type: VARCHAR, expr: "upper(trim(country))" }
      updated_at: { type: TIMESTAMP }
    rules:
      - { name: positive_quantity, sql: "quantity > 0" }
gold:
  by_country:
    sql: select country, count(*) as orders, sum(quantity) as units from orders group by country
output:
  tables:
    by_country: {}
`;
