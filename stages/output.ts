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
 * Incremental: each version folder holds a manifest (`_sluice_output.json`)
 * with every partition's row count and content fingerprint. A partition
 * whose fingerprint equals the published version's is not written again:
 * its files are hard links to the published ones (Parquet files are never
 * changed in place, so a link is as good as a copy, and pruning an old
 * version only drops one of its names). Only changed and new partitions are
 * written; a partition that disappeared is simply not in the new version.
 *
 * Gold models record the run that last changed their rows
 * (`_sluice.gold_versions`), and the manifest keeps it (`source_version`).
 * When it is still the same, nothing changed since the published version:
 * every partition is linked without scanning the table (only its row count
 * is checked). An unpartitioned table that an incremental build changed in
 * this run is written without a fingerprint scan, since it would be written
 * whole anyway; its entry (`xor` "") is never matched by a fingerprint.
 *
 * @module
 */
import { getLogger, type Logger } from "@logtape/logtape";
import { dirname, join, relative, sep } from "node:path";
import { crashPoint } from "../core/crash_seam.ts";
import { pathExists } from "../core/fs.ts";
import { ConfigError, ConservationError } from "../core/errors.ts";
import { ident, identList, literal, qualified } from "../core/quote.ts";
import type { PipelineConfig } from "../core/config/mod.ts";
import type { RunContext, StageResult, TableResult } from "../core/run_context.ts";
import {
  columnsOf,
  type Fingerprint,
  fingerprints,
  keyText,
  type PartitionEntry,
  partitionFilter,
  readManifest,
  sameRows,
  writeManifest,
} from "./_output_manifest.ts";

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
  const written: Written[] = [];
  try {
    for (const [name, settings] of Object.entries(out.tables)) {
      if (options.tables && !options.tables.includes(name)) continue;
      result.tables.push(await writeTableVersion(ctx, name, { settings, written, log }));
    }
  } catch (e) {
    // Nothing was published: remove this run's new versions, keep the links.
    for (const w of written) await Deno.remove(w.versionDir, { recursive: true }).catch(() => {});
    throw e;
  }
  await publishVersions(ctx, written, { tables: result.tables, log });
  for (const w of written) await pruneVersions(w.versionsDir, ctx.runId, out.keep_versions);
  result.durationMs = performance.now() - started;
  result.skipped = result.tables.length === 0;
  return result;
}

/** Swaps each table's published link to its new version, atomically, once all are verified. */
async function publishVersions(
  ctx: RunContext,
  written: readonly Written[],
  options: { tables: readonly TableResult[]; log: Logger },
): Promise<void> {
  const { tables, log } = options;
  const dir = ctx.config.output.path;
  crashPoint("output_written");
  // Temporary links of a run killed between its symlink and its rename.
  for await (const e of Deno.readDir(dir)) {
    if (e.isSymlink && e.name.startsWith(".") && e.name.endsWith(".tmp")) {
      await Deno.remove(join(dir, e.name)).catch(() => {});
    }
  }
  // Publish: every table is written and verified; swap each link atomically.
  for (const [i, w] of written.entries()) {
    const tmpLink = join(dir, `.${w.name}.${ctx.runId}.tmp`);
    if (await pathExists(tmpLink)) await Deno.remove(tmpLink);
    await Deno.symlink(join(".versions", w.name, ctx.runId), tmpLink);
    crashPoint("output_linking");
    await Deno.rename(tmpLink, w.link);
    crashPoint("output_swapping");
    const t = tables[i];
    log.info("table published", {
      event: "table_published",
      table: w.name,
      rows: t.rowsIn,
      files: t.details?.files,
      path: w.link,
    });
  }
  crashPoint("output_published");
}

type Written = { name: string; link: string; versionsDir: string; versionDir: string };
type OutputTableSettings = PipelineConfig["output"]["tables"][string];

/**
 * Writes and verifies one table's new version folder (published later, with
 * the others); `written` gets the folder first, so a failure removes it.
 */
