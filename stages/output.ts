/**
 * Output: publishes chosen tables as Parquet (zstd), optionally hive
 * partitioned and capped in rows per file. In two phases: first every table
 * is written to a new version folder `<output>/.versions/<table>/<run_id>/`
 * and its row count verified against the table; only when all of them are
 * written is each `<output>/<table>` (a symbolic link) swapped to its new
 * version with one atomic rename. Readers see the old version or the new
 * one, never a half-written folder; a run that fails while writing removes
 * its new versions and leaves every published link untouched.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { join } from "node:path";
import { pathExists } from "../core/fs.ts";
import { ConfigError, ConservationError } from "../core/errors.ts";
import { ident, identList, literal, qualified } from "../core/quote.ts";
import type { RunContext, StageResult } from "../core/run_context.ts";

function schemaOf(ctx: RunContext, table: string): "gold" | "silver" {
  if (ctx.config.gold[table]) return "gold";
  if (ctx.config.silver[table]) return "silver";
  throw new ConfigError([{
    file: ctx.config.file,
    line: 0,
    col: 0,
    path: `output.tables.${table}`,
    message: `"${table}" is neither a gold nor a silver table`,
  }]);
}

/**
 * Publishes the configured output tables.
 *
 * @example
 * ```ts ignore
 * const result = await output(ctx);
 * ```
 */
export async function output(
  ctx: RunContext,
  options: { tables?: string[] } = {},
): Promise<StageResult> {
  const log = getLogger(["sluice", "output"]).with({
    run_id: ctx.runId,
    pipeline: ctx.config.pipeline,
    stage: "output",
  });
  const started = performance.now();
  const result: StageResult = { stage: "output", durationMs: 0, tables: [] };
  const out = ctx.config.output;
  const written: { name: string; link: string; versionsDir: string; versionDir: string }[] = [];
  try {
    for (const [name, settings] of Object.entries(out.tables)) {
      if (options.tables && !options.tables.includes(name)) continue;
      const schema = schemaOf(ctx, name);
      const source = qualified(schema, name);
      const link = join(out.path, name);
      if (await pathExists(link) && !(await Deno.lstat(link)).isSymlink) {
        throw new ConfigError([{
          file: ctx.config.file,
          line: 0,
          col: 0,
          path: `output.tables.${name}`,
          message: `${link} exists and is not a Sluice-published link; move it away`,
        }]);
      }
      const versionsDir = join(out.path, ".versions", name);
      const versionDir = join(versionsDir, ctx.runId);
      await Deno.mkdir(versionsDir, { recursive: true });
      if (await pathExists(versionDir)) await Deno.remove(versionDir, { recursive: true });
      written.push({ name, link, versionsDir, versionDir });
      const rows = (await ctx.db.one<{ n: number }>(`SELECT count(*) AS n FROM ${source}`))?.n ??
        0;
      const parts = settings.partition_by ?? [];
      const maxRows = settings.max_rows_per_file;
      const opts = ["FORMAT parquet", "COMPRESSION zstd"];
      if (parts.length > 0) {
        opts.push(`PARTITION_BY (${identList(parts)})`);
        if (maxRows) opts.push(`ROW_GROUP_SIZE ${maxRows}`, "ROW_GROUPS_PER_FILE 1");
        await ctx.db.run(`COPY ${source} TO ${literal(versionDir)} (${opts.join(", ")})`);
      } else if (maxRows && rows > maxRows) {
        // Exact cap: number the rows once, then write one file per slice.
        const numbered = ident(`_out_${name}`);
        await ctx.db.run(
          `CREATE OR REPLACE TEMP TABLE ${numbered} AS
           SELECT *, (row_number() OVER () - 1) // ${maxRows} AS __file FROM ${source}`,
        );
        await Deno.mkdir(versionDir, { recursive: true });
        const files = Math.ceil(rows / maxRows);
        for (let i = 0; i < files; i++) {
          const file = join(versionDir, `part-${String(i).padStart(5, "0")}.parquet`);
          await ctx.db.run(
            `COPY (SELECT * EXCLUDE (__file) FROM ${numbered} WHERE __file = ${i})
             TO ${literal(file)} (${opts.join(", ")})`,
          );
        }
        await ctx.db.run(`DROP TABLE ${numbered}`);
      } else {
        await Deno.mkdir(versionDir, { recursive: true });
        await ctx.db.run(
          `COPY ${source} TO ${literal(join(versionDir, "part-00000.parquet"))} (${
            opts.join(", ")
          })`,
        );
      }
      const glob = parts.length > 0
        ? join(versionDir, "**", "*.parquet")
        : join(versionDir, "*.parquet");
      const got = (await ctx.db.one<{ n: number; files: number }>(
        `SELECT coalesce(sum(num_rows), 0)::BIGINT AS n, count(*) AS files
         FROM parquet_file_metadata(${literal(glob)})`,
      )) ?? { n: 0, files: 0 };
      if (got.n !== rows) {
        throw new ConservationError(
          `Rows do not add up in output "${name}": table has ${rows}, Parquet files hold ${got.n}`,
          { context: { table: name, rows, written: got.n } },
        );
      }
      result.tables.push({
        layer: "output",
        table: name,
        rowsIn: rows,
        passed: got.n,
        quarantined: 0,
        duplicates: 0,
        details: { path: link, version: versionDir, files: got.files },
      });
    }
  } catch (e) {
    // Nothing was published: remove this run's new versions, keep the links.
    for (const w of written) await Deno.remove(w.versionDir, { recursive: true }).catch(() => {});
    throw e;
  }
  // Publish: every table is written and verified; swap each link atomically.
  for (const [i, w] of written.entries()) {
    const tmpLink = join(out.path, `.${w.name}.${ctx.runId}.tmp`);
    if (await pathExists(tmpLink)) await Deno.remove(tmpLink);
    await Deno.symlink(join(".versions", w.name, ctx.runId), tmpLink);
    await Deno.rename(tmpLink, w.link);
    const t = result.tables[i];
    log.info("table published", {
      event: "table_published",
      table: w.name,
      rows: t.rowsIn,
      files: t.details?.files,
      path: w.link,
    });
  }
  for (const w of written) await pruneVersions(w.versionsDir, ctx.runId, out.keep_versions);
  result.durationMs = performance.now() - started;
  result.skipped = result.tables.length === 0;
  return result;
}

/** Keeps the current version plus the `keep` most recent earlier ones. */
async function pruneVersions(dir: string, current: string, keep: number): Promise<void> {
  const versions: { name: string; mtime: number }[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isDirectory || e.name === current) continue;
    const info = await Deno.stat(join(dir, e.name));
    versions.push({ name: e.name, mtime: info.mtime?.getTime() ?? 0 });
  }
  versions.sort((a, b) => a.mtime - b.mtime || a.name.localeCompare(b.name));
  for (const old of versions.slice(0, Math.max(0, versions.length - keep))) {
    await Deno.remove(join(dir, old.name), { recursive: true });
  }
}
