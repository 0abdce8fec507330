/**
 * Validate: checks a loaded config against DuckDB without running anything.
 * It creates the declared silver tables (empty, typed) in a sandboxed
 * in-memory database, checks every silver expression and rule, and binds
 * every gold model in build order, so a wrong column or table name is found
 * before the first run.
 *
 * @module
 */
import type { PipelineConfig } from "../core/config_schema.ts";
import { type Engine, openEngine } from "../core/engine.ts";
import { ConfigError, type ConfigProblem, errorMessage } from "../core/errors.ts";
import { identList, literal, qualified, rawIdent, sqlType } from "../core/quote.ts";
import { BRONZE_META_COLUMNS } from "./bronze.ts";
import { resolveGold } from "./gold.ts";
import { sandboxDirectories } from "./pipeline.ts";
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
    problems.push({ file: config.file, line: at?.line ?? 0, col: at?.col ?? 0, path, message });
  };
  const db = await openEngine(":memory:", {
    allowedDirectories: sandboxDirectories(config),
    schemas: ["bronze", "silver", "gold"],
    searchPath: ["gold", "silver"],
  });
  try {
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
      const cols = [...(bronzeCols.get(source) ?? [])].map((c) =>
        `${rawIdent(c)} ${declared[c] ? sqlType(declared[c]) : "VARCHAR"}`
      );
      cols.push(
        "_run_id VARCHAR",
        "_ingested_at TIMESTAMPTZ",
        "_source_file VARCHAR",
        "_source_row BIGINT",
      );
      await db.run(`CREATE TABLE ${qualified("bronze", source)} (${cols.join(", ")})`);
    }
    const silverFailed = new Set<string>();
    for (const [name, table] of Object.entries(config.silver)) {
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
    for (const [name, t] of Object.entries(config.output.tables)) {
      const schema = config.gold[name] ? "gold" : "silver";
      if (failed.has(name) || silverFailed.has(name)) continue;
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
  } finally {
    db.close();
  }
  if (problems.length > 0) throw new ConfigError(problems);
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
