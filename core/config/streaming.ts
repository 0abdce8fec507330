/**
 * The `streaming:` section of `pipeline.yaml`: one micro-batch stream from
 * a landing folder of NDJSON or CSV files into a table, with a checkpoint,
 * an event-time watermark and a dead-letter queue. Safety by schema: the
 * checkpoint, the dead-letter table, the watermark and an explicit
 * `fail_on_data_loss` choice are required, and every duration is parsed
 * strictly (`"90s"`, `"30 minutes"`, `"1 hour"`; `"1 hourz"` is an error with
 * its line and column).
 *
 * ```yaml
 * streaming:
 *   source: { format: ndjson, path: ./landing/events, glob: "*.ndjson", settle: 2s }
 *   columns:
 *     event_id: { type: VARCHAR, nullable: false }
 *     event_time: { type: TIMESTAMPTZ, nullable: false }
 *     country: { type: VARCHAR }
 *     amount: { type: DECIMAL(12,2) }
 *   target: events
 *   dlq: events__dlq
 *   checkpoint: events_v1
 *   watermark: { column: event_time, delay: 10 minutes }
 *   fail_on_data_loss: true
 *   trigger_interval: 30s
 *   max_files_per_trigger: 10
 *   clean_source: archive
 *   archive_path: ./archive/events
 *   windows:
 *     revenue_5m:
 *       size: 5 minutes
 *       group_by: [country]
 *       aggregates: { revenue: "sum(amount)", orders: "count(*)" }
 *   export: { path: ./lake/export/events, max_records_per_file: 100000 }
 * ```
 *
 * @module
 */
import { isAbsolute, relative, resolve, sep } from "node:path";
import { z } from "zod";
import type { ZodOutput } from "../npm_types.ts";
import { durationProblem, parseDuration } from "../duration.ts";
import { IDENTIFIER_PATTERN, TYPE_PATTERN } from "../quote.ts";
import { type JetStreamSourceConfig, JetStreamSourceSchema } from "./jetstream.ts";
import { type CheckContext, folderProblems } from "./_check_context.ts";

/** A duration key: a string or bare number, checked, then kept as its text. */
type DurationField = z.ZodPipe<
  z.ZodUnion<readonly [z.ZodString, z.ZodNumber]>,
  z.ZodTransform<string, string | number>
>;

const identifier: z.ZodString = z.string().regex(IDENTIFIER_PATTERN, {
  error: "must be an identifier (letters, digits and _, not starting with a digit, at most 63)",
});

const sqlTypeName: z.ZodString = z.string().regex(TYPE_PATTERN, {
  error: "must be a DuckDB type such as VARCHAR, BIGINT, DOUBLE, DECIMAL(12,2), DATE, TIMESTAMPTZ",
});

const SIZE = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$/i;

const sizeText: z.ZodString = z.string().regex(SIZE, {
  error: 'must be a size such as "64MB" or "1GB"',
});

/**
 * A strict duration string (see `core/duration.ts`); `positive` rejects zero.
 */
function duration(
  options: { positive?: boolean } = {},
): DurationField {
  // A bare YAML number (`delay: 90`) gets the duration message ("has no unit").
  return z.union([z.string(), z.number()]).superRefine((value, ctx) => {
    const problem = durationProblem(String(value));
    if (problem !== undefined) {
      ctx.addIssue({ code: "custom", message: problem, input: value });
    } else if (options.positive && parseDuration(String(value)) <= 0) {
      ctx.addIssue({ code: "custom", message: `must be longer than zero, got "${value}"` });
    }
  }).transform((value) => String(value));
}

/** Reader options of a CSV stream source. */
export const StreamCsvOptionsSchema: z.ZodObject<
  {
    delimiter: z.ZodDefault<z.ZodString>;
    quote: z.ZodDefault<z.ZodString>;
    escape: z.ZodOptional<z.ZodString>;
    header: z.ZodDefault<z.ZodBoolean>;
    null_string: z.ZodDefault<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  delimiter: z.string().length(1).default(",").describe(
    "Field separator, one character. Default `,`.",
  ),
  quote: z.string().length(1).default('"').describe('Quote character. Default `"`.'),
  escape: z.string().length(1).optional().describe(
    'Escape character inside quotes; default the quote itself (`""`).',
  ),
  header: z.boolean().default(true).describe(
    "True when the first line of each file names the fields. Default true.",
  ),
  null_string: z.string().default("").describe(
    "Unquoted text read as NULL. Default the empty string.",
  ),
});

