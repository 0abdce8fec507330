/**
 * `sluice init`: scaffolds a new pipeline project.
 *
 * @module
 */
import { Command } from "commander";
import { initProject } from "../mod.ts";
import { out } from "./_shared.ts";

/** The `init` command. */
export function initCommand(): Command {
  return new Command("init")
    .description("scaffold a new pipeline project")
    .argument("<dir>", "folder to create")
    .option("--name <name>", "pipeline name")
    .action(async (dir: string, opts: { name?: string }) => {
      const created = await initProject(dir, { name: opts.name });
      out(created.map((p) => `created ${p}`).join("\n"));
    });
}
