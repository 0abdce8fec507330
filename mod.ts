/**
 * Sluice: cron-scheduled, observable data pipelines on embedded DuckDB.
 *
 * A pipeline is one `pipeline.yaml`: sources land in bronze, silver types,
 * cleans, deduplicates and quarantines, gold builds SQL models, output
 * publishes Parquet atomically.
 *
 * @example
 * ```ts ignore
 * import { loadConfig, openRun, runPipeline } from "./mod.ts";
 * const config = await loadConfig("examples/ecommerce/pipeline.yaml");
 * const ctx = await openRun(config);
 * try {
 *   const summary = await runPipeline(ctx);
 *   console.log(summary.status);
 * } finally {
 *   ctx.db.close();
 * }
 * ```
 *
 * @module
 */

// core
export { type Clock, steppingClock, systemClock } from "./core/clock.ts";
export { closest, loadConfig, parseConfig, redactSecrets } from "./core/config.ts";
export {
  type GoldModelConfig,
  type OutputConfig,
  type PipelineConfig,
  type PipelineInput,
  PipelineSchema,
  type SilverColumnConfig,
  type SilverTableConfig,
  type SourceConfig,
} from "./core/config_schema.ts";
export {
  type Engine,
  type EngineOptions,
  openEngine,
  type Row,
  type SqlParam,
} from "./core/engine.ts";
export {
  ConfigError,
  type ConfigProblem,
  ConservationError,
  EngineError,
  errorMessage,
  EXIT,
  formatConfigProblem,
  LockHeldError,
  QualityGateError,
  SandboxError,
  SchemaDriftError,
  SluiceError,
  SourceError,
  UsageError,
} from "./core/errors.ts";
export {
  ident,
  identList,
  isIdentifier,
  literal,
  literalList,
  qualified,
  rawIdent,
  sqlType,
} from "./core/quote.ts";
export type { RunContext, RunSummary, StageResult, TableResult } from "./core/run_context.ts";
export { newRunId } from "./core/run_id.ts";

// observability
export { ensureLedger, SLUICE_VERSION } from "./observability/ledger.ts";
export {
  configureLogging,
  formatJsonLine,
  formatTextLine,
  type LoggingOptions,
  resetLogging,
} from "./observability/logging.ts";
export { recordStage, type SluiceMetrics, sluiceMetrics } from "./observability/metrics.ts";
export { formatRunSummary } from "./observability/summary.ts";

// stages
export { bronze } from "./stages/bronze.ts";
export { extract, type ExtractPlan, type SourcePlan } from "./stages/extract.ts";
export { gold, modelRefs, planGold } from "./stages/gold.ts";
export { output } from "./stages/output.ts";
export {
  openRun,
  type OpenRunOptions,
  runPipeline,
  type StageName,
  STAGES,
} from "./stages/pipeline.ts";
export { silver } from "./stages/silver.ts";
export { validatePipeline } from "./stages/validate.ts";

// scaffolding
export { type DemoOptions, runDemo } from "./scaffold/demo.ts";
export {
  generateDemoData,
  type GenerateOptions,
  type GenerateSummary,
} from "./scaffold/generate.ts";
export { initProject } from "./scaffold/init.ts";