/** The landing folder a stream reads. */
export const StreamSourceSchema: z.ZodObject<
  {
    type: z.ZodOptional<z.ZodLiteral<"files">>;
    format: z.ZodEnum<{ csv: "csv"; ndjson: "ndjson" }>;
    path: z.ZodString;
    allow_outside_project: z.ZodOptional<z.ZodBoolean>;
    glob: z.ZodDefault<z.ZodString>;
    options: z.ZodOptional<typeof StreamCsvOptionsSchema>;
    settle: z.ZodDefault<DurationField>;
    marker_suffix: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  type: z.literal("files").optional().describe(
    "`files` (default): a landing folder; `jetstream`: see `core/config/jetstream.ts`.",
  ),
  format: z.enum(["ndjson", "csv"]).describe("`ndjson` (one JSON object per line) or `csv`."),
  path: z.string().min(1).describe("Landing folder (added to the sandbox)."),
  allow_outside_project: z.boolean().optional().describe(
    "Allow a `path` (and `archive_path`) outside the project folder (the config file's " +
      "folder), which widens the DuckDB sandbox to it. Default false.",
  ),
  glob: z.string().min(1).default("*").describe(
    "Glob relative to `path`, e.g. `events_*.ndjson`. Default `*`.",
  ),
  options: StreamCsvOptionsSchema.optional().describe("CSV reader options."),
  settle: duration().default("2s").describe(
    "A file is complete once its size and modification time have not changed for this long " +
      "(and are unchanged between two looks). Default `2s`.",
  ),
  marker_suffix: z.string().min(1).regex(/^[^/\\]+$/, { error: "must not contain / or \\" })
    .optional().describe(
      "When set, a file is complete once a marker file named `<file><suffix>` exists " +
        "(e.g. `.done`); `settle` is then not used.",
    ),
});

const streamColumnSchema: z.ZodObject<
  {
    type: z.ZodString;
    from: z.ZodOptional<z.ZodString>;
    nullable: z.ZodDefault<z.ZodBoolean>;
    format: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  type: sqlTypeName.describe("DuckDB type; a value that does not cast is a `schema_violation`."),
  from: z.string().min(1).optional().describe(
    "Where the value comes from: for NDJSON a top-level key or a JSON path (`$.user.id`); " +
      "for CSV a header name. Default: the column's name.",
  ),
  nullable: z.boolean().default(true).describe(
    "When false, a missing or null value is a `schema_violation`. Default true.",
  ),
  format: z.string().min(1).optional().describe(
    "strptime format for DATE and TIMESTAMP columns, e.g. `%d/%m/%Y %H:%M`.",
  ),
});

/**
 * The zod type of {@linkcode StreamColumnSchema} (a strict object schema).
 * It is spelled out by zod, so the documentation shows
 * {@linkcode StreamColumnConfig}.
 *
 * @internal
 */
type StreamColumnSchemaType = typeof streamColumnSchema;

/**
 * One declared field of the stream's records.
 *
 * @example
 * ```ts
 * import { StreamColumnSchema } from "./streaming.ts";
 * StreamColumnSchema.parse({ type: "TIMESTAMPTZ", from: "$.meta.ts" }).nullable; // true
 * ```
 */
export const StreamColumnSchema: StreamColumnSchemaType = streamColumnSchema;

/** The event-time watermark: rows older than the latest event time minus `delay` are late. */
export const WatermarkSchema: z.ZodObject<
  {
    column: z.ZodString;
    delay: DurationField;
  },
  z.core.$strict
> = z.strictObject({
  column: identifier.describe(
    "Event-time column (TIMESTAMPTZ, TIMESTAMP or DATE), one of `columns`.",
  ),
  delay: duration().describe(
    "How far behind the latest event time a row may be and still count, e.g. `10 minutes`.",
  ),
});

const windowSchema: z.ZodObject<
  {
    size: DurationField;
    group_by: z.ZodDefault<z.ZodArray<z.ZodString>>;
    aggregates: z.ZodRecord<z.ZodString, z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  size: duration({ positive: true }).describe(
    "Window length, e.g. `5 minutes`. Windows are aligned to the Unix epoch (UTC).",
  ),
  group_by: z.array(identifier).default([]).describe("Columns to group by within each window."),
  aggregates: z.record(identifier, z.string().min(1)).refine((a) => Object.keys(a).length > 0, {
    error: "needs at least one aggregate, e.g. { orders: count(*) }",
  }).describe("Output column name to SQL aggregate over the stream's columns, e.g. `sum(amount)`."),
});

