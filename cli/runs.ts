/**
 * `sluice runs`: the run ledger, as a table or JSON.
 *
 * @module
 */
import { Command } from "commander";
import {
  formatRunDetail,
  formatRunsTable,
  getRun,
  listRuns,
  loadConfig,
  openLedger,
  UsageError,
} from "../mod.ts";
import { toJson } from "./_json.ts";
import { atLeast, intOption, out } from "./_shared.ts";

interface RunsOpts {
  config: string;
  limit: number;
  json?: boolean;
  show?: string;
}

/** The `runs` command. */
export function runsCommand(): Command {
  return new Command("runs")
    .description("list recent runs from the run ledger, or show one in full")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .option("--limit <n>", "runs to list", intOption("--limit"), 20)
    .option("--json", "print JSON on stdout")
    .option("--show <run_id>", "show one run (id or unique prefix): stages, checks, manifest")
    .action(async (opts: RunsOpts) => {
      atLeast("--limit", opts.limit, 1);
      const config = await loadConfig(opts.config);
      const db = await openLedger(config);
      if (!db) {
        if (opts.show !== undefined) {
          throw new UsageError(`Cannot show run "${opts.show}": no run has been recorded yet`);
        }
        out(opts.json ? "[]" : "no runs recorded yet");
        return;
      }
      try {
        const samples = config.observability?.report.failing_samples ?? 10;
        if (opts.show !== undefined) {
          const run = await getRun(db, opts.show, { samples });
          out(opts.json ? toJson(run) : formatRunDetail(run));
        } else {
          const runs = await listRuns(db, { pipeline: config.pipeline, limit: opts.limit });
          out(opts.json ? toJson(runs) : formatRunsTable(runs));
        }
      } finally {
        db.close();
      }
    });
}
