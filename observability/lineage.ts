/**
 * OpenLineage run events (spec 2-0-2). A batch run is the job `<pipeline>`
 * (START when it starts, COMPLETE or FAIL when it ends) and each stage is a
 * child job `<pipeline>.<stage>` whose run points to the pipeline run with
 * the `parent` facet. Events carry the stage's input and output datasets:
 *
 * | dataset | namespace | name |
 * | --- | --- | --- |
 * | a source folder, a published output | `file` | absolute path |
 * | a table in the pipeline's database | `duckdb://<database file>` | `<layer>.<table>` |
 *
 * with `outputStatistics` (rows written), `schema`, and the data-quality
 * metrics facet (rowCount, and nullCount and distinctCount per column) as
 * `facets.dataQualityMetrics` on written tables and as
 * `inputFacets.dataQualityMetrics` on tables read. The run's `run_id` is the
 * OpenLineage `runId` (a `--run-id` that is not a UUID is mapped to a stable
 * UUID and kept in the `sluice_run` facet).
 *
 * Events go to an HTTP endpoint (POST, bounded retry) or are appended to an
 * NDJSON file. A failed delivery is a warning, never a failed run; after one
 * event fails all its attempts, the run's later HTTP events are dropped
 * (and counted) instead of waiting on a dead endpoint again.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Logger } from "@logtape/logtape";
import type { Registry } from "../core/npm_types.ts";
import type { LineageConfig } from "../core/config/mod.ts";
import type { PipelineConfig } from "../core/config/mod.ts";
import { redactSecrets } from "../core/config/mod.ts";
import type { StageResult } from "../core/run_context.ts";
import { sendWithRetry } from "./_http.ts";
import { retriesCounter } from "./retries.ts";
import type { ColumnStat } from "./column_stats.ts";
import { SLUICE_VERSION } from "./ledger.ts";

/**
 * The OpenLineage core spec version events follow.
 *
 * @example
 * ```ts
 * import { OPENLINEAGE_SPEC } from "./lineage.ts";
 * const url = `https://openlineage.io/spec/${OPENLINEAGE_SPEC}/OpenLineage.json`;
 * ```
 */
export const OPENLINEAGE_SPEC = "2-0-2";
/**
 * The `producer` of Sluice's events.
 *
 * @example
 * ```ts
 * import { OPENLINEAGE_PRODUCER } from "./lineage.ts";
 * OPENLINEAGE_PRODUCER; // "urn:sluice:sluice:0.1.0"
 * ```
 */
export const OPENLINEAGE_PRODUCER = `urn:sluice:sluice:${SLUICE_VERSION}`;
const EVENT_SCHEMA =
  `https://openlineage.io/spec/${OPENLINEAGE_SPEC}/OpenLineage.json#/$defs/RunEvent`;
const FACET = (name: string, version: string) =>
  `https://openlineage.io/spec/facets/${version}/${name}.json#/$defs/${name}`;

/**
 * Schema URLs of the facets Sluice writes.
 *
 * @example
 * ```ts
 * import { FACET_SCHEMAS } from "./lineage.ts";
 * FACET_SCHEMAS.parent; // ".../facets/1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet"
 * ```
 */
export const FACET_SCHEMAS: Readonly<Record<string, string>> = {
  parent: FACET("ParentRunFacet", "1-1-0"),
  errorMessage: FACET("ErrorMessageRunFacet", "1-0-1"),
  processing_engine: FACET("ProcessingEngineRunFacet", "1-1-1"),
  nominalTime: FACET("NominalTimeRunFacet", "1-0-1"),
  jobType: FACET("JobTypeJobFacet", "2-0-2"),
  documentation: FACET("DocumentationJobFacet", "1-0-1"),
  schema: FACET("SchemaDatasetFacet", "1-1-0"),
  dataSource: FACET("DatasourceDatasetFacet", "1-0-1"),
  dataQualityMetrics: FACET("DataQualityMetricsDatasetFacet", "1-0-0"),
  inputDataQualityMetrics: FACET("DataQualityMetricsInputDatasetFacet", "1-0-2"),
  outputStatistics: FACET("OutputStatisticsOutputDatasetFacet", "1-0-2"),
  sluice_run: "urn:sluice:facets:1-0-0:SluiceRunFacet",
};