/**
 * The zod type of {@linkcode WindowSchema} (a strict object schema). It is
 * spelled out by zod, so the documentation shows {@linkcode WindowConfig}.
 *
 * @internal
 */
type WindowSchemaType = typeof windowSchema;

/**
 * A tumbling-window aggregate emitted once the watermark passes the window's end.
 *
 * @example
 * ```ts
 * import { WindowSchema } from "./streaming.ts";
 * WindowSchema.parse({ size: "5 minutes", aggregates: { orders: "count(*)" } }).group_by; // []
 * ```
 */
export const WindowSchema: WindowSchemaType = windowSchema;

/** Continuous Parquet export of the target table. */
export const StreamExportSchema: z.ZodObject<
  { path: z.ZodString; max_records_per_file: z.ZodDefault<z.ZodNumber> },
  z.core.$strict
> = z.strictObject({
  path: z.string().min(1).describe(
    "Folder the Parquet files are published into (added to the sandbox).",
  ),
  max_records_per_file: z.number().int().min(1).default(1_000_000).describe(
    "At most this many rows per Parquet file. Default 1,000,000.",
  ),
});

const streamingSchema: z.ZodObject<
  {
    source: z.ZodDiscriminatedUnion<
      [typeof StreamSourceSchema, typeof JetStreamSourceSchema],
      "type"
    >;
    columns: z.ZodRecord<z.ZodString, typeof streamColumnSchema>;
    target: z.ZodString;
    dlq: z.ZodString;
    checkpoint: z.ZodString;
    watermark: typeof WatermarkSchema;
    fail_on_data_loss: z.ZodBoolean;
    trigger_interval: z.ZodDefault<DurationField>;
    max_files_per_trigger: z.ZodDefault<z.ZodNumber>;
    max_records_per_trigger: z.ZodDefault<z.ZodNumber>;
    max_bytes_per_trigger: z.ZodDefault<z.ZodString>;
    clean_source: z.ZodDefault<z.ZodEnum<{ off: "off"; archive: "archive"; delete: "delete" }>>;
    archive_path: z.ZodOptional<z.ZodString>;
    windows: z.ZodDefault<z.ZodRecord<z.ZodString, typeof windowSchema>>;
    export: z.ZodOptional<typeof StreamExportSchema>;
    mask: z.ZodOptional<z.ZodArray<z.ZodString>>;
  },
  z.core.$strict
