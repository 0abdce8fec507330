/**
 * Validate: checks a loaded config against DuckDB without running anything.
 * It creates the declared silver tables (empty, typed) in a sandboxed
 * in-memory database, checks every silver expression and rule, and binds
 * every gold model in build order, so a wrong column or table name is found
 * before the first run.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { isAbsolute, relative } from "node:path";
import { redactSecrets } from "../core/config/mod.ts";
import type { PipelineConfig } from "../core/config/mod.ts";
import { type Engine, openEngine } from "../core/engine.ts";
import { ConfigError, type ConfigProblem, errorMessage } from "../core/errors.ts";
import { identList, literal, qualified, rawIdent, sqlType } from "../core/quote.ts";
import { checkSql, configSql, sqlPosition } from "../core/sql_guard.ts";
import { type CatalogColumn, checkDeclaredTypes, missingSourceColumns } from "./_catalog.ts";
import { listFiles } from "./_files.ts";
import { BRONZE_META_COLUMNS, sourceColumns } from "./bronze.ts";
import { resolveGold } from "./gold.ts";
import { sandboxDirectories } from "../core/pipeline_db.ts";
import { silverFilesSql, silverStageSql } from "./silver.ts";

/** Where in the config a path is, when the loader knows. */
export type Locate = (path: string) => { line: number; col: number } | undefined;

/**
 * Binds all SQL of a config against its declared tables. Throws
 * {@linkcode ConfigError} with every problem found.
 *
 * @example
 * ```ts ignore
 * await validatePipeline(config); // resolves when everything binds
 * ```
 */
