/**
 * `sluice demo`: sample data, the example pipeline, one run, its summary.
 *
 * @module
 */
import { Command } from "commander";
import { runDemo } from "../mod.ts";
import { progressView } from "./_progress.ts";
import { intOption, out, setupLogging } from "./_shared.ts";
import { printRunSummary } from "./run.ts";

/** The `demo` command. */
export function demoCommand(): Command {
  return new Command("demo")
    .description("generate sample data, run the example pipeline, print a summary")
    .option("--dir <dir>", "demo folder", "./demo")
    .option("--scale <n>", "orders to generate", intOption("--scale"), 100_000)
    .option("--seed <n>", "random seed", intOption("--seed"), 42)
    .option("--json", "print the run summary as one JSON document on stdout")
    .action(async (opts: { dir: string; scale: number; seed: number; json?: boolean }, cmd) => {
      const progress = progressView(cmd);
      await setupLogging(cmd, { progress });
      try {
        const { generated, summary, configFile } = await runDemo(opts.dir, {
          scale: opts.scale,
          seed: opts.seed,
        });
        progress?.stop();
        if (!opts.json) {
          out(
            `generated ${generated.orders} orders in ${generated.files.length} files; ` +
              `config ${configFile}`,
          );
        }
        printRunSummary(summary, opts.json);
      } finally {
        progress?.stop();
      }
    });
}