/**
 * A facet: its own fields plus `_producer` and `_schemaURL`.
 *
 * @example
 * ```ts
 * import { type Facet, OPENLINEAGE_PRODUCER } from "./lineage.ts";
 * const facet: Facet = {
 *   _producer: OPENLINEAGE_PRODUCER,
 *   _schemaURL: "https://openlineage.io/spec/facets/1-0-1/SchemaDatasetFacet.json",
 *   fields: [{ name: "order_id", type: "BIGINT" }],
 * };
 * ```
 */
export type Facet = { _producer: string; _schemaURL: string } & Record<string, unknown>;

/** A dataset in an event. */
export interface LineageDataset {
  /** Namespace, e.g. `file` or `duckdb:///srv/lake/sluice.duckdb`. */
  namespace: string;
  /** Name within the namespace. */
  name: string;
  /** Dataset facets. */
  facets?: Record<string, Facet>;
  /** Input facets (inputs only). */
  inputFacets?: Record<string, Facet>;
  /** Output facets (outputs only). */
  outputFacets?: Record<string, Facet>;
}

/** An OpenLineage RunEvent. */
export interface RunEvent {
  /** START, COMPLETE or FAIL. */
  eventType: "START" | "RUNNING" | "COMPLETE" | "ABORT" | "FAIL" | "OTHER";
  /** ISO 8601 time. */
  eventTime: string;
  /** The run. */
  run: { runId: string; facets?: Record<string, Facet> };
  /** The job. */
  job: { namespace: string; name: string; facets?: Record<string, Facet> };
  /** Datasets read. */
  inputs: LineageDataset[];
  /** Datasets written. */
  outputs: LineageDataset[];
  /** Producer URI. */
  producer: string;
  /** Schema of the event. */
  schemaURL: string;
}