export async function validatePipeline(
  config: PipelineConfig,
  options: { locate?: Locate } = {},
): Promise<void> {
  const problems: ConfigProblem[] = [];
  const add = (path: string, message: string) => {
    const at = options.locate?.(path);
    problems.push({
      file: config.file,
      line: at?.line ?? 0,
      col: at?.col ?? 0,
      path,
      // DuckDB's bind errors quote the SQL, which may hold a !secret value.
      message: redactSecrets(message, config.secrets),
    });
  };
  warnOutsideProject(config);
  const db = await openEngine(":memory:", {
    allowedDirectories: sandboxDirectories(config),
    schemas: ["bronze", "silver", "gold"],
    searchPath: ["gold", "silver"],
  });
  try {
    // The SQL guard: gold models must be one SELECT, silver expressions and
    // rules and check SQL one expression, and none may read files.
    for (const item of configSql(config)) {
      for (const p of await checkSql(db, item.sql, { kind: item.kind })) {
        const at = p.offset === undefined ? "" : ` (SQL ${sqlPosition(item.sql, p.offset)})`;
        add(item.path, `refused: the SQL ${p.message}${at}`);
      }
    }
    // Refused SQL is never bound, not even against empty tables.
    if (problems.length > 0) throw new ConfigError(problems);
    // Types: every declared type must be one DuckDB knows (asked of DuckDB).
    const types = await checkDeclaredTypes(db, config, add);
    const badTypes = types.bad;
    // A type that binds: the declared one when DuckDB knows it, else VARCHAR (reported).
    const validType = (type: string) => types.known.has(type) ? sqlType(type) : "VARCHAR";
    // Sources: the folder must exist; when it holds files, their columns
    // (CSV header, Parquet schema, JSON keys) are what silver may read.
    const found = await readSourceColumns(db, config, add);
    const silverFailed = new Set<string>(badTypes);
    for (const [name, table] of Object.entries(config.silver)) {
      const cols = found.get(table.from);
      if (!cols) continue;
      const missing = missingSourceColumns(table.from, table.columns, cols.map((c) => c.name));
      for (const m of missing) add(`silver.${name}.columns.${m.column}`, m.message);
      if (missing.length > 0) silverFailed.add(name);
    }
    const bronzeCols = await createBronzeTables(db, config, { found, badTypes });
    await createSilverTables(db, config, { bronzeCols, silverFailed, validType, add });
    const failed = await createGoldTables(db, config, add);
    await checkPartitionColumns(db, config, { failed: new Set([...failed, ...silverFailed]), add });
  } finally {
    db.close();
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

type Add = (path: string, message: string) => void;

/** Warns (event `source_outside_project`) about each source allowed outside the project folder. */
function warnOutsideProject(config: PipelineConfig): void {
  for (const [name, source] of Object.entries(config.sources)) {
    const rel = relative(config.dir, source.path);
    if (source.allow_outside_project && (rel.startsWith("..") || isAbsolute(rel))) {
      getLogger(["sluice", "validate"]).warn(
        `source "${name}" reads ${source.path}, outside the project folder ${config.dir} ` +
          "(allow_outside_project: true): the DuckDB sandbox allows all SQL to read it",
        { event: "source_outside_project", source: name, path: source.path },
      );
    }
  }
}

/**
 * Creates the empty bronze tables: text columns, those the files hold (Parquet
 * with its types) plus those silver reads. Returns, per source, the columns
 * silver reads.
 */
async function createBronzeTables(
  db: Engine,
  config: PipelineConfig,
  options: { found: Map<string, CatalogColumn[]>; badTypes: Set<string> },
): Promise<Map<string, Set<string>>> {
  const { found, badTypes } = options;
  // Bronze tables hold text columns; declare those the silver tables read.
  const bronzeCols = new Map<string, Set<string>>();
  for (const table of Object.values(config.silver)) {
    const cols = bronzeCols.get(table.from) ?? new Set<string>();
    for (const [name, col] of Object.entries(table.columns)) {
      if (!col.expr) cols.add(col.from ?? name);
      else for (const c of await expressionColumns(db, col.expr)) cols.add(c);
    }
    bronzeCols.set(table.from, cols);
  }
  for (const source of Object.keys(config.sources)) {
    const declared = config.sources[source].columns ?? {};
    // The files' columns (Parquet with its types) and those silver reads.
    const real = found.get(source) ?? [];
    const types = new Map(real.map((c) => [c.name.toLowerCase(), c.type]));
    const names = [...real.map((c) => c.name)];
    for (const c of bronzeCols.get(source) ?? []) {
      if (!names.some((n) => n.toLowerCase() === c.toLowerCase())) names.push(c);
    }
    const typeOf = (c: string) => {
      if (declared[c] && !badTypes.has(`source:${source}`)) return sqlType(declared[c]);
      const t = types.get(c.toLowerCase());
      return t && /^[A-Za-z0-9_(), \[\]]+$/.test(t) ? t : "VARCHAR";
    };
    const cols = names.map((c) => `${rawIdent(c)} ${typeOf(c)}`);
    cols.push(
      "_run_id VARCHAR",
      "_ingested_at TIMESTAMPTZ",
      "_source_file VARCHAR",
      "_source_row BIGINT",
    );
    await db.run(`CREATE TABLE ${qualified("bronze", source)} (${cols.join(", ")})`);
  }
  return bronzeCols;
}

/** Creates the empty silver tables by binding their staging SQL; a table that fails is reported. */
async function createSilverTables(
  db: Engine,
  config: PipelineConfig,
  options: {
    bronzeCols: Map<string, Set<string>>;
    silverFailed: Set<string>;
    validType: (type: string) => string;
    add: Add;
  },
): Promise<void> {
  const { bronzeCols, silverFailed, validType, add } = options;
  for (const [name, table] of Object.entries(config.silver)) {
    if (silverFailed.has(name)) {
      await db.run(
        `CREATE TABLE ${qualified("silver", name)} AS SELECT ${
          Object.entries(table.columns).map(([c, col]) =>
            `NULL::${validType(col.type)} AS ${rawIdent(c)}`
          ).join(", ")
        } LIMIT 0`,
      );
      continue;
    }
    const sql = silverStageSql(table, {
      bronzeColumns: [...(bronzeCols.get(table.from) ?? [])].filter((c) =>
        !BRONZE_META_COLUMNS.includes(c)
      ),
      where: "TRUE",
      files: `(${silverFilesSql(table, "TRUE")})`,
    });
    try {
      await db.run(
        `CREATE TABLE ${qualified("silver", name)} AS SELECT ${
          identList(Object.keys(table.columns))
        }${
          table.mode === "scd2"
            ? ", NULL::TIMESTAMPTZ AS valid_from, NULL::TIMESTAMPTZ AS valid_to, NULL::BOOLEAN AS is_current"
            : ""
        } FROM (${sql}) LIMIT 0`,
      );
    } catch (e) {
      add(`silver.${name}`, `expressions or rules do not bind: ${firstLine(errorMessage(e))}`);
      silverFailed.add(name);
      await db.run(
        `CREATE TABLE IF NOT EXISTS ${qualified("silver", name)} AS SELECT ${
          Object.entries(table.columns).map(([c, col]) =>
            `NULL::${sqlType(col.type)} AS ${rawIdent(c)}`
          ).join(", ")
        } LIMIT 0`,
      );
    }
  }
}

/** Binds the gold models in dependency order; returns those that failed (or depend on one). */
async function createGoldTables(
  db: Engine,
  config: PipelineConfig,
  add: Add,
): Promise<Set<string>> {
  const { order, problems: goldProblems } = await resolveGold(db, config);
  for (const p of goldProblems) add(p.path, p.message);
  const failed = new Set<string>(Object.keys(config.gold));
  for (const m of order) failed.delete(m.name);
  for (const m of order) {
    if (m.dependsOn.some((d) => failed.has(d))) {
      failed.add(m.name);
      continue;
    }
    try {
      await db.run(
        `CREATE TABLE ${qualified("gold", m.name)} AS SELECT * FROM (${m.model.sql}) LIMIT 0`,
      );
    } catch (e) {
      add(`gold.${m.name}.sql`, `does not bind: ${firstLine(errorMessage(e))}`);
      failed.add(m.name);
    }
  }
  return failed;
}

/** Each output table's `partition_by` columns must be columns of the table. */
async function checkPartitionColumns(
  db: Engine,
  config: PipelineConfig,
  options: { failed: ReadonlySet<string>; add: Add },
): Promise<void> {
  const { failed, add } = options;
  for (const [name, t] of Object.entries(config.output.tables)) {
    const schema = config.gold[name] ? "gold" : "silver";
    if (failed.has(name)) continue;
    for (const col of t.partition_by ?? []) {
      const found = await db.one(
        `SELECT 1 AS x FROM duckdb_columns() WHERE schema_name = $s AND table_name = $t AND column_name = $c`,
        { s: schema, t: name, c: col },
      );
      if (!found) {
        add(`output.tables.${name}.partition_by`, `column "${col}" is not in ${schema}.${name}`);
      }
    }
  }
}

/**
 * Checks each source's folder and reads the columns of its files (see
 * {@linkcode sourceColumns}). A missing folder, or a file bronze could not
 * read, is a problem at the source; sources without files are left out of
 * the result (nothing to compare with yet).
 */
async function readSourceColumns(
  db: Engine,
  config: PipelineConfig,
  add: (path: string, message: string) => void,
): Promise<Map<string, CatalogColumn[]>> {
  const out = new Map<string, CatalogColumn[]>();
  for (const [name, source] of Object.entries(config.sources)) {
    let files: string[];
    try {
      files = await listFiles(source.path, source.glob);
    } catch (e) {
      add(
        `sources.${name}.path`,
        e instanceof Deno.errors.NotFound
          ? `folder ${source.path} does not exist`
          : `cannot list folder ${source.path}: ${(e as Error).message}`,
      );
      continue;
    }
    if (files.length === 0) continue;
    try {
      out.set(name, await sourceColumns(db, name, source, files));
    } catch (e) {
      add(`sources.${name}`, (e as Error).message);
    }
  }
  return out;
}

/** Column names an SQL expression refers to, from DuckDB's parse tree. */
async function expressionColumns(db: Engine, expr: string): Promise<string[]> {
  const row = await db.one<{ j: string }>(
    `SELECT json_serialize_sql(${literal(`SELECT ${expr}`)}) AS j`,
  );
  const names: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (node === null || typeof node !== "object") return;
    const obj = node as Record<string, unknown>;
    if (obj.class === "COLUMN_REF" && Array.isArray(obj.column_names)) {
      names.push(String(obj.column_names[obj.column_names.length - 1]));
    }
    Object.values(obj).forEach(walk);
  };
  walk(JSON.parse(row?.j ?? "{}"));
  return names;
}

function firstLine(message: string): string {
  return message.split("\n")[0].replace(/^Cannot run (SQL|query): /, "");
}
