/**
 * The shape of `pipeline.yaml`, as zod schemas. Every object is strict:
 * unknown keys are errors. The loader (`config.ts`) turns zod issues into
 * `FILE:LINE:COL key.path: problem (what would be valid)` lines.
 *
 * @module
 */
import { z } from "zod";
import type { ZodOutput } from "./_npm_types.ts";
import { ObservabilitySchema } from "./config_observability.ts";
import { ChecksSchema, QualitySchema } from "./config_quality.ts";
import { StreamingSchema } from "./config_streaming.ts";
import { IDENTIFIER_PATTERN, TYPE_PATTERN } from "./quote.ts";

const identifier = z.string().regex(IDENTIFIER_PATTERN, {
  error: "must be an identifier (letters, digits and _, not starting with a digit, at most 63)",
});

const sqlTypeName = z.string().regex(TYPE_PATTERN, {
  error: "must be a DuckDB type such as VARCHAR, BIGINT, DOUBLE, DECIMAL(12,2), DATE, TIMESTAMP",
});

const sizeText = z.string().regex(/^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$/i, {
  error: 'must be a size such as "512MB" or "2GB"',
});

/** Engine settings applied to DuckDB before the sandbox is locked. */
export const EngineSchema = z.strictObject({
  /** Database file; default `<lake>/sluice.duckdb`. */
  database: z.string().min(1).optional(),
  /** DuckDB worker threads; default: all cores. */
  threads: z.number().int().min(1).max(1024).optional(),
  /** DuckDB memory limit, e.g. `2GB`. */
  memory_limit: sizeText.optional(),
  /** Spill folder; default `<lake>/tmp`. */
  temp_directory: z.string().min(1).optional(),
});

/** Reader options of a CSV source. */
export const CsvOptionsSchema = z.strictObject({
  delimiter: z.string().min(1).max(4).optional(),
  header: z.boolean().optional(),
  quote: z.string().max(1).optional(),
  escape: z.string().max(1).optional(),
  null_string: z.string().optional(),
  skip: z.number().int().min(0).optional(),
});

/** One source: files of one format found by a glob inside a folder. */
export const SourceSchema = z.strictObject({
  /** csv, ndjson or parquet. */
  format: z.enum(["csv", "ndjson", "parquet"]),
  /** Folder that holds the files (added to the sandbox). */
  path: z.string().min(1),
  /** Glob relative to `path`, e.g. `orders_*.csv`; default `*`. */
  glob: z.string().min(1).default("*"),
  /** CSV reader options. */
  options: CsvOptionsSchema.optional(),
  /** Types to read columns as; others are read as text (VARCHAR). */
  columns: z.record(z.string(), sqlTypeName).optional(),
  /** What to do when an ingested file has changed: reingest, fail or ignore. */
  on_change: z.enum(["reingest", "fail", "ignore"]).default("fail"),
  /** What to do when columns appear or disappear: evolve or fail. */
  schema_drift: z.enum(["evolve", "fail"]).default("evolve"),
  /** What to do when a file is empty: fail or skip. */
  on_empty: z.enum(["fail", "skip"]).default("fail"),
  /** Data-quality checks on the rows each run lands in bronze (`core/config_quality.ts`). */
  checks: ChecksSchema.optional(),
});

/** One typed silver column. */
export const SilverColumnSchema = z.strictObject({
  /** DuckDB type to cast to; a value that fails its cast is quarantined. */
  type: sqlTypeName,
  /** Bronze column to read; default: the same name. */
  from: z.string().min(1).optional(),
  /** Normalisation expression over bronze columns, e.g. `upper(trim(country))`. */
  expr: z.string().min(1).optional(),
  /** When false, a null value sends the row to quarantine. Default true. */
  nullable: z.boolean().default(true),
  /** Date/time format for DATE and TIMESTAMP columns (strptime), e.g. `%d/%m/%Y`. */
  format: z.string().min(1).optional(),
});

