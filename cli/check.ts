/**
 * `sluice check`: the data-quality checks alone, against the current tables.
 *
 * @module
 */
import { Command, Option } from "commander";
import {
  checkTables,
  formatCheckResults,
  type Layer,
  loadConfig,
  qualityGateError,
  withRun,
} from "../mod.ts";
import { runOptions } from "./_run_options.ts";
import { out, setupLogging } from "./_shared.ts";

/** The `check` command. */
export function checkCommand(): Command {
  return new Command("check")
    .description("run the data-quality checks alone against the current tables")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .addOption(
      new Option("--layer <layer>", "only this layer's checks (silver includes quarantine checks)")
        .choices(["bronze", "silver", "gold"]),
    )
    .option("--table <name>", "only this table's checks")
    .option(
      "--full",
      "full audit: bronze and quarantine checks see every row, not the latest batch",
    )
    .action(async (
      opts: { config: string; layer?: Layer; table?: string; full?: boolean },
      cmd: Command,
    ) => {
      const config = await loadConfig(opts.config);
      await setupLogging(cmd, { secrets: config.secrets });
      await withRun(config, runOptions("check", {}), async (ctx) => {
        const { results, failed } = await checkTables(ctx, {
          layers: opts.layer ? [opts.layer] : undefined,
          tables: opts.table ? [opts.table] : undefined,
          full: opts.full === true,
        });
        out(formatCheckResults(results));
        if (failed.length > 0) throw qualityGateError(failed);
      });
    });
}
