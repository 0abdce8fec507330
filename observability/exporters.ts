/**
 * Metric exporters of a batch run: a push to a Prometheus Pushgateway
 * (grouping key `job` + `pipeline`, bounded retry, a failure is a warning
 * and never fails the run) and a node_exporter textfile-collector `.prom`
 * file written atomically (temp file in the same folder, then rename).
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import type { Registry } from "../core/npm_types.ts";
import { sendWithRetry } from "./_http.ts";

/** Options of {@linkcode pushToGateway}. */
export interface PushOptions {
  /** Base URL of the Pushgateway, e.g. `http://127.0.0.1:9091`. */
  url: string;
  /** The `job` grouping label. */
  job: string;
  /** The `pipeline` grouping label. */
  pipeline: string;
  /** Milliseconds one attempt may take. Default 5000. */
  timeoutMs?: number;
  /** Further attempts after a failure. Default 2. */
  retries?: number;
  /** Basic auth credentials. */
  basicAuth?: { username: string; password: string };
  /** Fetch implementation (tests). */
  fetch?: typeof fetch;
  /** Waits between attempts (tests). */
  sleep?: (ms: number) => Promise<void>;
  /** Called before each retry. */
  onRetry?: (attempt: number, reason: string, delayMs: number) => void;
}

/** What a push did. */
export interface PushResult {
  /** True when the Pushgateway accepted the metrics. */
  ok: boolean;
  /** Attempts made. */
  attempts: number;
  /** The group URL pushed to. */
  groupUrl: string;
  /** Why it failed. */
  error?: string;
}

function segment(name: string, value: string): string {
  // The Pushgateway's base64 form carries any value, including "/" and "".
  if (value === "" || value.includes("/")) {
    const b64 = btoa(String.fromCharCode(...new TextEncoder().encode(value)))
      .replaceAll("+", "-").replaceAll("/", "_");
    return `${name}@base64/${b64 || "="}`;
  }
  return `${name}/${encodeURIComponent(value)}`;
}

/**
 * The Pushgateway URL of a job's group: `<url>/metrics/job/<job>/pipeline/<pipeline>`.
 *
 * @example
 * ```ts
 * import { pushgatewayGroupUrl } from "./exporters.ts";
 * pushgatewayGroupUrl("http://127.0.0.1:9091/", "sluice", "shop");
 * // "http://127.0.0.1:9091/metrics/job/sluice/pipeline/shop"
 * ```
 */
export function pushgatewayGroupUrl(url: string, job: string, pipeline: string): string {
  return `${url.replace(/\/+$/, "")}/metrics/${segment("job", job)}/${
    segment("pipeline", pipeline)
  }`;
}

/**
 * Replaces the group `job` + `pipeline` on a Pushgateway with the registry's
 * metrics (HTTP PUT, so series of tables that no longer exist disappear).
 * Never throws: a failure comes back as `ok: false` with the reason.
 *
 * @example
 * ```ts ignore
 * const r = await pushToGateway(registry, { url: "http://127.0.0.1:9091", job: "sluice", pipeline: "shop" });
 * if (!r.ok) log.warn("push failed", { error: r.error });
 * ```
 */
export async function pushToGateway(registry: Registry, options: PushOptions): Promise<PushResult> {
  const groupUrl = pushgatewayGroupUrl(options.url, options.job, options.pipeline);
  const headers: Record<string, string> = { "content-type": registry.contentType };
  if (options.basicAuth) {
    const { username, password } = options.basicAuth;
    headers.authorization = `Basic ${btoa(`${username}:${password}`)}`;
  }
  const body = await registry.metrics();
  const r = await sendWithRetry(groupUrl, { method: "PUT", headers, body }, {
    timeoutMs: options.timeoutMs ?? 5000,
    retries: options.retries ?? 2,
    fetch: options.fetch,
    sleep: options.sleep,
    onRetry: options.onRetry,
  });
  return { ok: r.ok, attempts: r.attempts, groupUrl, error: r.error };
}

/**
 * Writes `text` to `path` atomically: a hidden temp file in the same folder
 * is written, flushed and renamed over `path`, so a reader (node_exporter,
 * a browser) sees the old file or the new one, never half of one. Creates
 * the folder when missing.
 *
 * @example
 * ```ts ignore
 * await writeFileAtomic("/var/lib/node_exporter/sluice.prom", "sluice_up 1\n");
 * ```
 */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${crypto.randomUUID()}.tmp`);
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
    try {
      const bytes = new TextEncoder().encode(text);
      let off = 0;
      while (off < bytes.length) off += await file.write(bytes.subarray(off));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Writes the registry's metrics as a node_exporter textfile-collector file
 * (Prometheus text format, no timestamps), atomically. Returns the bytes
 * written.
 *
 * @example
 * ```ts ignore
 * await writeTextfile(registry, "/var/lib/prometheus/node-exporter/sluice_shop.prom");
 * ```
 */
export async function writeTextfile(registry: Registry, path: string): Promise<number> {
  const text = await registry.metrics();
  await writeFileAtomic(path, text);
  return new TextEncoder().encode(text).length;
}
