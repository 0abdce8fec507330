/**
 * The `observability:` section of `pipeline.yaml`: where metrics go
 * (Pushgateway, node_exporter textfile, an HTTP `/metrics` server), where
 * OpenLineage events go (HTTP endpoint or NDJSON file), and how the HTML run
 * report is built. Every object is strict, like the rest of the config.
 *
 * ```yaml
 * observability:
 *   metrics:
 *     pushgateway: { url: http://127.0.0.1:9091, job: sluice, timeout: 5, retries: 2 }
 *     textfile: { path: /var/lib/prometheus/node-exporter/sluice.prom }
 *     server: { port: 9464 }
 *   lineage:
 *     file: ./lake/lineage.ndjson
 *     namespace: shop
 *   report:
 *     path: ./lake/report.html
 *     history: 30
 * ```
 *
 * @module
 */
import { resolve } from "node:path";
import { z } from "zod";
import type { ZodOutput } from "../npm_types.ts";

const httpUrl: z.ZodURL = z.url({
  protocol: /^https?$/,
  error: "must be an http:// or https:// URL, e.g. http://127.0.0.1:9091",
});

const seconds: z.ZodNumber = z.number().positive().max(300);

const labelValue: z.ZodString = z.string().min(1).max(128).regex(/^[^/]+$/, {
  error: "must not contain / (it becomes part of the Pushgateway URL path)",
});

/**
 * HTTP basic authentication; mark the password `!secret`.
 *
 * @example
 * ```ts
 * import { BasicAuthSchema } from "./observability.ts";
 * BasicAuthSchema.parse({ username: "sluice", password: "s3cret" });
 * ```
 */
export const BasicAuthSchema: z.ZodObject<
  { username: z.ZodString; password: z.ZodString },
  z.core.$strict
> = z.strictObject({
  username: z.string().min(1).describe("User name."),
  password: z.string().describe("Password; mark it `!secret`."),
});

/**
 * Push the run's metrics to a Prometheus Pushgateway at the end of a batch run.
 *
 * @example
 * ```ts
 * import { PushgatewaySchema } from "./observability.ts";
 * PushgatewaySchema.parse({ url: "http://127.0.0.1:9091" }); // job sluice, timeout 5, retries 2
 * ```
 */
export const PushgatewaySchema: z.ZodObject<
  {
    url: z.ZodURL;
    job: z.ZodDefault<z.ZodString>;
    timeout: z.ZodDefault<z.ZodNumber>;
    retries: z.ZodDefault<z.ZodNumber>;
    basic_auth: z.ZodOptional<typeof BasicAuthSchema>;
  },
  z.core.$strict
> = z.strictObject({
  url: httpUrl.describe("Base URL of the Pushgateway, e.g. `http://127.0.0.1:9091`."),
  job: labelValue.default("sluice").describe(
    "The `job` grouping label. Default `sluice`; `pipeline` is always the second key.",
  ),
  timeout: seconds.default(5).describe("Seconds to wait for one push. Default 5."),
  retries: z.number().int().min(0).max(10).default(2).describe(
    "Further attempts after a failed push (0 to 10). Default 2.",
  ),
  basic_auth: BasicAuthSchema.optional().describe("Optional basic auth."),
});

/**
 * Write the metrics as a node_exporter textfile-collector file, atomically.
 *
 * @example
 * ```ts
 * import { TextfileSchema } from "./observability.ts";
 * TextfileSchema.parse({ path: "/var/lib/prometheus/node-exporter/sluice.prom" });
 * ```
 */
export const TextfileSchema: z.ZodObject<{ path: z.ZodString }, z.core.$strict> = z.strictObject({
  path: z.string().min(1).regex(/\.prom$/, {
    error: 'must end in ".prom" (node_exporter\'s textfile collector reads only *.prom files)',
  }).describe("The `.prom` file, e.g. `/var/lib/prometheus/node-exporter/sluice_shop.prom`."),
});

/**
 * Serve `/metrics` and `/healthz` while a long-running command (`stream`) runs.
 *
 * @example
 * ```ts
 * import { MetricsServerSchema } from "./observability.ts";
 * MetricsServerSchema.parse({ port: 9464 }); // host 127.0.0.1
 * ```
 */
