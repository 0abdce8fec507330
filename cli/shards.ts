/**
 * `sluice shards`: the JetStream workers' shards, side by side, and their
 * export to one Parquet tree.
 *
 * @module
 */
import { Command } from "commander";
import { exportShards, formatShardsView, loadConfig, summarizeShards } from "../mod.ts";
import { toJson } from "./_json.ts";
import { out } from "./_shared.ts";

interface ShardsOpts {
  config: string;
  shard: string[];
  export?: string;
  json?: boolean;
}

/** The `shards` command. */
export function shardsCommand(): Command {
  return new Command("shards")
    .description("JetStream source: each worker's shard (batches, rows, checkpoint), and export")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .requiredOption("--shard <db...>", "a worker's database file (repeat for each worker)")
    .option("--export <dir>", "also write every shard's rows as worker=…/date=…/part-N.parquet")
    .option("--json", "print JSON on stdout")
    .action(async (opts: ShardsOpts) => {
      const config = await loadConfig(opts.config);
      const view = await summarizeShards(config, { shards: opts.shard });
      const exported = opts.export
        ? await exportShards(config, { shards: opts.shard, out: opts.export })
        : undefined;
      if (opts.json) {
        out(toJson(exported ? { ...view, export: exported } : view));
        return;
      }
      out(formatShardsView(view));
      if (exported) {
        const rows = Object.values(exported.rows).reduce((a, b) => a + b, 0);
        out(
          `exported ${
            rows.toLocaleString("en-US")
          } rows in ${exported.files} files to ${exported.out}`,
        );
      }
    });
}
