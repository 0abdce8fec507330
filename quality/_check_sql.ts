/**
 * SQL text of the checks. Every piece that comes from config goes through
 * `core/quote.ts`; user SQL (`where`, `expression.sql`) is embedded as
 * written, in parentheses, the way silver rules are. The checked table is
 * always aliased `t`.
 *
 * Checks that look at rows one at a time contribute aggregates to one scan
 * of the table; `unique` and `relationships` need their own query.
 *
 * @module
 */
import { capJsonSql } from "../core/payload.ts";
import { ident, literal, qualified, sqlType } from "../core/quote.ts";

/** A column of the checked table, as DuckDB reports it. */
export interface ColumnInfo {
  /** Column name. */
  name: string;
  /** DuckDB type, e.g. `BIGINT`, `DECIMAL(12,2)`, `TIMESTAMP WITH TIME ZONE`. */
  type: string;
}

const NUMERIC =
  /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL)/;
const TEMPORAL = /^(DATE|TIME|TIMESTAMP)/;

/**
 * True for DuckDB numeric types.
 *
 * @example
 * ```ts
 * import { isNumericType } from "./_check_sql.ts";
 * isNumericType("DECIMAL(12,2)"); // true
 * ```
 */
export function isNumericType(type: string): boolean {
  return NUMERIC.test(type.toUpperCase());
}

/**
 * True for DATE, TIME and TIMESTAMP types.
 *
 * @example
 * ```ts
 * import { isTemporalType } from "./_check_sql.ts";
 * isTemporalType("TIMESTAMP WITH TIME ZONE"); // true
 * ```
 */
export function isTemporalType(type: string): boolean {
  return TEMPORAL.test(type.toUpperCase());
}

/**
 * The type name as SQL, or `undefined` when it is not a plain type (STRUCT, LIST...).
 *
 * @example
 * ```ts
 * import { plainType } from "./_check_sql.ts";
 * plainType("decimal(12,2)"); // "DECIMAL(12,2)"
 * plainType("STRUCT(a INTEGER)"); // undefined
 * ```
 */
export function plainType(type: string): string | undefined {
  try {
    return sqlType(type);
  } catch {
    return undefined;
  }
}

/**
 * `(a) AND (b)` of the non-empty parts, or `TRUE`.
 *
 * @example
 * ```ts
 * import { andAll } from "./_check_sql.ts";
 * andAll(["a > 1", undefined, "b"]); // "(a > 1) AND (b)"
 * ```
 */
export function andAll(parts: readonly (string | undefined)[]): string {
  const kept = parts.filter((p): p is string => p !== undefined && p.trim() !== "");
  return kept.length === 0 ? "TRUE" : kept.map((p) => `(${p})`).join(" AND ");
}

/**
 * `t."col"`.
 *
 * @example
 * ```ts
 * import { col } from "./_check_sql.ts";
 * col("email"); // 't."email"'
 * ```
 */
export function col(name: string): string {
  return `t.${ident(name)}`;
}

/**
 * Predicate of a `not_null` / `null_ratio` failure.
 *
 * @example
 * ```ts
 * import { isNullSql } from "./_check_sql.ts";
 * isNullSql("email"); // 't."email" IS NULL'
 * ```
 */
export function isNullSql(column: string): string {
  return `${col(column)} IS NULL`;
}

/**
 * Predicate of an `accepted_values` failure. Numbers against a numeric column
 * and booleans against a BOOLEAN column compare natively; everything else
 * compares as text, which never raises a conversion error.
 *
 * @example
 * ```ts
 * import { notAcceptedSql } from "./_check_sql.ts";
 * notAcceptedSql({ name: "status", type: "VARCHAR" }, ["new", "paid"]);
 * // t."status" IS NOT NULL AND CAST(t."status" AS VARCHAR) NOT IN ('new', 'paid')
 * ```
 */
export function notAcceptedSql(
  column: ColumnInfo,
  values: readonly (string | number | boolean)[],
): string {
  const c = col(column.name);
  const type = column.type.toUpperCase();
  if (values.every((v) => typeof v === "number") && isNumericType(type)) {
    return `${c} IS NOT NULL AND ${c} NOT IN (${values.map((v) => literal(v)).join(", ")})`;
  }
  if (values.every((v) => typeof v === "boolean") && type === "BOOLEAN") {
    return `${c} IS NOT NULL AND ${c} NOT IN (${values.map((v) => literal(v)).join(", ")})`;
  }
  const texts = [...new Set(values.map((v) => String(v)))];
  return `${c} IS NOT NULL AND CAST(${c} AS VARCHAR) NOT IN (${
    texts.map((v) => literal(v)).join(", ")
  })`;
}