async function writeTableVersion(
  ctx: RunContext,
  name: string,
  options: { settings: OutputTableSettings; written: Written[]; log: Logger },
): Promise<TableResult> {
  const { settings, written, log } = options;
  const out = ctx.config.output;
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
  const parts = settings.partition_by ?? [];
  const maxRows = settings.max_rows_per_file ?? null;
  const plan = await planVersion(ctx, { schema, name, link, versionsDir, parts, maxRows });
  const rows = plan.fingerprints.reduce((n, f) => n + f.rows, 0);
  await Deno.mkdir(versionDir, { recursive: true });
  let entries = await writeChanged(ctx, { source, versionDir, parts, maxRows, rows, plan });
  if (entries === undefined) {
    // The folders DuckDB wrote did not match the partition keys: write it all again.
    log.warn("partition folders did not match their keys, writing the whole table", {
      event: "output_full_write",
      table: name,
    });
    await Deno.remove(versionDir, { recursive: true });
    await Deno.mkdir(versionDir, { recursive: true });
    plan.reuse = [];
    plan.changed = plan.fingerprints;
    await writeChanged(ctx, { source, versionDir, parts, maxRows, rows, plan });
  }
  for (const entry of plan.reuse) {
    for (const file of entry.files) {
      const target = join(versionDir, file);
      await Deno.mkdir(dirname(target), { recursive: true });
      await Deno.link(join(plan.previousDir!, file), target);
    }
  }
  if (entries !== undefined) {
    entries = [...entries, ...plan.reuse];
    await writeManifest(versionDir, {
      format: 1,
      run_id: ctx.runId,
      duckdb: plan.duckdb,
      columns: plan.columns,
      partition_by: parts,
      max_rows_per_file: maxRows,
      rows,
      partitions: entries,
      ...(plan.version !== undefined ? { source_version: plan.version } : {}),
    });
  }
  const linked = plan.reuse.reduce((n, e) => n + e.files.length, 0);
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
  return {
    layer: "output",
    table: name,
    rowsIn: rows,
    passed: got.n,
    quarantined: 0,
    duplicates: 0,
    details: {
      path: link,
      version: versionDir,
      files: got.files,
      files_written: got.files - linked,
      files_linked: linked,
      partitions_written: plan.fingerprints.length - plan.reuse.length,
      partitions_linked: plan.reuse.length,
    },
  };
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

/** What a table's new version reuses and what it writes. */
interface VersionPlan {
  /** Fingerprint of every partition of the table now. */
  fingerprints: Fingerprint[];
  /** Partitions linked from the published version (with its file names). */
  reuse: PartitionEntry[];
  /** Partitions to write. */
  changed: Fingerprint[];
  /** The published version folder, when one with a usable manifest exists. */
  previousDir?: string;
  /** DuckDB version. */
  duckdb: string;
  /** Column names and types. */
  columns: string;
  /** The gold version of the rows (`_sluice.gold_versions.run_id`), when recorded. */
  version?: string;
}

/** The run that last changed a gold model's rows and how, when recorded. */
async function goldVersion(
  ctx: RunContext,
  model: string,
): Promise<{ runId: string; build: string } | undefined> {
  const exists = await ctx.db.one(
    `SELECT 1 AS x FROM duckdb_tables()
     WHERE schema_name = '_sluice' AND table_name = 'gold_versions'`,
  );
  if (exists === undefined) return undefined;
  const row = await ctx.db.one<{ r: string; b: string }>(
    `SELECT run_id AS r, build AS b FROM _sluice.gold_versions WHERE model = $m`,
    { m: model },
  );
  return row === undefined ? undefined : { runId: String(row.r), build: String(row.b) };
}

/**
 * Fingerprints the table in one grouped scan and compares it with the
 * published version's manifest: a partition is reused when its row count
 * and fingerprint are equal, the columns, write settings and DuckDB version
 * are the same, and its published files are all still there.
 */
async function planVersion(
  ctx: RunContext,
  t: {
    schema: string;
    name: string;
    link: string;
    versionsDir: string;
    parts: string[];
    maxRows: number | null;
  },
): Promise<VersionPlan> {
  const duckdb = (await ctx.db.one<{ v: string }>(`SELECT version() AS v`))?.v ?? "";
  const columns = await columnsOf(ctx.db, t.schema, t.name);
  const version = t.schema === "gold" ? await goldVersion(ctx, t.name) : undefined;
  let previousDir: string | undefined;
  try {
    previousDir = join(t.versionsDir, (await Deno.readLink(t.link)).split(/[\\/]/).pop()!);
  } catch {
    previousDir = undefined; // nothing published yet
  }
  if (previousDir === join(t.versionsDir, ctx.runId)) previousDir = undefined;
  const prev = previousDir === undefined ? undefined : await readManifest(previousDir);
  const same = prev !== undefined && prev.duckdb === duckdb && prev.columns === columns &&
    keyText(prev.partition_by) === keyText(t.parts) && prev.max_rows_per_file === t.maxRows;
  // Gold has not changed the rows since the published version was written:
  // every partition is linked without a scan (the row count still checked).
  if (same && version !== undefined && prev!.source_version === version.runId) {
    const n = await ctx.db.one<{ n: number }>(
      `SELECT count(*)::BIGINT AS n FROM ${qualified(t.schema, t.name)}`,
    );
    const files = await Promise.all(
      prev!.partitions.map((p) => allFilesThere(previousDir!, p.files)),
    );
    if (Number(n?.n) === prev!.rows && files.every(Boolean)) {
      return {
        fingerprints: prev!.partitions.map(({ files: _, ...fp }) => fp),
        reuse: prev!.partitions,
        changed: [],
        previousDir,
        duckdb,
        columns,
        version: version.runId,
      };
    }
  }
  // An unpartitioned table that an incremental build of this run changed is
  // written whole anyway: no fingerprint scan (the next run compares versions).
  const unscanned = t.parts.length === 0 && version?.runId === ctx.runId &&
    version.build === "incremental";
  const fps = unscanned
    ? [{
      key: [],
      rows: Number(
        (await ctx.db.one<{ n: number }>(
          `SELECT count(*)::BIGINT AS n FROM ${qualified(t.schema, t.name)}`,
        ))?.n ?? 0,
      ),
      xor: "",
      sum: "",
    }]
    : await fingerprints(ctx.db, t.schema, t.name, t.parts);
  const plan: VersionPlan = {
    fingerprints: fps,
    reuse: [],
    changed: fps,
    duckdb,
    columns,
    version: version?.runId,
  };
  if (!same || previousDir === undefined || unscanned) return plan;
  const before = new Map(prev.partitions.map((p) => [keyText(p.key), p]));
  plan.changed = [];
  for (const fp of fps) {
    const old = before.get(keyText(fp.key));
    // An entry written without a fingerprint (xor "") is never matched by one.
    if (old && old.xor !== "" && sameRows(old, fp) && await allFilesThere(previousDir, old.files)) {
      plan.reuse.push({ ...fp, files: old.files });
    } else plan.changed.push(fp);
  }
  plan.previousDir = previousDir;
  return plan;
}

async function allFilesThere(dir: string, files: readonly string[]): Promise<boolean> {
  if (files.length === 0) return false;
  for (const f of files) {
    if (f.split("/").includes("..")) return false;
    try {
      if (!(await Deno.stat(join(dir, f))).isFile) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * Writes the changed partitions of the table into the version folder (the
 * whole table when nothing is reused) and returns their manifest entries;
 * undefined when the folders DuckDB wrote do not match the partition keys.
 */
async function writeChanged(
  ctx: RunContext,
  w: {
    source: string;
    versionDir: string;
    parts: string[];
    maxRows: number | null;
    rows: number;
    plan: VersionPlan;
  },
): Promise<PartitionEntry[] | undefined> {
  const { source, versionDir, parts, maxRows, rows, plan } = w;
  const opts = ["FORMAT parquet", "COMPRESSION zstd"];
  if (parts.length > 0) {
    if (plan.changed.length === 0 && plan.reuse.length > 0) return [];
    opts.push(`PARTITION_BY (${identList(parts)})`);
    if (maxRows) opts.push(`ROW_GROUP_SIZE ${maxRows}`, "ROW_GROUPS_PER_FILE 1");
    const from = plan.reuse.length > 0
      ? `(SELECT * FROM ${source} WHERE ${partitionFilter(parts, plan.changed.map((c) => c.key))})`
      : source;
    const stats = await ctx.db.all<{ filename: string; partition_keys: unknown }>(
      `COPY ${from} TO ${literal(versionDir)} (${opts.join(", ")}, RETURN_STATS)`,
    );
    const files = new Map(plan.changed.map((c) => [keyText(c.key), [] as string[]]));
    for (const s of stats) {
      const got = new Map(
        (s.partition_keys as { key: string; value: string | null }[] ?? [])
          .map((k) => [k.key, k.value ?? null]),
      );
      const list = files.get(keyText(parts.map((p) => got.get(p) ?? null)));
      if (list === undefined) return undefined;
      list.push(relative(versionDir, s.filename).split(sep).join("/"));
    }
    const entries = plan.changed.map((c) => ({ ...c, files: files.get(keyText(c.key))! }));
    return entries.every((e) => e.files.length > 0) ? entries : undefined;
  }
  if (plan.changed.length === 0) return [];
  const written: string[] = [];
  if (maxRows && rows > maxRows) {
    // Exact cap: number the rows once, then write one file per slice.
    const numbered = ident("__sluice_out_numbered");
    await ctx.db.run(
      `CREATE OR REPLACE TEMP TABLE ${numbered} AS
       SELECT *, (row_number() OVER () - 1) // ${maxRows} AS __file FROM ${source}`,
    );
    const count = Math.ceil(rows / maxRows);
    for (let i = 0; i < count; i++) {
      const file = `part-${String(i).padStart(5, "0")}.parquet`;
      await ctx.db.run(
        `COPY (SELECT * EXCLUDE (__file) FROM ${numbered} WHERE __file = ${i})
         TO ${literal(join(versionDir, file))} (${opts.join(", ")})`,
      );
      written.push(file);
    }
    await ctx.db.run(`DROP TABLE ${numbered}`);
  } else {
    await ctx.db.run(
      `COPY ${source} TO ${literal(join(versionDir, "part-00000.parquet"))} (${opts.join(", ")})`,
    );
    written.push("part-00000.parquet");
  }
  return plan.changed.map((c) => ({ ...c, files: written }));
}
