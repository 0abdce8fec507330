/**
 * The one module that owns DuckDB. It opens the pipeline's database file,
 * applies threads / memory_limit / temp_directory, creates the layer schemas,
 * and then locks the sandbox: only the lake and the declared source folders
 * are reachable, external access is off and the configuration is locked.
 *
 * @module
 */
import { type DuckDBAppender, type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import {
  DatabaseDamagedError,
  DiskFullError,
  EngineError,
  errorMessage,
  LockHeldError,
  SandboxError,
  SluiceError,
} from "./errors.ts";
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
  /**
   * WAL size at which DuckDB checkpoints on its own after a commit, e.g.
   * `1GB`; default DuckDB's (16 MiB).
   */
  checkpointThreshold?: string;
  /** Opens the file read-only (`access_mode = READ_ONLY`; creates no WAL). */
  readOnly?: boolean;
}

/** Where {@linkcode Engine.append} writes. */
export interface AppendOptions {
  /** Schema of the table; default `main`. */
  schema?: string;
  /** True for a temporary table (created with `CREATE TEMP TABLE`). */
  temp?: boolean;
}

/**
 * Writes the values of one row at a time, in column order, for
 * {@linkcode Engine.append}. Call {@linkcode RowAppender.endRow} after each row.
 */
export interface RowAppender {
  /** Appends a VARCHAR value, or NULL. */
  varchar(value: string | null): void;
  /** Appends an INTEGER value, or NULL. */
  integer(value: number | null): void;
  /** Appends a BIGINT value, or NULL. */
  bigint(value: bigint | number | null): void;
  /** Appends a DOUBLE value, or NULL. */
  double(value: number | null): void;
  /** Appends a BOOLEAN value, or NULL. */
  boolean(value: boolean | null): void;
  /** Ends the current row. */
  endRow(): void;
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
  /** True while a {@linkcode Engine.transaction} of this connection is open. */
  inTransaction(): boolean;
  /** Runs `CHECKPOINT` so the WAL is folded into the database file. */
  checkpoint(): Promise<void>;
  /**
   * Bulk-loads rows into an existing table with DuckDB's appender, much
   * faster than INSERT statements for many rows. `fill` writes each row's
   * values in column order and ends every row; the rows are flushed when it
   * returns (inside the current transaction, if any).
   */
  append(
    table: string,
    fill: (row: RowAppender) => void | Promise<void>,
    options?: AppendOptions,
  ): Promise<void>;
  /**
   * Opens another connection to the same database, with its own
   * transactions, the same sandbox and search path. Several connections
   * run statements at the same time (DuckDB shares its threads between
   * them). `close()` on it closes that connection only.
   */
  connect(): Promise<Engine>;
  /**
   * Stops the run at its next safe point: interrupts the statement running
   * on every connection of this database (DuckDB's `interrupt()`), and makes
   * every statement that fails or starts from now on throw `reason`, until
   * {@linkcode Engine.resume}. A `ROLLBACK` of an open transaction still runs.
   */
  interrupt(reason: Error): void;
  /** Lets statements run again after {@linkcode Engine.interrupt} (to record the run's end). */
  resume(): void;
  /** Closes the database and releases its lock (a `connect()`ed engine: its connection). */
  close(): void;
}

/** What the connections of one database share: themselves and a pending stop. */
interface SharedState {
  conns: Set<DuckDBConnection>;
  stop?: Error;
}

function toJs(value: unknown): unknown {
  if (typeof value === "bigint") {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value;
  }
  return value;
}

/**
 * DuckDB's ways of saying that the database file or its WAL cannot be read
 * back; the WAL's and the file's name are taken from the message.
 */
function damagedFile(message: string): ((what: string, e: unknown) => Error) | undefined {
  const first = message.split("\n")[0];
  const wal = /replaying WAL file "([^"]+)"/.exec(first)?.[1] ??
    (/Corrupt WAL file/i.test(first)
      ? /"([^"]+\.wal)"/.exec(first)?.[1] ?? "the .wal file"
      : undefined);
  const detail = first.replace(/^[A-Za-z ]*Error: /, "").split(/": /).pop() ?? first;
  if (wal !== undefined) {
    return (what, e) =>
      new DatabaseDamagedError(
        `${what}: its write-ahead log ${wal} is damaged (${detail}); Sluice changed neither ` +
          `file. Restore both from a backup, or move the WAL away (mv ${wal} ${wal}.damaged) to ` +
          `open the database as of its last checkpoint: commits after it are lost and the next ` +
          `batch run lands their files again`,
        { cause: e, path: wal },
      );
  }
  if (
    /Could not read enough bytes from file|not a valid DuckDB database|Corrupt database file|checksum .*does not match/i
      .test(first)
  ) {
    const file = /file "([^"]+)"/.exec(first)?.[1] ?? "the database file";
    return (what, e) =>
      new DatabaseDamagedError(
        `${what}: the database file ${file} is damaged (${detail}); Sluice changed nothing. ` +
          `Restore it from a backup, or move it and its .wal away: the next run starts an ` +
          `empty lake and lands every file still in the source folders again`,
        { cause: e, path: file },
      );
  }
  return undefined;
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
  const full = DiskFullError.from(e, "the disk");
  if (full) {
    return new DiskFullError(`${what}: ${full.message}`, { cause: e, path: full.path });
  }
  const damaged = damagedFile(message);
  if (damaged) return damaged(what, e);
  const transient = /^IO Error|Out of Memory|disk|No space left/i.test(message);
  return new EngineError(`${what}: ${message}`, { cause: e, transient });
}