/**
 * Predicate of a `range` failure; bounds are cast to the column's type
 * (the caller has checked that the cast works).
 *
 * @example
 * ```ts
 * import { outOfRangeSql } from "./_check_sql.ts";
 * outOfRangeSql({ name: "qty", type: "INTEGER" }, { min: 1, minInclusive: true, maxInclusive: true });
 * // t."qty" IS NOT NULL AND (t."qty" < CAST(1 AS INTEGER))
 * ```
 */
export function outOfRangeSql(
  column: ColumnInfo,
  range: {
    min?: string | number;
    max?: string | number;
    minInclusive: boolean;
    maxInclusive: boolean;
  },
): string {
  const c = col(column.name);
  const type = plainType(column.type)!;
  const bound = (v: string | number) => `CAST(${literal(v)} AS ${type})`;
  const outside: string[] = [];
  if (range.min !== undefined) {
    outside.push(`${c} ${range.minInclusive ? "<" : "<="} ${bound(range.min)}`);
  }
  if (range.max !== undefined) {
    outside.push(`${c} ${range.maxInclusive ? ">" : ">="} ${bound(range.max)}`);
  }
  return `${c} IS NOT NULL AND (${outside.join(" OR ")})`;
}

/**
 * Predicate of a `regex` failure (the pattern is searched; anchor it for a full match).
 *
 * @example
 * ```ts
 * import { noMatchSql } from "./_check_sql.ts";
 * noMatchSql("country", "^[A-Z]{2}$");
 * ```
 */
export function noMatchSql(column: string, pattern: string): string {
  const c = col(column);
  return `${c} IS NOT NULL AND NOT regexp_matches(CAST(${c} AS VARCHAR), ${literal(pattern)})`;
}

/**
 * Predicate of an `expression` failure: the expression is false (NULL passes).
 *
 * @example
 * ```ts
 * import { expressionFailsSql } from "./_check_sql.ts";
 * expressionFailsSql("quantity > 0"); // "coalesce((quantity > 0) = false, false)"
 * ```
 */
export function expressionFailsSql(sql: string): string {
  return `coalesce((${sql}) = false, false)`;
}

/** A table reference. */
export interface TableRef {
  /** Schema. */
  schema: string;
  /** Table. */
  table: string;
}

/**
 * Counting query of a `unique` check: rows considered and rows whose
 * (non-NULL) key occurs more than once.
 *
 * @example
 * ```ts
 * import { uniqueCountSql } from "./_check_sql.ts";
 * uniqueCountSql({ schema: "silver", table: "orders" }, ["order_id"], "TRUE");
 * ```
 */
export function uniqueCountSql(
  table: TableRef,
  columns: readonly string[],
  filter: string,
): string {
  const cols = columns.map(col).join(", ");
  const anyNull = columns.map((c) => `${col(c)} IS NULL`).join(" OR ");
  return `SELECT coalesce(sum(n), 0)::BIGINT AS total,
      coalesce(sum(n) FILTER (WHERE n > 1 AND NOT has_null), 0)::BIGINT AS failing
    FROM (SELECT count(*) AS n, (${anyNull}) AS has_null
          FROM ${qualified(table.schema, table.table)} AS t WHERE ${filter} GROUP BY ${cols})`;
}

/**
 * The failing rows of a `unique` check (every row of a duplicated key).
 *
 * @example
 * ```ts
 * import { uniqueFailingSql } from "./_check_sql.ts";
 * uniqueFailingSql({ schema: "gold", table: "daily" }, ["date", "country"], "TRUE");
 * ```
 */
export function uniqueFailingSql(
  table: TableRef,
  columns: readonly string[],
  filter: string,
): string {
  const cols = columns.map(col).join(", ");
  const noNull = columns.map((c) => `${ident(c)} IS NOT NULL`).join(" AND ");
  return `SELECT * EXCLUDE (__sluice_n) FROM (
      SELECT t.*, count(*) OVER (PARTITION BY ${cols}) AS __sluice_n
      FROM ${qualified(table.schema, table.table)} AS t WHERE ${filter})
    WHERE __sluice_n > 1 AND ${noNull}`;
}

/** How a `relationships` check compares its column with the target's. */
function relationKeys(column: ColumnInfo, field: ColumnInfo): { child: string; parent: string } {
  const same = column.type.toUpperCase() === field.type.toUpperCase();
  const child = col(column.name);
  const parent = `p.${ident(field.name)}`;
  return same
    ? { child, parent }
    : { child: `CAST(${child} AS VARCHAR)`, parent: `CAST(${parent} AS VARCHAR)` };
}

/**
 * The failing rows of a `relationships` check.
 *
 * @example
 * ```ts
 * import { relationshipsFailingSql } from "./_check_sql.ts";
 * relationshipsFailingSql(
 *   { schema: "silver", table: "orders" },
 *   { name: "customer_id", type: "BIGINT" },
 *   { schema: "silver", table: "customers" },
 *   { name: "customer_id", type: "BIGINT" },
 *   "TRUE",
 * );
 * ```
 */
