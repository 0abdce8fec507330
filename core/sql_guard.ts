/**
 * The SQL guard: user SQL from config (gold models, silver rules and
 * expressions, check expressions and `where` filters, `dlq --where`) is
 * parsed by DuckDB itself (`json_serialize_sql`) and refused unless it is
 * exactly one SELECT (or one expression) that reads only tables. File-reading
 * table functions (`read_csv`, `read_text`, `glob`, `parquet_scan`...), file
 * references (`FROM 'x.csv'`), `getenv`, `current_setting`, `query()` and
 * every non-SELECT statement (ATTACH, INSTALL, LOAD, SET, RESET, PRAGMA,
 * COPY, EXPORT...) are refused before any of it runs. The DuckDB sandbox
 * (`core/engine.ts`) is the second, independent layer.
 *
 * @module
 */
import type { Engine } from "./engine.ts";
import { SandboxError } from "./errors.ts";
import { literal } from "./quote.ts";

/** What a piece of user SQL must be. */
export type SqlKind = "query" | "expression";

/** One reason a piece of SQL is refused. */
export interface SqlGuardProblem {
  /** What is wrong, e.g. `calls read_text, which reads files`. */
  message: string;
  /** 0-based character offset in the SQL, when DuckDB reports one. */
  offset?: number;
}

/** Table functions user SQL may call: they generate rows and read nothing. */
const ALLOWED_TABLE_FUNCTIONS = new Set([
  "range",
  "generate_series",
  "unnest",
  "json_each",
  "json_tree",
]);

/**
 * Scalar functions (and name prefixes) refused anywhere: they read files,
 * the environment or settings, or run SQL given as a string.
 */
const REFUSED_FUNCTION: RegExp =
  /^(read_|parquet_|iceberg_|delta_|pragma_|duckdb_|sniff_csv$|glob$|getenv$|current_setting$|query$|query_table$|json_execute_serialized_sql$|which_secret$|load_aws_credentials$|checkpoint$|force_checkpoint$)/i;

/** Characters that make a table name a file reference (`FROM 'data/x.csv'`). */
const FILE_LIKE_NAME = /[./\\*?:~]/;

/**
 * Why the parse tree of one statement is unsafe (empty when it is safe).
 * Exported for tests; callers use {@linkcode checkSql}.
 *
 * @example
 * ```ts
 * import { treeProblems } from "./sql_guard.ts";
 * treeProblems({ class: "FUNCTION", function_name: "getenv", query_location: 7 });
 * // [{ message: "calls getenv(), which reads files, the environment or settings", offset: 7 }]
 * ```
 */
export function treeProblems(node: unknown): SqlGuardProblem[] {
  const out: SqlGuardProblem[] = [];
  walk(node, out);
  const seen = new Set<number | undefined>();
  return out.filter((p) => !seen.has(p.offset) && seen.add(p.offset) !== undefined);
}

function offsetOf(obj: Record<string, unknown>): number | undefined {
  const q = obj.query_location;
  return typeof q === "number" && q < 1e15 ? q : undefined;
}

function walk(node: unknown, out: SqlGuardProblem[]): void {
  if (Array.isArray(node)) {
    for (const n of node) walk(n, out);
    return;
  }
  if (node === null || typeof node !== "object") return;
  const obj = node as Record<string, unknown>;
  if (obj.type === "TABLE_FUNCTION") {
    const fn = obj.function as Record<string, unknown> | undefined;
    const name = String(fn?.function_name ?? "").toLowerCase();
    if (!ALLOWED_TABLE_FUNCTIONS.has(name)) {
      out.push({
        message: `calls table function ${name}(), which is not allowed (SQL from config reads ` +
          `only lake tables; allowed table functions: ${[...ALLOWED_TABLE_FUNCTIONS].join(", ")})`,
        offset: offsetOf(obj),
      });
    }
  } else if (obj.type === "BASE_TABLE" && typeof obj.table_name === "string") {
    if (FILE_LIKE_NAME.test(obj.table_name)) {
      out.push({
        message: `reads ${JSON.stringify(obj.table_name)}, which names a file, not a table ` +
          "(SQL from config reads only lake tables)",
        offset: offsetOf(obj),
      });
    }
  } else if (obj.class === "FUNCTION" && typeof obj.function_name === "string") {
    if (REFUSED_FUNCTION.test(obj.function_name)) {
      out.push({
        message: `calls ${obj.function_name}(), which reads files, the environment or settings`,
        offset: offsetOf(obj),
      });
    }
  }
  for (const v of Object.values(obj)) walk(v, out);
}

