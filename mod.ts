/**
 * Sluice: cron-scheduled, observable data pipelines on embedded DuckDB.
 *
 * A pipeline is one `pipeline.yaml`: sources land in bronze, silver types,
 * cleans, deduplicates and quarantines, gold builds SQL models, output
 * publishes Parquet atomically.
 *
 * @example
 * ```ts ignore
 * import { loadConfig, runPipeline, withRun } from "./mod.ts";
 * const config = await loadConfig("examples/ecommerce/pipeline.yaml");
 * const summary = await withRun(config, { trigger: "cron" }, (ctx) => runPipeline(ctx));
 * console.log(summary.status);
 * ```
 *
 * @module
 */

// core
export { type Clock, steppingClock, systemClock } from "./core/clock.ts";
export { loadConfig, type LoadConfigOptions, parseConfig } from "./core/config/mod.ts";
export { pipelineJsonSchema, pipelineJsonSchemaText } from "./core/config/mod.ts";
export {
  type LineageConfig,
  type ObservabilityConfig,
  ObservabilitySchema,
  type PushgatewayConfig,
  type ReportConfig,
} from "./core/config/mod.ts";
export {
  type StreamColumnConfig,
  StreamColumnSchema,
  type StreamingConfig,
  StreamingSchema,
  type WindowConfig,
  WindowSchema,
} from "./core/config/mod.ts";
export { formatDuration, parseDuration } from "./core/duration.ts";
export {
  type GoldModelConfig,
  type OutputConfig,
  type PipelineConfig,
  type PipelineInput,
  PipelineSchema,
  type SilverColumnConfig,
  type SilverTableConfig,
  type SourceConfig,
} from "./core/config/mod.ts";
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
  JetStreamDataLossError,
  LockHeldError,
  QualityGateError,
  SandboxError,
  SchemaDriftError,
  SluiceError,
  SourceError,
  UsageError,
} from "./core/errors.ts";
export { CancelledError, OverlapError, RunSkippedError, TimedOutError } from "./core/errors.ts";
export { CheckpointError } from "./core/errors.ts";
export { DatabaseDamagedError, DiskFullError } from "./core/errors.ts";

export {
  DEFAULT_RETRY_POLICY,
  isTransient,
  type RetryEvent,
  type RetryOptions,
  type RetryPolicy,
  withRetry,
} from "./core/retry.ts";
export {
  acquireRunLock,
  type LockHolder,
  type RunLock,
  type RunLockOptions,
  type RunLockResult,
  type StaleLock,
} from "./core/run_lock.ts";
export { type RunStops, type StopOptions, watchStops } from "./runtime/stop.ts";
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
  type FormatOptions,
  logFormatInUse,
  type LoggingOptions,
  redactLogged,
  withLogContext,
} from "./observability/logging.ts";
export {
  CHECK_STATUSES,
  type CheckLabels,
  RUN_STATUSES,
  type SluiceMetrics,
  sluiceMetrics,
} from "./observability/metrics.ts";
export { formatRunSummary } from "./observability/summary.ts";
export {
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
export { type ColumnStat, readColumnStats } from "./observability/column_stats.ts";
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
  OPENLINEAGE_PRODUCER,
  OPENLINEAGE_SPEC,
  type RunEvent,
  type StatsByTable,
} from "./observability/lineage.ts";
export {
  type BronzeTable,
  buildReport,
  type CheckRunPoint,
  collectReport,
  type HeatmapRow,
  type HistoryPoint,
  type QuarantineGroup,
  type QuarantineRate,
  renderReport,
  type ReportData,
  type ReportOptions,
  type RunFailure,
} from "./observability/report.ts";

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
} from "./core/config/mod.ts";
export {
  type CandidateRows,
  type CheckResult as QualityCheckResult,
  type CheckStatus,
  type CheckTarget,
  type FailingSample,
  type Layer,
  runChecks,
  type RunChecksOptions,
} from "./quality/checks.ts";
export {
  type ColumnProfile,
  type ProfileColumn,
  type ProfileOptions,
  profileTable,
  type TableProfile,
} from "./quality/profile.ts";

