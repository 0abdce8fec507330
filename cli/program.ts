/**
 * The `sluice` command tree: global options, output settings and one
 * sub-command per file of this folder. `cli.ts` runs it; the CLI contract
 * test walks it, so a command added here is tested without more work.
 *
 * @module
 */
import { Command, Option } from "commander";
import { checkCommand } from "./check.ts";
import { demoCommand } from "./demo.ts";
import { dlqCommand } from "./dlq.ts";
import { explainCommand } from "./explain.ts";
import { filesCommand } from "./files.ts";
import { generateCommand } from "./generate.ts";
import { initCommand } from "./init.ts";
import { reportCommand } from "./report.ts";
import { retractCommand } from "./retract.ts";
import { runCommand } from "./run.ts";
import { runsCommand } from "./runs.ts";
import { schemaCommand } from "./schema.ts";
import { shardsCommand } from "./shards.ts";
import { err, out, setupLogging } from "./_shared.ts";
import { streamCommand } from "./stream.ts";
import { validateCommand } from "./validate.ts";
import { versionText } from "../_fast_version.ts";

/** Every sub-command of `sluice`, in the order `--help` lists them. */
const COMMANDS: readonly (() => Command)[] = [
  runCommand,
  validateCommand,
  checkCommand,
  runsCommand,
  reportCommand,
  filesCommand,
  retractCommand,
  streamCommand,
  shardsCommand,
  dlqCommand,
  explainCommand,
  generateCommand,
  demoCommand,
  initCommand,
  schemaCommand,
];

/**
 * Help and usage errors: help to stdout, errors to stderr, never colours
 * (commander would read `FORCE_COLOR`/`CLICOLOR_FORCE` to decide, which the
 * task does not allow), usage errors as exceptions for `cli/_errors.ts`.
 */
function configure(command: Command): Command {
  command.exitOverride().configureOutput({
    writeOut: (s) => out(s.replace(/\n$/, "")),
    writeErr: (s) => err(s),
    getOutHasColors: () => false,
    getErrHasColors: () => false,
  });
  for (const sub of command.commands) configure(sub);
  return command;
}

/**
 * Builds the `sluice` program.
 *
 * @example
 * ```ts ignore
 * await buildProgram().parseAsync(["run", "-c", "pipeline.yaml"], { from: "user" });
 * ```
 */
export function buildProgram(): Command {
  const program = new Command()
    .name("sluice")
    .description("Cron-scheduled, observable data pipelines on embedded DuckDB")
    .version(versionText(), "-V, --version", "print the Sluice, DuckDB and Deno versions")
    .addOption(
      new Option("--log-format <format>", "log format on stderr").choices(["json", "text", "auto"])
        .default("auto"),
    )
    .addOption(
      new Option(
        "--log-level <level>",
        "lowest level logged (on a terminal, the default shows stage progress instead of info lines)",
      ).choices(["debug", "info", "warning", "error"]).default("info"),
    );
  for (const make of COMMANDS) program.addCommand(make());
  program.hook("preAction", async (_program, action) => await setupLogging(action));
  return configure(program);
}
