/**
 * The manifest of one published output version (`_sluice_output.json` in
 * the version folder): per partition its row count, an order-independent
 * content fingerprint and the Parquet files that hold it. The next run
 * compares its own fingerprints with the published version's and hard-links
 * the files of every partition whose rows are provably the same instead of
 * writing them again.
 *
 * A fingerprint is `count(*)`, `bit_xor(hash(row))` and `sum(hash(row))`
 * (a HUGEINT, so equal rows cannot cancel out as they do under xor) of
 * DuckDB's 64-bit row hash. Two partitions with equal fingerprints, equal
 * column names and types, equal write settings and the same DuckDB version
 * hold the same multiset of rows unless two different multisets collide in
 * both 64-bit sums at once.
 *
 * @module
 */
import { join } from "node:path";
import { ident, literal, qualified } from "../core/quote.ts";
import type { Engine } from "../core/engine.ts";

/** File name of the manifest inside a version folder (ignored by `*.parquet` readers). */
export const MANIFEST_FILE = "_sluice_output.json";

/** One partition of a published version (the whole table when unpartitioned). */
export interface PartitionEntry {
  /** Partition values as DuckDB writes them in the folder names (`value::VARCHAR`), or null. */
  key: (string | null)[];
  /** Rows in the partition. */
  rows: number;
  /** `bit_xor(hash(row))`, decimal text; "" when the partition was written without a scan. */
  xor: string;
  /** `sum(hash(row))`, decimal text. */
  sum: string;
  /** Parquet files of the partition, relative to the version folder. */
  files: string[];
}

/** What a version folder holds and how it was written. */
export interface OutputManifest {
  /** Manifest format. */
  format: 1;
  /** Run that wrote the version. */
  run_id: string;
  /** DuckDB version (its hash function may change between versions). */
  duckdb: string;
  /** Column names and types of the table, in order. */
  columns: string;
  /** `partition_by` the version was written with. */
  partition_by: string[];
  /** `max_rows_per_file` the version was written with, or null. */
  max_rows_per_file: number | null;
  /** Rows in the version. */
  rows: number;
  /** Every partition (one entry with an empty key when unpartitioned). */
  partitions: PartitionEntry[];
  /**
   * The run whose gold stage last changed the source table's rows
   * (`_sluice.gold_versions`), when it is a gold model that records it.
   */
  source_version?: string;
}

/** A partition's fingerprint, before its files are known. */
export type Fingerprint = Omit<PartitionEntry, "files">;

/** Stable text of a partition key, for maps. */
export function keyText(key: readonly (string | null)[]): string {
  return JSON.stringify(key);
}

/** Column names and types of `schema.table`, as one text. */
export async function columnsOf(db: Engine, schema: string, table: string): Promise<string> {
  const rows = await db.all<{ name: string; type: string }>(
    `SELECT column_name AS name, data_type AS type FROM information_schema.columns
     WHERE table_schema = $schema AND table_name = $table ORDER BY ordinal_position`,
    { schema, table },
  );
  return rows.map((r) => `${JSON.stringify(r.name)} ${r.type}`).join(", ");
}

/**
 * Fingerprints every partition of `schema.table` in one grouped scan. The
 * partition key is each `partition_by` column cast to VARCHAR (what DuckDB
 * writes in the folder name), so one entry is one folder.
 */
export async function fingerprints(
  db: Engine,
  schema: string,
  table: string,
  parts: readonly string[],
): Promise<Fingerprint[]> {
  const row = ident("__sluice_row");
  const keys = parts.map((p, i) => `${ident(p)}::VARCHAR AS ${ident(`__k${i}`)}`);
  const groupBy = parts.map((_, i) => ident(`__k${i}`));
  const rows = await db.all<Record<string, unknown>>(
    `SELECT ${[...keys, ""].join(", ")}
       count(*)::BIGINT AS __n,
       coalesce(bit_xor(hash(${row})), 0)::VARCHAR AS __x,
       coalesce(sum(hash(${row})), 0)::VARCHAR AS __s
     FROM ${qualified(schema, table)} AS ${row}
     ${groupBy.length > 0 ? `GROUP BY ${groupBy.join(", ")}` : ""}`,
  );
  return rows
    .filter((r) => parts.length === 0 || Number(r.__n) > 0)
    .map((r) => ({
      key: parts.map((_, i) => (r[`__k${i}`] ?? null) as string | null),
      rows: Number(r.__n),
      xor: String(r.__x),
      sum: String(r.__s),
    }));
}

/**
 * SQL condition true for the rows of the given partitions (keys as
 * {@linkcode fingerprints} computes them; NULL keys match NULL values).
 */
export function partitionFilter(
  parts: readonly string[],
  keys: readonly (readonly (string | null)[])[],
): string {
  const one = (key: readonly (string | null)[]) =>
    "(" + parts.map((p, i) =>
      key[i] === null
        ? `${ident(p)} IS NULL`
        : `${ident(p)}::VARCHAR = ${literal(key[i] as string)}`
    ).join(" AND ") + ")";
  return keys.map(one).join(" OR ");
}

/** The manifest of a version folder, or undefined when it has none (or an unreadable one). */
export async function readManifest(versionDir: string): Promise<OutputManifest | undefined> {
  try {
    const m = JSON.parse(await Deno.readTextFile(join(versionDir, MANIFEST_FILE)));
    return m?.format === 1 && Array.isArray(m.partitions) ? m as OutputManifest : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the manifest of a version folder. */
export async function writeManifest(versionDir: string, manifest: OutputManifest): Promise<void> {
  await Deno.writeTextFile(join(versionDir, MANIFEST_FILE), JSON.stringify(manifest) + "\n");
}

/** True when a partition's rows are the same as the previous version's entry. */
export function sameRows(a: Fingerprint, b: Fingerprint): boolean {
  return a.rows === b.rows && a.xor === b.xor && a.sum === b.sum;
}
