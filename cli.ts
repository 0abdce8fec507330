/**
 * The `sluice` command. The entry point only: the command tree is
 * `cli/program.ts` (one file per command under `cli/`), and every error
 * becomes one clear line and a documented exit code in `cli/_errors.ts`.
 * Only the CLI configures log sinks and prints; stdout carries results
 * only (tables, JSON documents, help), logs go to stderr.
 *
 * @module
 */
import "./_preload_duckdb.ts"; // must stay the first import: see the module's doc
import "./_fast_version.ts"; // `sluice --version` exits here, before the rest is evaluated
import { reportError } from "./cli/_errors.ts";
import { buildProgram } from "./cli/program.ts";

/** Runs the CLI with `args` and returns the exit code. */
async function main(args: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(args, { from: "user" });
    return 0;
  } catch (e) {
    return reportError(e);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
