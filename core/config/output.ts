/**
 * The `output:` section: schema, the check that each table is a silver or
 * gold table, and the folder resolution (default `<lake>/output`).
 *
 * @module
 */
import { resolve } from "node:path";
import { z } from "zod";
import type { ZodOutput } from "../npm_types.ts";
import type { CheckContext } from "./_check_context.ts";
import { identifier } from "./_fields.ts";
import { hint } from "./_hint.ts";
import { isRecord } from "./_yaml_positions.ts";

/** Publication settings of one table. */
export const OutputTableSchema: z.ZodObject<
  {
    partition_by: z.ZodOptional<z.ZodArray<z.ZodString>>;
    max_rows_per_file: z.ZodOptional<z.ZodNumber>;
  },
  z.core.$strict
> = z.strictObject({
  partition_by: z.array(identifier).optional().describe("Hive partition columns."),
  max_rows_per_file: z.number().int().min(1000).optional().describe(
    "At most this many rows per Parquet file.",
  ),
});

/** Which tables to publish as Parquet, and where. */
export const OutputSchema: z.ZodObject<
  {
    path: z.ZodOptional<z.ZodString>;
    keep_versions: z.ZodDefault<z.ZodNumber>;
    tables: z.ZodRecord<
      z.ZodString,
      z.ZodPipe<
        z.ZodNullable<typeof OutputTableSchema>,
        z.ZodTransform<
          { partition_by?: string[] | undefined; max_rows_per_file?: number | undefined },
          { partition_by?: string[] | undefined; max_rows_per_file?: number | undefined } | null
        >
      >
    >;
  },
  z.core.$strict
> = z.strictObject({
  path: z.string().min(1).optional().describe(
    "Folder of published tables; default `<lake>/output`.",
  ),
  keep_versions: z.number().int().min(0).max(100).default(2).describe(
    "How many earlier versions of each table to keep. Default 2.",
  ),
  tables: z.record(identifier, OutputTableSchema.nullable().transform((v) => v ?? {})).describe(
    "Tables to publish (gold or silver names).",
  ),
});

/** One entry after validation (the public type is in `schema.ts`). */
type OutputConfig = ZodOutput<typeof OutputSchema>;

/** `output.tables.*`: each names a silver or gold table. */
export function outputProblems(raw: Record<string, unknown>, ctx: CheckContext): void {
  const silverNames = isRecord(raw.silver) ? Object.keys(raw.silver) : [];
  const goldNames = isRecord(raw.gold) ? Object.keys(raw.gold) : [];
  const tables = [...new Set([...silverNames, ...goldNames])];
  const output = isRecord(raw.output) ? raw.output : undefined;
  if (!output || !isRecord(output.tables)) return;
  for (const name of Object.keys(output.tables)) {
    if (tables.includes(name)) continue;
    ctx.at(
      ["output", "tables", name],
      `unknown table "${name}"` +
        (tables.length > 0
          ? hint(name, tables, "silver and gold tables")
          : " (no silver or gold tables are declared)"),
      true,
    );
  }
}

/** The `output:` section (default: no tables) with an absolute `path` (default `<lake>/output`). */
export function resolveOutput(
  output: OutputConfig | undefined,
  where: { dir: string; lake: string },
): OutputConfig & { path: string } {
  const o = output ?? { keep_versions: 2, tables: {} };
  const path = o.path === undefined ? resolve(where.lake, "output") : resolve(where.dir, o.path);
  return { ...o, path };
}