export const MetricsServerSchema: z.ZodObject<
  { port: z.ZodNumber; host: z.ZodDefault<z.ZodString> },
  z.core.$strict
> = z.strictObject({
  port: z.number().int().min(1).max(65535).describe("TCP port."),
  host: z.string().min(1).default("127.0.0.1").describe(
    "Interface to listen on. Default `127.0.0.1` (loopback only).",
  ),
});

/**
 * Where the metrics of a run go.
 *
 * @example
 * ```ts
 * import { MetricsExportSchema } from "./observability.ts";
 * MetricsExportSchema.parse({ textfile: { path: "./m/sluice.prom" } }).log; // true
 * ```
 */
export const MetricsExportSchema: z.ZodObject<
  {
    pushgateway: z.ZodOptional<typeof PushgatewaySchema>;
    textfile: z.ZodOptional<typeof TextfileSchema>;
    server: z.ZodOptional<typeof MetricsServerSchema>;
    log: z.ZodDefault<z.ZodBoolean>;
  },
  z.core.$strict
> = z.strictObject({
  pushgateway: PushgatewaySchema.optional().describe(
    "Push each run's metrics to a Prometheus Pushgateway.",
  ),
  textfile: TextfileSchema.optional().describe(
    "Write each run's metrics to a .prom file for node_exporter's textfile collector.",
  ),
  server: MetricsServerSchema.optional().describe(
    "Serve `/metrics` and `/healthz` over HTTP while `sluice stream` runs.",
  ),
  log: z.boolean().default(true).describe(
    'Also log every metric sample as a JSON event (`event: "metric"`). Default true.',
  ),
});

/**
 * Where OpenLineage run events go: an HTTP endpoint or an NDJSON file.
 *
 * @example
 * ```ts
 * import { LineageSchema } from "./observability.ts";
 * LineageSchema.parse({ file: "./lineage.ndjson", namespace: "shop" });
 * ```
 */
export const LineageSchema: z.ZodObject<
  {
    url: z.ZodOptional<z.ZodURL>;
    file: z.ZodOptional<z.ZodString>;
    namespace: z.ZodDefault<z.ZodString>;
    api_key: z.ZodOptional<z.ZodString>;
    timeout: z.ZodDefault<z.ZodNumber>;
    retries: z.ZodDefault<z.ZodNumber>;
  },
  z.core.$strict
> = z.strictObject({
  url: httpUrl.optional().describe(
    "Endpoint that accepts OpenLineage events, e.g. `http://marquez:5000/api/v1/lineage`.",
  ),
  file: z.string().min(1).optional().describe(
    "File the events are appended to, one JSON object per line.",
  ),
  namespace: z.string().min(1).max(256).default("sluice").describe(
    "OpenLineage job namespace. Default `sluice`.",
  ),
  api_key: z.string().optional().describe("Bearer token for the HTTP endpoint; mark it `!secret`."),
  timeout: seconds.default(5).describe("Seconds to wait for one HTTP post. Default 5."),
  retries: z.number().int().min(0).max(10).default(2).describe(
    "Further attempts after a failed HTTP post (0 to 10). Default 2.",
  ),
}).refine((l) => (l.url === undefined) !== (l.file === undefined), {
  error: "set exactly one of url (HTTP endpoint) or file (NDJSON file)",
});

/**
 * The HTML run report.
 *
 * @example
 * ```ts
 * import { ReportSchema } from "./observability.ts";
 * ReportSchema.parse({ path: "./lake/report.html" }).history; // 30
 * ```
 */
export const ReportSchema: z.ZodObject<
  {
    path: z.ZodOptional<z.ZodString>;
    history: z.ZodDefault<z.ZodNumber>;
    failing_samples: z.ZodDefault<z.ZodNumber>;
  },
  z.core.$strict
> = z.strictObject({
  path: z.string().min(1).regex(/\.html?$/i, { error: 'must end in ".html"' }).optional().describe(
    "When set, every batch run writes its report here (atomically).",
  ),
  history: z.number().int().min(1).max(1000).default(30).describe(
    "Runs shown in the history charts and the null % heatmap. Default 30.",
  ),
  failing_samples: z.number().int().min(0).max(1000).default(10).describe(
    "Failing sample rows shown per check. Default 10.",
  ),
});

