/**
 * The run manifest: what exactly produced a run's results. Sluice, DuckDB
 * and Deno versions, the hash of the resolved config (secrets excluded), a
 * hash of every SQL model and silver definition, and the fingerprint (path,
 * size, mtime, SHA-256) of every input file the run read. Stored in
 * `_sluice.run_manifests` and `_sluice.run_inputs`.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { PipelineConfig } from "../core/config/mod.ts";
import type { Engine } from "../core/engine.ts";
import type { RunContext } from "../core/run_context.ts";
import { ensureLedger, SLUICE_VERSION, tableExists } from "./ledger.ts";

/** One input file a run read. */
export interface InputFingerprint {
  /** Source name. */
  source: string;
  /** Absolute path. */
  path: string;
  /** Size in bytes. */
  size: number;
  /** Modification time, ms since epoch. */
  mtime_ms: number;
  /** SHA-256 of the content, hex. */
  sha256: string;
  /** Rows landed from it. */
  rows: number;
  /** `ingested` or `skipped_empty`. */
  status: string;
}

/** Everything that produced a run. */
export interface RunManifest {
  /** The run. */
  run_id: string;
  /** Pipeline name. */
  pipeline: string;
  /** Sluice version. */
  sluice_version: string;
  /** DuckDB library version, e.g. `v1.5.0`. */
  duckdb_version: string;
  /** DuckDB source commit. */
  duckdb_source_id: string;
  /** Deno version. */
  deno_version: string;
  /** Absolute path of the config file. */
  config_file: string;
  /** SHA-256 of the resolved config with secrets replaced. */
  config_hash: string;
  /** SHA-256 per model: `gold.<name>` (its SQL) and `silver.<name>` (its definition). */
  models: Record<string, string>;
  /** Input files the run read (filled when the run ends). */
  inputs: InputFingerprint[];
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** JSON with sorted keys, so equal definitions hash equally. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    return `{${
      Object.keys(obj).sort().filter((k) => obj[k] !== undefined)
        .map((k) => `${JSON.stringify(k)}:${canonical(obj[k])}`).join(",")
    }}`;
  }
  return JSON.stringify(value ?? null);
}

/**
 * Hashes every gold model's SQL and every silver table's definition
 * (columns, expressions, rules, key, mode).
 *
 * @example
 * ```ts ignore
 * modelHashes(config); // { "gold.top_products": "9f2c...", "silver.orders": "51ab..." }
 * ```
 */
export function modelHashes(config: PipelineConfig): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, table] of Object.entries(config.silver)) {
    out[`silver.${name}`] = sha256(canonical(table));
  }
  for (const [name, model] of Object.entries(config.gold)) out[`gold.${name}`] = sha256(model.sql);
  return out;
}

/**
 * The DuckDB library version and source commit of an open database.
 *
 * @example
 * ```ts ignore
 * await duckdbVersion(db); // { version: "v1.5.0", sourceId: "..." }
 * ```
 */
export async function duckdbVersion(db: Engine): Promise<{ version: string; sourceId: string }> {
  const row = await db.one<{ v: string; s: string }>(
    `SELECT library_version AS v, source_id AS s FROM pragma_version()`,
  );
  return { version: row?.v ?? "unknown", sourceId: row?.s ?? "unknown" };
}

/**
 * Records the manifest of a starting run (everything but its inputs).
 *
 * @example
 * ```ts ignore
 * await recordManifest(ctx);
 * ```
 */
export async function recordManifest(ctx: RunContext): Promise<void> {
  await ensureLedger(ctx.db);
  const duck = await duckdbVersion(ctx.db);
  await ctx.db.run(
    `INSERT OR REPLACE INTO _sluice.run_manifests VALUES ($run_id, $pipeline, $sluice, $duckdb,
      $source_id, $deno, $file, $hash, $models::JSON, $at::TIMESTAMPTZ)`,
    {
      run_id: ctx.runId,
      pipeline: ctx.config.pipeline,
      sluice: SLUICE_VERSION,
      duckdb: duck.version,
      source_id: duck.sourceId,
      deno: Deno.version.deno,
      file: ctx.config.file,
      hash: ctx.config.hash,
      models: JSON.stringify(modelHashes(ctx.config)),
      at: ctx.clock.now().toISOString(),
    },
  );
}

/**
 * Copies the fingerprints of the files this run read from the file manifest
 * (`_sluice.files`) into `_sluice.run_inputs`. Returns how many.
 *
 * @example
 * ```ts ignore
 * const n = await recordRunInputs(ctx);
 * ```
 */
export async function recordRunInputs(ctx: RunContext): Promise<number> {
  await ensureLedger(ctx.db);
  if (!(await tableExists(ctx.db, "_sluice", "files"))) return 0;
  await ctx.db.run(`DELETE FROM _sluice.run_inputs WHERE run_id = $run_id`, {
    run_id: ctx.runId,
  });
  return await ctx.db.run(
    `INSERT INTO _sluice.run_inputs
     SELECT run_id, source, path, size, mtime_ms, sha256, rows, status
     FROM _sluice.files WHERE run_id = $run_id ORDER BY source, path`,
    { run_id: ctx.runId },
  );
}

/**
 * Reads a run's manifest, or `undefined` when none was recorded.
 *
 * @example
 * ```ts ignore
 * const m = await readManifest(db, runId);
 * const shown = [m?.duckdb_version, m?.inputs.length];
 * ```
 */
export async function readManifest(db: Engine, runId: string): Promise<RunManifest | undefined> {
  if (!(await tableExists(db, "_sluice", "run_manifests"))) return undefined;
  const row = await db.one<{ j: string }>(
    `SELECT to_json({
       run_id: m.run_id, pipeline: m.pipeline, sluice_version: m.sluice_version,
       duckdb_version: m.duckdb_version, duckdb_source_id: m.duckdb_source_id,
       deno_version: m.deno_version, config_file: m.config_file, config_hash: m.config_hash,
       models: m.models,
       inputs: coalesce((SELECT list({source: i.source, path: i.path, size: i.size,
         mtime_ms: i.mtime_ms, sha256: i.sha256, rows: i.rows, status: i.status}
         ORDER BY i.source, i.path) FROM _sluice.run_inputs i WHERE i.run_id = m.run_id), [])
     })::VARCHAR AS j
     FROM _sluice.run_manifests m WHERE m.run_id = $run_id`,
    { run_id: runId },
  );
  return row ? JSON.parse(row.j) as RunManifest : undefined;
}
