/**
 * The shape of the whole `pipeline.yaml`, assembled from the section schemas
 * (`engine.ts`, `sources.ts`, `silver.ts`, `gold.ts`, `output.ts`,
 * `observability.ts`, `quality.ts`, `streaming.ts`, `run.ts`). Every object
 * is strict: unknown keys are errors. The loader (`load.ts`) turns zod issues
 * into `FILE:LINE:COL key.path: problem (what would be valid)` lines.
 *
 * @module
 */
import { z } from "zod";
import type { ZodOutput } from "../npm_types.ts";
import { EngineSchema } from "./engine.ts";
import { GoldModelSchema } from "./gold.ts";
import { ObservabilitySchema } from "./observability.ts";
import { OutputSchema } from "./output.ts";
import { QualitySchema } from "./quality.ts";
import { RunSchema } from "./run.ts";
import { SilverTableSchema } from "./silver.ts";
import { SourceSchema } from "./sources.ts";
import { StreamingSchema } from "./streaming.ts";
import { identifier } from "./_fields.ts";

const pipelineSchema: z.ZodObject<
  {
    pipeline: z.ZodString;
    lake: z.ZodString;
    engine: z.ZodDefault<typeof EngineSchema>;
    sources: z.ZodDefault<z.ZodRecord<z.ZodString, typeof SourceSchema>>;
    silver: z.ZodDefault<z.ZodRecord<z.ZodString, typeof SilverTableSchema>>;
    gold: z.ZodDefault<z.ZodRecord<z.ZodString, typeof GoldModelSchema>>;
    output: z.ZodOptional<typeof OutputSchema>;
    observability: z.ZodOptional<typeof ObservabilitySchema>;
    quality: z.ZodOptional<typeof QualitySchema>;
    streaming: z.ZodOptional<typeof StreamingSchema>;
    run: z.ZodOptional<typeof RunSchema>;
  },
  z.core.$strict
> = z.strictObject({
  pipeline: identifier.describe("Name of the pipeline (appears in logs and metrics)."),
  lake: z.string().min(1).describe("Folder that holds the database, outputs and spill files."),
  engine: EngineSchema.default({}).describe("DuckDB settings: database file, threads, memory."),
  sources: z.record(identifier, SourceSchema).default({}).describe(
    "Batch sources; may be empty when the pipeline only streams.",
  ),
  silver: z.record(identifier, SilverTableSchema).default({}).describe(
    "Silver tables: typed, validated, deduplicated rows of one source each.",
  ),
  gold: z.record(identifier, GoldModelSchema).default({}).describe(
    "Gold models: one SELECT each over silver and other gold tables.",
  ),
  output: OutputSchema.optional().describe("Which tables to publish as Parquet, and where."),
  observability: ObservabilitySchema.optional().describe(
    "Metrics exporters, lineage and the run report (`core/config/observability.ts`).",
  ),
  quality: QualitySchema.optional().describe(
    "Data-quality settings: checks, profiling, samples, quarantine retention.",
  ),
  streaming: StreamingSchema.optional().describe(
    "Micro-batch streaming ingestion (`core/config/streaming.ts`); required by `sluice stream`.",
  ),
  run: RunSchema.optional().describe(
    "Run policies for cron: overlap (`on_overlap`), time limit, retries (`core/config/run.ts`).",
  ),
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
 * import { PipelineSchema } from "./schema.ts";
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
 * import { type PipelineInput, PipelineSchema } from "./schema.ts";
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
 * import type { SourceConfig } from "./schema.ts";
 * const source: SourceConfig = {
 *   format: "csv",
 *   path: "./landing/orders",
 *   glob: "orders_*.csv",
 *   on_change: "fail",
 *   schema_drift: "evolve",
 *   on_empty: "fail",
 *   on_missing: "keep",
 * };
 * ```
 */
export type SourceConfig = PipelineInput["sources"][string];
/**
 * One silver table after validation (an entry of `silver:`).
 *
 * @example
 * ```ts
 * import type { SilverTableConfig } from "./schema.ts";
 * const table: SilverTableConfig = {
 *   from: "orders",
 *   columns: { order_id: { type: "BIGINT", nullable: false } },
 *   key: ["order_id"],
 *   rules: [],
 *   mode: "merge",
 *   max_quarantine: "10%",
 * };
 * ```
 */
export type SilverTableConfig = PipelineInput["silver"][string];
/**
 * One silver column after validation.
 *
 * @example
 * ```ts
 * import type { SilverColumnConfig } from "./schema.ts";
 * const column: SilverColumnConfig = { type: "DATE", format: "%d/%m/%Y", nullable: true };
 * ```
 */
export type SilverColumnConfig = SilverTableConfig["columns"][string];
/**
 * One gold model after validation (an entry of `gold:`).
 *
 * @example
 * ```ts
 * import type { GoldModelConfig } from "./schema.ts";
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
 * import type { OutputConfig } from "./schema.ts";
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
