/**
 * The one module that owns DuckDB. It opens the pipeline's database file,
 * applies threads / memory_limit / temp_directory, creates the layer schemas,
 * and then locks the sandbox: only the lake and the declared source folders
 * are reachable, external access is off and the configuration is locked.
 *
 * @module
 */
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { EngineError, errorMessage, LockHeldError, SandboxError } from "./errors.ts";
import { ident, literal, literalList } from "./quote.ts";

/** Options for {@linkcode openEngine}. */
export interface EngineOptions {
  /** Folders SQL may read and write (lake, sources, outputs). Absolute. */
  allowedDirectories: string[];
  /** DuckDB worker threads. */
  threads?: number;
  /** DuckDB memory limit, e.g. `2GB`. */
  memoryLimit?: string;
  /** Spill folder (must be inside an allowed directory). */
  tempDirectory?: string;
  /** Schemas to create before the sandbox is locked. */
  schemas?: string[];
  /** Schemas searched for unqualified table names, in order. */
  searchPath?: string[];
}

/** A parameter value bound to `$name` placeholders. */
export type SqlParam = string | number | boolean | bigint | null;

/** A row returned by {@linkcode Engine.all}; BIGINTs become numbers when safe. */
export type Row = Record<string, unknown>;

/**
 * A sandboxed DuckDB database. All SQL of a run goes through one Engine.
 */
export interface Engine {
  /** Absolute database path, or `:memory:`. */
  readonly path: string;
  /** Runs SQL and returns how many rows it changed (inserted, updated, deleted). */
  run(sql: string, params?: Record<string, SqlParam>): Promise<number>;
  /** Runs a query and returns its rows as objects. */
  all<T extends Row = Row>(sql: string, params?: Record<string, SqlParam>): Promise<T[]>;
  /** Runs a query and returns its first row, if any. */
  one<T extends Row = Row>(sql: string, params?: Record<string, SqlParam>): Promise<T | undefined>;
  /**
   * Runs `fn` in one transaction: commit when it resolves, roll back when it
   * throws. Nested calls join the outer transaction.
   */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
  /** Runs `CHECKPOINT` so the WAL is folded into the database file. */
  checkpoint(): Promise<void>;
  /** Closes the database and releases its lock. */
  close(): void;
}

function toJs(value: unknown): unknown {
  if (typeof value === "bigint") {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value;
  }
  return value;
}

/** Maps a DuckDB error to a typed Sluice error. */
export function classifyDuckDbError(e: unknown, what: string): Error {
  const message = errorMessage(e);
  const first = message.split("\n")[0];
  if (/Could not set lock on file|Conflicting lock is held/i.test(message)) {
    return new LockHeldError(`${what}: another run holds the database lock (${first})`, {
      cause: e,
    });
  }
  if (/^Permission Error/i.test(message) || /disabled by configuration/i.test(message)) {
    return new SandboxError(
      `${what}: outside the sandbox, only the lake and declared source folders are readable (${first})`,
      { cause: e },
    );
  }
  const transient = /^IO Error|Out of Memory|disk|No space left/i.test(message);
  return new EngineError(`${what}: ${message}`, { cause: e, transient });
}

class DuckDbEngine implements Engine {
  #instance: DuckDBInstance;
  #conn: DuckDBConnection;
  #depth = 0;
  readonly path: string;

  constructor(path: string, instance: DuckDBInstance, conn: DuckDBConnection) {
    this.path = path;
    this.#instance = instance;
    this.#conn = conn;
  }

  async run(sql: string, params?: Record<string, SqlParam>): Promise<number> {
    try {
      const result = await this.#conn.run(sql, params as Record<string, never>);
      return result.rowsChanged;
    } catch (e) {
      throw classifyDuckDbError(e, "Cannot run SQL");
    }
  }

  async all<T extends Row = Row>(sql: string, params?: Record<string, SqlParam>): Promise<T[]> {
    let reader;
    try {
      reader = await this.#conn.runAndReadAll(sql, params as Record<string, never>);
    } catch (e) {
      throw classifyDuckDbError(e, "Cannot run query");
    }
    const rows = reader.getRowObjectsJS() as Row[];
    for (const row of rows) {
      for (const k of Object.keys(row)) row[k] = toJs(row[k]);
    }
    return rows as T[];
  }

  async one<T extends Row = Row>(
    sql: string,
    params?: Record<string, SqlParam>,
  ): Promise<T | undefined> {
    return (await this.all<T>(sql, params))[0];
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#depth > 0) {
      this.#depth++;
      try {
        return await fn();
      } finally {
        this.#depth--;
      }
    }
    await this.run("BEGIN TRANSACTION");
    this.#depth = 1;
    try {
      const result = await fn();
      await this.run("COMMIT");
      return result;
    } catch (e) {
      try {
        await this.#conn.run("ROLLBACK");
      } catch { /* the transaction may already be aborted */ }
      throw e;
    } finally {
      this.#depth = 0;
    }
  }

  async checkpoint(): Promise<void> {
    if (this.path !== ":memory:") await this.run("CHECKPOINT");
  }

  close(): void {
    this.#conn.closeSync();
    this.#instance.closeSync();
  }
}

/**
 * Opens (or creates) a DuckDB database, applies the engine settings, and
 * locks the sandbox. Another process holding the file raises
 * {@linkcode LockHeldError}.
 *
 * @example
 * ```ts
 * import { openEngine } from "./engine.ts";
 * const db = await openEngine(":memory:", { allowedDirectories: ["/tmp/lake"] });
 * console.log(await db.all("select 42 as answer"));
 * db.close();
 * ```
 */
export async function openEngine(path: string, options: EngineOptions): Promise<Engine> {
  let instance: DuckDBInstance;
  try {
    const settings: Record<string, string> = {};
    if (options.threads) settings.threads = String(options.threads);
    if (options.memoryLimit) settings.memory_limit = options.memoryLimit;
    if (options.tempDirectory) settings.temp_directory = options.tempDirectory;
    instance = await DuckDBInstance.create(path, settings);
  } catch (e) {
    throw classifyDuckDbError(e, `Cannot open database ${JSON.stringify(path)}`);
  }
  const conn = await instance.connect();
  const engine = new DuckDbEngine(path, instance, conn);
  try {
    for (const schema of options.schemas ?? []) {
      await engine.run(`CREATE SCHEMA IF NOT EXISTS ${ident(schema)}`);
    }
    if (options.searchPath?.length) {
      await engine.run(`SET search_path = ${literal(options.searchPath.join(","))}`);
    }
    const dirs = options.allowedDirectories.map((d) => d.endsWith("/") ? d : `${d}/`);
    await engine.run(`SET allowed_directories = ${literalList(dirs)}`);
    await engine.run("SET enable_external_access = false");
    await engine.run("SET lock_configuration = true");
  } catch (e) {
    engine.close();
    throw e;
  }
  return engine;
}
