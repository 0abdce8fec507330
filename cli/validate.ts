/**
 * `sluice validate`: checks the config and binds all SQL without running.
 *
 * @module
 */
import { Command } from "commander";
import { loadConfig, validatePipeline } from "../mod.ts";
import { out } from "./_shared.ts";

/** The `validate` command. */
export function validateCommand(): Command {
  return new Command("validate")
    .description("check the config and bind all SQL without running the pipeline")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .action(async (opts: { config: string }) => {
      const config = await loadConfig(opts.config);
      await validatePipeline(config, { locate: config.locate });
      out("ok");
    });
}
