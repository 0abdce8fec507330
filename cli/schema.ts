/**
 * `sluice schema`: the JSON Schema of `pipeline.yaml`.
 *
 * @module
 */
import { Command } from "commander";
import { pipelineJsonSchemaText } from "../mod.ts";
import { out } from "./_shared.ts";

/** The `schema` command. */
export function schemaCommand(): Command {
  return new Command("schema")
    .description("print the JSON Schema (draft 2020-12) of pipeline.yaml, for editors and CI")
    .action(() => {
      out(pipelineJsonSchemaText());
    });
}
