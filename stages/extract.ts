/**
 * Extract: finds each source's files by glob, fingerprints them (path, size,
 * mtime, SHA-256) and compares them with the manifest of files already
 * ingested. The result is a plan of what bronze must land; unchanged files
 * are skipped without being re-hashed, so a run with nothing new is quick.
 * New files need no hash to be planned: theirs is computed in the background
 * while bronze lands them, and stored in the manifest with their rows.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { Engine } from "../core/engine.ts";
import { SourceError } from "../core/errors.ts";
import type { RunContext, StageResult } from "../core/run_context.ts";
import { type FileFingerprint, hashFile, hashInBackground, listFiles, statFile } from "./_files.ts";

/** What bronze must do for one source. */
export interface SourcePlan {
  /** Source name. */
  source: string;
  /** Files never ingested before. */
  newFiles: FileFingerprint[];
  /** Files whose content changed since ingestion and must be re-landed. */
  reingest: FileFingerprint[];
  /** Empty files skipped under `on_empty: skip`. */
  emptySkipped: FileFingerprint[];
  /** Number of files found unchanged. */
  unchanged: number;
  /** Changed files ignored under `on_change: ignore`. */
  ignored: string[];
}

/** The extract stage's plan for every source. */
export interface ExtractPlan {
  /** One plan per source, in config order. */
  sources: SourcePlan[];
}

/**
 * Creates the file manifest table if missing.
 *
 * @example
 * ```ts ignore
 * await ensureManifest(ctx.db);
 * ```
 */
export async function ensureManifest(db: Engine): Promise<void> {
  await db.run(`CREATE SCHEMA IF NOT EXISTS _sluice`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.files (
    source VARCHAR, path VARCHAR, size BIGINT, mtime_ms DOUBLE, sha256 VARCHAR,
    run_id VARCHAR, rows BIGINT, status VARCHAR, ingested_at TIMESTAMPTZ)`);
}

interface ManifestRow extends Record<string, unknown> {
  path: string;
  size: number;
  mtime_ms: number;
  sha256: string;
}

/**
 * Plans the run: which files of each source are new or changed. Fails on a
 * missing source folder, an empty file (`on_empty: fail`) or a changed file
 * (`on_change: fail`).
 *
 * @example
 * ```ts ignore
 * const { plan, result } = await extract(ctx);
 * const shown = plan.sources[0].newFiles.length;
 * ```
 */
export async function extract(
  ctx: RunContext,
  options: { sources?: string[] } = {},
): Promise<{ plan: ExtractPlan; result: StageResult }> {
  const log = getLogger(["sluice", "extract"]).with({
    run_id: ctx.runId,
    pipeline: ctx.config.pipeline,
    stage: "extract",
  });
  const started = performance.now();
  await ensureManifest(ctx.db);
  const plan: ExtractPlan = { sources: [] };
  const result: StageResult = { stage: "extract", durationMs: 0, tables: [] };
  for (const [name, source] of Object.entries(ctx.config.sources)) {
    if (options.sources && !options.sources.includes(name)) continue;
    let files: string[];
    try {
      files = await listFiles(source.path, source.glob);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new SourceError(
          `Cannot read source "${name}": folder ${source.path} does not exist`,
          {
            cause: e,
            context: { source: name, path: source.path },
          },
        );
      }
      throw new SourceError(`Cannot read source "${name}": ${(e as Error).message}`, { cause: e });
    }
    const known = new Map<string, ManifestRow>();
    for (
      const row of await ctx.db.all<ManifestRow>(
        `SELECT path, size, mtime_ms, sha256 FROM _sluice.files
         WHERE source = $source AND status <> 'superseded'
         QUALIFY row_number() OVER (PARTITION BY path ORDER BY ingested_at DESC) = 1`,
        { source: name },
      )
    ) known.set(row.path, row);

    const sp: SourcePlan = {
      source: name,
      newFiles: [],
      reingest: [],
      emptySkipped: [],
      unchanged: 0,
      ignored: [],
    };
    for (const path of files) {
      const fp = await statFile(path);
      const prev = known.get(path);
      if (prev && prev.size === fp.size && prev.mtime_ms === fp.mtimeMs) {
        sp.unchanged++;
        continue;
      }
      if (fp.size === 0) {
        if (source.on_empty === "fail") {
          throw new SourceError(`Cannot load source "${name}": file ${path} is empty`, {
            context: { source: name, file: path },
          });
        }
        fp.sha256 = await hashFile(path);
        if (prev) sp.ignored.push(path);
        else sp.emptySkipped.push(fp);
        log.warn("file is empty, skipped", { event: "file_skipped", source: name, file: path });
        continue;
      }
      if (!prev) {
        // Nothing to compare with: hashed in the background while bronze lands it.
        sp.newFiles.push(fp);
        continue;
      }
      fp.sha256 = await hashFile(path);
      if (prev.sha256 === fp.sha256) {
        sp.unchanged++; // touched but identical content
        continue;
      }
      if (source.on_change === "fail") {
        throw new SourceError(
          `Cannot load source "${name}": file ${path} changed since it was ingested ` +
            `(size ${prev.size} -> ${fp.size}); set on_change: reingest or ignore`,
          { context: { source: name, file: path } },
        );
      }
      if (source.on_change === "ignore") {
        sp.ignored.push(path);
        log.warn("file changed since ingestion, ignored", {
          event: "file_changed",
          source: name,
          file: path,
          policy: "ignore",
        });
        continue;
      }
      log.warn("file changed since ingestion, re-landing it", {
        event: "file_changed",
        source: name,
        file: path,
        policy: "reingest",
      });
      sp.reingest.push(fp);
    }
    hashInBackground(sp.newFiles);
    plan.sources.push(sp);
    const found = files.length;
    result.tables.push({
      layer: "extract",
      table: name,
      rowsIn: found,
      passed: sp.newFiles.length + sp.reingest.length,
      quarantined: 0,
      duplicates: sp.unchanged + sp.ignored.length + sp.emptySkipped.length,
      details: {
        unit: "files",
        new: sp.newFiles.length,
        reingest: sp.reingest.length,
        unchanged: sp.unchanged,
        ignored: sp.ignored.length,
        empty_skipped: sp.emptySkipped.length,
      },
    });
    log.info("source scanned", {
      event: "source_scanned",
      source: name,
      files: found,
      new: sp.newFiles.length,
      reingest: sp.reingest.length,
      unchanged: sp.unchanged,
    });
  }
  result.durationMs = performance.now() - started;
  return { plan, result };
}