/** A named validation rule: a SQL boolean that must hold for a row to pass. */
export const RuleSchema = z.strictObject({
  name: identifier,
  sql: z.string().min(1),
});

/** A silver table: typed, cleaned and deduplicated rows of one source. */
export const SilverTableSchema = z.strictObject({
  /** Source (bronze table) to read. */
  from: identifier,
  /** Typed columns, in output order. */
  columns: z.record(identifier, SilverColumnSchema).refine((c) => Object.keys(c).length > 0, {
    error: "needs at least one column",
  }),
  /** Key columns for dedup, merge and scd2. */
  key: z.array(identifier).min(1).optional(),
  /** Column deciding which duplicate is the latest (largest wins). */
  order_by: identifier.optional(),
  /** Named row rules; failing rows go to quarantine with the rule's name. */
  rules: z.array(RuleSchema).default([]),
  /** replace, append, merge (upsert by key) or scd2. */
  mode: z.enum(["replace", "append", "merge", "scd2"]).default("replace"),
  /** Data-quality checks on the table (`core/config_quality.ts`). */
  checks: ChecksSchema.optional(),
  /** Data-quality checks on the rows this run sent to `<table>__quarantine`. */
  quarantine_checks: ChecksSchema.optional(),
});

/** A gold model: one SELECT over silver and other gold tables. */
export const GoldModelSchema = z.strictObject({
  /** The SELECT statement. */
  sql: z.string().min(1),
  /** Free text shown in docs and reports. */
  description: z.string().optional(),
  /** Data-quality checks on the model's table (`core/config_quality.ts`). */
  checks: ChecksSchema.optional(),
});

/** Publication settings of one table. */
export const OutputTableSchema = z.strictObject({
  /** Hive partition columns. */
  partition_by: z.array(identifier).optional(),
  /** At most this many rows per Parquet file. */
  max_rows_per_file: z.number().int().min(1000).optional(),
});

/** Which tables to publish as Parquet, and where. */
export const OutputSchema = z.strictObject({
  /** Folder of published tables; default `<lake>/output`. */
  path: z.string().min(1).optional(),
  /** How many earlier versions of each table to keep. Default 2. */
  keep_versions: z.number().int().min(0).max(100).default(2),
  /** Tables to publish (gold or silver names). */
  tables: z.record(identifier, OutputTableSchema.nullable().transform((v) => v ?? {})),
});

const pipelineSchema = z.strictObject({
  /** Name of the pipeline (appears in logs and metrics). */
  pipeline: identifier,
  /** Folder that holds the database, outputs and spill files. */
  lake: z.string().min(1),
  engine: EngineSchema.default({}),
  /** Batch sources; may be empty when the pipeline only streams. */
  sources: z.record(identifier, SourceSchema).default({}),
  silver: z.record(identifier, SilverTableSchema).default({}),
  gold: z.record(identifier, GoldModelSchema).default({}),
  output: OutputSchema.optional(),
  /** Metrics exporters, lineage and the run report (`core/config_observability.ts`). */
  observability: ObservabilitySchema.optional(),
  /** Data-quality settings: checks, profiling, samples, quarantine retention. */
  quality: QualitySchema.optional(),
  /** Micro-batch streaming ingestion (`core/config_streaming.ts`); required by `sluice stream`. */
  streaming: StreamingSchema.optional(),
}).superRefine((config, ctx) => {
  if (Object.keys(config.sources).length === 0 && config.streaming === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["sources"],
      message: "needs at least one source (or a streaming: section)",
    });
  }
});

/**
 * The zod type of {@linkcode PipelineSchema} (a strict object schema). It is
 * spelled out by zod, so the documentation shows {@linkcode PipelineInput}.
 *
 * @internal
 */
type PipelineSchemaType = typeof pipelineSchema;