class DuckDbEngine implements Engine {
  #instance: DuckDBInstance;
  #conn: DuckDBConnection;
  #depth = 0;
  /** False for engines made by `connect()`: they do not own the instance. */
  #owner: boolean;
  #searchPath?: string;
  #shared: SharedState;
  readonly path: string;

  constructor(
    path: string,
    instance: DuckDBInstance,
    conn: DuckDBConnection,
    shared: SharedState = { conns: new Set() },
    owner = true,
  ) {
    this.path = path;
    this.#instance = instance;
    this.#conn = conn;
    this.#owner = owner;
    this.#shared = shared;
    shared.conns.add(conn);
  }

  /** Throws the pending stop, if any: no new statement starts after an interrupt. */
  #checkStop(): void {
    if (this.#shared.stop) throw this.#shared.stop;
  }

  /** The error to throw for a failed statement: the stop reason when interrupted. */
  #failure(e: unknown, what: string): Error {
    return this.#shared.stop ?? classifyDuckDbError(e, what);
  }

  interrupt(reason: Error): void {
    this.#shared.stop = reason;
    for (const conn of this.#shared.conns) {
      try {
        conn.interrupt();
      } catch { /* a closing connection */ }
    }
  }

  resume(): void {
    this.#shared.stop = undefined;
  }

  /** Sets the search path of this connection (kept for `connect()`). */
  async setSearchPath(path: string): Promise<void> {
    await this.run(`SET search_path = ${literal(path)}`);
    this.#searchPath = path;
  }

  async connect(): Promise<Engine> {
    let conn: DuckDBConnection;
    try {
      conn = await this.#instance.connect();
    } catch (e) {
      throw classifyDuckDbError(e, "Cannot open another connection");
    }
    const engine = new DuckDbEngine(this.path, this.#instance, conn, this.#shared, false);
    try {
      if (this.#searchPath) await engine.setSearchPath(this.#searchPath);
    } catch (e) {
      engine.close();
      throw e;
    }
    return engine;
  }

  async run(sql: string, params?: Record<string, SqlParam>): Promise<number> {
    this.#checkStop();
    try {
      const result = await this.#conn.run(sql, params as Record<string, never>);
      return result.rowsChanged;
    } catch (e) {
      throw this.#failure(e, "Cannot run SQL");
    }
  }

  async all<T extends Row = Row>(sql: string, params?: Record<string, SqlParam>): Promise<T[]> {
    this.#checkStop();
    let reader;
    try {
      reader = await this.#conn.runAndReadAll(sql, params as Record<string, never>);
    } catch (e) {
      throw this.#failure(e, "Cannot run query");
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

  inTransaction(): boolean {
    return this.#depth > 0;
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

  async append(
    table: string,
    fill: (row: RowAppender) => void | Promise<void>,
    options: AppendOptions = {},
  ): Promise<void> {
    this.#checkStop();
    let appender: DuckDBAppender;
    try {
      appender = options.temp
        ? await this.#conn.createAppender(table, "main", "temp")
        : await this.#conn.createAppender(table, options.schema ?? "main");
    } catch (e) {
      throw classifyDuckDbError(e, `Cannot append to ${table}`);
    }
    const a = appender;
    const row: RowAppender = {
      varchar: (v) => v === null ? a.appendNull() : a.appendVarchar(v),
      integer: (v) => v === null ? a.appendNull() : a.appendInteger(v),
      bigint: (v) => v === null ? a.appendNull() : a.appendBigInt(BigInt(v)),
      double: (v) => v === null ? a.appendNull() : a.appendDouble(v),
      boolean: (v) => v === null ? a.appendNull() : a.appendBoolean(v),
      endRow: () => a.endRow(),
    };
    try {
      await fill(row);
      a.closeSync();
    } catch (e) {
      try {
        a.clear();
        a.closeSync();
      } catch { /* the appender may already be unusable */ }
      if (e instanceof SluiceError) throw e;
      throw this.#failure(e, `Cannot append to ${table}`);
    }
  }

  close(): void {
    this.#shared.conns.delete(this.#conn);
    this.#conn.closeSync();
    if (this.#owner) this.#instance.closeSync();
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
 * const shown = await db.all("select 42 as answer");
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
    if (options.checkpointThreshold) settings.checkpoint_threshold = options.checkpointThreshold;
    if (options.readOnly) settings.access_mode = "READ_ONLY";
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
    if (options.searchPath?.length) await engine.setSearchPath(options.searchPath.join(","));
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
