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
import { getLogger, type Logger } from "@logtape/logtape";
import type { SourceConfig } from "../core/config/mod.ts";
import type { Engine } from "../core/engine.ts";
import { SourceError } from "../core/errors.ts";
import type { RunContext, StageResult } from "../core/run_context.ts";
import { qualified } from "../core/quote.ts";
import { tableColumns } from "./_catalog.ts";
import { settleFiles } from "./_settle.ts";
import {
  type FileFingerprint,
  hashFile,
  hashInBackground,
  listFiles,
  relativePath,
  statFile,
} from "./_files.ts";

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
  status: string;
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
    const { files, known } = await scanSource(ctx, name, source);
    const sp: SourcePlan = {
      source: name,
      newFiles: [],
      reingest: [],
      emptySkipped: [],
      unchanged: 0,
      ignored: [],
    };
    for (const fp of await statAll(files, source.path)) {
      await planFile(log, { name, source, fp, prev: known.get(fp.rel!), sp });
    }
    hashInBackground(sp.newFiles);
    plan.sources.push(sp);
    const found = files.length;
    result.tables.push(extractTable(name, sp, found));
    log.info("source scanned", {
      event: "source_scanned",
      source: name,
      files: found,
      new: sp.newFiles.length,
      reingest: sp.reingest.length,
      unchanged: sp.unchanged,
    });
  }
  // Files still being written are waited for (run.retries), then landed whole (one look for all).
  const moved = await settleFiles(
    ctx,
    plan.sources.flatMap((sp) => [...sp.newFiles, ...sp.reingest]),
    log,
  );
  for (const fp of moved) {
    if (fp.sha256 === "") fp.hashing = hashFile(fp.path); // a new file: hash what settled
    else fp.sha256 = await hashFile(fp.path);
  }
  result.durationMs = performance.now() - started;
  return { plan, result };
}

/** The extract stage's accounting of one source: files found, to land, and skipped. */
function extractTable(name: string, sp: SourcePlan, found: number): StageResult["tables"][number] {
  return {
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
  };
}

/**
 * Decides what happens to one scanned file (skip, land, re-land or fail),
 * recording it in the source's plan `sp`.
 */
async function planFile(
  log: Logger,
  o: {
    name: string;
    source: SourceConfig;
    fp: FileFingerprint;
    prev?: ManifestRow;
    sp: SourcePlan;
  },
): Promise<void> {
  const { name, source, fp, prev, sp } = o;
  const path = fp.path;
  if (prev && prev.size === fp.size && prev.mtime_ms === fp.mtimeMs) {
    sp.unchanged++;
    return;
  }
  if (fp.size === 0) {
    if (source.on_empty === "fail") {
      throw new SourceError(`Cannot load source "${name}": file ${fp.rel} is empty`, {
        context: { source: name, file: fp.rel },
      });
    }
    fp.sha256 = await hashFile(path);
    if (prev) sp.ignored.push(path);
    else sp.emptySkipped.push(fp);
    log.warn("file is empty, skipped", { event: "file_skipped", source: name, file: path });
    return;
  }
  if (!prev) {
    // Nothing to compare with: hashed in the background while bronze lands it.
    sp.newFiles.push(fp);
    return;
  }
  fp.sha256 = await hashFile(path);
  if (prev.sha256 === fp.sha256) {
    sp.unchanged++; // touched but identical content
    return;
  }
  if (prev.status === "retracted") {
    // A retracted file sent again with other content is a new version: it
    // lands whatever on_change says (its earlier rows are gone already).
    log.info("retracted file is back with new content, landing it", {
      event: "file_returned",
      source: name,
      file: fp.rel,
    });
    sp.reingest.push(fp);
    return;
  }
  if (source.on_change === "fail") {
    throw new SourceError(
      `Cannot load source "${name}": file ${fp.rel} changed since it was ingested ` +
        `(${changeDetail(prev, fp)}); set on_change: reingest or ignore`,
      { context: { source: name, file: fp.rel } },
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
    return;
  }
  log.warn("file changed since ingestion, re-landing it", {
    event: "file_changed",
    source: name,
    file: path,
    policy: "reingest",
  });
  sp.reingest.push(fp);
}

/**
 * Fingerprints (no hash) of `paths`, in order, at most 64 stats at a time
 * (2,000 small files: 0.2 s one after another).
 */
async function statAll(paths: readonly string[], root: string): Promise<FileFingerprint[]> {
  const out: FileFingerprint[] = new Array(paths.length);
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const i = next++;
      out[i] = await statFile(paths[i], { root });
    }
  };
  await Promise.all(Array.from({ length: Math.min(64, paths.length) }, worker));
  return out;
}

