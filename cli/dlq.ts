/**
 * `sluice dlq list|replay`: dead letters of the stream and the batch
 * quarantine tables.
 *
 * @module
 */
import { Argument, Command } from "commander";
import {
  type DlqFilter,
  type DlqListing,
  formatDlqListing,
  formatReplayResults,
  listDlq,
  listDlqReplica,
  loadConfig,
  LockHeldError,
  replayDlq,
  withRun,
} from "../mod.ts";
import { runOptions } from "./_run_options.ts";
import { atLeast, intOption, out, setupLogging } from "./_shared.ts";

interface DlqOpts {
  config: string;
  table?: string;
  run?: string;
  reason?: string;
  where?: string;
  pending?: boolean;
  limit: number;
  dryRun?: boolean;
  json?: boolean;
}

function filterOf(opts: DlqOpts): DlqFilter {
  return {
    table: opts.table,
    runId: opts.run,
    reasons: opts.reason?.split(",").map((r) => r.trim()).filter(Boolean),
    where: opts.where,
  };
}

/** The `dlq` command. */
export function dlqCommand(): Command {
  return new Command("dlq")
    .description("list or replay dead letters (the stream DLQ and batch quarantine tables)")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .addArgument(new Argument("<action>", "list | replay").choices(["list", "replay"]))
    .option("--table <name>", "only this dead-letter table (e.g. events__dlq, orders__quarantine)")
    .option("--run <run_id>", "only rows refused by this run")
    .option(
      "--reason <codes>",
      "only these reason codes, comma-separated (e.g. late,malformed_json)",
    )
    .option("--where <sql>", "only rows matching this SQL condition over the DLQ columns")
    .option("--pending", "list: only rows not yet replayed")
    .option("--limit <n>", "list: rows to show", intOption("--limit"), 50)
    .option("--dry-run", "replay: report what would be replayed, change nothing")
    .option("--json", "list: print the rows as JSON lines")
    .action(async (action: "list" | "replay", opts: DlqOpts, cmd: Command) => {
      atLeast("--limit", opts.limit, 0);
      const config = await loadConfig(opts.config);
      await setupLogging(cmd, { secrets: config.secrets });
      const filter = filterOf(opts);
      const show = (listing: DlqListing) => {
        if (opts.json) {
          for (const row of listing.rows) out(JSON.stringify(row));
        } else {
          out(formatDlqListing(listing));
        }
      };
      const listOptions = { limit: opts.limit, pendingOnly: opts.pending };
      try {
        await withRun(config, runOptions("dlq", {}), async (ctx) => {
          if (action === "replay") {
            const results = await replayDlq(ctx, filter, { dryRun: opts.dryRun });
            out(formatReplayResults(results, { dryRun: opts.dryRun }));
            return;
          }
          show(await listDlq(ctx, filter, listOptions));
        });
      } catch (e) {
        // A running stream holds the database: list from the replica it writes after each batch.
        const replica = action === "list" && e instanceof LockHeldError
          ? await listDlqReplica(config, filter, listOptions)
          : undefined;
        if (replica === undefined) throw e;
        show(replica);
      }
    });
}