export function relationshipsFailingSql(
  table: TableRef,
  column: ColumnInfo,
  target: TableRef,
  field: ColumnInfo,
  filter: string,
): string {
  const { child, parent } = relationKeys(column, field);
  // DuckDB's ANTI JOIN: several times faster than the equivalent NOT EXISTS.
  return `SELECT t.* FROM ${qualified(table.schema, table.table)} AS t
    ANTI JOIN ${qualified(target.schema, target.table)} AS p ON ${parent} = ${child}
    WHERE ${filter} AND ${col(column.name)} IS NOT NULL`;
}

/**
 * The rows of `table` where `fail` holds.
 *
 * @example
 * ```ts
 * import { failingRowsSql, isNullSql } from "./_check_sql.ts";
 * failingRowsSql({ schema: "silver", table: "orders" }, "TRUE", isNullSql("email"));
 * ```
 */
export function failingRowsSql(table: TableRef, filter: string, fail: string): string {
  return `SELECT t.* FROM ${
    qualified(table.schema, table.table)
  } AS t WHERE ${filter} AND (${fail})`;
}

/**
 * The failing rows counted and sampled in one pass: one output row per
 * sampled failing row (at most `limit`, in key order) with `failing` (the
 * count of all failing rows), `row_key` (JSON of the key columns, or NULL)
 * and `sample` (JSON of the whole row); a single row with NULL key and
 * sample when fewer rows are wanted or none fail.
 *
 * @example
 * ```ts
 * import { countAndSampleSql } from "./_check_sql.ts";
 * countAndSampleSql('SELECT t.* FROM "silver"."orders" AS t WHERE t."email" IS NULL', ["order_id"], 5);
 * ```
 */
export function countAndSampleSql(
  failing: string,
  keyColumns: readonly string[],
  limit: number,
  options: { mask?: readonly string[]; maxBytes?: number } = {},
): string {
  const key = keyColumns.length > 0
    ? `CAST(to_json(struct_pack(${
      keyColumns.map((k) => `${ident(k)} := x.${ident(k)}`).join(", ")
    })) AS VARCHAR)`
    : "NULL::VARCHAR";
  const keyCols = keyColumns.map((k, i) => `, x.${ident(k)} AS __sluice_k${i}`).join("");
  const inner = keyColumns.length > 0 ? keyColumns.map((k) => ident(k)).join(", ") : "ALL";
  const outer = [...keyColumns.map((_, i) => `__sluice_k${i}`), "sample"].join(", ");
  const n = Math.max(0, Math.floor(limit));
  // `mask`: masked columns are shown as *** (NULL stays NULL) in the sample and its key.
  const mask = options.mask ?? [];
  const limited = `(SELECT * FROM f ORDER BY ${inner} LIMIT ${n})`;
  const rows = mask.length === 0
    ? limited
    : `(SELECT * REPLACE (${
      mask.map((c) => `CASE WHEN ${ident(c)} IS NULL THEN NULL ELSE '***' END AS ${ident(c)}`)
        .join(", ")
    }) FROM ${limited})`;
  const sample = options.maxBytes === undefined
    ? "CAST(to_json(x) AS VARCHAR)"
    : capJsonSql("to_json(x)", options.maxBytes);
  return `WITH f AS MATERIALIZED (${failing}),
    n AS (SELECT count(*)::BIGINT AS failing FROM f),
    top AS (SELECT ${key} AS row_key, ${sample} AS sample${keyCols}
            FROM ${rows} AS x)
    SELECT n.failing, top.row_key, top.sample FROM n LEFT JOIN top ON TRUE ORDER BY ${outer}`;
}

/**
 * Predicate of the rows whose (non-NULL) key is among the keys of the rows
 * where `filter` holds: the rows a `unique` check must see when only the
 * `filter` rows can have changed.
 *
 * @example
 * ```ts
 * import { keysInSql } from "./_check_sql.ts";
 * keysInSql({ schema: "silver", table: "orders" }, ["order_id"], "t._bronze_run_id = 'r2'");
 * // t."order_id" IN (SELECT t."order_id" FROM "silver"."orders" AS t WHERE ...)
 * ```
 */
export function keysInSql(table: TableRef, columns: readonly string[], filter: string): string {
  const key = columns.length === 1 ? col(columns[0]) : `row(${columns.map(col).join(", ")})`;
  const noNull = columns.map((c) => `${col(c)} IS NOT NULL`).join(" AND ");
  return `${key} IN (SELECT ${key} FROM ${qualified(table.schema, table.table)} AS t
    WHERE (${filter}) AND ${noNull})`;
}
