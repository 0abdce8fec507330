/**
 * The `sources:` section: schema, the checks that folders and globs stay in
 * the project, and folder resolution against the config file.
 *
 * @module
 */
import { resolve } from "node:path";
import { z } from "zod";
import type { ZodOutput } from "../npm_types.ts";
import { ChecksSchema } from "./quality.ts";
import { type CheckContext, folderProblems } from "./_check_context.ts";
import { sizeText, sqlTypeName } from "./_fields.ts";
import { isRecord, setKey } from "./_yaml_positions.ts";

/** Reader options of a CSV source. */
export const CsvOptionsSchema: z.ZodObject<
  {
    delimiter: z.ZodOptional<z.ZodString>;
    header: z.ZodOptional<z.ZodBoolean>;
    quote: z.ZodOptional<z.ZodString>;
    escape: z.ZodOptional<z.ZodString>;
    null_string: z.ZodOptional<z.ZodString>;
    skip: z.ZodOptional<z.ZodNumber>;
    max_line_size: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  delimiter: z.string().min(1).max(4).optional().describe(
    "Field separator (1 to 4 characters); default detected from the header line.",
  ),
  header: z.boolean().optional().describe(
    "True when the first line names the columns; default detected.",
  ),
  quote: z.string().max(1).optional().describe('Quote character; default `"`.'),
  escape: z.string().max(1).optional().describe(
    "Escape character inside quotes; default the quote itself.",
  ),
  null_string: z.string().optional().describe("Unquoted text read as NULL; default none."),
  skip: z.number().int().min(0).optional().describe(
    "Lines to skip at the start of each file before the header. Default 0.",
  ),
  max_line_size: sizeText.optional().describe(
    'Longest line DuckDB reads, e.g. "16MB"; default 2MB (a longer line fails the file).',
  ),
});

/** One source: files of one format found by a glob inside a folder. */
export const SourceSchema: z.ZodObject<
  {
    format: z.ZodEnum<{ csv: "csv"; ndjson: "ndjson"; json: "json"; parquet: "parquet" }>;
    path: z.ZodString;
    allow_outside_project: z.ZodOptional<z.ZodBoolean>;
    glob: z.ZodDefault<z.ZodString>;
    options: z.ZodOptional<typeof CsvOptionsSchema>;
    columns: z.ZodOptional<z.ZodRecord<z.ZodString, z.ZodString>>;
    on_change: z.ZodDefault<z.ZodEnum<{ fail: "fail"; reingest: "reingest"; ignore: "ignore" }>>;
    schema_drift: z.ZodDefault<z.ZodEnum<{ fail: "fail"; evolve: "evolve" }>>;
    on_empty: z.ZodDefault<z.ZodEnum<{ fail: "fail"; skip: "skip" }>>;
    on_missing: z.ZodDefault<z.ZodEnum<{ fail: "fail"; keep: "keep"; retract: "retract" }>>;
    checks: z.ZodOptional<typeof ChecksSchema>;
  },
  z.core.$strict
> = z.strictObject({
  format: z.enum(["csv", "ndjson", "json", "parquet"]).describe(
    "csv, ndjson (one JSON object per line), json (a JSON array of objects) or parquet.",
  ),
  path: z.string().min(1).describe("Folder that holds the files (added to the sandbox)."),
  allow_outside_project: z.boolean().optional().describe(
    "Allow a `path` outside the project folder (the config file's folder), which widens the " +
      "DuckDB sandbox to it; `sluice validate` warns about it. Default false.",
  ),
  glob: z.string().min(1).default("*").describe(
    "Glob relative to `path`, e.g. `orders_*.csv`; default `*`.",
  ),
  options: CsvOptionsSchema.optional().describe("CSV reader options."),
  columns: z.record(z.string(), sqlTypeName).optional().describe(
    "Types to read columns as; others are read as text (VARCHAR).",
  ),
  on_change: z.enum(["reingest", "fail", "ignore"]).default("fail").describe(
    "What to do when an ingested file has changed: reingest, fail or ignore.",
  ),
  schema_drift: z.enum(["evolve", "fail"]).default("evolve").describe(
    "What to do when columns appear or disappear: evolve or fail.",
  ),
  on_empty: z.enum(["fail", "skip"]).default("fail").describe(
    "What to do when a file is empty: fail or skip.",
  ),
  on_missing: z.enum(["keep", "retract", "fail"]).default("keep").describe(
    "What to do when an ingested file is no longer in the folder: keep its rows (default), " +
      "retract them from bronze and everything derived, or fail the run.",
  ),
  checks: ChecksSchema.optional().describe(
    "Data-quality checks on the rows each run lands in bronze (`core/config/quality.ts`).",
  ),
});

/** One entry after validation (the public type is in `schema.ts`). */
type SourceConfig = ZodOutput<typeof SourceSchema>;

/** `sources.*`: folders stay inside the project folder unless opted out per source. */
export function sourcePathProblems(raw: Record<string, unknown>, ctx: CheckContext): void {
  for (const [name, source] of Object.entries(isRecord(raw.sources) ? raw.sources : {})) {
    if (isRecord(source)) folderProblems(ctx, ["sources", name], source);
  }
}

/** Every source with its `path` made absolute against `dir`. */
export function resolveSources(
  sources: Record<string, SourceConfig>,
  dir: string,
): Record<string, SourceConfig> {
  const out: Record<string, SourceConfig> = {};
  for (const [name, source] of Object.entries(sources)) {
    setKey(out, name, { ...source, path: resolve(dir, source.path) });
  }
  return out;
}
