/**
 * `sluice retract`: takes files' rows back out of bronze, silver, gold and
 * the outputs, as one recorded run.
 *
 * @module
 */
import { Command } from "commander";
import {
  formatCheckProblems,
  formatRunSummary,
  loadConfig,
  retractFiles,
  type RetractResult,
  withRun,
} from "../mod.ts";
import { toJson } from "./_json.ts";
import { type RunFlags, runOptions, withRunIdOption } from "./_run_options.ts";
import { out, setupLogging } from "./_shared.ts";

interface RetractOpts extends RunFlags {
  config: string;
  source: string;
  reason?: string;
  json?: boolean;
}

/** The text of a retraction: the files, then the run summary table. */
function formatRetraction(r: RetractResult, durationMs: number): string {
  const rows = r.files.reduce((sum, f) => sum + f.rows, 0);
  const lines = [
    `retracted ${r.files.length} file(s) of source ${r.source}: ${
      rows.toLocaleString("en-US")
    } bronze rows`,
    ...r.files.map((f) => `  ${f.path}: ${f.rows.toLocaleString("en-US")} rows`),
    formatRunSummary({
      runId: r.runId,
      status: "success",
      durationMs,
      stages: r.stages,
      noop: false,
    }),
  ];
  const problems = formatCheckProblems(r.checks);
  if (problems) lines.push(`data-quality warnings:\n${problems}`);
  return lines.join("\n");
}

/** The `retract` command. */
export function retractCommand(): Command {
  const command = new Command("retract")
    .description("take landed files' rows back out of bronze, silver, gold and the outputs")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .requiredOption("--source <name>", "the source the files belong to")
    .argument("<files...>", "files, as `sluice files` names them or as paths")
    .option("--reason <text>", "why, kept in _sluice.retractions")
    .option("--json", "print the result as one JSON document on stdout");
  return withRunIdOption(command).action(
    async (files: string[], opts: RetractOpts, cmd: Command) => {
      const config = await loadConfig(opts.config);
      await setupLogging(cmd, { secrets: config.secrets });
      const t0 = performance.now();
      const result = await withRun(
        config,
        runOptions("retract", opts),
        (ctx) => retractFiles(ctx, { source: opts.source, files, reason: opts.reason }),
      );
      out(opts.json ? toJson(result) : formatRetraction(result, performance.now() - t0));
    },
  );
}
