/**
 * `sluice explain`: the stream's delivery guarantee in plain words.
 *
 * @module
 */
import { Command } from "commander";
import { explainStream, loadConfig } from "../mod.ts";
import { out } from "./_shared.ts";

/** The `explain` command. */
export function explainCommand(): Command {
  return new Command("explain")
    .description("print the stream's delivery guarantee in plain words")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .action(async (opts: { config: string }) => {
      const config = await loadConfig(opts.config);
      out(explainStream(config));
    });
}