interface Parsed {
  error?: boolean;
  error_type?: string;
  error_message?: string;
  statements?: { node?: Record<string, unknown> }[];
}

async function parse(db: Engine, sql: string): Promise<Parsed> {
  const row = await db.one<{ j: string }>(`SELECT json_serialize_sql(${literal(sql)}) AS j`);
  return JSON.parse(row?.j ?? "{}") as Parsed;
}

function parseProblem(parsed: Parsed, what: string): SqlGuardProblem {
  if (parsed.error_type === "not implemented") {
    return {
      message: `must be ${what}; other statements (ATTACH, INSTALL, LOAD, SET, RESET, PRAGMA, ` +
        "COPY, EXPORT, CREATE, INSERT, DROP...) are not allowed",
    };
  }
  const first = (parsed.error_message ?? "cannot parse SQL").split("\n")[0];
  return { message: `cannot parse as ${what}: ${first}` };
}

/** The one SELECT node of `SELECT <expr>`, when it is exactly one expression. */
function singleExpression(parsed: Parsed): boolean {
  if (parsed.error || parsed.statements?.length !== 1) return false;
  const node = parsed.statements[0].node;
  if (node?.type !== "SELECT_NODE") return false;
  const from = node.from_table as { type?: string } | undefined;
  const list = node.select_list as unknown[] | undefined;
  return from?.type === "EMPTY" && list?.length === 1 && node.where_clause === null &&
    (node.group_expressions as unknown[] | undefined)?.length === 0 && node.having === null &&
    node.qualify === null && (node.modifiers as unknown[] | undefined)?.length === 0;
}

/**
 * Parses `sql` with DuckDB and returns why it is refused (empty when it may
 * run). A `query` must be exactly one SELECT; an `expression` must be one
 * SQL expression that stays one expression inside parentheses (so
 * `1=1) OR (1=1`, a trailing `-- comment` or `1; DROP ...` are refused). In
 * both, file-reading functions, file references, `getenv` and friends are
 * refused anywhere, including in subqueries.
 *
 * @example
 * ```ts ignore
 * await checkSql(db, "select * from read_text('/etc/passwd')");
 * // [{ message: "calls table function read_text(), which is not allowed ...", offset: 14 }]
 * ```
 */
export async function checkSql(
  db: Engine,
  sql: string,
  options: { kind?: SqlKind } = {},
): Promise<SqlGuardProblem[]> {
  if (sql.includes("\0")) return [{ message: "contains a NUL byte" }];
  if ((options.kind ?? "query") === "query") {
    const parsed = await parse(db, sql);
    if (parsed.error) return [parseProblem(parsed, "one SELECT statement")];
    if ((parsed.statements ?? []).length !== 1) {
      return [{
        message: `must be one SELECT statement, found ${parsed.statements?.length ?? 0} ` +
          "(remove the ; and what follows)",
      }];
    }
    return treeProblems(parsed.statements);
  }
  const bare = await parse(db, `SELECT ${sql}`);
  const wrapped = await parse(db, `SELECT (${sql}\n)`);
  const strict = await parse(db, `SELECT (${sql})`);
  if (bare.error && bare.error_type !== "not implemented") {
    return [parseProblem(bare, "one SQL expression")];
  }
  if (!singleExpression(bare) || !singleExpression(wrapped) || !singleExpression(strict)) {
    return [{
      message: "must be one SQL expression (no ;, comments, unbalanced parentheses, " +
        "FROM/WHERE clauses or several comma-separated values)",
    }];
  }
  return treeProblems(bare.statements).map((p) => ({
    ...p,
    offset: p.offset === undefined ? undefined : Math.max(0, p.offset - "SELECT ".length),
  }));
}

/**
 * Like {@linkcode checkSql} but throws a {@linkcode SandboxError} naming
 * `what` and the first problem: the run-time guard every stage calls right
 * before it runs user SQL.
 *
 * @example
 * ```ts ignore
 * await guardSql(db, model.sql, { what: 'gold model "revenue"' });
 * ```
 */
