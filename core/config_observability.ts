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
import { z } from "zod";
import type { ZodOutput } from "./_npm_types.ts";

const httpUrl = z.url({
  protocol: /^https?$/,
  error: "must be an http:// or https:// URL, e.g. http://127.0.0.1:9091",
});

const seconds = z.number().positive().max(300);

const labelValue = z.string().min(1).max(128).regex(/^[^/]+$/, {
  error: "must not contain / (it becomes part of the Pushgateway URL path)",
});

/**
 * HTTP basic authentication; mark the password `!secret`.
 *
 * @example
 * ```ts
 * import { BasicAuthSchema } from "./config_observability.ts";
 * BasicAuthSchema.parse({ username: "sluice", password: "s3cret" });
 * ```
 */
export const BasicAuthSchema = z.strictObject({
  username: z.string().min(1),
  password: z.string(),
});

/**
 * Push the run's metrics to a Prometheus Pushgateway at the end of a batch run.
 *
 * @example
 * ```ts
 * import { PushgatewaySchema } from "./config_observability.ts";
 * PushgatewaySchema.parse({ url: "http://127.0.0.1:9091" }); // job sluice, timeout 5, retries 2
 * ```
 */
export const PushgatewaySchema = z.strictObject({
  /** Base URL of the Pushgateway, e.g. `http://127.0.0.1:9091`. */
  url: httpUrl,
  /** The `job` grouping label. Default `sluice`; `pipeline` is always the second key. */
  job: labelValue.default("sluice"),
  /** Seconds to wait for one push. Default 5. */
  timeout: seconds.default(5),
  /** Further attempts after a failed push (0 to 10). Default 2. */
  retries: z.number().int().min(0).max(10).default(2),
  /** Optional basic auth. */
  basic_auth: BasicAuthSchema.optional(),
});

/**
 * Write the metrics as a node_exporter textfile-collector file, atomically.
 *
 * @example
 * ```ts
 * import { TextfileSchema } from "./config_observability.ts";
 * TextfileSchema.parse({ path: "/var/lib/prometheus/node-exporter/sluice.prom" });
 * ```
 */
export const TextfileSchema = z.strictObject({
  /** The `.prom` file, e.g. `/var/lib/prometheus/node-exporter/sluice_shop.prom`. */
  path: z.string().min(1).regex(/\.prom$/, {
    error: 'must end in ".prom" (node_exporter\'s textfile collector reads only *.prom files)',
  }),
});

/**
 * Serve `/metrics` and `/healthz` while a long-running command (`stream`) runs.
 *
 * @example
 * ```ts
 * import { MetricsServerSchema } from "./config_observability.ts";
 * MetricsServerSchema.parse({ port: 9464 }); // host 127.0.0.1
 * ```
 */
export const MetricsServerSchema = z.strictObject({
  /** TCP port. */
  port: z.number().int().min(1).max(65535),
  /** Interface to listen on. Default `127.0.0.1` (loopback only). */
  host: z.string().min(1).default("127.0.0.1"),
});

/**
 * Where the metrics of a run go.
 *
 * @example
 * ```ts
 * import { MetricsExportSchema } from "./config_observability.ts";
 * MetricsExportSchema.parse({ textfile: { path: "./m/sluice.prom" } }).log; // true
 * ```
 */
export const MetricsExportSchema = z.strictObject({
  pushgateway: PushgatewaySchema.optional(),
  textfile: TextfileSchema.optional(),
  server: MetricsServerSchema.optional(),
  /** Also log every metric sample as a JSON event (`event: "metric"`). Default true. */
  log: z.boolean().default(true),
});

/**
 * Where OpenLineage run events go: an HTTP endpoint or an NDJSON file.
 *
 * @example
 * ```ts
 * import { LineageSchema } from "./config_observability.ts";
 * LineageSchema.parse({ file: "./lineage.ndjson", namespace: "shop" });
 * ```
 */
export const LineageSchema = z.strictObject({
  /** Endpoint that accepts OpenLineage events, e.g. `http://marquez:5000/api/v1/lineage`. */
  url: httpUrl.optional(),
  /** File the events are appended to, one JSON object per line. */
  file: z.string().min(1).optional(),
  /** OpenLineage job namespace. Default `sluice`. */
  namespace: z.string().min(1).max(256).default("sluice"),
  /** Bearer token for the HTTP endpoint; mark it `!secret`. */
  api_key: z.string().optional(),
  /** Seconds to wait for one HTTP post. Default 5. */
  timeout: seconds.default(5),
  /** Further attempts after a failed HTTP post (0 to 10). Default 2. */
  retries: z.number().int().min(0).max(10).default(2),
}).refine((l) => (l.url === undefined) !== (l.file === undefined), {
  error: "set exactly one of url (HTTP endpoint) or file (NDJSON file)",
});

/**
 * The HTML run report.
 *
 * @example
 * ```ts
 * import { ReportSchema } from "./config_observability.ts";
 * ReportSchema.parse({ path: "./lake/report.html" }).history; // 30
 * ```
 */
export const ReportSchema = z.strictObject({
  /** When set, every batch run writes its report here (atomically). */
  path: z.string().min(1).regex(/\.html?$/i, { error: 'must end in ".html"' }).optional(),
  /** Runs shown in the history charts and the null % heatmap. Default 30. */
  history: z.number().int().min(1).max(1000).default(30),
  /** Failing sample rows shown per check. Default 10. */
  failing_samples: z.number().int().min(0).max(1000).default(10),
});

const observabilitySchema = z.strictObject({
  metrics: MetricsExportSchema.prefault({}),
  lineage: LineageSchema.optional(),
  report: ReportSchema.prefault({}),
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
 * import { ObservabilitySchema } from "./config_observability.ts";
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
 * import { type ObservabilityConfig, ObservabilitySchema } from "./config_observability.ts";
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
 * import type { PushgatewayConfig } from "./config_observability.ts";
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
 * import type { LineageConfig } from "./config_observability.ts";
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
 * import type { ReportConfig } from "./config_observability.ts";
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
 * import { observabilityDefaults } from "./config_observability.ts";
 * observabilityDefaults().report.history; // 30
 * ```
 */
export function observabilityDefaults(): ObservabilityConfig {
  return ObservabilitySchema.parse({});
}