export {
  auditLayer,
  type AuditOptions,
  type CheckCommandResult,
  checkTables,
  describeFailures,
  gateFailures,
  type LayerAudit,
  qualityGateError,
  type QuarantineReason,
  type SilverWrite,
} from "./quality/gate.ts";

export { formatCheckProblems, formatCheckResults } from "./quality/format.ts";

// run lifecycle
export {
  type OverlapPolicy,
  type RunFields,
  runFieldsOf,
  type RunKind,
  runStatusOf,
  withRun,
  type WithRunOptions,
} from "./runtime/with_run.ts";

// stages
export { bronze } from "./stages/bronze.ts";
export { extract, type ExtractPlan, type SourcePlan } from "./stages/extract.ts";
export type { FileFingerprint } from "./core/files.ts";
export { gold, type GoldOptions } from "./stages/gold.ts";
export { output } from "./stages/output.ts";
export { type PipelineRunSummary, runPipeline, type StageName, STAGES } from "./stages/pipeline.ts";
export {
  silver,
  type SilverChange,
  type SilverOptions,
  type StagedCounts,
  type StagedSilverTable,
  type StaleLineage,
} from "./stages/silver.ts";
export {
  type LandedFile,
  type LandedFileState,
  listLandedFiles,
  type MissingFiles,
} from "./stages/landed_files.ts";
export { type RetractedFile, retractFiles, type RetractResult } from "./stages/retract.ts";
export { type Locate, validatePipeline } from "./stages/validate.ts";

// streaming
export {
  type BatchResult,
  CRASH_STEPS,
  type CrashStep,
  formatStreamSummary,
  requireStreaming,
  runStream,
  STREAM_TRIGGERS,
  type StreamOptions,
  type StreamSummary,
  type StreamTrigger,
} from "./streaming/stream.ts";
export { runStreamPipeline, type RunStreamPipelineOptions } from "./streaming/run.ts";
export { serveStream, type ServeStreamOptions } from "./streaming/serve.ts";
export {
  type DlqEntry,
  type DlqFilter,
  type DlqListing,
  type DlqTable,
  dlqTables,
  formatDlqListing,
  formatReplayResults,
  listDlq,
  listDlqReplica,
  replayDlq,
  type ReplayResult,
} from "./streaming/dlq.ts";
export { explainStream } from "./streaming/explain.ts";

// streaming: NATS JetStream source shared by N workers
export {
  isJetStreaming,
  type JetStreamingConfig,
  parsingConfig,
  type StreamingSection,
  type StreamSourceConfig,
} from "./core/config/mod.ts";
export { type JetStreamSourceConfig, JetStreamSourceSchema } from "./core/config/mod.ts";
export {
  defaultWorkerId,
  formatJetStreamSummary,
  type JetStreamOptions,
  type JetStreamSummary,
  runJetStream,
} from "./streaming/jetstream/worker.ts";
export {
  runJetStreamPipeline,
  type RunJetStreamPipelineOptions,
} from "./streaming/jetstream/run.ts";
export { serveJetStream } from "./streaming/jetstream/serve.ts";
export {
  exportShards,
  formatShardsView,
  type ShardExportResult,
  type ShardsView,
  type ShardView,
  summarizeShards,
} from "./streaming/jetstream/shards.ts";
export { explainJetStream } from "./streaming/jetstream/explain.ts";
export {
  type Checkpoint,
  type CheckpointTables,
  type FileState,
  loadCheckpoint,
  verifyCheckpoint,
} from "./streaming/checkpoint.ts";
export { exportBatches, type ExportResult } from "./streaming/export.ts";

export { type LandingFile } from "./streaming/source.ts";

// scaffolding
export { type DemoOptions, runDemo } from "./scaffold/demo.ts";
export { ECOMMERCE_PIPELINE_YAML } from "./scaffold/example_pipeline.ts";
export {
  generateDemoData,
  type GenerateOptions,
  type GenerateSummary,
} from "./scaffold/generate.ts";
export { type InitOptions, initProject } from "./scaffold/init.ts";
