/**
 * The one opener of a pipeline's database: engine settings (threads,
 * memory limit, temp folder, checkpoint threshold), the sandbox folders and
 * the layer schemas come from the config here and nowhere else. The run
 * lifecycle (`runtime/with_run.ts`) opens it for a run; the ledger readers
 * (`sluice runs`, `sluice report`) open it with `access: "ledger"`.
 *
 * @module
 */
import type { PipelineConfig } from "./config/mod.ts";
import { streamingDirectories } from "./config/mod.ts";
import { type Engine, openEngine } from "./engine.ts";

/** Schemas a run creates before the sandbox locks. */
const RUN_SCHEMAS = ["bronze", "silver", "gold", "_sluice"];

/**
 * The folders the DuckDB sandbox allows a run: the lake, the output folder,
 * every source folder and the streaming folders.
 *
 * @example
 * ```ts ignore
 * sandboxDirectories(config); // ["/data/lake", "/data/lake/output", "/data/landing/orders"]
 * ```
 */
export function sandboxDirectories(config: PipelineConfig): string[] {
  const dirs = new Set([config.lake, config.output.path]);
  for (const s of Object.values(config.sources)) dirs.add(s.path);
  if (config.streaming) { for (const d of streamingDirectories(config.streaming)) dirs.add(d); }
  return [...dirs];
}

/** Options of {@linkcode openPipelineDb}. */
export interface OpenPipelineDbOptions {
  /**
   * `run` (default): creates the lake, temp and output folders and the layer
   * schemas, and allows every folder of {@linkcode sandboxDirectories}.
   * `ledger`: only reads the lake (the ledger readers); creates nothing.
   */
  access?: "run" | "ledger";
  /**
   * WAL size at which DuckDB checkpoints by itself. Default `1GB` for a run
   * (a batch run checkpoints once, at its end); `null` keeps DuckDB's own
   * default (a long-running stream, whose checkpoints keep its WAL small).
   */
  checkpointThreshold?: string | null;
}

/**
 * Opens the pipeline's database file with the config's engine settings and
 * the sandbox locked. Close it with `db.close()`.
 *
 * @example
 * ```ts ignore
 * const db = await openPipelineDb(config, { access: "ledger" });
 * try { await db.all("SELECT * FROM _sluice.runs"); } finally { db.close(); }
 * ```
 */
export async function openPipelineDb(
  config: PipelineConfig,
  options: OpenPipelineDbOptions = {},
): Promise<Engine> {
  const settings = {
    threads: config.engine.threads,
    memoryLimit: config.engine.memory_limit,
    tempDirectory: config.engine.temp_directory,
  };
  if (options.access === "ledger") {
    return await openEngine(config.engine.database, {
      ...settings,
      allowedDirectories: [config.lake],
    });
  }
  await Deno.mkdir(config.lake, { recursive: true });
  await Deno.mkdir(config.engine.temp_directory, { recursive: true });
  await Deno.mkdir(config.output.path, { recursive: true });
  const threshold = options.checkpointThreshold === undefined ? "1GB" : options.checkpointThreshold;
  return await openEngine(config.engine.database, {
    ...settings,
    allowedDirectories: sandboxDirectories(config),
    schemas: RUN_SCHEMAS,
    searchPath: ["gold", "silver"],
    ...(threshold === null ? {} : { checkpointThreshold: threshold }),
  });
}
