/**
 * `sluice run`: the batch pipeline, once.
 *
 * @module
 */
import { Command } from "commander";
import {
  formatCheckProblems,
  formatRunSummary,
  loadConfig,
  type PipelineRunSummary,
  runPipeline,
  type StageName,
  STAGES,
  UsageError,
  withRun,
} from "../mod.ts";
import { toJson } from "./_json.ts";
import {
  type RunFlags,
  runOptions,
  withRunIdOption,
  withRunPolicyOptions,
} from "./_run_options.ts";
import { progressView } from "./_progress.ts";
import { out, setupLogging } from "./_shared.ts";

interface RunOpts extends RunFlags {
  config: string;
  stages?: string;
  runId?: string;
  trigger: string;
  json?: boolean;
  fullRefresh?: boolean;
}

/** Parses `--stages extract,bronze` into stage names, in pipeline order. */
export function parseStages(value: string): StageName[] {
  const names = value.split(",").map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!(STAGES as readonly string[]).includes(n)) {
      throw new UsageError(`Cannot run: unknown stage "${n}" (valid: ${STAGES.join(", ")})`);
    }
  }
  return STAGES.filter((s) => names.includes(s));
}

/** Prints a batch run's summary: a table, or one JSON document with `--json`. */
export function printRunSummary(summary: PipelineRunSummary, json: boolean | undefined): void {
  if (json) {
    out(toJson(summary));
    return;
  }
  out(formatRunSummary(summary));
  const checkProblems = formatCheckProblems(summary.checks);
  if (checkProblems) out(`data-quality warnings:\n${checkProblems}`);
}

/** The `run` command. */
export function runCommand(): Command {
  const command = new Command("run")
    .description("run the pipeline: extract, bronze, silver, gold, output")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .option("--stages <list>", `comma-separated stages (${STAGES.join(",")})`)
    .option("--trigger <name>", "what started the run (cli, cron...)", "cli")
    .option("--full-refresh", "rebuild silver from every bronze row, not only the new ones")
    .option("--json", "print the run summary as one JSON document on stdout");
  return withRunPolicyOptions(withRunIdOption(command)).action(
    async (opts: RunOpts, cmd: Command) => {
      const stages = opts.stages ? parseStages(opts.stages) : undefined;
      const config = await loadConfig(opts.config);
      const progress = progressView(cmd);
      await setupLogging(cmd, { secrets: config.secrets, progress });
      try {
        const summary = await withRun(
          config,
          runOptions("run", opts),
          (ctx) => runPipeline(ctx, { stages, fullRefresh: opts.fullRefresh }),
        );
        progress?.stop();
        printRunSummary(summary, opts.json);
      } finally {
        progress?.stop();
      }
    },
  );
}
