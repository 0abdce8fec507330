/**
 * `sluice report`: a self-contained HTML report of a run.
 *
 * @module
 */
import { Command } from "commander";
import {
  buildReport,
  loadConfig,
  openLedger,
  systemClock,
  UsageError,
  writeFileAtomic,
} from "../mod.ts";
import { atLeast, intOption, out } from "./_shared.ts";

interface ReportOpts {
  config: string;
  run?: string;
  output?: string;
  history?: number;
}

/** The `report` command. */
export function reportCommand(): Command {
  return new Command("report")
    .description("write a self-contained HTML report of a run (default the latest)")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .option("--run <run_id>", "run id or unique prefix (default the latest run)")
    .option("-o, --output <file>", "HTML file to write (default observability.report.path)")
    .option("--history <n>", "runs in the history charts", intOption("--history"))
    .action(async (opts: ReportOpts) => {
      const config = await loadConfig(opts.config);
      const target = opts.output ?? config.observability?.report.path;
      if (!target) {
        throw new UsageError(
          "Cannot write a report: give -o FILE.html (or set observability.report.path)",
        );
      }
      atLeast("--history", opts.history, 1);
      const db = await openLedger(config);
      if (!db) throw new UsageError("Cannot write a report: no run has been recorded yet");
      try {
        const html = await buildReport(db, {
          pipeline: config.pipeline,
          runId: opts.run,
          history: opts.history ?? config.observability?.report.history ?? 30,
          failingSamples: config.observability?.report.failing_samples ?? 10,
          payloadMaxBytes: config.quality?.payload_max_bytes,
          generatedAt: systemClock.now(),
        });
        await writeFileAtomic(target, html);
        out(`wrote ${target}`);
      } finally {
        db.close();
      }
    });
}