function facet(key: string, fields: Record<string, unknown>): Facet {
  return { _producer: OPENLINEAGE_PRODUCER, _schemaURL: FACET_SCHEMAS[key], ...fields };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function uuidFromHash(text: string): string {
  const b = createHash("sha256").update(text).digest().subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x80; // version 8: custom, name-based
  b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The OpenLineage runId of a Sluice run: the run_id itself when it is a
 * UUID (the default UUIDv7), otherwise a stable UUID derived from it.
 *
 * @example
 * ```ts
 * import { lineageRunId } from "./lineage.ts";
 * lineageRunId("019abc12-3456-7def-8abc-0123456789ab"); // the same string
 * lineageRunId("nightly-2026-01-01"); // a UUID, always the same one for this id
 * ```
 */
export function lineageRunId(runId: string): string {
  return UUID.test(runId) ? runId.toLowerCase() : uuidFromHash(`sluice-run:${runId}`);
}

/**
 * The runId of a stage's child run: a stable UUID derived from the run and
 * the stage.
 *
 * @example
 * ```ts
 * import { stageRunId } from "./lineage.ts";
 * stageRunId("019abc12-3456-7def-8abc-0123456789ab", "silver");
 * ```
 */
export function stageRunId(runId: string, stage: string): string {
  return uuidFromHash(`sluice-stage:${runId}:${stage}`);
}

/** What the event builders need to know about the run. */
export interface LineageRunInfo {
  /** Sluice run id. */
  runId: string;
  /** The loaded config. */
  config: PipelineConfig;
  /** Job namespace. */
  namespace: string;
  /** Command (`run`). */
  command: string;
  /** Trigger (`cli`, `cron`...). */
  trigger: string;
  /** When the run started. */
  startedAt: Date;
}

/**
 * Column statistics keyed by `layer.table`.
 *
 * @example
 * ```ts ignore
 * const byTable: StatsByTable = groupStats(await readColumnStats(db, { runIds: [runId] }));
 * byTable.get("silver.orders"); // the orders table's column statistics
 * ```
 */
export type StatsByTable = ReadonlyMap<string, readonly ColumnStat[]>;

/**
 * Groups column statistics by `layer.table`.
 *
 * @example
 * ```ts ignore
 * const byTable = groupStats(await readColumnStats(db, { runIds: [runId] }));
 * ```
 */
export function groupStats(stats: readonly ColumnStat[]): Map<string, ColumnStat[]> {
  const out = new Map<string, ColumnStat[]>();
  for (const s of stats) {
    const key = `${s.layer}.${s.table_name}`;
    const list = out.get(key) ?? [];
    list.push(s);
    out.set(key, list);
  }
  return out;
}

function qualityFields(stats: readonly ColumnStat[]): Record<string, unknown> {
  const columnMetrics: Record<string, { nullCount: number; distinctCount?: number }> = {};
  for (const s of stats) {
    columnMetrics[s.column_name] = {
      nullCount: Number(s.null_count),
      ...(s.distinct_approx === null ? {} : { distinctCount: Number(s.distinct_approx) }),
    };
  }
  return { rowCount: Number(stats[0]?.row_count ?? 0), columnMetrics };
}

/**
 * Builds the OpenLineage events of one run. Pure: no I/O, the caller sends
 * them.
 *
 * @example
 * ```ts ignore
 * const b = new LineageEvents({ runId, config, namespace: "shop", command: "run", trigger: "cron", startedAt });
 * const start = b.runStart(new Date());
 * ```
 */
export class LineageEvents {
  readonly #info: LineageRunInfo;
  readonly #tableNamespace: string;

  /** Creates the builder for one run. */
  constructor(info: LineageRunInfo) {
    this.#info = info;
    this.#tableNamespace = `duckdb://${info.config.engine.database}`;
  }

  /** The OpenLineage runId of the pipeline run. */
  get runId(): string {
    return lineageRunId(this.#info.runId);
  }

  #job(stage?: string): RunEvent["job"] {
    const c = this.#info.config;
    return {
      namespace: this.#info.namespace,
      name: stage ? `${c.pipeline}.${stage}` : c.pipeline,
      facets: {
        jobType: facet("jobType", {
          processingType: "BATCH",
          integration: "SLUICE",
          jobType: stage ? "STAGE" : "PIPELINE",
        }),
        documentation: facet("documentation", {
          description: stage
            ? `Sluice ${stage} stage of pipeline ${c.pipeline}`
            : `Sluice pipeline ${c.pipeline} (${c.file})`,
        }),
      },
    };
  }

  #runFacets(): Record<string, Facet> {
    return {
      processing_engine: facet("processing_engine", {
        version: SLUICE_VERSION,
        name: "Sluice",
        openlineageAdapterVersion: SLUICE_VERSION,
      }),
      nominalTime: facet("nominalTime", {
        nominalStartTime: this.#info.startedAt.toISOString(),
      }),
      sluice_run: facet("sluice_run", {
        run_id: this.#info.runId,
        command: this.#info.command,
        trigger: this.#info.trigger,
        config_hash: this.#info.config.hash,
      }),
    };
  }

  #event(
    type: RunEvent["eventType"],
    at: Date,
    parts: Pick<RunEvent, "run" | "job"> & Partial<Pick<RunEvent, "inputs" | "outputs">>,
  ): RunEvent {
    return {
      eventType: type,
      eventTime: at.toISOString(),
      run: parts.run,
      job: parts.job,
      inputs: parts.inputs ?? [],
      outputs: parts.outputs ?? [],
      producer: OPENLINEAGE_PRODUCER,
      schemaURL: EVENT_SCHEMA,
    };
  }

  #errorFacet(error: unknown): Record<string, Facet> {
    const secrets = this.#info.config.secrets;
    const message = redactSecrets(error instanceof Error ? error.message : String(error), secrets);
    const stack = error instanceof Error && error.stack ? redactSecrets(error.stack, secrets) : "";
    return {
      errorMessage: facet("errorMessage", {
        message,
        programmingLanguage: "TypeScript",
        ...(stack ? { stackTrace: stack } : {}),
      }),
    };
  }

  /** A source folder as a dataset. */
  sourceDataset(source: string): LineageDataset {
    const path = this.#info.config.sources[source]?.path ?? source;
    return {
      namespace: "file",
      name: path,
      facets: { dataSource: facet("dataSource", { name: source, uri: `file://${path}` }) },
    };
  }

  /** A table of the pipeline's database as a dataset, with its schema when measured. */
  tableDataset(layer: string, table: string, stats?: readonly ColumnStat[]): LineageDataset {
    const ds: LineageDataset = { namespace: this.#tableNamespace, name: `${layer}.${table}` };
    if (stats && stats.length > 0) {
      ds.facets = {
        schema: facet("schema", {
          fields: stats.map((s) => ({ name: s.column_name, type: s.column_type })),
        }),
      };
    }
    return ds;
  }

  #written(layer: string, table: string, rows: number, stats: StatsByTable): LineageDataset {
    const measured = stats.get(`${layer}.${table}`);
    const ds = this.tableDataset(layer, table, measured);
    if (measured && measured.length > 0) {
      ds.facets = {
        ...ds.facets,
        dataQualityMetrics: facet("dataQualityMetrics", qualityFields(measured)),
      };
    }
    ds.outputFacets = { outputStatistics: facet("outputStatistics", { rowCount: rows }) };
    return ds;
  }

  #read(layer: string, table: string, stats: StatsByTable, rows?: number): LineageDataset {
    const measured = stats.get(`${layer}.${table}`);
    const ds = this.tableDataset(layer, table, measured);
    if (measured && measured.length > 0) {
      ds.inputFacets = {
        dataQualityMetrics: facet("inputDataQualityMetrics", qualityFields(measured)),
      };
    } else if (rows !== undefined) {
      ds.inputFacets = {
        dataQualityMetrics: facet("inputDataQualityMetrics", { rowCount: rows, columnMetrics: {} }),
      };
    }
    return ds;
  }

  /** Inputs and outputs of a finished stage. */
  stageDatasets(
    result: StageResult,
    stats: StatsByTable,
  ): { inputs: LineageDataset[]; outputs: LineageDataset[] } {
    const c = this.#info.config;
    const inputs: LineageDataset[] = [];
    const outputs: LineageDataset[] = [];
    const seen = new Set<string>();
    const addInput = (ds: LineageDataset) => {
      const k = `${ds.namespace}\u0000${ds.name}`;
      if (!seen.has(k)) {
        seen.add(k);
        inputs.push(ds);
      }
    };
    for (const t of result.tables) {
      switch (result.stage) {
        case "extract":
          addInput(this.sourceDataset(t.table));
          break;
        case "bronze": {
          const src = this.sourceDataset(t.table);
          const files = Number(t.details?.files ?? 0);
          src.inputFacets = {
            dataQualityMetrics: facet("inputDataQualityMetrics", {
              rowCount: t.rowsIn,
              fileCount: files,
              columnMetrics: {},
            }),
          };
          addInput(src);
          outputs.push(this.#written("bronze", t.table, t.passed, stats));
          break;
        }
        case "silver": {
          const from = c.silver[t.table]?.from ?? t.table;
          addInput(this.#read("bronze", from, stats, t.rowsIn));
          outputs.push(this.#written("silver", t.table, t.passed, stats));
          if (t.quarantined > 0) {
            outputs.push(this.#written("silver", `${t.table}__quarantine`, t.quarantined, stats));
          }
          break;
        }
        case "gold": {
          const reads = Array.isArray(t.details?.reads) ? t.details.reads as string[] : [];
          const deps = Array.isArray(t.details?.depends_on) ? t.details.depends_on as string[] : [];
          for (const r of reads) {
            const [layer, name] = r.includes(".") ? r.split(".", 2) : ["silver", r];
            addInput(this.#read(layer, name, stats));
          }
          for (const d of deps) addInput(this.#read("gold", d, stats));
          outputs.push(this.#written("gold", t.table, t.passed, stats));
          break;
        }
        case "output": {
          const layer = c.gold[t.table] ? "gold" : "silver";
          addInput(this.#read(layer, t.table, stats, t.rowsIn));
          const path = String(t.details?.path ?? `${c.output.path}/${t.table}`);
          outputs.push({
            namespace: "file",
            name: path,
            outputFacets: {
              outputStatistics: facet("outputStatistics", {
                rowCount: t.passed,
                ...(typeof t.details?.files === "number" ? { fileCount: t.details.files } : {}),
              }),
            },
          });
          break;
        }
        default:
          outputs.push(this.#written(t.layer, t.table, t.passed, stats));
      }
    }
    return { inputs, outputs };
  }

  /** START of the pipeline run, with every source as an input. */
  runStart(at: Date): RunEvent {
    return this.#event("START", at, {
      run: { runId: this.runId, facets: this.#runFacets() },
      job: this.#job(),
      inputs: Object.keys(this.#info.config.sources).map((s) => this.sourceDataset(s)),
    });
  }

  /**
   * COMPLETE (no error) or FAIL of the pipeline run, with the inputs and
   * outputs of every stage that finished.
   */
  runEnd(
    at: Date,
    options: { stages: readonly StageResult[]; stats: StatsByTable; error?: unknown },
  ): RunEvent {
    const inputs = new Map<string, LineageDataset>();
    const outputs = new Map<string, LineageDataset>();
    for (const s of Object.keys(this.#info.config.sources)) {
      const ds = this.sourceDataset(s);
      inputs.set(`${ds.namespace}\u0000${ds.name}`, ds);
    }
    for (const stage of options.stages) {
      for (const ds of this.stageDatasets(stage, options.stats).outputs) {
        outputs.set(`${ds.namespace}\u0000${ds.name}`, ds);
      }
    }
    const failed = options.error !== undefined;
    return this.#event(failed ? "FAIL" : "COMPLETE", at, {
      run: {
        runId: this.runId,
        facets: { ...this.#runFacets(), ...(failed ? this.#errorFacet(options.error) : {}) },
      },
      job: this.#job(),
      inputs: [...inputs.values()],
      outputs: [...outputs.values()],
    });
  }

  #parent(): Record<string, Facet> {
    return {
      parent: facet("parent", {
        run: { runId: this.runId },
        job: { namespace: this.#info.namespace, name: this.#info.config.pipeline },
        root: {
          run: { runId: this.runId },
          job: { namespace: this.#info.namespace, name: this.#info.config.pipeline },
        },
      }),
    };
  }

  /** START of a stage's child run. */
  stageStart(stage: string, at: Date): RunEvent {
    return this.#event("START", at, {
      run: { runId: stageRunId(this.#info.runId, stage), facets: this.#parent() },
      job: this.#job(stage),
    });
  }

  /** COMPLETE of a stage's child run with its datasets. */
  stageComplete(result: StageResult, at: Date, stats: StatsByTable): RunEvent {
    return this.#event("COMPLETE", at, {
      run: { runId: stageRunId(this.#info.runId, result.stage), facets: this.#parent() },
      job: this.#job(result.stage),
      ...this.stageDatasets(result, stats),
    });
  }

  /** FAIL of a stage's child run. */
  stageFail(stage: string, at: Date, error: unknown): RunEvent {
    return this.#event("FAIL", at, {
      run: {
        runId: stageRunId(this.#info.runId, stage),
        facets: { ...this.#parent(), ...this.#errorFacet(error) },
      },
      job: this.#job(stage),
    });
  }
}

/** Options of {@linkcode LineageEmitter}. */
export interface LineageEmitterOptions {
  /** Where warnings go (with the run's context). */
  logger: Logger;
  /** Fetch implementation (tests). */
  fetch?: typeof fetch;
  /** Waits between HTTP retries (tests). */
  sleep?: (ms: number) => Promise<void>;
  /** Where retries are counted (`sluice_retries_total{what="lineage"}`). */
  metrics?: Registry;
  /** Pipeline label of the retry counter. */
  pipeline?: string;
}

/** Delivery figures of one run's events. */
export interface LineageDelivery {
  /** Events delivered (posted or appended). */
  sent: number;
  /** Events whose delivery failed. */
  failed: number;
  /** Events not attempted after the endpoint failed. */
  dropped: number;
}

/**
 * Sends a run's events in order, one at a time, to the configured HTTP
 * endpoint or NDJSON file. `emit` never throws and never blocks the run;
 * `flush` waits for everything queued.
 *
 * @example
 * ```ts ignore
 * const emitter = new LineageEmitter(config.observability.lineage, { logger });
 * emitter.emit(events.runStart(new Date()));
 * const { sent, failed } = await emitter.flush();
 * ```
 */
export class LineageEmitter {
  readonly #config: LineageConfig;
  readonly #options: LineageEmitterOptions;
  #queue: Promise<void> = Promise.resolve();
  #broken = false;
  readonly #delivery: LineageDelivery = { sent: 0, failed: 0, dropped: 0 };

  /** Creates an emitter for one run. */
  constructor(config: LineageConfig, options: LineageEmitterOptions) {
    this.#config = config;
    this.#options = options;
  }

  /** Queues one event. */
  emit(event: RunEvent): void {
    this.#queue = this.#queue.then(() => this.#send(event)).catch((e) => {
      this.#delivery.failed++;
      this.#warn(event, e instanceof Error ? e.message : String(e), 1);
    });
  }

  /** Waits until every queued event was delivered or given up on. */
  async flush(): Promise<LineageDelivery> {
    await this.#queue;
    if (this.#delivery.dropped > 0) {
      this.#options.logger.warn("lineage events dropped after the endpoint failed", {
        event: "lineage_events_dropped",
        dropped: this.#delivery.dropped,
        url: this.#config.url,
      });
    }
    return { ...this.#delivery };
  }

  #warn(event: RunEvent, error: string, attempts: number): void {
    this.#options.logger.warn("could not deliver a lineage event: {error}", {
      event: "lineage_emit_failed",
      lineage_event: event.eventType,
      job: event.job.name,
      target: this.#config.url ?? this.#config.file,
      attempts,
      error,
    });
  }

  async #send(event: RunEvent): Promise<void> {
    const line = JSON.stringify(event);
    if (this.#config.file) {
      const file = await Deno.open(this.#config.file, { append: true, create: true });
      try {
        const bytes = new TextEncoder().encode(line + "\n");
        let off = 0;
        while (off < bytes.length) off += await file.write(bytes.subarray(off));
      } finally {
        file.close();
      }
      this.#delivery.sent++;
      return;
    }
    if (this.#broken) {
      this.#delivery.dropped++;
      return;
    }
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.#config.api_key) headers.authorization = `Bearer ${this.#config.api_key}`;
    const r = await sendWithRetry(this.#config.url!, { method: "POST", headers, body: line }, {
      timeoutMs: this.#config.timeout * 1000,
      retries: this.#config.retries,
      fetch: this.#options.fetch,
      sleep: this.#options.sleep,
      onRetry: (attempt, reason, delayMs) => {
        this.#options.logger.warn("lineage post failed, retrying", {
          event: "retry",
          what: "lineage",
          attempt,
          delay_ms: delayMs,
          error: reason,
        });
        if (this.#options.metrics) {
          retriesCounter(this.#options.metrics).inc({
            pipeline: this.#options.pipeline ?? "",
            what: "lineage",
          });
        }
      },
    });
    if (r.ok) {
      this.#delivery.sent++;
      return;
    }
    this.#delivery.failed++;
    this.#broken = true;
    this.#warn(event, r.error ?? "failed", r.attempts);
  }
}
