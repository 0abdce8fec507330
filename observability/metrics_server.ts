/**
 * A small HTTP server for long-running commands (`sluice stream`):
 * `GET /metrics` serves the registry in the Prometheus text format and
 * `GET /healthz` answers 200 while the process is healthy, 503 otherwise.
 * It listens on 127.0.0.1 unless told otherwise.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { Registry } from "../core/npm_types.ts";
import { type Clock, systemClock } from "../core/clock.ts";

/** What `/healthz` reports. */
export interface HealthStatus {
  /** False turns the answer into HTTP 503. */
  ok: boolean;
  /** Extra fields shown in the JSON answer (last batch time, lag...). */
  details?: Record<string, unknown>;
}

/** Options of {@linkcode serveMetrics}. */
export interface ServeMetricsOptions {
  /** TCP port; 0 picks a free one (see `port` on the result). */
  port: number;
  /** Interface to listen on. Default `127.0.0.1`. */
  hostname?: string;
  /** Health probe behind `/healthz`; default always healthy. */
  health?: () => HealthStatus | Promise<HealthStatus>;
  /** Fields added to the server's log lines (e.g. `pipeline`). */
  logFields?: Record<string, unknown>;
  /** Time source for the uptime in `/healthz`. Default the system clock. */
  clock?: Clock;
}

/** A running metrics server. */
export interface MetricsServer {
  /** The interface it listens on. */
  readonly hostname: string;
  /** The port it listens on. */
  readonly port: number;
  /** `http://<hostname>:<port>`. */
  readonly url: string;
  /** Stops listening and waits for open requests to finish. */
  close(): Promise<void>;
  /** Same as {@linkcode MetricsServer.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Serves `registry` on `/metrics` and a health probe on `/healthz`.
 *
 * @example
 * ```ts ignore
 * import { Registry } from "prom-client";
 * import { serveMetrics } from "./metrics_server.ts";
 * const server = serveMetrics(new Registry(), { port: 9464, hostname: "127.0.0.1" });
 * // ... run the stream ...
 * await server.close();
 * ```
 */
export function serveMetrics(registry: Registry, options: ServeMetricsOptions): MetricsServer {
  const log = getLogger(["sluice", "metrics"]).with(options.logFields ?? {});
  const hostname = options.hostname ?? "127.0.0.1";
  const clock = options.clock ?? systemClock;
  const started = clock.now().getTime();
  const controller = new AbortController();
  const server = Deno.serve({
    hostname,
    port: options.port,
    signal: controller.signal,
    onListen: () => {},
    onError: (e) => {
      log.error("metrics server error", { event: "metrics_server_error", error: String(e) });
      return new Response("internal error\n", { status: 500 });
    },
  }, async (req) => {
    const path = new URL(req.url).pathname;
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    if (path === "/metrics") {
      const body = await registry.metrics();
      return new Response(req.method === "HEAD" ? null : body, {
        headers: { "content-type": registry.contentType },
      });
    }
    if (path === "/healthz") {
      let status: HealthStatus;
      try {
        status = options.health ? await options.health() : { ok: true };
      } catch (e) {
        status = { ok: false, details: { error: e instanceof Error ? e.message : String(e) } };
      }
      const body = JSON.stringify({
        status: status.ok ? "ok" : "unhealthy",
        uptime_seconds: Math.round((clock.now().getTime() - started) / 1000),
        ...status.details,
      });
      return new Response(req.method === "HEAD" ? null : body + "\n", {
        status: status.ok ? 200 : 503,
        headers: { "content-type": "application/json" },
      });
    }
    return new Response("not found: try /metrics or /healthz\n", { status: 404 });
  });
  const port = server.addr.port;
  const url = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  log.info("metrics server listening on {url}", {
    event: "metrics_server_started",
    url,
    port,
  });
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      controller.abort();
      await server.finished;
      log.info("metrics server stopped", { event: "metrics_server_stopped", url });
    })();
    return closed;
  };
  return { hostname, port, url, close, [Symbol.asyncDispose]: close };
}