export async function guardSql(
  db: Engine,
  sql: string,
  options: { what: string; kind?: SqlKind },
): Promise<void> {
  const problems = await checkSql(db, sql, { kind: options.kind });
  if (problems.length === 0) return;
  const p = problems[0];
  throw new SandboxError(
    `Cannot run ${options.what}: the SQL ${p.message}${
      p.offset === undefined ? "" : ` (at ${sqlPosition(sql, p.offset)})`
    }`,
    { context: { problems: problems.map((x) => x.message) } },
  );
}

/**
 * `line L col C` of a 0-based offset in a SQL text.
 *
 * @example
 * ```ts
 * import { sqlPosition } from "./sql_guard.ts";
 * sqlPosition("select\n  x", 9); // "line 2 col 3"
 * ```
 */
export function sqlPosition(sql: string, offset: number): string {
  const before = sql.slice(0, offset).split("\n");
  return `line ${before.length} col ${before[before.length - 1].length + 1}`;
}

/** One piece of user SQL in a config, with its dotted key path. */
export interface ConfigSql {
  /** Dotted key path, e.g. `silver.orders.rules.0.sql`. */
  path: string;
  /** The SQL text. */
  sql: string;
  /** A whole SELECT (gold models) or one expression (everything else). */
  kind: SqlKind;
}

function collectChecks(node: unknown, path: string, out: ConfigSql[]): void {
  if (Array.isArray(node)) {
    node.forEach((n, i) => collectChecks(n, `${path}.${i}`, out));
    return;
  }
  if (node === null || typeof node !== "object") return;
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    const here = `${path}.${key}`;
    if (key === "where" && typeof value === "string") {
      out.push({ path: here, sql: value, kind: "expression" });
    } else if (key === "expression" && value !== null && typeof value === "object") {
      const sql = (value as Record<string, unknown>).sql;
      if (typeof sql === "string") out.push({ path: `${here}.sql`, sql, kind: "expression" });
      collectChecks(value, here, out);
    } else collectChecks(value, here, out);
  }
}

/**
 * Every piece of user SQL in a loaded config: gold models (unless
 * `gold: false`), silver column expressions and rules, the `where` and
 * `expression.sql` of every data-quality check, and the stream's window
 * aggregates.
 *
 * @example
 * ```ts ignore
 * for (const item of configSql(config)) await checkSql(db, item.sql, { kind: item.kind });
 * ```
 */
export function configSql(
  config: {
    gold?: Record<string, { sql: string; checks?: unknown }>;
    silver?: Record<string, {
      columns: Record<string, { expr?: string }>;
      rules?: { sql: string }[];
      checks?: unknown;
      quarantine_checks?: unknown;
    }>;
    sources?: Record<string, { checks?: unknown }>;
    quality?: unknown;
    streaming?: { windows?: Record<string, { aggregates?: Record<string, string> }> };
  },
  options: { gold?: boolean } = {},
): ConfigSql[] {
  const out: ConfigSql[] = [];
  for (const [name, model] of Object.entries(config.gold ?? {})) {
    if (options.gold !== false) {
      out.push({ path: `gold.${name}.sql`, sql: model.sql, kind: "query" });
    }
    collectChecks(model.checks, `gold.${name}.checks`, out);
  }
  for (const [name, table] of Object.entries(config.silver ?? {})) {
    for (const [c, col] of Object.entries(table.columns)) {
      if (col.expr !== undefined) {
        out.push({ path: `silver.${name}.columns.${c}.expr`, sql: col.expr, kind: "expression" });
      }
    }
    (table.rules ?? []).forEach((r, i) =>
      out.push({ path: `silver.${name}.rules.${i}.sql`, sql: r.sql, kind: "expression" })
    );
    collectChecks(table.checks, `silver.${name}.checks`, out);
    collectChecks(table.quarantine_checks, `silver.${name}.quarantine_checks`, out);
  }
  for (const [name, source] of Object.entries(config.sources ?? {})) {
    collectChecks(source.checks, `sources.${name}.checks`, out);
  }
  collectChecks(config.quality, "quality", out);
  for (const [name, w] of Object.entries(config.streaming?.windows ?? {})) {
    for (const [agg, sql] of Object.entries(w.aggregates ?? {})) {
      out.push({ path: `streaming.windows.${name}.aggregates.${agg}`, sql, kind: "expression" });
    }
  }
  return out;
}
