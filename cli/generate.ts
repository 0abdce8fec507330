/**
 * `sluice generate`: deterministic e-commerce sample data.
 *
 * @module
 */
import { Command } from "commander";
import { generateDemoData } from "../mod.ts";
import { intOption, out } from "./_shared.ts";

/** The `generate` command. */
export function generateCommand(): Command {
  return new Command("generate")
    .description("write deterministic e-commerce sample data (landing CSV files)")
    .requiredOption("--out <dir>", "output folder")
    .option("--scale <n>", "orders to generate", intOption("--scale"), 100_000)
    .option("--seed <n>", "random seed", intOption("--seed"), 42)
    .action(async (opts: { out: string; scale: number; seed: number }) => {
      const t0 = performance.now();
      const g = await generateDemoData(opts.out, { scale: opts.scale, seed: opts.seed });
      const seconds = ((performance.now() - t0) / 1000).toFixed(1);
      out(
        `generated ${g.orders} orders, ${g.customers} customers, ${g.products} products in ` +
          `${g.files.length} files under ${g.outDir}/landing (${seconds}s)`,
      );
    });
}
