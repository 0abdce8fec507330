/**
 * Benchmark fixtures: the demo data cached by seed and scale under
 * `bench/data/`, and pipeline projects made from the e-commerce example with
 * absolute source paths, a fresh lake and chosen `quality:` settings.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { parseDocument } from "yaml";
import { ECOMMERCE_PIPELINE_YAML, generateDemoData, PipelineSchema } from "../mod.ts";

/**
 * True when the config schema has the `quality:` section (checks and
 * profiling switches); before it exists, both sides of the quality pair run
 * the same config.
 *
 * @example
 * ```ts ignore
 * if (!QUALITY_SWITCHES_EXIST) console.warn("the quality pair compares a config with itself");
 * ```
 */
export const QUALITY_SWITCHES_EXIST: boolean = "quality" in PipelineSchema.shape;

/**
 * Folder of cached benchmark data (gitignored).
 *
 * @example
 * ```ts ignore
 * const work = join(BENCH_DATA_DIR, "work");
 * ```
 */
export const BENCH_DATA_DIR: string = resolve(new URL("./data", import.meta.url).pathname);

/**
 * Absolute path of the repository root.
 *
 * @example
 * ```ts ignore
 * const cli = join(REPO_DIR, "cli.ts");
 * ```
 */
export const REPO_DIR: string = resolve(new URL("..", import.meta.url).pathname);

/**
 * Returns the folder holding `landing/` for `scale` orders made with `seed`,
 * generating it once. A `.complete` marker written last means a folder cut
 * short by an interrupted generation is made again.
 *
 * @example
 * ```ts ignore
 * const dir = await demoData({ scale: 1_000_000, seed: 42 });
 * // dir + "/landing/orders/orders_0001.csv" ...
 * ```
 */
export async function demoData(
  options: { scale: number; seed: number },
): Promise<{ dir: string; generatedSeconds?: number }> {
  const dir = join(BENCH_DATA_DIR, `demo_s${options.seed}_n${options.scale}`);
  const marker = join(dir, ".complete");
  if (await pathExists(marker)) return { dir };
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  const t0 = performance.now();
  await generateDemoData(dir, { scale: options.scale, seed: options.seed });
  await Deno.writeTextFile(marker, new Date().toISOString());
  return { dir, generatedSeconds: (performance.now() - t0) / 1000 };
}

/**
 * Settings of a benchmark project.
 *
 * @example
 * ```ts ignore
 * const options: ProjectOptions = { dataDir, dir: "/tmp/p", checks: true, profiling: true };
 * ```
 */
export interface ProjectOptions {
  /** Folder holding the demo `landing/` folder. */
  dataDir: string;
  /** Project folder (pipeline.yaml and lake go here). */
  dir: string;
  /** Run data-quality checks (`quality.checks`). */
  checks: boolean;
  /** Profile tables (`quality.profiling`). */
  profiling: boolean;
  /** Overrides of `engine:` (e.g. `memory_limit`). */
  engine?: Record<string, unknown>;
}

/**
 * Writes `<dir>/pipeline.yaml`: the e-commerce example with its sources
 * pointing into `dataDir`, the lake at `<dir>/lake` and the `quality:`
 * switches set. Returns the config file's path.
 *
 * @example
 * ```ts ignore
 * const file = await writeProject({ dataDir, dir: "/tmp/p", checks: false, profiling: false });
 * ```
 */
export async function writeProject(options: ProjectOptions): Promise<string> {
  const doc = parseDocument(ECOMMERCE_PIPELINE_YAML);
  doc.set("lake", join(options.dir, "lake"));
  for (const name of ["customers", "products", "orders"]) {
    doc.setIn(["sources", name, "path"], join(options.dataDir, "landing", name));
    // The cached data lives under bench/data/, outside the project folder.
    doc.setIn(["sources", name, "allow_outside_project"], true);
  }
  for (const [k, v] of Object.entries(options.engine ?? {})) doc.setIn(["engine", k], v);
  if (QUALITY_SWITCHES_EXIST) {
    doc.setIn(["quality", "checks"], options.checks);
    doc.setIn(["quality", "profiling"], options.profiling);
  }
  await Deno.mkdir(options.dir, { recursive: true });
  const file = join(options.dir, "pipeline.yaml");
  await Deno.writeTextFile(file, doc.toString());
  return file;
}

/**
 * The example's gold models (name and SQL), in file order, so the plain-SQL
 * baseline builds exactly the same models.
 *
 * @example
 * ```ts ignore
 * for (const [name, sql] of exampleGoldModels()) console.log(name, sql.length);
 * ```
 */
export function exampleGoldModels(): [string, string][] {
  const gold = parseDocument(ECOMMERCE_PIPELINE_YAML).toJS().gold as Record<
    string,
    { sql: string }
  >;
  return Object.entries(gold).map(([name, m]) => [name, m.sql]);
}

/**
 * The example's engine settings (`threads`, `memory_limit`), shared by both
 * sides of a pair.
 *
 * @example
 * ```ts ignore
 * const { threads, memory_limit } = exampleEngine();
 * ```
 */
export function exampleEngine(): { threads?: number; memory_limit?: string } {
  return (parseDocument(ECOMMERCE_PIPELINE_YAML).toJS().engine ?? {}) as {
    threads?: number;
    memory_limit?: string;
  };
}

/**
 * Writes the spec `bench/baseline_sql.ts` reads: the example's engine
 * settings (with `memoryLimit` overriding its `memory_limit`) and gold SQL.
 *
 * @example
 * ```ts ignore
 * const spec = await writeBaselineSpec("/tmp/bench/baseline_spec.json");
 * ```
 */
export async function writeBaselineSpec(
  file: string,
  options: { memoryLimit?: string } = {},
): Promise<string> {
  const engine = exampleEngine();
  const spec = {
    threads: engine.threads,
    memory_limit: options.memoryLimit ?? engine.memory_limit,
    gold: exampleGoldModels(),
  };
  await Deno.writeTextFile(file, JSON.stringify(spec, null, 2));
  return file;
}

/** True when `path` exists (a cache marker file). */
async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
