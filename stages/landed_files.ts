/**
 * The files each source has landed, with their state (`sluice files`), and
 * the `on_missing` policy for landed files that vanished from the landing
 * folder (`keep`, `retract` or `fail`).
 *
 * A file's state compares the manifest (`_sluice.files`) with the folder:
 *
 * - `landed`: in bronze, and the folder holds the same content;
 * - `changed`: in bronze, but the folder's file has other content (the next
 *   run re-lands it, ignores it or fails, by the source's `on_change`);
 * - `missing`: in bronze, but no longer in the folder (see `on_missing`);
 * - `retracted`: taken out of bronze (`sluice retract`, `on_missing:
 *   retract`); it lands again only when re-sent with other content;
 * - `empty`: an empty file skipped under `on_empty: skip`.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { isAbsolute, join, relative, sep } from "node:path";
import type { PipelineConfig } from "../core/config/mod.ts";
import type { Engine } from "../core/engine.ts";
import { SourceError, UsageError } from "../core/errors.ts";
import { literalList } from "../core/quote.ts";
import type { RunContext } from "../core/run_context.ts";
import { hashFile, listFiles } from "./_files.ts";
import { tableExists } from "../observability/ledger.ts";

/**
 * The state of one landed file; see the module doc.
 *
 * @example
 * ```ts ignore
 * const stuck = files.filter((f) => f.state === "missing");
 * ```
 */
export type LandedFileState = "landed" | "changed" | "missing" | "retracted" | "empty";

/**
 * One file a source has landed, as `sluice files` lists it.
 *
 * @example
 * ```ts ignore
 * const [f] = await listLandedFiles(ctx);
 * // { source: "orders", path: "orders_1.csv", state: "landed", rows: 1000, ... }
 * ```
 */
export interface LandedFile {
  /** Source name. */
  source: string;
  /** The file as the manifest and bronze's `_source_file` name it. */
  path: string;
  /** Its state. */
  state: LandedFileState;
  /** Rows it landed (its latest landing). */
  rows: number;
  /** Size in bytes when landed. */
  size: number;
  /** SHA-256 of the content landed, hex. */
  sha256: string;
  /** The run that first landed this path. */
  firstRunId: string;
  /** The run that landed (or last recorded) its current content. */
  lastRunId: string;
  /** When its current content landed. */
  ingestedAt: Date;
}

interface ManifestRow extends Record<string, unknown> {
  source: string;
  path: string;
  size: number;
  mtime_ms: number;
  sha256: string;
  rows: number;
  status: string;
  ingested_at: Date | string;
  first_run: string;
  last_run: string;
}

/**
 * A manifest path as a path on disk (the manifest may hold either form).
 *
 * @example
 * ```ts ignore
 * absoluteFile(config, "orders", "orders_1.csv"); // "/srv/landing/orders/orders_1.csv"
 * ```
 */
export function absoluteFile(config: PipelineConfig, source: string, path: string): string {
  return isAbsolute(path) ? path : join(config.sources[source].path, path);
}

/** The latest manifest row of every file of the chosen sources. */
async function manifestRows(db: Engine, sources: readonly string[]): Promise<ManifestRow[]> {
  if (sources.length === 0) return [];
  // A read path: no manifest yet means no file landed (and the ledger replica is read-only).
  if (!(await tableExists(db, "_sluice", "files"))) return [];
  return await db.all<ManifestRow>(
    `SELECT source, path, size, mtime_ms, sha256, rows, status, ingested_at,
       arg_min(run_id, ingested_at) OVER (PARTITION BY source, path) AS first_run,
       run_id AS last_run
     FROM _sluice.files WHERE list_contains(${literalList(sources)}, source)
     QUALIFY row_number() OVER (PARTITION BY source, path ORDER BY ingested_at DESC) = 1
     ORDER BY source, path`,
  );
}

/** The chosen sources (all by default), checked against the config. */
function chosenSources(config: PipelineConfig, sources?: readonly string[]): string[] {
  const all = Object.keys(config.sources);
  for (const s of sources ?? []) {
    if (!all.includes(s)) {
      throw new UsageError(
        `Cannot list files of source "${s}": no such source (sources: ${all.join(", ") || "none"})`,
        { context: { source: s } },
      );
    }
  }
  return sources ? [...sources] : all;
}

/** The files in a source's folder now, by absolute path. */
async function presentFiles(config: PipelineConfig, source: string): Promise<Set<string>> {
  const s = config.sources[source];
  try {
    return new Set(await listFiles(s.path, s.glob));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return new Set();
    throw e;
  }
}

/**
 * Lists the files each source (or those named) has landed, with their
 * state, rows, hash and first and last run. Reads the folders (a changed
 * size or time makes it hash the file) but writes nothing.
 *
 * @example
 * ```ts ignore
 * for (const f of await listLandedFiles(ctx, { sources: ["orders"] })) {
 *   // f.path, f.state ("landed" | "changed" | "missing" | "retracted" | "empty"), f.rows
 * }
 * ```
 */
