/**
 * `pipeline.yaml`: loading, the zod schema of every section, and the JSON
 * Schema generated from it. One file per section holds that section's
 * schema, its semantic checks and its path resolution; see
 * docs/architecture.md ("How to add a config key").
 *
 * @example
 * ```ts
 * import { parseConfig } from "./mod.ts";
 * const config = parseConfig(
 *   "pipeline: shop\nlake: ./lake\nsources:\n  orders: { format: csv, path: ./landing }\n",
 *   "/srv/shop/pipeline.yaml",
 *   { env: () => undefined },
 * );
 * config.engine.database; // "/srv/shop/lake/sluice.duckdb"
 * ```
 *
 * @module
 */
export * from "./load.ts";
export * from "./schema.ts";
export { EngineSchema } from "./engine.ts";
export { CsvOptionsSchema, SourceSchema } from "./sources.ts";
export { RuleSchema, SilverColumnSchema, SilverTableSchema } from "./silver.ts";
export { GoldModelSchema } from "./gold.ts";
export { OutputSchema, OutputTableSchema } from "./output.ts";
export * from "./quality.ts";
export * from "./observability.ts";
export * from "./streaming.ts";
export * from "./jetstream.ts";
export * from "./run.ts";
export * from "./json_schema.ts";