> = z.strictObject({
  source: z.discriminatedUnion("type", [StreamSourceSchema, JetStreamSourceSchema], {
    error: "type must be files (a landing folder, the default) or jetstream",
  }).describe("The landing folder, or a JetStream stream (`type: jetstream`)."),
  columns: z.record(identifier, StreamColumnSchema).refine((c) => Object.keys(c).length > 0, {
    error: "needs at least one column",
  }).describe("Declared fields, in target-table order."),
  target: identifier.describe(
    "Target table in the `silver` schema; each valid record is appended exactly once.",
  ),
  dlq: identifier.describe("Dead-letter table in the `silver` schema (the shared DLQ schema)."),
  checkpoint: identifier.describe(
    "Name of the stream's progress in `_sluice.stream_checkpoint`; a new name starts over.",
  ),
  watermark: WatermarkSchema.describe("The event-time watermark."),
  fail_on_data_loss: z.boolean().describe(
    "Stop when a partly read file is truncated, removed or rewritten (true), or skip it (false).",
  ),
  trigger_interval: duration({ positive: true }).default("1 minute").describe(
    "Time between batch starts for `--trigger interval`. Default `1 minute`.",
  ),
  max_files_per_trigger: z.number().int().min(1).default(100).describe(
    "At most this many files per batch. Default 100.",
  ),
  max_records_per_trigger: z.number().int().min(1).default(1_000_000).describe(
    "At most this many records (lines) per batch; a bigger file spans batches. Default 1,000,000.",
  ),
  max_bytes_per_trigger: sizeText.default("256MB").describe(
    "At most this many bytes read per batch. Default `256MB`.",
  ),
  clean_source: z.enum(["off", "archive", "delete"]).default("off").describe(
    "After the commit that finished a file: leave it (`off`), move it (`archive`) or `delete` it.",
  ),
  archive_path: z.string().min(1).optional().describe(
    "Folder finished files move to when `clean_source: archive`.",
  ),
  windows: z.record(identifier, WindowSchema).default({}).describe(
    "Tumbling-window aggregates, each written to `gold.<name>`.",
  ),
  export: StreamExportSchema.optional().describe(
    "Optional continuous Parquet export of the target table.",
  ),
  mask: z.array(identifier).optional().describe(
    "Declared columns whose values are shown as `***` in dead letters: the `_payload` copy of " +
      "the record and the `_reason` of a failed cast (e.g. `[email, phone]`). A record that " +
      "does not parse is kept as `***`. The target table keeps the values; a masked DLQ " +
      "cannot be replayed.",
  ),
}).superRefine((s, ctx) => {
  // Zod runs this even when fields inside failed, so every access is guarded.
  const at = (path: (string | number)[], message: string) =>
    ctx.addIssue({ code: "custom", path, message });
  const declared: Record<string, { type?: unknown; format?: unknown }> =
    typeof s.columns === "object" && s.columns !== null ? s.columns : {};
  const columns = Object.keys(declared);
  const wmColumn = s.watermark?.column;
  if (typeof wmColumn === "string" && columns.length > 0) {
    const wm = declared[wmColumn];
    if (wm === undefined) {
      at(
        ["watermark", "column"],
        `"${wmColumn}" is not among the declared columns (${columns.join(", ")})`,
      );
    } else if (typeof wm.type === "string" && !EVENT_TIME_TYPE.test(wm.type.trim())) {
      at(
        ["columns", wmColumn, "type"],
        `the watermark column must be TIMESTAMPTZ, TIMESTAMP or DATE, got ${wm.type}`,
      );
    }
  }
  if (typeof s.dlq === "string" && s.dlq === s.target) at(["dlq"], "must differ from target");
  const masked = Array.isArray(s.mask) ? s.mask : [];
  masked.forEach((m, i) => {
    if (typeof m === "string" && columns.length > 0 && !columns.includes(m)) {
      at(["mask", i], `"${m}" is not among the declared columns (${columns.join(", ")})`);
    } else if (m === wmColumn) {
      at(["mask", i], `"${m}" is the watermark column: dead letters keep event times`);
    }
  });
  if (masked.length > 0 && s.source?.type === "jetstream") {
    at(["mask"], "mask applies only to a landing-folder source for now (not jetstream)");
  }
  for (const [name, col] of Object.entries(declared)) {
    if (
      col?.format !== undefined && typeof col.type === "string" &&
      !/^(DATE|TIMESTAMP)/i.test(col.type.trim())
    ) {
      at(["columns", name, "format"], "format applies only to DATE and TIMESTAMP columns");
    }
  }
  if (s.source?.type === "jetstream") {
    if (s.clean_source !== undefined && s.clean_source !== "off") {
      at(
        ["clean_source"],
        "clean_source applies only to a landing folder (JetStream keeps its log)",
      );
    }
  } else if (s.source?.options !== undefined && s.source?.format !== "csv") {
    at(["source", "options"], "options apply only to format: csv");
  }
  if (s.clean_source === "archive" && s.archive_path === undefined) {
    at(["clean_source"], "clean_source: archive needs archive_path (the folder files move to)");
  }
  if (s.clean_source !== "archive" && s.archive_path !== undefined) {
    at(["archive_path"], "archive_path is used only with clean_source: archive");
  }
  const windows = typeof s.windows === "object" && s.windows !== null ? s.windows : {};
  for (const [name, w] of Object.entries(windows)) {
    const groupBy = Array.isArray(w?.group_by) ? w.group_by : [];
    if (columns.length > 0) {
      groupBy.forEach((g, i) => {
        if (typeof g === "string" && !columns.includes(g)) {
          at(
            ["windows", name, "group_by", i],
            `"${g}" is not among the declared columns (${columns.join(", ")})`,
          );
        }
      });
    }
    const aggregates = typeof w?.aggregates === "object" && w.aggregates !== null
      ? w.aggregates
      : {};
    for (const reserved of ["window_start", "window_end", ...groupBy]) {
      if (Object.hasOwn(aggregates, reserved)) {
        at(
          ["windows", name, "aggregates", reserved],
          `"${reserved}" is already a column of the window table`,
        );
      }
    }
  }
});

const EVENT_TIME_TYPE = /^(TIMESTAMPTZ|TIMESTAMP WITH TIME ZONE|TIMESTAMP|DATE)$/i;

