/**
 * The one place where values from config become SQL text. Identifiers are
 * validated and double-quoted, literals single-quoted with quotes doubled.
 * No other module builds SQL from user input by concatenation.
 *
 * @module
 */

/** Names of tables, columns, sources and checks: letters, digits, underscore. */
export const IDENTIFIER_PATTERN: RegExp = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** DuckDB type names Sluice accepts for typed columns. */
export const TYPE_PATTERN: RegExp = /^[A-Za-z][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?(\[\])?$/;

/**
 * True when `name` is a valid Sluice identifier (table, column, source name).
 *
 * @example
 * ```ts
 * import { isIdentifier } from "./quote.ts";
 * isIdentifier("orders"); // true
 * isIdentifier("drop table"); // false
 * ```
 */
export function isIdentifier(name: string): boolean {
  return IDENTIFIER_PATTERN.test(name);
}

/**
 * Quotes an identifier for SQL. Throws on names that are not valid
 * identifiers; config validation rejects those earlier with a position.
 *
 * @example
 * ```ts
 * import { ident } from "./quote.ts";
 * ident("orders"); // "\"orders\""
 * ```
 */
export function ident(name: string): string {
  if (!isIdentifier(name)) {
    throw new TypeError(
      `Cannot quote identifier ${JSON.stringify(name)}: use letters, digits and _ (not first)`,
    );
  }
  return `"${name}"`;
}

/**
 * Quotes a schema-qualified name, e.g. `silver.orders`.
 *
 * @example
 * ```ts
 * import { qualified } from "./quote.ts";
 * qualified("silver", "orders"); // "\"silver\".\"orders\""
 * ```
 */
export function qualified(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`;
}

/**
 * Quotes a column name that came from a file header (any text) rather than
 * from config. Double quotes are doubled; the name is kept as is.
 *
 * @example
 * ```ts
 * import { rawIdent } from "./quote.ts";
 * rawIdent('we"ird'); // "\"we\"\"ird\""
 * ```
 */
export function rawIdent(name: string): string {
  if (name.includes("\0")) throw new TypeError("Cannot quote identifier with a NUL byte");
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Quotes a string, number, boolean, null or Date as a SQL literal.
 *
 * @example
 * ```ts
 * import { literal } from "./quote.ts";
 * literal("O'Brien"); // "'O''Brien'"
 * literal(42); // "42"
 * ```
 */
export function literal(value: string | number | bigint | boolean | null | Date): string {
  if (value === null) return "NULL";
  if (typeof value === "boolean") return value ? "TRUE" : "FALSE";
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`Cannot quote number ${value}`);
    return String(value);
  }
  if (value instanceof Date) return `TIMESTAMPTZ '${value.toISOString()}'`;
  if (value.includes("\0")) throw new TypeError("Cannot quote a string with a NUL byte");
  return `'${value.replaceAll("'", "''")}'`;
}

/**
 * Quotes a list of strings as a SQL list literal: `['a', 'b']`.
 *
 * @example
 * ```ts
 * import { literalList } from "./quote.ts";
 * literalList(["/a.csv", "/b.csv"]); // "['/a.csv', '/b.csv']"
 * ```
 */
export function literalList(values: readonly string[]): string {
  return `[${values.map((v) => literal(v)).join(", ")}]`;
}

/**
 * Validates and returns a DuckDB type name from config (e.g. `DECIMAL(12,2)`).
 *
 * @example
 * ```ts
 * import { sqlType } from "./quote.ts";
 * sqlType("decimal(12, 2)"); // "DECIMAL(12, 2)"
 * ```
 */
export function sqlType(type: string): string {
  const t = type.trim();
  if (!TYPE_PATTERN.test(t)) throw new TypeError(`Cannot use type ${JSON.stringify(type)}`);
  return t.toUpperCase();
}

/**
 * Quotes a list of identifiers joined by commas.
 *
 * @example
 * ```ts
 * import { identList } from "./quote.ts";
 * identList(["a", "b"]); // "\"a\", \"b\""
 * ```
 */
export function identList(names: readonly string[]): string {
  return names.map(ident).join(", ");
}