/**
 * Lists a source's files and reads its manifest rows (latest per path, not
 * superseded), after migrating old absolute paths. Fails on a missing folder,
 * and on a first run whose glob matches nothing (most often a wrong glob).
 */
async function scanSource(
  ctx: RunContext,
  name: string,
  source: SourceConfig,
): Promise<{ files: string[]; known: Map<string, ManifestRow> }> {
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
  await migrateAbsolutePaths(ctx, name, source.path, files);
  const known = new Map<string, ManifestRow>();
  for (
    const row of await ctx.db.all<ManifestRow>(
      `SELECT path, size, mtime_ms, sha256, status FROM _sluice.files
       WHERE source = $source AND status <> 'superseded'
       QUALIFY row_number() OVER (PARTITION BY path ORDER BY ingested_at DESC) = 1`,
      { source: name },
    )
  ) known.set(row.path, row);

  if (files.length === 0 && known.size === 0) {
    const landedBefore = (await tableColumns(ctx.db, "bronze", name)).length > 0;
    if (!landedBefore) {
      throw new SourceError(
        `Cannot load source "${name}": no file in ${source.path} matches ${
          JSON.stringify(source.glob)
        } and nothing was landed before`,
        { context: { source: name, path: source.path, glob: source.glob } },
      );
    }
  }
  return { files, known };
}

/** What changed in a file: `content hash differs; size 966 → 966; mtime … → …`. */
function changeDetail(prev: ManifestRow, fp: FileFingerprint): string {
  const iso = (ms: number) => new Date(ms).toISOString();
  return [
    "content hash differs",
    `size ${prev.size} → ${fp.size}`,
    ...(prev.mtime_ms !== fp.mtimeMs ? [`mtime ${iso(prev.mtime_ms)} → ${iso(fp.mtimeMs)}`] : []),
  ].join("; ");
}

/**
 * Rewrites manifest paths (and bronze `_source_file` values) that earlier
 * versions stored as absolute paths into paths relative to the source
 * folder. A path under the current folder maps directly; a path under
 * another folder (the project was moved before this migration) maps when it
 * ends with the relative path of a file found now, which tells the old
 * folder. Cheap when there is nothing to do: one read of the manifest.
 */
async function migrateAbsolutePaths(
  ctx: RunContext,
  name: string,
  dir: string,
  files: readonly string[],
): Promise<void> {
  const rows = await ctx.db.all<{ path: string }>(
    `SELECT DISTINCT path FROM _sluice.files WHERE source = $source AND starts_with(path, '/')`,
    { source: name },
  );
  if (rows.length === 0) return;
  const prefixes = new Set<string>([dir.endsWith("/") ? dir : `${dir}/`]);
  const rels = files.map((f) => relativePath(dir, f));
  for (const { path } of rows) {
    if ([...prefixes].some((p) => path.startsWith(p))) continue;
    const rel = rels.find((r) => path.endsWith(`/${r}`));
    if (rel) prefixes.add(path.slice(0, path.length - rel.length));
  }
  const bronzeExists = (await tableColumns(ctx.db, "bronze", name)).length > 0;
  await ctx.db.transaction(async () => {
    for (const prefix of prefixes) {
      const params = { source: name, prefix, n: prefix.length + 1 };
      const moved = await ctx.db.run(
        `UPDATE _sluice.files SET path = substr(path, $n)
         WHERE source = $source AND starts_with(path, $prefix)`,
        params,
      );
      if (moved > 0 && bronzeExists) {
        await ctx.db.run(
          `UPDATE ${qualified("bronze", name)} SET _source_file = substr(_source_file, $n)
           WHERE starts_with(_source_file, $prefix)`,
          { prefix, n: prefix.length + 1 },
        );
      }
      // Silver rows and quarantine rows that carry the file they came from.
      const derived = Object.entries(ctx.config.silver)
        .filter(([, t]) => t.from === name)
        .flatMap(([t]) => [t, `${t}__quarantine`]);
      for (const t of moved > 0 ? derived : []) {
        const cols = await tableColumns(ctx.db, "silver", t);
        if (!cols.some((c) => c.name === "_source_file")) continue;
        await ctx.db.run(
          `UPDATE ${qualified("silver", t)} SET _source_file = substr(_source_file, $n)
           WHERE starts_with(_source_file, $prefix)`,
          { prefix, n: prefix.length + 1 },
        );
      }
      if (moved > 0) {
        getLogger(["sluice", "extract"]).info("manifest paths made relative", {
          run_id: ctx.runId,
          pipeline: ctx.config.pipeline,
          stage: "extract",
          event: "manifest_migrated",
          source: name,
          prefix,
          files: moved,
        });
      }
    }
  });
}