/**
 * The zod type of {@linkcode StreamingSchema} (a strict object schema). It
 * is spelled out by zod, so the documentation shows
 * {@linkcode StreamingConfig}.
 *
 * @internal
 */
type StreamingSchemaType = typeof streamingSchema;

/**
 * The whole `streaming:` section.
 *
 * @example
 * ```ts
 * import { StreamingSchema } from "./streaming.ts";
 * const r = StreamingSchema.safeParse({ target: "events" });
 * r.success; // false: source, columns, dlq, checkpoint, watermark, fail_on_data_loss are required
 * ```
 */
export const StreamingSchema: StreamingSchemaType = streamingSchema;

/**
 * The `streaming:` section after validation (paths not yet resolved).
 *
 * @example
 * ```ts ignore
 * const streaming: StreamingConfig | undefined = config.streaming;
 * streaming?.watermark.delay; // "10 minutes"
 * ```
 */
export type StreamingConfig = StreamingSection & { source: StreamSourceConfig };
/**
 * The `streaming:` section as loaded: its source is a landing folder
 * ({@linkcode StreamingConfig}) or a JetStream stream
 * ({@linkcode JetStreamingConfig}); {@linkcode isJetStreaming} tells which.
 *
 * @example
 * ```ts ignore
 * const s: StreamingSection | undefined = config.streaming;
 * ```
 */
export type StreamingSection = ZodOutput<typeof StreamingSchema>;
/**
 * A landing-folder source after validation.
 *
 * @example
 * ```ts
 * import type { StreamSourceConfig } from "./streaming.ts";
 * const src: StreamSourceConfig = { format: "ndjson", path: "./landing", glob: "*", settle: "2s" };
 * ```
 */
export type StreamSourceConfig = ZodOutput<StreamSourceSchemaType>;
/**
 * The zod type of `StreamSourceSchema`; the documentation shows
 * {@linkcode StreamSourceConfig}.
 *
 * @internal
 */
type StreamSourceSchemaType = typeof StreamSourceSchema;
/**
 * The `streaming:` section of a JetStream stream.
 *
 * @example
 * ```ts ignore
 * const s: JetStreamingConfig = config.streaming as JetStreamingConfig;
 * s.source.consumer; // "sluice-orders"
 * ```
 */
export type JetStreamingConfig = StreamingSection & { source: JetStreamSourceConfig };

/**
 * True when the section's source is a JetStream stream.
 *
 * @example
 * ```ts ignore
 * if (isJetStreaming(config.streaming)) config.streaming.source.stream; // "ORDERS"
 * ```
 */
export function isJetStreaming(s: StreamingSection | undefined): s is JetStreamingConfig {
  return s?.source.type === "jetstream";
}
/**
 * One declared stream column after validation.
 *
 * @example
 * ```ts
 * import type { StreamColumnConfig } from "./streaming.ts";
 * const column: StreamColumnConfig = { type: "DECIMAL(12,2)", from: "$.amount", nullable: true };
 * ```
 */
export type StreamColumnConfig = ZodOutput<typeof StreamColumnSchema>;
/**
 * One window after validation.
 *
 * @example
 * ```ts
 * import type { WindowConfig } from "./streaming.ts";
 * const window: WindowConfig = {
 *   size: "5 minutes",
 *   group_by: ["country"],
 *   aggregates: { revenue: "sum(amount)" },
 * };
 * ```
 */
export type WindowConfig = ZodOutput<typeof WindowSchema>;

function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

/**
 * `streaming.source` and `streaming.archive_path`: the landing folder and the
 * archive stay inside the project folder unless the source opts out with
 * `allow_outside_project: true`, as a batch source does; the glob never
 * reaches outside the landing folder.
 *
 * @example
 * ```ts
 * import { streamingFolderProblems } from "./streaming.ts";
 * const found: string[] = [];
 * streamingFolderProblems(
 *   { streaming: { source: { format: "ndjson", path: "/elsewhere" } } },
 *   { at: (_p, m) => found.push(m), show: JSON.stringify, isSecret: () => false, dir: "/srv/shop" },
 * );
 * found.length; // 1
 * ```
 */
