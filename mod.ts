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
export {
  closest,
  loadConfig,
  type LoadConfigOptions,
  parseConfig,
  redactSecrets,
} from "./core/config.ts";
export {
  type LineageConfig,
  type ObservabilityConfig,
  observabilityDefaults,
  ObservabilitySchema,
  type PushgatewayConfig,
  type ReportConfig,
} from "./core/config_observability.ts";
export {
  resolveStreaming,
  sizeBytes,
  type StreamColumnConfig,
  StreamColumnSchema,
  type StreamingConfig,
  streamingDirectories,
  StreamingSchema,
  type WindowConfig,
  WindowSchema,
} from "./core/config_streaming.ts";
export { DURATION_UNITS, durationProblem, formatDuration, parseDuration } from "./core/duration.ts";
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
  type AppendOptions,
  type Engine,
  type EngineOptions,
  openEngine,
  type Row,
  type RowAppender,
  type SqlParam,
} from "./core/engine.ts";
export {
  ConfigError,
  type ConfigProblem,
  ConservationError,
  DataLossError,
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
export { ensureLedger, SLUICE_VERSION, tableExists } from "./observability/ledger.ts";
export {
  configureLogging,
  formatJsonLine,
  type FormatOptions,
  formatTextLine,
  logFormatInUse,
  type LoggingOptions,
  resetLogging,
  withLogContext,
} from "./observability/logging.ts";
export {
  CHECK_STATUSES,
  type CheckLabels,
  logMetrics,
  type MetricSample,
  metricSamples,
  recordStage,
  RUN_STATUSES,
  type SluiceMetrics,
  sluiceMetrics,
} from "./observability/metrics.ts";
export { formatRunSummary } from "./observability/summary.ts";
export {
  pushgatewayGroupUrl,
  type PushOptions,
  type PushResult,
  pushToGateway,
  writeFileAtomic,
  writeTextfile,
} from "./observability/exporters.ts";
export {
  type HealthStatus,
  type MetricsServer,
  serveMetrics,
  type ServeMetricsOptions,
} from "./observability/metrics_server.ts";
export { type ColumnStat, measureTable, readColumnStats } from "./observability/column_stats.ts";
export {
  duckdbVersion,
  type InputFingerprint,
  modelHashes,
  readManifest,
  type RunManifest,
} from "./observability/run_manifest.ts";
export {
  type CheckCounts,
  formatRunDetail,
  formatRunsTable,
  getRun,
  listRuns,
  openLedger,
  readCheckResults,
  type RecordedCheck,
  resolveRunId,
  type RunDetail,
  type RunRecord,
  type StageFigures,
  type TableFigures,
} from "./observability/runs.ts";
export {
  type Facet,
  type LineageDataset,
  type LineageDelivery,
  LineageEmitter,
  LineageEvents,
  lineageRunId,
  OPENLINEAGE_PRODUCER,
  OPENLINEAGE_SPEC,
  type RunEvent,
  stageRunId,
  type StatsByTable,
} from "./observability/lineage.ts";
export {
  buildReport,
  collectReport,
  type HeatmapRow,
  type HistoryPoint,
  renderReport,
  type ReportData,
  type ReportOptions,
} from "./observability/report.ts";
export {
  observeRunFinished,
  observeRunStarted,
  observeStageFinished,
  observeStageStarted,
} from "./observability/run_observer.ts";

// quality
export {
  CHECK_TYPES,
  type CheckItem,
  CheckItemSchema,
  type CheckSpec,
  checkSpec,
  type CheckType,
  QUALITY_DEFAULTS,
  type QualityConfig,
  QualitySchema,
  qualitySettings,
} from "./core/config_quality.ts";
export {
  type CheckResult as QualityCheckResult,
  type CheckStatus,
  type CheckTarget,
  checkTargets,
  type FailingSample,
  type Layer,
  runChecks,
  type RunChecksOptions,
} from "./quality/checks.ts";
export {
  type ColumnProfile,
  type ProfileColumn,
  type ProfileOptions,
  profileSql,
  profileTable,
  type TableProfile,
} from "./quality/profile.ts";
export {
  driftBaseline,
  type DriftMetric,
  ensureQualityTables,
  lastRowCount,
  pruneQuarantine,
  recordCheckResults,
  recordProfiles,
} from "./quality/history.ts";
export {
  auditLayer,
  type AuditOptions,
  type CheckCommandResult,
  checkTables,
  describeFailures,
  gateFailures,
  type LayerAudit,
  qualityGateError,
  recordAudits,
  stagedEngine,
} from "./quality/gate.ts";
export { observeCheckResults, observeProfiles } from "./quality/events.ts";
export { formatCheckProblems, formatCheckResults } from "./quality/format.ts";

// stages
export { bronze } from "./stages/bronze.ts";
export { extract, type ExtractPlan, type SourcePlan } from "./stages/extract.ts";
export type { FileFingerprint } from "./stages/_files.ts";
export { gold, modelRefs, planGold, type PlannedModel, type TableRef } from "./stages/gold.ts";
export { output } from "./stages/output.ts";
export {
  openRun,
  type OpenRunOptions,
  type PipelineRunSummary,
  runPipeline,
  type StageName,
  STAGES,
} from "./stages/pipeline.ts";
export { silver, type StagedCounts, type StagedSilverTable, stageSilver } from "./stages/silver.ts";
export { type Locate, validatePipeline } from "./stages/validate.ts";

// streaming
export {
  type BatchResult,
  CRASH_STEPS,
  type CrashPoint,
  type CrashStep,
  ensureTargetTable,
  formatStreamSummary,
  parseCrashPoint,
  requireStreaming,
  runStream,
  STREAM_TRIGGERS,
  type StreamOptions,
  type StreamSummary,
  type StreamTrigger,
} from "./streaming/stream.ts";
export {
  openStreamRun,
  runStreamPipeline,
  type RunStreamPipelineOptions,
} from "./streaming/run.ts";
export {
  type DlqEntry,
  type DlqFilter,
  type DlqListing,
  type DlqTable,
  dlqTables,
  formatDlqListing,
  formatReplayResults,
  listDlq,
  replayDlq,
  type ReplayResult,
} from "./streaming/dlq.ts";
export { explainStream } from "./streaming/explain.ts";
export {
  type Checkpoint,
  ensureStreamTables,
  type FileState,
  loadCheckpoint,
  loadFileStates,
} from "./streaming/checkpoint.ts";
export { exportBatches, exportFileName, type ExportResult } from "./streaming/export.ts";
export { emitWindows, ensureWindowTables, WINDOW_SCHEMA } from "./streaming/windows.ts";
export {
  checkPartialFile,
  type DataLoss,
  discoverFiles,
  type LandingFile,
  type PartialFile,
  readSlice,
  type ReadSliceOptions,
  type Slice,
  type SliceRecord,
} from "./streaming/source.ts";

// scaffolding
export { type DemoOptions, runDemo } from "./scaffold/demo.ts";
export {
  generateDemoData,
  type GenerateOptions,
  type GenerateSummary,
} from "./scaffold/generate.ts";
export { type InitOptions, initProject } from "./scaffold/init.ts";
