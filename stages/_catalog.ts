/**
 * Catalog lookups for the stages: one table's columns without scanning
 * every column of every table (`duckdb_columns()` costs 3 to 45 ms per call
 * on a run's database; this costs about 3).
 *
 * @module
 */
import type { Engine } from "../core/engine.ts";
import { literal, qualified } from "../core/quote.ts";

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