export function streamingFolderProblems(raw: Record<string, unknown>, ctx: CheckContext): void {
  const s = isPlainRecord(raw.streaming) ? raw.streaming : undefined;
  const source = s && isPlainRecord(s.source) ? s.source : undefined;
  if (!s || !source || source.type === "jetstream") return;
  folderProblems(ctx, ["streaming", "source"], source);
  if (typeof s.archive_path === "string" && s.archive_path.length > 0) {
    folderProblems(ctx, ["streaming", "source"], {
      path: s.archive_path,
      allow_outside_project: source.allow_outside_project,
    }, { pathAt: ["streaming", "archive_path"] });
  }
}

function isPlainRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Makes the section's paths (`source.path`, `archive_path`, `export.path`)
 * absolute against the config file's folder.
 *
 * @example
 * ```ts ignore
 * const s = resolveStreaming(input.streaming, "/srv/shop");
 * s.source.path; // "/srv/shop/landing/events"
 * ```
 */
export function resolveStreaming<S extends StreamingSection>(s: S, dir: string): S {
  const src = s.source;
  return {
    ...s,
    source: src.type === "jetstream"
      ? { ...src, ...(src.creds !== undefined ? { creds: resolve(dir, src.creds) } : {}) }
      : { ...src, path: resolve(dir, src.path) },
    ...(s.archive_path !== undefined ? { archive_path: resolve(dir, s.archive_path) } : {}),
    ...(s.export !== undefined
      ? { export: { ...s.export, path: resolve(dir, s.export.path) } }
      : {}),
  };
}

/**
 * The folders a stream needs inside the DuckDB sandbox: the landing
 * folder, the archive folder and the export folder (absolute, resolved).
 *
 * @example
 * ```ts ignore
 * streamingDirectories(config.streaming); // ["/srv/shop/landing/events", "/srv/shop/archive"]
 * ```
 */
export function streamingDirectories(s: StreamingSection): string[] {
  const dirs = s.source.type === "jetstream" ? [] : [s.source.path];
  if (s.archive_path !== undefined) dirs.push(s.archive_path);
  if (s.export !== undefined) dirs.push(s.export.path);
  return dirs;
}

/**
 * Where a resolved stream config is unsafe in a way the schema cannot see
 * (paths relative to each other): the archive or export folder inside a
 * landing folder read recursively. Returns `[key, problem]` pairs.
 *
 * @example
 * ```ts ignore
 * streamingPathProblems(config.streaming); // [["archive_path", "must not be inside ..."]]
 * ```
 */
export function streamingPathProblems(s: StreamingSection): [string, string][] {
  const problems: [string, string][] = [];
  if (s.source.type === "jetstream") return problems;
  const source = s.source;
  const recursive = source.glob.includes("/") || source.glob.includes("**");
  const check = (key: string, path: string | undefined) => {
    if (path === undefined) return;
    if (path === source.path || (recursive && isInside(source.path, path))) {
      problems.push([
        key,
        `must not be the landing folder ${JSON.stringify(source.path)}` +
        (recursive ? " or inside it (the glob reads sub-folders)" : ""),
      ]);
    }
  };
  check("archive_path", s.archive_path);
  check("export.path", s.export?.path);
  return problems;
}

/**
 * Bytes of a size text such as `256MB` (powers of 1000) or `1GiB` (powers of 1024).
 *
 * @example
 * ```ts
 * import { sizeBytes } from "./streaming.ts";
 * sizeBytes("256MB"); // 256000000
 * sizeBytes("1GiB"); // 1073741824
 * ```
 */
export function sizeBytes(text: string): number {
  const m = SIZE.exec(text);
  if (!m) throw new TypeError(`Cannot read size ${JSON.stringify(text)}`);
  const unit = m[2].toUpperCase();
  const factor: Record<string, number> = {
    B: 1,
    KB: 1e3,
    MB: 1e6,
    GB: 1e9,
    TB: 1e12,
    KIB: 1024,
    MIB: 1024 ** 2,
    GIB: 1024 ** 3,
    TIB: 1024 ** 4,
  };
  return Math.round(Number(m[1]) * factor[unit]);
}

/**
 * The section as the record parser sees it: a landing-folder section is
 * returned as is; a JetStream section becomes one whose records are NDJSON
 * (each message is one JSON object), so parsing, validation, windows and
 * replay share one implementation for both sources.
 *
 * @example
 * ```ts ignore
 * classifySql(parsingConfig(config.streaming), { lines: "staged" });
 * ```
 */
export function parsingConfig(s: StreamingSection): StreamingConfig {
  if (s.source.type !== "jetstream") return s as StreamingConfig;
  return { ...s, source: { type: "files", format: "ndjson", path: "", glob: "*", settle: "0s" } };
}