/**
 * The whole `pipeline.yaml`. The loader ({@linkcode loadConfig}) uses it and
 * turns its issues into `FILE:LINE:COL key.path: problem` lines.
 *
 * @example
 * ```ts
 * import { PipelineSchema } from "./config_schema.ts";
 * const r = PipelineSchema.safeParse({
 *   pipeline: "shop",
 *   lake: "./lake",
 *   sources: { orders: { format: "csv", path: "./landing/orders" } },
 * });
 * r.success; // true
 * ```
 */
export const PipelineSchema: PipelineSchemaType = pipelineSchema;

/**
 * Parsed and validated `pipeline.yaml` (paths not yet resolved).
 *
 * @example
 * ```ts
 * import { type PipelineInput, PipelineSchema } from "./config_schema.ts";
 * const input: PipelineInput = PipelineSchema.parse({
 *   pipeline: "shop",
 *   lake: "./lake",
 *   sources: { orders: { format: "csv", path: "./landing/orders" } },
 * });
 * input.sources.orders.glob; // "*"
 * ```
 */
export type PipelineInput = ZodOutput<typeof PipelineSchema>;
/**
 * One source after validation (an entry of `sources:`).
 *
 * @example
 * ```ts
 * import type { SourceConfig } from "./config_schema.ts";
 * const source: SourceConfig = {
 *   format: "csv",
 *   path: "./landing/orders",
 *   glob: "orders_*.csv",
 *   on_change: "fail",
 *   schema_drift: "evolve",
 *   on_empty: "fail",
 * };
 * ```
 */
export type SourceConfig = PipelineInput["sources"][string];
/**
 * One silver table after validation (an entry of `silver:`).
 *
 * @example
 * ```ts
 * import type { SilverTableConfig } from "./config_schema.ts";
 * const table: SilverTableConfig = {
 *   from: "orders",
 *   columns: { order_id: { type: "BIGINT", nullable: false } },
 *   key: ["order_id"],
 *   rules: [],
 *   mode: "merge",
 * };
 * ```
 */
export type SilverTableConfig = PipelineInput["silver"][string];
/**
 * One silver column after validation.
 *
 * @example
 * ```ts
 * import type { SilverColumnConfig } from "./config_schema.ts";
 * const column: SilverColumnConfig = { type: "DATE", format: "%d/%m/%Y", nullable: true };
 * ```
 */
export type SilverColumnConfig = SilverTableConfig["columns"][string];
/**
 * One gold model after validation (an entry of `gold:`).
 *
 * @example
 * ```ts
 * import type { GoldModelConfig } from "./config_schema.ts";
 * const model: GoldModelConfig = {
 *   sql: "SELECT country, sum(total) AS revenue FROM silver.orders GROUP BY ALL",
 * };
 * ```
 */
export type GoldModelConfig = PipelineInput["gold"][string];
/**
 * Output settings after validation (the `output:` section).
 *
 * @example
 * ```ts
 * import type { OutputConfig } from "./config_schema.ts";
 * const output: OutputConfig = { keep_versions: 2, tables: { revenue: {} } };
 * ```
 */
export type OutputConfig = NonNullable<PipelineInput["output"]>;

/**
 * A loaded pipeline config: validated, `${VAR}` interpolated, with every
 * path made absolute against the config file's folder.
 */
export interface PipelineConfig extends Omit<PipelineInput, "engine" | "output"> {
  /** Absolute path of the config file. */
  file: string;
  /** Absolute folder of the config file. */
  dir: string;
  /** Engine settings with absolute `database` and `temp_directory`. */
  engine: {
    database: string;
    threads?: number;
    memory_limit?: string;
    temp_directory: string;
  };
  /** Output settings with an absolute `path` (default `<lake>/output`). */
  output: OutputConfig & { path: string };
  /** Values marked `!secret`; never printed, redacted from logs. */
  secrets: string[];
  /** SHA-256 of the resolved config with secrets replaced, hex. */
  hash: string;
  /** Line and column of a dotted key path in the file (set by the loader, not enumerable). */
  locate?: (path: string) => { line: number; col: number };
}