const observabilitySchema: z.ZodObject<
  {
    metrics: z.ZodPrefault<typeof MetricsExportSchema>;
    lineage: z.ZodOptional<typeof LineageSchema>;
    report: z.ZodPrefault<typeof ReportSchema>;
  },
  z.core.$strict
> = z.strictObject({
  metrics: MetricsExportSchema.prefault({}).describe(
    "Metrics exporters: Pushgateway, textfile, HTTP server, log.",
  ),
  lineage: LineageSchema.optional().describe(
    "OpenLineage events for each run, to an HTTP endpoint or a file.",
  ),
  report: ReportSchema.prefault({}).describe("The self-contained HTML run report."),
});

/**
 * The zod type of {@linkcode ObservabilitySchema} (a strict object schema).
 * It is spelled out by zod, so the documentation shows
 * {@linkcode ObservabilityConfig}.
 *
 * @internal
 */
type ObservabilitySchemaType = typeof observabilitySchema;

/**
 * The whole `observability:` section.
 *
 * @example
 * ```ts
 * import { ObservabilitySchema } from "./observability.ts";
 * const o = ObservabilitySchema.parse({ lineage: { url: "http://127.0.0.1:5000/api/v1/lineage" } });
 * o.metrics.log; // true
 * ```
 */
export const ObservabilitySchema: ObservabilitySchemaType = observabilitySchema;

/**
 * The validated `observability:` section (paths absolute once loaded).
 *
 * @example
 * ```ts
 * import { type ObservabilityConfig, ObservabilitySchema } from "./observability.ts";
 * const o: ObservabilityConfig = ObservabilitySchema.parse({ report: { history: 10 } });
 * o.report.history; // 10
 * ```
 */
export type ObservabilityConfig = ZodOutput<typeof ObservabilitySchema>;
/**
 * Pushgateway settings after validation (`observability.metrics.pushgateway`).
 *
 * @example
 * ```ts
 * import type { PushgatewayConfig } from "./observability.ts";
 * const push: PushgatewayConfig = {
 *   url: "http://127.0.0.1:9091",
 *   job: "sluice",
 *   timeout: 5,
 *   retries: 2,
 * };
 * ```
 */
export type PushgatewayConfig = NonNullable<ObservabilityConfig["metrics"]["pushgateway"]>;
/**
 * Lineage settings after validation (`observability.lineage`).
 *
 * @example
 * ```ts
 * import type { LineageConfig } from "./observability.ts";
 * const lineage: LineageConfig = {
 *   file: "./lake/lineage.ndjson",
 *   namespace: "shop",
 *   timeout: 5,
 *   retries: 2,
 * };
 * ```
 */
export type LineageConfig = NonNullable<ObservabilityConfig["lineage"]>;
/**
 * Report settings after validation (`observability.report`).
 *
 * @example
 * ```ts
 * import type { ReportConfig } from "./observability.ts";
 * const report: ReportConfig = { path: "./lake/report.html", history: 30, failing_samples: 10 };
 * ```
 */
export type ReportConfig = ObservabilityConfig["report"];

/**
 * The settings in force when a config has no `observability:` section:
 * metrics logged as JSON events, nothing exported, no lineage.
 *
 * @example
 * ```ts
 * import { observabilityDefaults } from "./observability.ts";
 * observabilityDefaults().report.history; // 30
 * ```
 */
export function observabilityDefaults(): ObservabilityConfig {
  return ObservabilitySchema.parse({});
}

/** The `observability:` section with its file paths made absolute against `dir`. */
export function resolveObservability(o: ObservabilityConfig, dir: string): ObservabilityConfig {
  const textfile = o.metrics.textfile;
  return {
    ...o,
    metrics: {
      ...o.metrics,
      ...(textfile ? { textfile: { ...textfile, path: resolve(dir, textfile.path) } } : {}),
    },
    ...(o.lineage?.file ? { lineage: { ...o.lineage, file: resolve(dir, o.lineage.file) } } : {}),
    report: { ...o.report, ...(o.report.path ? { path: resolve(dir, o.report.path) } : {}) },
  };
}
