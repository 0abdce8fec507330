/**
 * `sluice files`: every file the sources landed, and its state.
 *
 * @module
 */
import { Command } from "commander";
import { type LandedFile, listLandedFiles, loadConfig, openLedger } from "../mod.ts";
import { toJson } from "./_json.ts";
import { out } from "./_shared.ts";

function n(x: number): string {
  return x.toLocaleString("en-US");
}

/** The landed files as a text table. */
export function formatLandedFiles(files: readonly LandedFile[]): string {
  if (files.length === 0) return "no file landed yet";
  const header = ["source", "file", "state", "rows", "bytes", "landed by", "ingested at"];
  const rows = files.map((f) => [
    f.source,
    f.path,
    f.state,
    n(f.rows),
    n(f.size),
    f.lastRunId,
    f.ingestedAt.toISOString().replace(/\.\d+Z$/, "Z"),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) =>
    r.map((c, i) => (i === 3 || i === 4 ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join("  ").trimEnd();
  return [fmt(header), ...rows.map(fmt)].join("\n");
}

/** The `files` command. */
export function filesCommand(): Command {
  return new Command("files")
    .description("list the files each source landed: landed, changed, missing, retracted, empty")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .option("--source <name...>", "only these sources")
    .option("--json", "print JSON on stdout")
    .action(async (opts: { config: string; source?: string[]; json?: boolean }) => {
      const config = await loadConfig(opts.config);
      const db = await openLedger(config);
      if (!db) {
        out(opts.json ? "[]" : "no file landed yet");
        return;
      }
      try {
        const files = await listLandedFiles({ db, config }, { sources: opts.source });
        out(opts.json ? toJson(files) : formatLandedFiles(files));
      } finally {
        db.close();
      }
    });
}