export async function listLandedFiles(
  ctx: Pick<RunContext, "db" | "config">,
  options: { sources?: readonly string[] } = {},
): Promise<LandedFile[]> {
  const sources = chosenSources(ctx.config, options.sources);
  const present = new Map<string, Set<string>>();
  for (const s of sources) present.set(s, await presentFiles(ctx.config, s));
  const out: LandedFile[] = [];
  for (const r of await manifestRows(ctx.db, sources)) {
    const abs = absoluteFile(ctx.config, r.source, r.path);
    let state: LandedFileState;
    if (r.status === "retracted") state = "retracted";
    else if (r.status === "skipped_empty") state = "empty";
    else if (!present.get(r.source)!.has(abs)) state = "missing";
    else {
      const info = await Deno.stat(abs);
      const same = info.size === Number(r.size) && (info.mtime?.getTime() ?? 0) === r.mtime_ms;
      state = same || (await hashFile(abs)) === r.sha256 ? "landed" : "changed";
    }
    out.push({
      source: r.source,
      path: r.path,
      state,
      rows: Number(r.rows),
      size: Number(r.size),
      sha256: r.sha256,
      firstRunId: r.first_run,
      lastRunId: r.last_run,
      ingestedAt: new Date(r.ingested_at),
    });
  }
  return out;
}

/**
 * The landed files (status `ingested`) of `source` that are no longer in
 * its folder, as the manifest names them.
 *
 * @example
 * ```ts ignore
 * const gone = await missingFiles(ctx, "orders"); // ["orders_2026-01-03.csv"]
 * ```
 */
export async function missingFiles(
  ctx: Pick<RunContext, "db" | "config">,
  source: string,
): Promise<string[]> {
  return missingOf(ctx.config, source, await manifestRows(ctx.db, [source]));
}

/** The `ingested` rows of `source` among `rows` whose file is gone from its folder. */
async function missingOf(
  config: PipelineConfig,
  source: string,
  rows: readonly ManifestRow[],
): Promise<string[]> {
  const present = await presentFiles(config, source);
  return rows.filter((r) =>
    r.source === source && r.status === "ingested" &&
    !present.has(absoluteFile(config, source, r.path))
  ).map((r) => r.path);
}

/**
 * What the `on_missing` policies found in one run.
 *
 * @example
 * ```ts ignore
 * const { missing, retract } = await checkMissingFiles(ctx);
 * // missing: { orders: ["orders_3.csv"] }, retract: {} under on_missing: keep
 * ```
 */
export interface MissingFiles {
  /** Per source, the landed files no longer in its folder. */
  missing: Record<string, string[]>;
  /** Per source, the files to retract (`on_missing: retract`). */
  retract: Record<string, string[]>;
}

/**
 * Applies each source's `on_missing` policy to the landed files that
 * vanished from its folder: `keep` logs them (their rows stay), `fail`
 * throws a {@linkcode SourceError} naming them, `retract` returns them for
 * the caller to retract (see `retractMissing` in `stages/retract.ts`).
 *
 * @example
 * ```ts ignore
 * const { retract } = await checkMissingFiles(ctx);
 * ```
 */
export async function checkMissingFiles(
  ctx: RunContext,
  options: { sources?: readonly string[] } = {},
): Promise<MissingFiles> {
  const log = getLogger(["sluice", "extract"]).with({
    run_id: ctx.runId,
    pipeline: ctx.config.pipeline,
    stage: "extract",
  });
  const out: MissingFiles = { missing: {}, retract: {} };
  const sources = chosenSources(ctx.config, options.sources);
  // One manifest read for every source: this runs in every run, no-op ones too.
  const rows = await manifestRows(ctx.db, sources);
  for (const source of sources) {
    const gone = await missingOf(ctx.config, source, rows);
    if (gone.length === 0) continue;
    out.missing[source] = gone;
    const policy = ctx.config.sources[source].on_missing ?? "keep";
    const shown = gone.slice(0, 5).join(", ") + (gone.length > 5 ? `, … (${gone.length})` : "");
    if (policy === "fail") {
      throw new SourceError(
        `Cannot load source "${source}": ${gone.length} landed file(s) are no longer in ` +
          `${ctx.config.sources[source].path}: ${shown} (on_missing: fail; put them back, or ` +
          `remove their rows with sluice retract --source ${source} FILE…)`,
        { context: { source, files: gone } },
      );
    }
    if (policy === "retract") out.retract[source] = gone;
    log.warn(
      policy === "retract"
        ? "landed files vanished from the folder, retracting their rows"
        : "landed files vanished from the folder, their rows are kept",
      { event: "files_missing", source, files: gone, policy },
    );
  }
  return out;
}

/**
 * Forward-slash path of `file` relative to `dir`.
 *
 * @example
 * ```ts ignore
 * relativeFile("/srv/landing", "/srv/landing/2026/a.csv"); // "2026/a.csv"
 * ```
 */
export function relativeFile(dir: string, file: string): string {
  return relative(dir, file).split(sep).join("/");
}
