/**
 * `sluice demo`: generates the e-commerce sample data, writes the example
 * config beside it, and runs the whole pipeline once.
 *
 * @module
 */
import { join, resolve } from "node:path";
import type { Clock } from "../core/clock.ts";
import { loadConfig } from "../core/config/mod.ts";
import { ECOMMERCE_PIPELINE_YAML } from "./example_pipeline.ts";
import { withRun } from "../runtime/with_run.ts";
import { type PipelineRunSummary, runPipeline } from "../stages/pipeline.ts";
import { generateDemoData, type GenerateSummary } from "./generate.ts";

/** Options of {@linkcode runDemo}. */
export interface DemoOptions {
  /** Orders to generate. Default 100000. */
  scale?: number;
  /** Seed of the generator. Default 42. */
  seed?: number;
  /** Time source for the run. */
  clock?: Clock;
}

/**
 * Runs the demo in `dir`: a fresh lake, generated landing files, the example
 * `pipeline.yaml`, and one full run.
 *
 * @example
 * ```ts ignore
 * const { summary } = await runDemo("./demo", { scale: 10_000 });
 * console.log(summary.status);
 * ```
 */
export async function runDemo(
  dir: string,
  options: DemoOptions = {},
): Promise<{ generated: GenerateSummary; summary: PipelineRunSummary; configFile: string }> {
  const abs = resolve(dir);
  await Deno.mkdir(abs, { recursive: true });
  await Deno.remove(join(abs, "lake"), { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  const generated = await generateDemoData(abs, {
    scale: options.scale ?? 100_000,
    seed: options.seed ?? 42,
  });
  const configFile = join(abs, "pipeline.yaml");
  await Deno.writeTextFile(configFile, ECOMMERCE_PIPELINE_YAML);
  const config = await loadConfig(configFile);
  const summary = await withRun(
    config,
    { kind: "demo", clock: options.clock },
    (ctx) => runPipeline(ctx, { command: "run" }),
  );
  return { generated, summary, configFile };
}
