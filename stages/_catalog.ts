/**
 * Catalog lookups for the stages: one table's columns without scanning
 * every column of every table (`duckdb_columns()` costs 3 to 45 ms per call
 * on a run's database; this costs about 3).
 *
 * @module
 */
import type { Engine } from "../core/engine.ts";
import type { PipelineConfig } from "../core/config/mod.ts";
import { literal, qualified, sqlType } from "../core/quote.ts";

/** A column of a table, in table order. */
export interface CatalogColumn {
  /** Column name. */
  name: string;
  /** DuckDB type, e.g. `VARCHAR`. */
  type: string;
}

/**
 * The columns of `schema.table` in table order, or an empty list when the
 * table does not exist.
 *
 * @example
 * ```ts ignore
 * const names = (await tableColumns(db, "bronze", "orders")).map((c) => c.name);
 * ```
 */
export async function tableColumns(
  db: Engine,
  schema: string,
  table: string,
): Promise<CatalogColumn[]> {
  const exists = await db.one(
    `SELECT 1 AS x FROM duckdb_tables() WHERE schema_name = $schema AND table_name = $table`,
    { schema, table },
  );
  if (!exists) return [];
  return await db.all<CatalogColumn & Record<string, unknown>>(
    `SELECT name, type FROM pragma_table_info(${literal(qualified(schema, table))}) ORDER BY cid`,
  );
}

/**
 * The message for a silver column that reads a bronze column its source
 * does not have, the same in `validate` and at run time:
 * `source "flights" has no column "tail_number" (columns: date, delay, …)`,
 * with a did-you-mean when a column name is close.
 *
 * @example
 * ```ts ignore
 * missingColumnMessage("flights", "tail_numbr", ["date", "tail_number"]);
 * // 'source "flights" has no column "tail_numbr" (columns: date, tail_number; did you mean "tail_number"?)'
 * ```
 */
export function missingColumnMessage(
  source: string,
  column: string,
  available: readonly string[],
): string {
  const shown = available.slice(0, 12).join(", ") + (available.length > 12 ? ", …" : "");
  const lower = column.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of available) {
    const d = editDistance(lower, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const hint = best !== undefined && bestDistance <= Math.max(2, Math.floor(column.length / 3))
    ? `; did you mean "${best}"?`
    : "";
  return `source "${source}" has no column "${column}" (columns: ${shown}${hint})`;
}

/**
 * The bronze columns a silver table's plain columns read (`from`, or the
 * column's own name; `expr` columns are checked by binding) that are not in
 * `available` (compared without case, as DuckDB does), with the message of
 * {@linkcode missingColumnMessage} for each, keyed by silver column.
 *
 * @example
 * ```ts ignore
 * const missing = missingSourceColumns("orders", table, ["order_id", "amount"]);
 * for (const m of missing) throw new Error(`silver.orders.columns.${m.column}: ${m.message}`);
 * ```
 */
export function missingSourceColumns(
  source: string,
  columns: Record<string, { from?: string; expr?: string }>,
  available: readonly string[],
): { column: string; bronzeColumn: string; message: string }[] {
  const have = new Set(available.map((c) => c.toLowerCase()));
  const out: { column: string; bronzeColumn: string; message: string }[] = [];
  for (const [name, col] of Object.entries(columns)) {
    if (col.expr) continue;
    const from = col.from ?? name;
    if (have.has(from.toLowerCase())) continue;
    out.push({
      column: name,
      bronzeColumn: from,
      message: missingColumnMessage(source, from, available),
    });
  }
  return out;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}

/**
 * Checks every declared type (silver columns, source columns) by asking
 * DuckDB to cast NULL to it; an unknown one is a problem with a
 * did-you-mean from `duckdb_types()`. Returns the silver tables (and
 * `source:<name>` entries) with an unknown type, and the types it knows.
 *
 * @example
 * ```ts ignore
 * const { bad } = await checkDeclaredTypes(db, config, (path, message) => problems.push({ path, message }));
 * ```
 */
export async function checkDeclaredTypes(
  db: Engine,
  config: PipelineConfig,
  add: (path: string, message: string) => void,
): Promise<{ bad: Set<string>; known: Set<string> }> {
  const bad = new Set<string>();
  const knownTypes = new Set<string>();
  // Usually every type is fine: one query for all of them, one per type only if it fails.
  const all = new Set<string>();
  for (const t of Object.values(config.silver)) {
    for (const c of Object.values(t.columns)) all.add(c.type);
  }
  for (const s of Object.values(config.sources)) {
    for (const t of Object.values(s.columns ?? {})) all.add(t);
  }
  if (all.size === 0) return { bad, known: knownTypes };
  try {
    await db.run(
      `SELECT ${[...all].map((t, i) => `CAST(NULL AS ${sqlType(t)}) AS x${i}`).join(", ")}`,
    );
    return { bad, known: all };
  } catch { /* find which, below */ }
  let names: string[] | undefined;
  const check = async (path: string, type: string): Promise<boolean> => {
    try {
      await db.run(`SELECT CAST(NULL AS ${sqlType(type)}) AS x`);
      knownTypes.add(type);
      return true;
    } catch {
      names ??= (await db.all<{ t: string }>(
        `SELECT DISTINCT upper(type_name) AS t FROM duckdb_types() ORDER BY 1`,
      )).map((r) => r.t);
      const base = type.replace(/\(.*$/, "").replace(/\[\]$/, "").trim().toUpperCase();
      const close = names
        .map((n) => ({ n, d: editDistance(base, n) }))
        .sort((a, b) => a.d - b.d || a.n.localeCompare(b.n))[0];
      const hint = close && close.d <= Math.max(2, Math.floor(base.length / 3))
        ? ` (did you mean "${type.replace(/^[^([]+/, close.n)}"?)`
        : " (a DuckDB type such as VARCHAR, BIGINT, DOUBLE, DECIMAL(12,2), DATE, TIMESTAMP)";
      add(path, `unknown type "${type}"${hint}`);
      return false;
    }
  };
  for (const [name, table] of Object.entries(config.silver)) {
    for (const [c, col] of Object.entries(table.columns)) {
      if (!await check(`silver.${name}.columns.${c}.type`, col.type)) bad.add(name);
    }
  }
  for (const [name, source] of Object.entries(config.sources)) {
    for (const [c, type] of Object.entries(source.columns ?? {})) {
      if (!await check(`sources.${name}.columns.${c}`, type)) bad.add(`source:${name}`);
    }
  }
  return { bad, known: knownTypes };
}
